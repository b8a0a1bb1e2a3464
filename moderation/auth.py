"""API keys: issuing, hashing, checking, and the role and site scope of each route."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import g, request

from moderation.database import read_only
from moderation.errors import Forbidden, Unauthorized
from moderation.extensions import db
from moderation.models import ApiKey, Role, Site, key_sites

KEY_PREFIX = "mk"
PREFIX = re.compile(r"[0-9a-f]{12}")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Caller:
    """Who made the request: the key's name, role and the site ids it may act on."""

    key_id: int
    name: str
    role: Role
    site_ids: frozenset[int]

    def may_act_on(self, site_id: int) -> bool:
        return self.role is Role.ADMIN or site_id in self.site_ids


def hash_secret(secret: str) -> str:
    # Keys are 256 random bits, so one SHA-256 is enough; a slow KDF would only cost latency.
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(name: str, role: Role, sites: Iterable[Site]) -> tuple[ApiKey, str]:
    """Make a key row and its secret; the caller commits and shows the secret once."""
    prefix = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(name=name, role=role, prefix=prefix, secret_hash=hash_secret(secret))
    key.sites = list(sites)
    db.session.add(key)
    return key, secret


_keys = ApiKey.__table__
# The key and its sites in one statement (a row per site; one with no site for an admin),
# with Core on the session's connection: loading the ApiKey and its sites through the ORM
# took two statements and cost more than running them.
_KEY_AND_SITES = (
    sa.select(_keys.c.id, _keys.c.name, _keys.c.role, _keys.c.secret_hash, _keys.c.revoked_at,
              key_sites.c.site_id)
    .select_from(_keys.outerjoin(key_sites, key_sites.c.key_id == _keys.c.id))
    .where(_keys.c.prefix == sa.bindparam("prefix"))
)


BEARER_ADVICE = "Use 'Authorization: Bearer <api key>'."
# The HTTP authentication schemes a browser or a proxy may send on its own (IANA registry).
OTHER_SCHEMES = frozenset(("basic", "digest", "negotiate", "ntlm", "hoba", "mutual",
                           "scram-sha-1", "scram-sha-256", "vapid"))


def authenticate(header: str | None) -> Caller | None:
    """The caller named by an `Authorization: Bearer` header, or None when there is none.

    Another HTTP authentication scheme (Basic, Digest, Negotiate...) is not an API key but
    someone else's credentials: a browser sends the Basic credentials of a site behind
    HTTP authentication (staging, an intranet) with every request to that host, the
    comment form's post included, which then failed with 401. It is no key here: the
    public routes take the request as they take one without a header, the others answer
    401 saying how to send a key (``require``). Anything else (a bare key, "Token mk_...",
    "Bearer:") is a key sent wrongly: 401, or a site's backend would post as a browser.
    """
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() in OTHER_SCHEMES:
        return None
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized(BEARER_ADVICE)
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not PREFIX.fullmatch(parts[1]):
        raise Unauthorized("The API key is not valid.", invalid_key=True)
    # A request's first query, and only a read: without the write lock (see read_only).
    with read_only():
        rows = db.session.connection().execute(_KEY_AND_SITES, {"prefix": parts[1]}).all()
    key = rows[0] if rows else None
    # Compare even when no row matched, so timing does not tell which prefixes exist.
    expected = key.secret_hash if key is not None else hash_secret("")
    if not hmac.compare_digest(expected, hash_secret(token)) or key is None:
        raise Unauthorized("The API key is not valid.", invalid_key=True)
    if key.revoked_at is not None:
        raise Unauthorized("The API key has been revoked.", invalid_key=True)
    return Caller(
        key_id=key.id,
        name=key.name,
        role=key.role,
        site_ids=frozenset(row.site_id for row in rows if row.site_id is not None),
    )


def current_caller() -> Caller | None:
    """The authenticated caller of this request, if any (cached on `g`)."""
    if "caller" not in g:
        g.caller = authenticate(request.headers.get("Authorization"))
    return g.caller


def site_caller() -> Caller | None:
    """The caller, when it is a site's own key (its backend), else None."""
    caller = current_caller()
    return caller if caller is not None and caller.role is Role.SITE else None


def own_site(caller: Caller | None = None) -> str | None:
    """The slug of the one site a site key (or the given caller) serves; None for a key
    of several sites, an admin key (every site) and no key.

    A submission made with a site key that names no site is for that site: the key
    cannot submit anywhere else, so the contract's default (`default`) would only be a 403.
    The same holds for a moderator key of one site closing a thread.
    """
    caller = caller or site_caller()
    if caller is None or caller.role is Role.ADMIN or len(caller.site_ids) != 1:
        return None
    if "own_site" not in g:
        (site_id,) = caller.site_ids
        with read_only():
            g.own_site = db.session.scalar(sa.select(Site.slug).where(Site.id == site_id))
    return g.own_site


def require(*roles: Role) -> Callable[[F], F]:
    """Decorate a view: 401 without a valid key, 403 for a key of another role."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            caller = current_caller()
            if caller is None:
                given = request.headers.get("Authorization")
                raise Unauthorized(BEARER_ADVICE if given else "This route needs an API key.")
            if caller.role not in roles:
                raise Forbidden("This key's role may not use this route.")
            return view(*args, **kwargs)

        wrapped.required_roles = roles  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


def require_site(caller: Caller, site_id: int) -> None:
    """403 unless the caller may act on this site."""
    if not caller.may_act_on(site_id):
        raise Forbidden("This key may not act on that site.")

