"""CORS: which pages' scripts may read the public routes' answers."""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import RequestEntityTooLarge

from moderation.database import read_only
from moderation.errors import NotFound
from moderation.schemas.base import SLUG
from moderation.services import limits, threads
from moderation.services.sites import DEFAULT_SITE, get_site, origin_allowed, origin_in

# Public routes a site's pages call from the browser.
CORS_PATHS = ("/api/v1/comments", "/api/v1/form-token")
# What a page's script may read of an answer beyond the basic headers: how long to wait
# after a 429 or 503, how many posts the limits leave, and the id to quote to the site owner.
CORS_EXPOSED = ("Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, "
                "X-Request-ID")


def add_cors_headers(response: Response) -> Response:
    """Let a site's own pages call the public routes from the browser, and no other origin.

    The answer, an error's too, is readable only by the origins of the site it concerns.
    A preflight (OPTIONS) names no site, so it admits the origins of every site; the
    request that follows is then answered for its own site's origins only. An error that
    concerns no site the service shows (an unknown site, a comment that is not public, a
    body it could not read) is answered like a preflight, so the page can say what failed.
    """
    if not request.path.startswith(CORS_PATHS):
        return response
    # Said to a request without Origin too, so that a cache never gives its answer to one
    # with an Origin (the Fetch standard's "CORS protocol and HTTP caches").
    response.headers.add("Vary", "Origin")
    origin = request.headers.get("Origin")
    if not origin:
        return response
    if request.method == "OPTIONS":
        allowed = _lookup(lambda: origin_allowed(origin))
    else:
        allowed = _lookup(lambda: _readable_by(origin, response))
    if allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, Idempotency-Key"
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED
        response.headers["Access-Control-Max-Age"] = "600"
    return response


def _lookup(check: Callable[[], bool]) -> bool:
    """Run a CORS lookup as a read; with the database away, the answer (a 503) stays as it
    is, only unreadable cross-origin, instead of becoming a 500."""
    try:
        with read_only():
            return check()
    except (DBAPIError, PoolTimeout):
        return False


def _readable_by(origin: str, response: Response) -> bool:
    """Whether the origin is among those of the site the answer concerns, or of any site
    when it concerns none (only an error can: a success always names a site)."""
    origins = origins_of(_site_of_request(response))
    return origin_allowed(origin) if origins is None else origin_in(origin, origins)


def _site_of_request(response: Response) -> str | None:
    """The site an answer concerns: the comment's for a flag, else the one the request names."""
    if request.view_args and "comment_id" in request.view_args:
        # A flag taken may have sent its comment back to the queue, and is still that
        # site's; an error names only a published comment's site, not a hidden one's.
        return threads.site_of_comment(request.view_args["comment_id"],
                                        published_only=response.status_code >= 400)
    if request.method == "GET":
        return request.args.get("site", "").strip() or DEFAULT_SITE
    try:
        return limits.submitted_site()
    except RequestEntityTooLarge:
        # The body is past the limit and never read: raised here, in the answer's last
        # step, it turned the 413 into a 500.
        return None


def origins_of(slug: str | None) -> list[str] | None:
    """The site's allowed origins; None when no site the service has goes by that slug."""
    if slug is None or not SLUG.fullmatch(slug):
        return None
    try:
        return get_site(slug).allowed_origins or []
    except NotFound:
        return None
