"""Prometheus metrics; in gunicorn they are shared across workers (multiprocess mode)."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import glob
import logging
import os
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, current_app, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from moderation.extensions import db, limiter
from moderation.logs import method_name, request_started
from moderation.models import ClassifierToken, ClassifierTotal, Comment, Site, Status

log = logging.getLogger(__name__)

# Multiprocess mode writes each metric to a file in this folder as soon as the metric is
# defined (below), so the folder must exist before then; gunicorn.conf.py empties it.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

REQUESTS = Counter(
    "moderation_http_requests_total", "Requests answered", ["route", "method", "status"]
)
LATENCY = Histogram(
    "moderation_http_request_duration_seconds",
    "Time to answer a request",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
VERDICTS = Counter("moderation_verdicts_total", "Intake verdicts by outcome", ["outcome"])
# Each outcome from 0, as queue depth is: a series that appears only at its first event
# reads as "no data" until then, and rate() over it misses that first event.
for _outcome in ("approved", "pending", "spam", "rejected"):
    VERDICTS.labels(_outcome)
RULE_HITS = Counter("moderation_rule_hits_total", "Rule hits at intake", ["rule"])
RULES_RELOAD_ERRORS = Counter(
    "moderation_rules_reload_errors_total", "Rules files refused when (re)loading"
)
# Each worker falls back on its own, so the figure is the lowest of the live workers': 0
# while any of them counts in its memory. 1 from the start: a process that only loads the
# app (a `moderation purge` beside the server, sharing its metrics folder) leaves its file
# behind when it exits, and must not read as a fallback.
RATELIMIT_STORAGE_UP = Gauge(
    "moderation_ratelimit_storage_up",
    "1 while the rate limits count in their configured storage (Redis), 0 while a worker "
    "counts in its own memory because the storage failed",
    multiprocess_mode="livemin",
)
RATELIMIT_STORAGE_UP.set(1)


class DatabaseCollector(Collector):
    """Figures read from the database at scrape time: whether it answers, queue depth and
    classifier size.

    With the database away the figures are left out, not the scrape failed: the requests
    answered 503 and the rules reload errors are what an operator needs to see at that
    moment, with `moderation_database_up 0` to alert on (a missing series alerts nobody).
    """

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("moderation_database_up",
                               "1 if the database answered the figures' last reading "
                               "(at most METRICS_DATABASE_MAX_AGE seconds old), else 0")
        try:
            sites, depths, token_count, totals = _database_figures()
        except SQLAlchemyError as error:
            db.session.rollback()
            log.warning("metrics without database figures: %s", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily(
            "moderation_queue_depth", "Comments by site and status", labels=["site", "status"]
        )
        # Every site and status, 0 included: a series that vanished when the queue emptied
        # read as "no data" in a dashboard, and an alert on it never resolved.
        counts = {(slug, status): count for slug, status, count in depths}
        for slug in sites:
            for status in Status:
                depth.add_metric([slug, status.value], counts.get((slug, status), 0))
        yield depth
        tokens = GaugeMetricFamily("moderation_classifier_tokens", "Tokens the classifier knows")
        tokens.add_metric([], token_count or 0)
        yield tokens
        messages = GaugeMetricFamily(
            "moderation_classifier_messages", "Decisions learned, by label", labels=["label"]
        )
        for label, count in totals:
            messages.add_metric([label], count)
        yield messages


def _database_figures() -> tuple[Any, ...]:
    """Sites, queue depths, classifier size: read at most every METRICS_DATABASE_MAX_AGE
    seconds in each worker (one reading at a time), else as last read.

    Counting a million comments took about 90 ms, and /metrics needs no key: under 16
    scrapes at once, thread pages took 0.6 s instead of 2 ms (operations audit). The
    figures are gauges a dashboard samples every 15 s or so; a few seconds old is fine.
    """
    cache = current_app.extensions.setdefault(
        "moderation.metrics_figures", {"lock": threading.Lock(), "read_at": None})
    max_age = current_app.config["METRICS_DATABASE_MAX_AGE"]
    with cache["lock"]:
        read_at = cache["read_at"]
        if read_at is not None and time.monotonic() - read_at < max_age:
            return cache["figures"]
        figures = (
            db.session.scalars(sa.select(Site.slug)).all(),
            db.session.execute(
                sa.select(Site.slug, Comment.status, sa.func.count())
                .join(Site, Site.id == Comment.site_id)
                .group_by(Site.slug, Comment.status)
            ).all(),
            db.session.scalar(sa.select(sa.func.count()).select_from(ClassifierToken)),
            db.session.execute(sa.select(ClassifierTotal.label, ClassifierTotal.messages)).all(),
        )
        cache["figures"], cache["read_at"] = figures, time.monotonic()
        return figures


# Taken shared by a scrape while it reads the folder's files, and exclusive by the master
# while it swaps a dead worker's files for the archive (``archive_dead_worker``).
ARCHIVE_LOCK = "archive.lock"


@contextlib.contextmanager
def _folder_lock(folder: str, exclusive: bool) -> Iterator[None]:
    descriptor = os.open(os.path.join(folder, ARCHIVE_LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(descriptor)  # and so the lock; a process killed holding it lets go too


class FolderCollector(multiprocess.MultiProcessCollector):
    """prometheus_client's collector of the workers' files, read under the folder's lock
    and skipping files that hold nothing yet.

    A worker's file is empty (0 bytes) for a moment after it is created, before
    prometheus_client sizes it; read then, it raised struct.error and the scrape was a 500
    (5 of 880 scrapes while workers recycled, found by an audit).
    """

    def collect(self) -> list[Any]:
        with _folder_lock(self._path, exclusive=False):
            files = []
            for path in glob.glob(os.path.join(self._path, "*.db")):
                with contextlib.suppress(FileNotFoundError):
                    if os.path.getsize(path) >= 8:  # the header: how much of it is used
                        files.append(path)
            return list(self.merge(files, accumulate=True))


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        FolderCollector(registry)
    else:
        registry = CollectorRegistry()
        for collector in (REQUESTS, LATENCY, VERDICTS, RULE_HITS, RULES_RELOAD_ERRORS,
                          RATELIMIT_STORAGE_UP):
            registry.register(collector)
    registry.register(DatabaseCollector())
    return registry


def metrics_response() -> Response:
    """The Prometheus text format, summed over every worker."""
    for attempt in range(3):
        try:
            body = generate_latest(_registry())
            break
        except FileNotFoundError:
            # A live gauge's file was removed as its worker died (mark_process_dead, which
            # takes no lock) between the listing of the folder and its reading: read again.
            if attempt == 2:
                raise
    # As content_type, not mimetype: Flask would append a second "; charset=utf-8".
    return Response(body, content_type=CONTENT_TYPE_LATEST)


# The files a dead worker's counters and histograms are folded into (see below).
ARCHIVE = "archive"


def archive_dead_worker(pid: int, folder: str | None = None) -> None:
    """Fold a dead worker's counter and histogram files into one archive file of each kind,
    and remove them (gunicorn.conf.py's child_exit, in the master).

    prometheus_client keeps every worker's files for good, so that counters never go
    back: with max_requests recycling workers (hundreds a day), /metrics read ever more
    files, and a scrape took 0.6 s at 1,000 dead workers and 3.8 s at 5,000, on its way to
    Prometheus's timeout. The archive holds their sums, so the totals are unchanged.
    The new archive replaces the old, and the worker's file goes, under the folder's lock:
    a scrape falling between the two counted that worker twice, and the next one read the
    counter lower, which Prometheus takes for a reset (a few in a hundred recyclings under
    steady scraping, found by an audit). A file that cannot be read (a worker killed as
    its file was made) is removed, with a warning: it holds nothing that could be counted,
    and it made every scrape fail.
    """
    folder = folder or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return
    for kind in ("counter", "histogram"):
        dead = os.path.join(folder, f"{kind}_{pid}.db")
        if not os.path.exists(dead):
            continue
        archive = os.path.join(folder, f"{kind}_{ARCHIVE}.db")
        try:
            values = list(MmapedDict.read_all_values_from_file(dead))
        except (struct.error, RuntimeError, UnicodeDecodeError, ValueError) as error:
            log.warning("metrics file %s unreadable, removed: %s", os.path.basename(dead), error)
            with _folder_lock(folder, exclusive=True):
                os.remove(dead)
            continue
        if os.path.exists(archive):
            values += MmapedDict.read_all_values_from_file(archive)
        totals: dict[str, float] = {}
        for key, value, _, _ in values:
            totals[key] = totals.get(key, 0.0) + value
        building = archive + ".new"  # not *.db: the collector does not read it meanwhile
        with contextlib.suppress(FileNotFoundError):
            os.remove(building)
        merged = MmapedDict(building)
        try:
            for key, value in totals.items():
                merged.write_value(key, value, 0.0)
        finally:
            merged.close()
        with _folder_lock(folder, exclusive=True):
            os.replace(building, archive)
            os.remove(dead)


def init_metrics(app: Flask) -> None:
    """Count and time every request by its route pattern (never the raw path)."""

    @app.after_request
    def _observe(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule else _route_refusing_the_method()
        started = request_started()  # as the access log has it
        requests, latency = _request_series(route, method_name(request.method),
                                            str(response.status_code))
        requests.inc()
        latency.observe(time.perf_counter() - started)
        # After the limiter's own hooks (registered later, run earlier), which are where
        # it gives up on its storage or finds it back.
        RATELIMIT_STORAGE_UP.set(ratelimit_storage_up())
        return response


def _route_refusing_the_method() -> str:
    """The route of a 405 (a route that takes other methods), else "unmatched".

    Routing stops at the method, so Flask names no rule: a DELETE of /api/v1/comments was
    counted as unmatched, beside requests for paths that exist nowhere (an audit).
    """
    refused = request.routing_exception
    methods = getattr(refused, "valid_methods", None)
    if not methods:
        return "unmatched"
    try:
        rule, _ = current_app.url_map.bind("", "/").match(
            request.path, method=methods[0], return_rule=True)
    except Exception:  # noqa: BLE001 - a label is not worth an error
        return "unmatched"
    return rule.rule


def ratelimit_storage_up() -> bool:
    """Whether flask-limiter counts in its configured storage, not its in-memory fallback.

    Read from flask-limiter's state, without asking the storage anything: its `limiter`
    (the strategy in use) is built on the fallback's own storage while it has given up on
    the configured one, until a later check finds that answering again.
    """
    return not limiter.enabled or limiter.limiter.storage is limiter.storage


@functools.lru_cache(maxsize=1024)
def _request_series(route: str, method: str, status: str) -> tuple[Any, Any]:
    """The request counter and latency histogram of one route, method and status.

    .labels() checks the values and takes a lock on every call; the children it hands back
    are the same objects each time, so each set is looked up once: 1.8% of intake's
    instructions (callgrind). Bounded: the route is a pattern or "unmatched", the method
    one of HTTP's or "other".
    """
    return REQUESTS.labels(route, method, status), LATENCY.labels(route, method)


def count_verdict(outcome: str, rules: list[str]) -> None:
    VERDICTS.labels(outcome).inc()
    for rule in rules:
        RULE_HITS.labels(rule).inc()

