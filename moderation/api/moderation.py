"""Moderator routes: the queue, comment detail, decisions and the audit log."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from moderation.api import NO_QUERY, Blueprint, errors, guarded
from moderation.auth import current_caller, own_site
from moderation.models import Role
from moderation.schemas.moderation import (
    AuditPageSchema,
    AuditQuerySchema,
    BulkAnswerSchema,
    BulkRequestSchema,
    CommentDetailSchema,
    DecisionRequestSchema,
    QueuePageSchema,
    QueueQuerySchema,
    ThreadStateAnswerSchema,
    ThreadStateSchema,
)
from moderation.services import moderation, review
from moderation.services.sites import DEFAULT_SITE

blp = Blueprint(
    "moderation", __name__, url_prefix="/api/v1/moderation", description="Moderation queue"
)
MODERATORS = (Role.ADMIN, Role.MODERATOR)
ETAG_HEADER = {"ETag": {"description": "The comment's version", "schema": {"type": "string"}}}


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


@blp.route("/queue")
@guarded(blp, *MODERATORS)
@blp.arguments(QueueQuerySchema(), location="query")
@blp.response(200, QueuePageSchema)
@errors(blp, 404, 422)
def queue(query: dict[str, Any]) -> Response:
    """Comments awaiting a decision (or in another status), paged by key."""
    # Sent as built: the service returns QueuePageSchema's shape, JSON-ready (the
    # schemathesis suite checks the answers against the schema).
    return jsonify(review.queue(current_caller(), review.QueueFilter(**query)))


@blp.route("/comments/<id:comment_id>")
@guarded(blp, *MODERATORS)
@blp.arguments(NO_QUERY, location="query", as_kwargs=True)
@blp.response(200, CommentDetailSchema, headers=ETAG_HEADER)
@errors(blp, 404, 422)
def comment_detail(comment_id: int) -> Any:
    """The whole comment, with its hits, flags and history; the ETag carries its version."""
    comment = review.comment_for(current_caller(), comment_id)
    return review.detail_of(comment), 200, _etag(comment.version)


@blp.route("/comments/<id:comment_id>/decision", methods=["POST"])
@guarded(blp, *MODERATORS)
@blp.arguments(NO_QUERY, location="query", as_kwargs=True)
@blp.arguments(DecisionRequestSchema())
@blp.doc(
    parameters=[
        {
            "in": "header",
            "name": "If-Match",
            "required": True,
            "description": (
                'The ETag of the comment as you saw it (`"3"`), a list of ETags, or `*` for '
                "whatever its version is now. Compared strongly (RFC 9110 13.1.1): a weak "
                '`W/"3"` never matches. 412 when nothing in it matches the current ETag '
                "(an unparsable value included), 428 when it is missing or empty. A retry is "
                "answered 200: the ETag one version old, when the only change since was this "
                "key's same decision. A decision already in force (a moderator's decision "
                "left the comment in that status) changes nothing and answers 200."
            ),
            # Any non-empty value is a precondition to evaluate, not a malformed request.
            "schema": {"type": "string", "pattern": r"\S"},
        }
    ]
)
@blp.response(200, CommentDetailSchema, headers=ETAG_HEADER)
@errors(blp, 400, 404, 409, 412, 415, 422, 428)
def decide(decision: dict[str, Any], comment_id: int) -> Any:
    """Approve, mark as spam, reject or delete a comment, guarded by If-Match."""
    caller = current_caller()
    comment = review.comment_for(caller, comment_id)
    action, if_match = decision["action"], request.headers.get("If-Match")
    version = moderation.version_to_replace(caller, comment, action, if_match)
    comment = moderation.decide(caller, comment, action, decision["reason"], version)
    return review.detail_of(comment), 200, _etag(comment.version)


@blp.route("/bulk", methods=["POST"])
@guarded(blp, *MODERATORS)
@blp.arguments(NO_QUERY, location="query", as_kwargs=True)
@blp.arguments(BulkRequestSchema())
@blp.response(200, BulkAnswerSchema)
@errors(blp, 400, 415, 422)
def bulk(decision: dict[str, Any]) -> dict[str, Any]:
    """Apply one decision to many comments; each id reports its own result."""
    results = moderation.bulk(
        current_caller(), decision["ids"], decision["action"], decision["reason"]
    )
    return {"results": results}


@blp.route("/audit")
@guarded(blp, *MODERATORS)
@blp.arguments(AuditQuerySchema(), location="query")
@blp.response(200, AuditPageSchema)
@errors(blp, 404, 422)
def audit(query: dict[str, Any]) -> dict[str, Any]:
    """The decision log, newest first."""
    return review.audit(current_caller(), **query)


@blp.route("/threads", methods=["PUT"])
@guarded(blp, *MODERATORS)
@blp.arguments(NO_QUERY, location="query", as_kwargs=True)
@blp.arguments(ThreadStateSchema())
@blp.response(200, ThreadStateAnswerSchema)
@errors(blp, 400, 404, 415, 422)
def thread_state(state: dict[str, Any]) -> dict[str, Any]:
    """Close a thread to new comments, or open it again."""
    caller = current_caller()
    site = state["site"] or own_site(caller) or DEFAULT_SITE
    thread = moderation.set_thread_closed(caller, site, state["thread"], state["closed"])
    return {"site": site, "thread": thread.key, "closed": thread.closed}
