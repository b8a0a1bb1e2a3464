"""Flood and rate limits, per IP and per email, set per site in the rules file."""

from __future__ import annotations

from typing import Any

from flask import Response, g, request
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy.exc import SQLAlchemyError
from webargs.flaskparser import is_json_request
from werkzeug.exceptions import RequestEntityTooLarge

from moderation.auth import own_site, site_caller
from moderation.errors import DATABASE_RETRY_AFTER, ServiceError
from moderation.extensions import limiter
from moderation.schemas.base import SLUG
from moderation.services.comments import answered, usable_idempotency_key
from moderation.services.identity import email_hash, ip_hash, reporter_hash
from moderation.services.rules import current_rules
from moderation.services.sites import DEFAULT_SITE

# The bodies of an HTML form, which intake takes beside JSON.
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _body() -> dict[str, Any] | None:
    """The submission's fields; None when the body is neither a JSON object nor a form,
    or cannot be read (over the size limit: the route answers 413 when it reads it).

    It must not raise: flask-limiter takes an error in a key function for its storage
    failing, and counts in a fresh in-memory fallback until it checks the storage again,
    so that one 413 restarted every commenter's count."""
    try:
        if is_json_request(request):
            body = request.get_json(silent=True)
            return body if isinstance(body, dict) else None
        if request.mimetype not in FORM_TYPES:
            return None
        # Kept, so that intake can read the raw form after this (it decodes it strictly):
        # the form parser reads the body once and keeps only what it decoded.
        request.get_data(cache=True)
        return request.form.to_dict()
    except RequestEntityTooLarge:
        return None


def site_named(site: Any) -> str | None:
    """The site a submission's `site` value names, as intake, the limits, CORS and the
    honeypot all read it: trimmed (blank is not given), else a site key's own site, else
    `default`; None when it is not text."""
    if site is not None and not isinstance(site, str):
        return None
    return (site or "").strip() or own_site() or DEFAULT_SITE


def submitted_site() -> str | None:
    """The site the request's submission is for (``site_named`` of its body's `site`);
    None when the body cannot be read, and so names none."""
    body = _body()
    return None if body is None else site_named(body.get("site"))


# flask-limiter takes an error raised by any of the functions below for its storage
# failing: it then counts in a fresh in-memory fallback, per process, until it checks the
# storage again a second or more later. So none of them may raise on what a request
# brings: one request with a made-up key restarted every commenter's count (and with
# Redis, made the limits per process rather than shared).
def _caller_known() -> bool:
    """Whether the caller, and so the submission's site and IP, can be worked out here.

    Not for a key that is not valid, or with the database away: such a request is counted
    nowhere, and the view answers it (401, 503).
    """
    if "limits_caller_known" not in g:
        try:
            own_site()  # authenticates the caller, and looks up a site key's site
        except (ServiceError, SQLAlchemyError):
            g.limits_caller_known = False
        else:
            g.limits_caller_known = True
    return g.limits_caller_known


def _site() -> str:
    """The submission's site as the limits key it: `default` for one that is no slug (refused
    by intake after the limits), which must not reach a query either. A NUL in it made
    PostgreSQL fail the Idempotency-Key look-up, which flask-limiter took for its storage
    failing: it switched to per-process memory limits."""
    site = submitted_site() if _caller_known() else None
    return site if site is not None and SLUG.fullmatch(site) else "default"


def _commenter_ip() -> str | None:
    """The commenter's IP: the body's for a site key (its backend posts for many people),
    None when the backend gives none. The backend's own address is not the commenter's:
    counted under it, every commenter of a site whose backend leaves out `ip` shared one
    allowance of 5 comments a minute."""
    if _caller_known() and site_caller() is not None:
        given = (_body() or {}).get("ip")
        return given[:45] if isinstance(given, str) and given.strip() else None
    return request.remote_addr or "unknown"


# The keys name the commenter by keyed hashes: they sit in Redis in production (and in
# flask-limiter's log line of a limit reached), where a raw IP or address must not.
def ip_key() -> str:
    return f"{_site()}:ip:{ip_hash(_commenter_ip() or 'unknown')}"


def _submitted_email() -> str | None:
    """The commenter's address as submitted (JSON or the WordPress form's name); None if none."""
    body = _body() or {}
    email = body.get("author_email") or body.get("email")
    return email if isinstance(email, str) and email.strip() else None


def email_key() -> str:
    return f"{_site()}:email:{email_hash(_submitted_email() or '')}"


def reporter_key() -> str:
    return f"flag:{reporter_hash(request.remote_addr or 'unknown')}"


def _limit(name: str, site: str | None = None) -> str | None:
    return getattr(current_rules().settings_for(site or _site()).limits, name)


def per_ip() -> str:
    return _limit("per_ip") or ""


def per_email() -> str:
    return _limit("per_email") or ""


def per_reporter() -> str:
    return _limit("flag_per_reporter", "default") or ""


def _retry() -> bool:
    """Whether the submission retries one already answered (its Idempotency-Key is stored).

    A retry is answered with the first answer and stores nothing, so it is not another
    comment to count: counted, the retry of a comment that reached a limit got a 429
    instead of its answer, and each retry used up a comment of the commenter's allowance.
    A key stored with another body is answered 422, so this lets no comment through.
    With the database away the look-up fails, and the view answers 503: that is not
    counted either, so a commenter retrying through an outage keeps their allowance.
    """
    if "submission_retry" not in g:
        key = request.headers.get("Idempotency-Key")
        try:
            g.submission_retry = (key is not None and usable_idempotency_key(key)
                                  and answered(_site(), key))
        except SQLAlchemyError:
            g.submission_retry = True
    return g.submission_retry


# A limit set to null in the rules file switches that limit off.
def no_ip_limit() -> bool:
    return (not _caller_known() or not _limit("per_ip") or _commenter_ip() is None
            or _retry())


def no_email_limit() -> bool:
    # A submission with no address is refused (422) and counted by its IP alone: counted
    # under the one key of "no address", every reader's mistake used up everyone's
    # allowance, and a stranger who forgot the field was answered 429.
    return (not _caller_known() or not _limit("per_email") or _submitted_email() is None
            or _retry())


def no_reporter_limit() -> bool:
    return not _limit("flag_per_reporter", "default")


def give_back_what_this_request_took() -> None:
    """Count this request nowhere: a copy of a submission whose first copy was still
    being stored when the limits looked (``_retry`` found no answer yet), answered with
    that first answer. Counted, 20 copies sent at once by a client that retried on its
    own timeout used up the commenter's allowance and got 429s (found by an audit)."""
    g.limits_give_back = True


def keep_retry_after_for_waits(response: Response) -> Response:
    """flask-limiter adds Retry-After to every answer of a limited route; it means something
    only where waiting helps: a 429, and the 503 of a database that is away. On that 503
    the limiter's figure (when its window resets, up to a minute or more) replaced the
    database's own short wait, so the database's is put back (or the wait the 503's
    handler left in ``g.retry_after``: a rules file that does not load is fixed by a
    person, not in 5 s). A failed request (5xx) and a copy answered as its first copy was
    are counted nowhere."""
    if response.status_code >= 500 or g.get("limits_give_back"):
        _give_back_the_counts()
        # flask-limiter wrote them before the counts were given back: stale by one.
        for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
            response.headers.pop(name, None)
    if response.status_code == 503:
        response.headers["Retry-After"] = str(g.get("retry_after", DATABASE_RETRY_AFTER))
    elif response.status_code != 429:
        response.headers.pop("Retry-After", None)
        _describe_the_tightest_limit(response)
    return response


def _give_back_the_counts() -> None:
    """A request the service failed (a full disk, a database gone mid-request: 503) used up
    none of the commenter's allowance: the limits counted it as it came in, so a commenter
    retrying through an outage, as the 503's Retry-After asks, was answered 429 once it
    ended, and everyone on that IP with them (found by an audit). Each count is taken back
    (the fixed windows count up, and count down as well)."""
    for counted in limiter.current_limits:
        if counted.breached or not isinstance(counted.limiter, FixedWindowRateLimiter):
            continue  # a 429 counted nothing; other strategies cannot count down
        try:
            _, remaining = counted.limiter.get_window_stats(counted.limit, *counted.request_args)
            # A window that ended since (a 503 can take 15 s) counts from 0 again: taken
            # back there, the count went to -1, an extra comment in the next window.
            if remaining < counted.limit.amount:
                counted.limiter.hit(counted.limit, *counted.request_args, cost=-1)
        except Exception:  # noqa: BLE001 - the storage away: its counts are not ours to mend
            return


def _describe_the_tightest_limit(response: Response) -> None:
    """X-RateLimit-* describe the limit that runs out first, as GitHub's do.

    flask-limiter describes one of a request's limits (per IP, per email) by its own
    order, not the one closest to refusing: a commenter at 3 of 3 per minute by IP read
    "Remaining: 2" of 5 by email, then got a 429 (audit). On a 429 it names the one broken.
    """
    if "X-RateLimit-Remaining" not in response.headers or len(limiter.current_limits) < 2:
        return
    try:
        tightest = min(limiter.current_limits, key=lambda limit: limit.remaining)
        remaining, reset_at = tightest.remaining, tightest.reset_at
    except Exception:  # noqa: BLE001 - the storage away: flask-limiter's figures stand
        return
    response.headers["X-RateLimit-Limit"] = str(tightest.limit.amount)
    response.headers["X-RateLimit-Remaining"] = str(remaining)
    response.headers["X-RateLimit-Reset"] = str(reset_at)
