"""Admin routes: sites, keys and the rules in force."""

from __future__ import annotations

from typing import Any

from flask import url_for

from moderation.api import NO_QUERY, Blueprint, errors, guarded
from moderation.auth import current_caller
from moderation.models import ApiKey, Role
from moderation.schemas.admin import (
    KEY_REQUEST_DOC,
    DeleteSiteQuerySchema,
    EraseAnswerSchema,
    EraseSchema,
    ExportQuerySchema,
    ExportSchema,
    KeyListSchema,
    KeyRequestSchema,
    KeySchema,
    NewKeySchema,
    SiteChangeSchema,
    SiteListSchema,
    SiteSchema,
)
from moderation.services import keys, privacy, sites

blp = Blueprint("admin", __name__, url_prefix="/api/v1/admin", description="Sites, keys and rules")
# A site change as the spec states it: the schema, and at least one of its fields.
SITE_CHANGE_DOC = {"allOf": [SiteChangeSchema], "minProperties": 1}


def key_of(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "role": key.role.value,
        "sites": [site.slug for site in key.sites],
        "prefix": key.prefix,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


@blp.route("/sites", methods=["GET"])
@guarded(blp, Role.ADMIN)
@blp.arguments(NO_QUERY, location="query", as_kwargs=True)
@blp.response(200, SiteListSchema)
@errors(blp, 422)
def list_sites() -> dict[str, Any]:
    """Every site."""
    return {"items": sites.list_sites()}


# A 201 says where the new resource is (RFC 9110 15.3.2), as GitHub's and Stripe's do.
_CREATED = {"Location": {"description": "The new resource's URL", "schema": {"type": "string"}}}


@blp.route("/sites", methods=["POST"])
@guarded(blp, Role.ADMIN)
@blp.arguments(NO_QUERY, location="query", as_kwargs=True)
@blp.arguments(SiteSchema())
@blp.response(201, SiteSchema, headers=_CREATED)
@errors(blp, 400, 409, 415, 422)
def create_site(site: dict[str, Any]) -> Any:
    """Add a site."""
    created = sites.create_site(site["slug"], site["name"], site["allowed_origins"])
    return created, {"Location": url_for(".get_site", slug=created.slug)}


@blp.route("/sites/<string:slug>", methods=["GET"])
@guarded(blp, Role.ADMIN)
@blp.arguments(NO_QUERY, location="query", as_kwargs=True)
@blp.response(200, SiteSchema)
@errors(blp, 404, 422)
def get_site(slug: str) -> Any:
    """One site."""
    return sites.get_site(slug)


@blp.route("/sites/<string:slug>", methods=["PATCH"])
@guarded(blp, Role.ADMIN)
@blp.arguments(NO_QUERY, location="query", as_kwargs=True)
@blp.arguments(SiteChangeSchema())
@blp.doc(requestBody={"content": {"application/json": {"schema": SITE_CHANGE_DOC}}})
@blp.response(200, SiteSchema)
@errors(blp, 400, 404, 415, 422)
def change_site(change: dict[str, Any], slug: str) -> Any:
    """Rename a site or replace its allowed origins; fields left out keep their values.

    The slug cannot change: comments, keys and the rules file's site overrides name the site
    by it.
    """
    return sites.change_site(slug, change.get("name"), change.get("allowed_origins"))


@blp.route("/sites/<string:slug>", methods=["DELETE"])
@guarded(blp, Role.ADMIN)
@blp.arguments(DeleteSiteQuerySchema, location="query", as_kwargs=True)
@blp.response(204)
@errors(blp, 404, 409, 422)
def delete_site(slug: str, delete_comments: bool) -> None:
    """Remove a site: one that has comments only with `delete_comments=true`, which
    deletes them with it (else 409).

    Moderator and site keys limited to this site alone are revoked with it, in the same
    transaction: they would otherwise go on working with no site.
    """
    sites.delete_site(slug, delete_comments)


@blp.route("/keys", methods=["GET"])
@guarded(blp, Role.ADMIN)
@blp.arguments(NO_QUERY, location="query", as_kwargs=True)
@blp.response(200, KeyListSchema)
@errors(blp, 422)
def list_keys() -> dict[str, Any]:
    """Every key, without secrets."""
    return {"items": [key_of(key) for key in keys.list_keys()]}


@blp.route("/keys", methods=["POST"])
@guarded(blp, Role.ADMIN)
@blp.arguments(NO_QUERY, location="query", as_kwargs=True)
@blp.arguments(KeyRequestSchema())
@blp.doc(requestBody={"content": {"application/json": {"schema": KEY_REQUEST_DOC}}})
@blp.response(201, NewKeySchema, headers=_CREATED)
@errors(blp, 400, 404, 409, 415, 422)
def create_key(request: dict[str, Any]) -> Any:
    """Issue a key; its secret is in this answer and nowhere else, ever.

    The name must not be that of another unrevoked key (409): the audit log names the actor
    by it.
    """
    key, secret = keys.create_key(request["name"], request["role"], request["sites"])
    return {**key_of(key), "secret": secret}, {"Location": url_for(".get_key", key_id=key.id)}


@blp.route("/keys/<id:key_id>", methods=["GET"])
@guarded(blp, Role.ADMIN)
@blp.arguments(NO_QUERY, location="query", as_kwargs=True)
@blp.response(200, KeySchema)
@errors(blp, 404, 422)
def get_key(key_id: int) -> dict[str, Any]:
    """One key, without its secret: its role, sites, and whether and when it was revoked."""
    return key_of(keys.get_key(key_id))


@blp.route("/keys/<id:key_id>", methods=["DELETE"])
@guarded(blp, Role.ADMIN)
@blp.arguments(NO_QUERY, location="query", as_kwargs=True)
@blp.response(204)
@errors(blp, 404, 409, 422)
def revoke_key(key_id: int) -> None:
    """Revoke a key; the last active admin key cannot be revoked (409)."""
    keys.revoke_key(key_id)


@blp.route("/privacy/erase", methods=["POST"])
@guarded(blp, Role.ADMIN)
@blp.arguments(NO_QUERY, location="query", as_kwargs=True)
@blp.arguments(EraseSchema())
@blp.response(200, EraseAnswerSchema)
@errors(blp, 400, 415, 422)
def erase(request: dict[str, Any]) -> dict[str, Any]:
    """Anonymise every comment by an email address (the right to erasure)."""
    actor = current_caller().name
    return {"erased": privacy.erase(actor, request["email"], request["delete_content"])}


@blp.route("/privacy/export", methods=["GET"])
@guarded(blp, Role.ADMIN)
@blp.arguments(ExportQuerySchema(), location="query")
@blp.response(200, ExportSchema)
@errors(blp, 422)
def export(query: dict[str, Any]) -> dict[str, Any]:
    """Everything stored about the commenter with an email address (the right of access)."""
    return privacy.export(query["email"])
