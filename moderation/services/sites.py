"""Sites: the websites that use the service."""

from __future__ import annotations

from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from moderation.errors import Conflict, Invalid, NotFound
from moderation.extensions import db
from moderation.models import Comment, Site
from moderation.schemas.base import SLUG
from moderation.services.keys import revoke_keys_only_for

DEFAULT_SITE = "default"


def get_site(slug: str, *, for_update: bool = False) -> Site:
    """The site with this slug, or 404; ``for_update`` locks it (on PostgreSQL) to change it."""
    site = None
    if SLUG.fullmatch(slug):
        query = sa.select(Site).where(Site.slug == slug)
        site = db.session.scalar(query.with_for_update() if for_update else query)
    if site is None:
        raise NotFound(f"There is no site '{slug}'.")
    return site


_SITE_ID = sa.select(Site.__table__.c.id).where(Site.__table__.c.slug == sa.bindparam("slug"))
# FOR KEY SHARE (PostgreSQL): a deletion of the site waits for the holder, while a change
# of its name or origins does not. SQLite has one writer and renders no lock.
_SITE_HELD = (
    sa.select(Site.__table__.c.id).where(Site.__table__.c.id == sa.bindparam("site_id"))
    .with_for_update(read=True, key_share=True)
)


def hold_site(site_id: int) -> bool:
    """Hold the site against its deletion until the transaction ends; False if it is gone
    (deleted since it was read, or by the deletion this waited for)."""
    return db.session.execute(_SITE_HELD, {"site_id": site_id}).first() is not None


def get_site_id(slug: str) -> int:
    """The id of the site with this slug, or 404; for reads that need no more of the site.

    Core on the session's connection: loading the ORM Site (its allowed origins decoded
    from JSON) only for its id cost the queue page 3% of its instructions.
    """
    site_id = None
    if SLUG.fullmatch(slug):
        site_id = db.session.connection().scalar(_SITE_ID, {"slug": slug})
    if site_id is None:
        raise NotFound(f"There is no site '{slug}'.")
    return site_id


def list_sites() -> list[Site]:
    return list(db.session.scalars(sa.select(Site).order_by(Site.slug)))


def create_site(slug: str, name: str = "", allowed_origins: list[str] | None = None) -> Site:
    """Add a site; 409 if the slug is taken."""
    site = Site(slug=slug, name=name, allowed_origins=_origins(allowed_origins or []))
    db.session.add(site)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"The site '{slug}' exists already.") from None
    return site


def change_site(slug: str, name: str | None = None,
                allowed_origins: list[str] | None = None) -> Site:
    """Rename a site and/or replace its allowed origins (None keeps the value); 404 if unknown.

    A change of nothing is refused (422): most likely a client that lost its body on the way.
    """
    # Locked: a site another admin deletes meanwhile is then a 404, not a failed update.
    site = get_site(slug, for_update=True)
    if name is None and allowed_origins is None:
        raise Invalid("Give a name, allowed_origins or both.")
    if name is not None:
        site.name = name
    if allowed_origins is not None:
        site.allowed_origins = _origins(allowed_origins)
    db.session.commit()
    return site


def _origins(allowed_origins: list[str]) -> list[str]:
    # Once canonical, "https://News.Example/" and "https://news.example:443" are one origin:
    # kept once, in the order given.
    return list(dict.fromkeys(canonical_origin(origin) for origin in allowed_origins))


def canonical_origin(origin: str) -> str:
    """An origin as browsers send it (RFC 6454): scheme and host in lower case, no default
    port, no trailing slash; "https://News.Example:443/" would otherwise never match."""
    origin = origin.strip().rstrip("/")
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        # An unclosed IPv6 bracket or a port out of range: left as given, it matches
        # nothing a browser sends.
        return origin.lower()
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    default_port = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" if port in (None, default_port) else f"{scheme}://{host}:{port}"


def origin_in(origin: str, allowed_origins: list[str] | None) -> bool:
    """Whether an Origin header names one of these origins (each compared canonically)."""
    wanted = canonical_origin(origin)
    return any(canonical_origin(allowed) == wanted for allowed in allowed_origins or [])


def delete_site(slug: str, delete_comments: bool = False) -> None:
    """Remove a site; 409 while it has comments unless ``delete_comments`` says to delete
    them with it, so that no comment is lost by accident.

    Its threads, comments (with their hits, flags and Idempotency-Keys) go with it, by the
    foreign keys' ON DELETE CASCADE; the audit log keeps its decisions, no longer linked
    to a comment or a site, their reasons scrubbed of the commenters as an erasure would
    (no erasure could find them after). What the comments taught the classifier stays
    learned, as after a purge. Keys limited to this site alone are revoked with it.
    """
    # Locked before the check: intake holds the site while it stores a comment, so a
    # comment is either seen below (409) or refused once the site is gone (404), never
    # stored after the check and then deleted with the site unasked.
    site = get_site(slug, for_update=True)
    if slug == DEFAULT_SITE:
        raise Conflict("The default site cannot be deleted.")
    if not delete_comments and db.session.scalar(
            sa.select(sa.exists().where(Comment.site_id == site.id))):
        # Erasing or purging would not empty it: neither removes an approved comment.
        raise Conflict(f"The site '{slug}' has comments; to delete them with it, ask again "
                       "with delete_comments=true (--delete-comments on the command line).")
    if delete_comments:
        from moderation.services import privacy  # which imports this module (via review)

        # The comments before their decisions, in id order, as the purge takes them: it
        # locks a batch of comments, then scrubs their decisions' reasons; taken the other
        # way round here, the two deadlocked on PostgreSQL (a 503, found by an audit).
        db.session.execute(sa.select(Comment.id).where(Comment.site_id == site.id)
                           .order_by(Comment.id).with_for_update())
        privacy.forget_commenters_in_reasons(
            sa.select(Comment.id).where(Comment.site_id == site.id))
    revoke_keys_only_for(site)
    db.session.delete(site)
    db.session.commit()


def origin_allowed(origin: str) -> bool:
    """Whether any site lists this origin (for CORS preflights, which carry no site)."""
    return any(origin_in(origin, origins)
               for origins in db.session.scalars(sa.select(Site.allowed_origins)))
