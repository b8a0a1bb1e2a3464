"""The moderation queue's, decisions' and audit log's schemas."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from moderation.schemas.base import (
    ACTIONS,
    CURSOR_ARGUMENT,
    ID,
    ONE_LINE_TEXT,
    SITE_FILTER,
    SLUG,
    STATUSES,
    TEXT_OR_EMPTY,
    FullMatch,
    OptionalQueryNumber,
    OptionalQueryString,
    OptionalTrimmedQuery,
    StrictBoolean,
    StrictSchema,
    TrimmedSchema,
    WholeNumber,
    no_control_chars,
    single_line,
)
from moderation.schemas.public import PublicCommentSchema
from moderation.services.cursors import ID_CURSOR, QUEUE_CURSOR


class HitSchema(ma.Schema):
    rule = fields.String()
    target = fields.String()
    match = fields.String()
    score = fields.Float(allow_none=True)
    outcome = fields.String(allow_none=True)
    explanation = fields.String()
    shadow = fields.Boolean()


class DecisionSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    comment_id = fields.Integer(dump_only=True, allow_none=True)
    site = fields.String(dump_only=True, allow_none=True)
    thread = fields.String(dump_only=True, allow_none=True, metadata={
        "description": "The thread a moderator closed or opened (actions close, open)"})
    actor = fields.String(dump_only=True)
    action = fields.String(dump_only=True)
    old_status = fields.String(dump_only=True, allow_none=True)
    new_status = fields.String(dump_only=True, allow_none=True)
    reason = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class FlagDetailSchema(ma.Schema):
    reason = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class CommentDetailSchema(PublicCommentSchema):
    class Meta:
        # A moderator sees comments one by one; only the public thread read nests replies.
        exclude = ("replies",)

    site = fields.String(dump_only=True)
    thread = fields.String(dump_only=True)
    thread_title = fields.String(dump_only=True, allow_none=True)
    # What the comment came with: approving it gives these to a thread that has none yet,
    # so the moderator sees what would go on the public page.
    sent_thread_title = fields.String(dump_only=True, allow_none=True, metadata={
        "description": "The page title this comment was sent with. Approving the comment "
                       "makes it the thread's public title if the thread has none yet."})
    sent_thread_url = fields.String(dump_only=True, allow_none=True, metadata={
        "description": "The page URL this comment was sent with, taken as the title is."})
    status = fields.String(dump_only=True, metadata={"enum": list(STATUSES)})
    status_reason = fields.String(dump_only=True)
    author_email = fields.String(dump_only=True)
    ip = fields.String(dump_only=True, allow_none=True)
    user_agent = fields.String(dump_only=True, allow_none=True)
    referrer = fields.String(dump_only=True, allow_none=True)
    score = fields.Float(dump_only=True)
    hits = fields.List(fields.Nested(HitSchema), dump_only=True)
    rules_version = fields.String(dump_only=True)
    # Required in the spec: every detail, a queue item's too, carries them, even when empty.
    flags = fields.List(fields.Nested(FlagDetailSchema), dump_only=True, required=True)
    flag_count = fields.Integer(dump_only=True)
    history = fields.List(fields.Nested(DecisionSchema), dump_only=True, required=True)
    version = fields.Integer(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)


class QueuePageSchema(ma.Schema):
    items = fields.List(fields.Nested(CommentDetailSchema), dump_only=True)
    next_cursor = fields.String(dump_only=True, allow_none=True)


class QueueQuerySchema(StrictSchema):
    site = OptionalTrimmedQuery(load_default=None, validate=FullMatch(SLUG), metadata=SITE_FILTER)
    status = fields.String(
        load_default="pending", validate=validate.OneOf((*STATUSES, "flagged"))
    )
    # Empty or blank, as a moderator's search box or filter left empty sends them: no filter.
    thread = OptionalTrimmedQuery(load_default=None, validate=validate.Length(max=512))
    rule = OptionalQueryString(load_default=None, validate=FullMatch(r"^[A-Z0-9_]{1,64}$"))
    q = OptionalQueryString(load_default=None, validate=validate.Length(max=200))
    sort = fields.String(
        load_default="oldest", validate=validate.OneOf(("oldest", "newest", "score")),
        metadata={"description": "`oldest` (default): first come, first reviewed, by id, "
                                 "which follows arrival; `newest`: the reverse; `score`: "
                                 "the highest summed score first, ties newest first."})
    limit = OptionalQueryNumber(load_default=50, validate=validate.Range(1, 200))
    cursor = OptionalQueryString(load_default=None, validate=FullMatch(QUEUE_CURSOR),
                                 metadata=CURSOR_ARGUMENT)


class DecisionRequestSchema(StrictSchema):
    action = fields.String(required=True, validate=validate.OneOf(ACTIONS))
    # Kept in the audit log, which moderators and admins read: an escape sequence or a C1
    # control there rewrites what a terminal or the page shows, as in a comment.
    reason = fields.String(load_default="", validate=[validate.Length(max=500), no_control_chars],
                           metadata={"pattern": TEXT_OR_EMPTY})


class BulkRequestSchema(DecisionRequestSchema):
    ids = fields.List(
        WholeNumber(validate=ID),
        required=True,
        validate=validate.Length(1, 200),
    )


class BulkResultSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    status = fields.String(dump_only=True)
    error = fields.String(dump_only=True)
    code = fields.Integer(dump_only=True, metadata={
        "description": "With `error`: the status the single decision would have answered "
                       "(403 another site's, 404 unknown, 409 erased)"})


class BulkAnswerSchema(ma.Schema):
    results = fields.List(fields.Nested(BulkResultSchema), dump_only=True)


class AuditQuerySchema(StrictSchema):
    site = OptionalTrimmedQuery(load_default=None, validate=FullMatch(SLUG), metadata=SITE_FILTER)
    comment_id = OptionalQueryNumber(load_default=None, validate=ID)
    actor = OptionalTrimmedQuery(load_default=None, validate=validate.Length(max=100))
    limit = OptionalQueryNumber(load_default=50, validate=validate.Range(1, 200))
    cursor = OptionalQueryString(load_default=None, validate=FullMatch(ID_CURSOR),
                                 metadata=CURSOR_ARGUMENT)


class AuditPageSchema(ma.Schema):
    items = fields.List(fields.Nested(DecisionSchema), dump_only=True)
    next_cursor = fields.String(dump_only=True, allow_none=True)


class ThreadStateSchema(TrimmedSchema):
    """Trimmed and one line, as intake stores a thread key: " /a " must close "/a"."""

    site = fields.String(load_default=None, validate=FullMatch(SLUG), metadata={
        "description": "The site's slug; absent: the key's own site if it serves one "
                       "site, else `default`."})
    thread = fields.String(
        required=True,
        validate=[validate.Length(1, 512), single_line],
        metadata={"pattern": ONE_LINE_TEXT},
    )
    closed = StrictBoolean(required=True)


class ThreadStateAnswerSchema(ma.Schema):
    site = fields.String(dump_only=True)
    thread = fields.String(dump_only=True)
    closed = fields.Boolean(dump_only=True)
