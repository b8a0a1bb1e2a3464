"""Signed form tokens: a bot that posts faster than a person can type is caught."""

from __future__ import annotations

import time

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from moderation.rules.model import (
    TOKEN_EXPIRED,
    TOKEN_INVALID,
    TOKEN_MISSING,
    TOKEN_OTHER_PAGE,
    TOKEN_TOO_FAST,
)

SALT = "moderation.form-token"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def issue(site: str, thread: str) -> str:
    """A token for a form served now on this page; the page embeds it in a hidden field."""
    return _serializer().dumps({"site": site, "thread": thread, "at": time.time()})


def problem(token: str | None, site: str, thread: str, min_seconds: float,
            max_age_seconds: int) -> str | None:
    """What is wrong with the token (one of the rules' TOKEN_* causes), or None if it is good:
    missing, forged, for another page, stale, or used too soon."""
    if not token:
        return TOKEN_MISSING
    try:
        served = _serializer().loads(token, max_age=max_age_seconds)
    except SignatureExpired:
        return TOKEN_EXPIRED
    except BadSignature:
        return TOKEN_INVALID
    if not isinstance(served, dict):
        return TOKEN_INVALID
    if served.get("site") != site or served.get("thread") != thread:
        return TOKEN_OTHER_PAGE
    if time.time() - float(served.get("at", 0)) < min_seconds:
        return TOKEN_TOO_FAST
    return None
