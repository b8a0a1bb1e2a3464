"""Signed form tokens: a bot that posts faster than a person can type is caught."""

from __future__ import annotations

import time

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

SALT = "moderation.form-token"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def issue(site: str, thread: str) -> str:
    """A token for a form served now on this page; the page embeds it in a hidden field."""
    return _serializer().dumps({"site": site, "thread": thread, "at": time.time()})


def too_fast(token: str | None, site: str, thread: str, min_seconds: float,
             max_age_seconds: int) -> bool:
    """True when the token is missing, forged, for another page, stale, or used too soon."""
    if not token:
        return True
    try:
        served = _serializer().loads(token, max_age=max_age_seconds)
    except BadSignature:
        return True
    if not isinstance(served, dict) or served.get("site") != site or served.get("thread") != thread:
        return True
    return time.time() - float(served.get("at", 0)) < min_seconds
