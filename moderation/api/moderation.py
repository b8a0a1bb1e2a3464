"""Moderator routes: the queue, comment detail, decisions and the audit log."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from moderation.api import Blueprint, errors, guarded
from moderation.auth import current_caller
from moderation.errors import PreconditionRequired
from moderation.models import Role
from moderation.schemas import (
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
from moderation.services import moderation

blp = Blueprint(
    "moderation", __name__, url_prefix="/api/v1/moderation", description="Moderation queue"
)
MODERATORS = (Role.ADMIN, Role.MODERATOR)
ETAG_PATTERN = r'^(W/)?"?[0-9]{1,18}"?$'
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
    return jsonify(moderation.queue(current_caller(), moderation.QueueFilter(**query)))


@blp.route("/comments/<id:comment_id>")
@guarded(blp, *MODERATORS)
@blp.response(200, CommentDetailSchema, headers=ETAG_HEADER)
@errors(blp, 404)
def comment_detail(comment_id: int) -> Any:
    """The whole comment, with its hits, flags and history; the ETag carries its version."""
    comment = moderation.comment_for(current_caller(), comment_id)
    return moderation.detail_of(comment, with_history=True), 200, _etag(comment.version)


@blp.route("/comments/<id:comment_id>/decision", methods=["POST"])
@guarded(blp, *MODERATORS)
@blp.arguments(DecisionRequestSchema())
@blp.doc(
    parameters=[
        {
            "in": "header",
            "name": "If-Match",
            "required": True,
            "description": "The ETag of the comment as you saw it",
            "schema": {"type": "string", "pattern": ETAG_PATTERN},
        }
    ]
)
@blp.response(200, CommentDetailSchema, headers=ETAG_HEADER)
@errors(blp, 400, 404, 412, 415, 422, 428)
def decide(decision: dict[str, Any], comment_id: int) -> Any:
    """Approve, mark as spam, reject or delete a comment, guarded by If-Match."""
    caller = current_caller()
    comment = moderation.comment_for(caller, comment_id)
    if_match = request.headers.get("If-Match")
    if not if_match:
        raise PreconditionRequired("Send If-Match with the ETag of the comment you saw.")
    version = moderation.parse_etag(if_match)
    if version is None:
        raise PreconditionRequired("If-Match must carry an ETag from this API, like \"3\".")
    comment = moderation.decide(caller, comment, decision["action"], decision["reason"], version)
    return moderation.detail_of(comment, with_history=True), 200, _etag(comment.version)


@blp.route("/bulk", methods=["POST"])
@guarded(blp, *MODERATORS)
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
    return moderation.audit(current_caller(), **query)


@blp.route("/threads", methods=["PUT"])
@guarded(blp, *MODERATORS)
@blp.arguments(ThreadStateSchema())
@blp.response(200, ThreadStateAnswerSchema)
@errors(blp, 400, 404, 415, 422)
def thread_state(state: dict[str, Any]) -> dict[str, Any]:
    """Close a thread to new comments, or open it again."""
    thread = moderation.set_thread_closed(
        current_caller(), state["site"], state["thread"], state["closed"]
    )
    return {"site": state["site"], "thread": thread.key, "closed": thread.closed}
