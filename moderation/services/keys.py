"""API keys as an admin manages them."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from moderation.auth import new_key
from moderation.errors import Conflict, Invalid, NotFound
from moderation.extensions import db
from moderation.models import CLI_ACTOR, FLAG_ACTOR, ApiKey, Role, Site, key_sites


def create_key(name: str, role: str, site_slugs: list[str]) -> tuple[ApiKey, str]:
    """Issue a key; moderator and site keys must name their sites. Returns the secret once.

    409 if an unrevoked key has the name already: the audit log names actors by key name.
    """
    if name.casefold() in (FLAG_ACTOR, CLI_ACTOR):
        # An audit log entry by such a key would pass for the readers' or the shell's.
        raise Invalid(f"'{name}' names the audit log's own actors; choose another name.",
                      {"name": [f"'{FLAG_ACTOR}' and '{CLI_ACTOR}' are reserved."]})
    role_enum = Role(role)
    # Held (FOR KEY SHARE, on PostgreSQL) until the key is stored: a site deleted meanwhile
    # either waits and revokes the new key with it, or is gone before this looks (404).
    sites = list(db.session.scalars(
        sa.select(Site).where(Site.slug.in_(site_slugs)).order_by(Site.id)
        .with_for_update(read=True, key_share=True)
    ))
    missing = sorted(set(site_slugs) - {site.slug for site in sites})
    if missing:
        raise NotFound(f"There is no site '{missing[0]}'.")
    if role_enum is Role.SITE and len(sites) != 1:
        raise Invalid("A site key names exactly one site.", {"sites": ["Name exactly one site."]})
    if role_enum is Role.MODERATOR and not sites:
        raise Invalid("A moderator key names its sites.", {"sites": ["Name at least one site."]})
    if role_enum is Role.ADMIN and sites:
        raise Invalid("An admin key covers every site.", {"sites": ["Leave empty for admin."]})
    name_in_use = db.session.scalar(
        sa.select(sa.exists().where(ApiKey.name == name, ApiKey.revoked_at.is_(None)))
    )
    taken = Conflict(f"An active key is named '{name}' already; choose another name.")
    if name_in_use:
        raise taken
    key, secret = new_key(name, role_enum, sites)
    try:
        db.session.commit()
    except IntegrityError:
        # Another key took the name since the check (uq_api_keys_active_name).
        db.session.rollback()
        raise taken from None
    return key, secret


def list_keys() -> list[ApiKey]:
    return list(db.session.scalars(sa.select(ApiKey).order_by(ApiKey.id)))


def get_key(key_id: int) -> ApiKey:
    """One key, revoked or not; 404 if there is no such key."""
    key = db.session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"There is no key {key_id}.")
    return key


def revoke_key(key_id: int) -> None:
    """Revoke a key; it stays listed for the audit trail.

    409 for the last active admin key: revoking it would leave nobody able to manage
    sites, keys or rules through the API (`moderation keys create` on the server could
    still make one, but an admin who revokes their own key by mistake should not need it).
    """
    key = get_key(key_id)
    if key.revoked_at is not None:
        return
    if key.role is Role.ADMIN:
        # Locked (on PostgreSQL), so that two admins revoking each other's keys at once
        # cannot both see the other's key as the one left.
        active_admins = db.session.scalars(
            sa.select(ApiKey.id)
            .where(ApiKey.role == Role.ADMIN, ApiKey.revoked_at.is_(None))
            .with_for_update()
        ).all()
        if set(active_admins) <= {key.id}:
            db.session.rollback()
            raise Conflict("This is the last active admin key; create another admin key "
                           "before revoking it.")
    key.revoked_at = dt.datetime.now(dt.UTC)
    db.session.commit()


def revoke_keys_only_for(site: Site) -> None:
    """Revoke the unrevoked keys whose one site this is; the caller commits with the deletion.

    Left in place they would work on with no site, which no moderator or site key may have.
    """
    now = dt.datetime.now(dt.UTC)
    for key in db.session.scalars(
        sa.select(ApiKey)
        .join(key_sites, key_sites.c.key_id == ApiKey.id)
        .where(key_sites.c.site_id == site.id, ApiKey.revoked_at.is_(None))
    ):
        if [s.id for s in key.sites] == [site.id]:
            key.revoked_at = now


def has_admin_key() -> bool:
    return bool(
        db.session.scalar(
            sa.select(sa.exists().where(ApiKey.role == Role.ADMIN, ApiKey.revoked_at.is_(None)))
        )
    )
