"""One JSON line per request: no emails, no comment text, no query strings."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from moderation.body_limit import RECEIVED_AT

access_log = logging.getLogger("moderation.access")

# HTTP's methods (RFC 9110, and PATCH). gunicorn passes any token a client makes up as the
# method; logs and metric labels name one of these or "other", so a client can neither
# write its own text there nor add a metric series per request.
HTTP_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"))


def method_name(method: str) -> str:
    return method if method in HTTP_METHODS else "other"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


# Loggers written as JSON lines on stderr: ours, and flask-limiter's, which says when the
# limits' storage (Redis) fails and the limits fall back to each worker's memory, and when
# it recovers. Left alone, that one has only a NullHandler, so the fault went unlogged.
JSON_LOGGERS = ("moderation", "flask-limiter")
# An X-Request-ID worth keeping: it is logged and echoed back, so no markup, spaces or
# bytes beyond ASCII (`\xff<script>` came back as `ÿ<script>`; found by an audit).
REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,64}")


def _not_a_request_line(record: logging.LogRecord) -> bool:
    """Werkzeug's development server (`moderation run`) logs each request as
    `<client IP> - - [<time>] "GET /path?query HTTP/1.1" 200 -`, and each it refuses with
    what the client sent: the app's own access line says what is needed, without either."""
    return not _CLIENT_LINE.match(record.getMessage())


_CLIENT_LINE = re.compile(r"\S+ - - \[")


def _limit_without_commenter(record: logging.LogRecord) -> bool:
    """flask-limiter logs each limit reached with its key, which ends in the keyed hash of
    the commenter's address or IP (services/limits.py): the address's hash is the one the
    database keeps, so the log linked its lines to the commenter, and outlived an erasure
    (found by an audit). The line keeps the limit, the site and the kind of key."""
    if record.msg == "ratelimit %s (%s) exceeded at endpoint: %s" and len(record.args) == 3:
        limit, key, endpoint = record.args
        record.args = (limit, str(key).rsplit(":", 1)[0], endpoint)
    return True


def request_started() -> float:
    """When the app began to take this request (its body's reading included, where the
    body limit reads it first): the access log's duration and the latency histogram."""
    return g.get("started", time.perf_counter())


def configure_logging(app: Flask) -> None:
    """JSON logs on stderr, and an access line for each request."""
    limiter = logging.getLogger("flask-limiter")
    if _limit_without_commenter not in limiter.filters:
        limiter.addFilter(_limit_without_commenter)
    werkzeug = logging.getLogger("werkzeug")
    if _not_a_request_line not in werkzeug.filters:
        werkzeug.addFilter(_not_a_request_line)
    for name in JSON_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            handler = logging.StreamHandler()
            handler.setFormatter(JsonFormatter())
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False

    @app.before_request
    def _start() -> None:
        g.started = request.environ.get(RECEIVED_AT) or time.perf_counter()
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex

    @app.after_request
    def _log(response: Response) -> Response:
        started = request_started()
        response.headers["X-Request-ID"] = g.get("request_id", "")
        # The path only: query strings can carry an email (privacy export) or search text.
        access_log.info(
            "request",
            extra={
                "fields": {
                    "request_id": g.get("request_id"),
                    "method": method_name(request.method),
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                }
            },
        )
        return response
