"""GET /metrics: requests, verdicts, queue depth, reload errors, classifier size."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RULES_DIR, comment

ROOT = Path(__file__).parent.parent
REDIS_URL = os.environ.get("TEST_REDIS_URL")


def value(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def scrape(api) -> str:
    return api.get("/metrics").get_data(as_text=True)


def test_metrics_count_requests_verdicts_and_queue_depth(api):
    before = api.get("/metrics").get_data(as_text=True)
    api.post("/api/v1/comments", comment(content="a holdword"))
    api.post("/api/v1/comments", comment(content="fine words", author_email="b@example.org"))
    text = api.get("/metrics").get_data(as_text=True)
    submit = 'moderation_http_requests_total{method="POST",route="/api/v1/comments",status="201"}'
    assert value(text, submit) == value(before, submit) + 2
    assert value(text, 'moderation_verdicts_total{outcome="pending"}') >= 1
    assert value(text, 'moderation_rule_hits_total{rule="HOLD_WORD"}') >= 1
    assert value(text, 'moderation_queue_depth{site="default",status="pending"}') == 1
    assert value(text, 'moderation_queue_depth{site="default",status="approved"}') == 1
    assert "moderation_http_request_duration_seconds_bucket" in text
    assert "moderation_rules_reload_errors_total" in text
    assert "moderation_classifier_tokens" in text
    assert value(text, "moderation_database_up ") == 1


@pytest.mark.parametrize("app_config", [{"METRICS_DATABASE_MAX_AGE": 60}])
def test_the_database_figures_are_read_once_a_while_not_on_every_scrape(api):
    """Counting a million comments took 90 ms on every scrape of a route that needs no
    key: a burst of scrapes made every request wait. Each worker reuses the figures for
    METRICS_DATABASE_MAX_AGE seconds; the request counters stay live."""
    depth = 'moderation_queue_depth{site="default",status="approved"}'
    requests = 'moderation_http_requests_total{method="POST",route="/api/v1/comments",status="201"}'
    first = api.get("/metrics").get_data(as_text=True)
    api.post("/api/v1/comments", comment())
    second = api.get("/metrics").get_data(as_text=True)
    assert value(second, depth) == value(first, depth)  # as read a moment ago
    assert value(second, requests) == value(first, requests) + 1


def test_an_empty_queue_reads_0_not_no_data(api):
    """The depth series of a status with no comment vanished (after a purge, say): a
    dashboard showed no data, and an alert on the depth never resolved."""
    text = api.get("/metrics").get_data(as_text=True)
    for status in ("pending", "approved", "spam", "rejected", "deleted"):
        line = f'moderation_queue_depth{{site="default",status="{status}"}} 0.0'
        assert line in text.splitlines(), status


def test_every_verdict_outcome_is_a_series_from_the_start(api):
    """Appearing at its first event, a series read as no data until then (an audit)."""
    text = api.get("/metrics").get_data(as_text=True)
    for outcome in ("approved", "pending", "spam", "rejected"):
        assert f'moderation_verdicts_total{{outcome="{outcome}"}}' in text, outcome


def test_a_method_a_route_refuses_is_counted_under_that_route(api):
    """A 405 was counted as "unmatched", beside paths that exist nowhere (an audit)."""
    series = ('moderation_http_requests_total{method="DELETE",route="/api/v1/comments",'
              'status="405"}')
    before = value(api.get("/metrics").get_data(as_text=True), series)
    assert api.delete("/api/v1/comments").status_code == 405
    assert value(api.get("/metrics").get_data(as_text=True), series) == before + 1


def test_a_route_method_and_status_seen_before_reuse_their_series(api):
    """The labelled series are looked up once per label set, not on every request, and
    the counts are the same for it."""
    from moderation.metrics import _request_series

    submit = 'moderation_http_requests_total{method="POST",route="/api/v1/comments",status="201"}'
    before = value(api.get("/metrics").get_data(as_text=True), submit)
    api.post("/api/v1/comments", comment(content="first words", author_email="a@example.org"))
    hits = _request_series.cache_info().hits
    api.post("/api/v1/comments", comment(content="other words", author_email="b@example.org"))
    assert _request_series.cache_info().hits == hits + 1
    assert value(api.get("/metrics").get_data(as_text=True), submit) == before + 2


def test_a_method_a_client_makes_up_is_counted_and_logged_as_other(api, caplog):
    """gunicorn passes any token as the method: each made-up one was a label of its own
    (a metric series per request, the client's own text in /metrics and the logs)."""
    access = logging.getLogger("moderation.access")  # it does not propagate to caplog's
    access.addHandler(caplog.handler)
    try:
        for made_up in ("XYZZY", "ADA~1.2.3.4", "PROPFIND"):
            assert api.client.open("/nowhere", method=made_up).status_code in (404, 405)
    finally:
        access.removeHandler(caplog.handler)
    text = api.get("/metrics").get_data(as_text=True)
    assert "XYZZY" not in text and "ADA~" not in text and "PROPFIND" not in text
    assert value(text, 'moderation_http_requests_total{method="other",route="unmatched"') == 3
    logged = [record.fields["method"] for record in caplog.records
              if record.name == "moderation.access"]
    assert logged[:3] == ["other"] * 3


# A process of its own: flask-limiter keeps its fallback state on the module's limiter,
# which every app in a process shares, so an earlier test's dead Redis would linger here.
STORAGE_UP_AFTER_A_COMMENT = """
import sys
from tests.conftest import close_app, comment, make_app

database_url, storage, rules = sys.argv[1:]
app = make_app(database_url, RULES_FILE=rules, RATELIMIT_ENABLED=True,
               RATELIMIT_STORAGE_URI=storage)
client = app.test_client()
status = client.post("/api/v1/comments", json=comment()).status_code
metrics = client.get("/metrics").get_data(as_text=True).splitlines()
close_app(app)
print(status, [line for line in metrics if line.startswith("moderation_ratelimit_storage_up ")])
"""


def storage_up_after_a_comment(database_url: str, storage: str) -> tuple[str, str]:
    """The intake status and the gauge's line, from an app limited in ``storage``; and
    what the app logged."""
    run = subprocess.run(
        [sys.executable, "-c", STORAGE_UP_AFTER_A_COMMENT, database_url, storage,
         str(RULES_DIR / "limits_rules.yaml")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()[-1], run.stderr


def test_the_ratelimit_storage_gauge_is_0_while_redis_is_down(database_url):
    """Nothing listens on port 1: the limiter falls back to memory, the gauge says so, and
    the fault is logged as JSON (flask-limiter's logger had only a NullHandler)."""
    answered, logged = storage_up_after_a_comment(database_url, "redis://:hunter2@127.0.0.1:1/0")
    assert answered == "201 ['moderation_ratelimit_storage_up 0.0']"
    faults = [json.loads(line) for line in logged.splitlines()
              if line.startswith("{") and '"flask-limiter"' in line]
    assert [fault["level"] for fault in faults][:1] == ["warning"]
    assert "unreachable" in faults[0]["message"]
    assert "hunter2" not in logged


@pytest.mark.parametrize("storage", [
    "memory://",
    pytest.param(REDIS_URL, marks=pytest.mark.skipif(
        not REDIS_URL, reason="TEST_REDIS_URL is not set (CI sets it)")),
])
def test_the_ratelimit_storage_gauge_is_1_while_the_storage_answers(database_url, storage):
    assert storage_up_after_a_comment(database_url, storage)[0] == (
        "201 ['moderation_ratelimit_storage_up 1.0']"
    )


def test_a_dead_workers_counts_are_archived_with_the_totals_unchanged(tmp_path):
    """Each recycled worker left its counter and histogram files for good, and a scrape
    read them all (3.8 s at 5,000 dead workers). Folded into the archive, they are gone
    and the totals read the same; a second worker's fold adds to the first's."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    script = (
        "from prometheus_client import Counter, Histogram\n"
        "Counter('jobs', 'Jobs', ['kind']).labels('a').inc(3)\n"
        "Histogram('took', 'Took').observe(0.2)\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    pids = []
    for _ in range(2):
        worker = subprocess.run([sys.executable, "-c", script + "import os; print(os.getpid())"],
                                env=env, capture_output=True, text=True, check=True)
        pids.append(int(worker.stdout))

    def totals() -> str:
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(folder))
        return generate_latest(registry).decode()

    before = totals()
    assert value(before, 'jobs_total{kind="a"}') == 6 and value(before, "took_count") == 2
    from moderation.metrics import archive_dead_worker

    for pid in pids:
        archive_dead_worker(pid, str(folder))
    assert sorted(path.name for path in folder.iterdir()) == [
        "archive.lock", "counter_archive.db", "histogram_archive.db"]
    assert sorted(totals().splitlines()) == sorted(before.splitlines())  # in any order


def _dead_workers(folder: Path, count: int) -> list[int]:
    """The pids of ``count`` processes that each counted jobs{kind="a"} 3 and left."""
    script = ("from prometheus_client import Counter\n"
              "Counter('jobs', 'Jobs', ['kind']).labels('a').inc(3)\n"
              "import os; print(os.getpid())")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    return [int(subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                               text=True, check=True).stdout) for _ in range(count)]


def _scraped(folder: Path) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    from moderation.metrics import FolderCollector

    registry = CollectorRegistry()
    FolderCollector(registry, path=str(folder))
    return generate_latest(registry).decode()


def test_a_scrape_during_the_archiving_counts_the_dead_worker_once(tmp_path, monkeypatch):
    """The archive replaced, the dead worker's file not yet removed: a scrape then counted
    that worker twice, and the next read the counter lower, a reset to Prometheus (audit).
    Here the archiving is held right after its rename while a scrape runs."""
    import threading

    from moderation import metrics

    folder = tmp_path / "metrics"
    folder.mkdir()
    pid = _dead_workers(folder, 1)[0]
    renamed, go_on = threading.Event(), threading.Event()
    real_replace = os.replace

    def held_replace(source: str, target: str) -> None:
        real_replace(source, target)
        renamed.set()
        go_on.wait(5)

    monkeypatch.setattr(metrics.os, "replace", held_replace)
    archiving = threading.Thread(target=metrics.archive_dead_worker, args=(pid, str(folder)))
    archiving.start()
    assert renamed.wait(5)
    scraped: list[str] = []
    scrape = threading.Thread(target=lambda: scraped.append(_scraped(folder)))
    scrape.start()
    scrape.join(0.3)  # the scrape waits for the archiving to end
    go_on.set()
    archiving.join(5)
    scrape.join(5)
    assert value(scraped[0], 'jobs_total{kind="a"}') == 3


def test_a_workers_empty_metrics_file_neither_fails_a_scrape_nor_the_archiving(tmp_path):
    """A worker's file is empty for a moment after it is made: a scrape then was a 500,
    and a worker killed at that moment left a file that failed every scrape, and stopped
    the gunicorn master when it archived it (audit)."""
    from moderation.metrics import archive_dead_worker

    folder = tmp_path / "metrics"
    folder.mkdir()
    _dead_workers(folder, 1)
    (folder / "counter_999999.db").touch()
    assert value(_scraped(folder), 'jobs_total{kind="a"}') == 3
    archive_dead_worker(999999, str(folder))
    assert not (folder / "counter_999999.db").exists()
    assert value(_scraped(folder), 'jobs_total{kind="a"}') == 3


def test_the_time_a_body_takes_to_come_is_in_the_latency(api):
    """Timed from Flask's first hook, a comment whose body took 3 s to come was observed
    as 10 ms, and slow clients holding workers did not show (audit)."""
    import io
    import time

    class Slow(io.BytesIO):
        def read(self, size: int = -1) -> bytes:
            time.sleep(0.3)
            return super().read(size)

    def took() -> float:
        text = api.get("/metrics").get_data(as_text=True)
        return value(text, 'moderation_http_request_duration_seconds_sum{method="POST",'
                           'route="/api/v1/comments"}')

    before = took()
    body = json.dumps(comment()).encode()
    answer = api.post("/api/v1/comments", input_stream=Slow(body),
                      content_type="application/json", content_length=len(body))
    assert answer.status_code == 201
    assert took() - before >= 0.3


def test_verdicts_are_counted_by_their_own_outcome(api):
    before = scrape(api)
    assert api.post("/api/v1/comments", comment(content="plain words")).status_code == 201
    assert api.post("/api/v1/comments", comment(content="spammyword here",
                                                author_email="s@example.org")).status_code == 201
    after = scrape(api)
    for outcome in ("approved", "spam"):
        series = f'moderation_verdicts_total{{outcome="{outcome}"}}'
        assert value(after, series) == value(before, series) + 1, outcome
    pending = 'moderation_verdicts_total{outcome="pending"}'
    assert value(after, pending) == value(before, pending)


def test_every_rule_that_hit_is_counted(api):
    before = scrape(api)
    api.post("/api/v1/comments", comment(content="holdword and spammyword"))
    after = scrape(api)
    for rule in ("HOLD_WORD", "SPAMMY_WORD"):
        series = f'moderation_rule_hits_total{{rule="{rule}"}}'
        assert value(after, series) == value(before, series) + 1, rule


def test_queue_depth_covers_every_site(api, keys):
    assert api.post("/api/v1/comments", comment(site="other")).status_code == 201
    text = scrape(api)
    assert value(text, 'moderation_queue_depth{site="other",status="approved"}') == 1
    assert 'moderation_queue_depth{site="other",status="pending"} 0.0' in text.splitlines()


def test_requests_are_labelled_by_route_pattern_not_raw_path(api, keys):
    api.get("/api/v1/moderation/comments/12345", key=keys.admin)
    text = scrape(api)
    assert "/comments/12345" not in text
    assert 'route="/api/v1/moderation/comments/<id:comment_id>"' in text


def test_classifier_size_is_reported(app, api, keys):
    from moderation.extensions import db
    from moderation.models import ClassifierToken, ClassifierTotal

    with app.app_context():
        before_tokens = db.session.query(ClassifierToken).count()
    # Teach it: a moderator marks one comment spam and one ham.
    ids = [api.post("/api/v1/comments", comment(content=f"words number {n} casino",
                                                author_email=f"c{n}@example.org")
                    ).get_json()["id"] for n in range(2)]
    for comment_id, action in zip(ids, ("spam", "approve"), strict=True):
        detail = api.get(f"/api/v1/moderation/comments/{comment_id}", key=keys.admin)
        api.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                 {"action": action, "reason": "t"}, key=keys.admin,
                 headers={"If-Match": detail.headers["ETag"]})
    with app.app_context():
        tokens = db.session.query(ClassifierToken).count()
        totals = dict(db.session.query(ClassifierTotal.label, ClassifierTotal.messages).all())
    text = scrape(api)
    assert tokens > before_tokens
    assert value(text, "moderation_classifier_tokens ") == tokens
    assert totals and all(
        value(text, f'moderation_classifier_messages{{label="{label}"}}') == count
        for label, count in totals.items()), totals
