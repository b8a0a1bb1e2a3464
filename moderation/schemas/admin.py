"""Sites, keys, privacy requests and the rules' dry runs and backtests."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, pre_load, validate

from moderation.schemas.base import (
    HTTP_URL,
    IP,
    KEY_NAME,
    ONE_LINE,
    ORIGIN,
    SLUG,
    FullMatch,
    StrictBoolean,
    StrictSchema,
    TrimmedSchema,
    TrimmedString,
    WholeNumber,
    email_address,
    ip_address,
    no_format_chars,
    optional_http_url,
    origin_url,
    single_line,
)
from moderation.schemas.moderation import FlagDetailSchema, HitSchema
from moderation.schemas.public import as_intake_stores


class DeleteSiteQuerySchema(StrictSchema):
    delete_comments = fields.Boolean(load_default=False, metadata={
        "description": "Delete the site's comments with it; without this, a site that has "
                       "comments is not deleted (409)."})


def _site_name(**kwargs: Any) -> fields.String:
    # One line: `moderation sites list` prints one site a line, its fields split by tabs.
    return fields.String(validate=[validate.Length(max=200), single_line],
                         metadata={"pattern": ONE_LINE}, **kwargs)


def _allowed_origins(**kwargs: Any) -> fields.List:
    return fields.List(
        fields.String(
            validate=[validate.Length(max=255), origin_url], metadata={"pattern": ORIGIN.pattern}
        ),
        validate=validate.Length(max=50),
        **kwargs,
    )


class SiteSchema(TrimmedSchema):
    slug = fields.String(
        required=True, validate=FullMatch(SLUG, error="Must match [a-z0-9-]{{1,64}}.")
    )
    name = _site_name(load_default="")
    allowed_origins = _allowed_origins(load_default=list)
    created_at = fields.DateTime(dump_only=True)


class SiteChangeSchema(TrimmedSchema):
    """A site's new name and/or origins, validated as at creation; the slug is its identity."""

    name = _site_name()
    allowed_origins = _allowed_origins()


class SiteListSchema(ma.Schema):
    items = fields.List(fields.Nested(SiteSchema), dump_only=True)


class KeyRequestSchema(TrimmedSchema):
    name = fields.String(
        required=True,
        validate=[validate.Length(1, 100), single_line, no_format_chars],
        metadata={"pattern": KEY_NAME, "description": (
            "The actor the audit log names. `readers` and `command line`, in any case, are "
            "the log's own actors and are refused (422).")},
    )
    role = fields.String(required=True, validate=validate.OneOf(("admin", "moderator", "site")))
    sites = fields.List(
        fields.String(validate=FullMatch(SLUG)),
        load_default=list,
        validate=validate.Length(max=100),
    )


def _key_variant(role: str, min_sites: int, max_sites: int) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "role"] + (["sites"] if min_sites else []),
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": KEY_NAME},
            "role": {"type": "string", "enum": [role]},
            "sites": {
                "type": "array",
                "minItems": min_sites,
                "maxItems": max_sites,
                "items": {"type": "string", "pattern": SLUG.pattern},
            },
        },
    }


# The key request as the spec states it: which roles take which sites.
KEY_REQUEST_DOC = {
    "oneOf": [
        _key_variant("admin", 0, 0),
        _key_variant("moderator", 1, 100),
        _key_variant("site", 1, 1),
    ]
}


class KeySchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    role = fields.String(dump_only=True)
    sites = fields.List(fields.String(), dump_only=True)
    prefix = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    revoked_at = fields.DateTime(dump_only=True, allow_none=True)


class NewKeySchema(KeySchema):
    secret = fields.String(
        dump_only=True, metadata={"description": "Shown once; only its hash is stored."}
    )


class KeyListSchema(ma.Schema):
    items = fields.List(fields.Nested(KeySchema), dump_only=True)


class EraseSchema(StrictSchema):
    email = TrimmedString(required=True, validate=[validate.Length(1, 254), email_address],
                          metadata={"format": "email"})
    delete_content = StrictBoolean(load_default=False)


class EraseAnswerSchema(ma.Schema):
    erased = fields.Integer(dump_only=True, metadata={"description": "Comments anonymised"})


class ExportQuerySchema(StrictSchema):
    # Trimmed as intake trims the address it stores.
    email = TrimmedString(required=True, validate=[validate.Length(1, 254), email_address],
                          metadata={"format": "email"})


class ExportedDecisionSchema(ma.Schema):
    action = fields.String()
    actor = fields.String()
    old_status = fields.String(allow_none=True)
    new_status = fields.String(allow_none=True)
    reason = fields.String()
    created_at = fields.DateTime()


class ExportedIdempotencyKeySchema(ma.Schema):
    key = fields.String()
    created_at = fields.DateTime()


class ExportedCommentSchema(ma.Schema):
    id = fields.Integer()
    site = fields.String()
    thread = fields.String()
    parent_id = fields.Integer(allow_none=True)
    root_id = fields.Integer(allow_none=True, metadata={
        "description": "The top comment of the conversation it replies in"})
    status = fields.String()
    status_reason = fields.String()
    author_name = fields.String()
    author_email = fields.String()
    email_hash = fields.String(metadata={
        "description": "The keyed hash of the address that trust, limits and erasure use"})
    author_url = fields.String(allow_none=True)
    content = fields.String()
    content_hash = fields.String(metadata={
        "description": "The hash of the normalised text that the duplicate check uses"})
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    referrer = fields.String(allow_none=True)
    sent_thread_title = fields.String(allow_none=True, metadata={
        "description": "The page title the comment was sent with"})
    sent_thread_url = fields.String(allow_none=True, metadata={
        "description": "The page URL the comment was sent with"})
    score = fields.Float()
    hits = fields.List(fields.Nested(HitSchema))
    rules_version = fields.String()
    learned_as = fields.String(allow_none=True, metadata={
        "description": "What the classifier learned from it: spam, ham, or nothing"})
    learned_tokens = fields.List(fields.String(), metadata={
        "description": "The tokens the classifier learned from it, to be taken back if "
                       "the decision is reversed"})
    flag_count = fields.Integer()
    version = fields.Integer()
    idempotency_keys = fields.List(fields.Nested(ExportedIdempotencyKeySchema), metadata={
        "description": "The Idempotency-Keys it was posted with (each kept with a hash of "
                       "its request until the retention age of IPs)"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    decisions = fields.List(fields.Nested(ExportedDecisionSchema), attribute="history")
    flags = fields.List(fields.Nested(FlagDetailSchema))


class ExportSchema(ma.Schema):
    email = fields.String(dump_only=True)
    comments = fields.List(fields.Nested(ExportedCommentSchema), dump_only=True)


class RulesStateSchema(ma.Schema):
    version = fields.String(dump_only=True)
    loaded_at = fields.DateTime(dump_only=True)
    source = fields.String(dump_only=True)
    last_error = fields.String(dump_only=True, allow_none=True)


class TestCommentSchema(TrimmedSchema):
    site = fields.String(load_default="default", validate=FullMatch(SLUG))
    thread = fields.String(load_default="/rules-test", validate=validate.Length(1, 512))
    author_name = fields.String(load_default="", validate=validate.Length(max=100))
    # Left out, these stay empty; given, they are checked as intake checks them, so that a
    # dry run never judges a comment that intake would have refused.
    author_email = fields.String(
        load_default="", validate=[validate.Length(max=254), email_address],
        metadata={"format": "email"},
    )
    author_url = fields.String(
        load_default="", allow_none=True,
        validate=[validate.Length(max=2048), optional_http_url],
        metadata={"pattern": f"^(?:{HTTP_URL['pattern'][1:-1]})?$"},
    )
    content = fields.String(load_default="", validate=validate.Length(max=10_000))
    ip = fields.String(load_default="", allow_none=True, validate=ip_address, metadata=IP)
    user_agent = fields.String(load_default="", allow_none=True, validate=validate.Length(max=512))

    @pre_load
    def as_stored(self, data: Any, **kwargs: Any) -> Any:
        # Judged as intake would store it: a dry run refused "http://" that intake takes as
        # no website, and judged a JSON body's CRLF as two characters (a review).
        return as_intake_stores(data)


# A rules file sent to the API fits in a request body (256 KiB, MAX_CONTENT_LENGTH): the
# schema said 1,000,000 characters, and anything over the body's limit was a 413 (found
# by an audit). A larger file is tried from the command line (`moderation rules ...`).
RULES_TEXT_MAX = 250_000
# Each comment replayed costs a few queries (the commenter's history, the classifier's
# counts): 5,000 took 19 s on PostgreSQL, and three at once passed the worker timeout
# (an audit). The command line, with no timeout, replays up to 5,000.
BACKTEST_API_MAX = 2000


class RulesTestSchema(StrictSchema):
    comment = fields.Nested(TestCommentSchema, required=True)
    rules = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=RULES_TEXT_MAX),
        metadata={"description": "Rules YAML to try instead of the rules in force."},
    )


class VerdictSchema(ma.Schema):
    outcome = fields.String(dump_only=True)
    score = fields.Float(dump_only=True)
    hits = fields.List(fields.Nested(HitSchema), dump_only=True)
    rules_version = fields.String(dump_only=True)


class BacktestRequestSchema(StrictSchema):
    rules = fields.String(
        required=True,
        validate=validate.Length(1, RULES_TEXT_MAX),
        metadata={"description": "The candidate rules file, as YAML."},
    )
    limit = WholeNumber(
        load_default=500,
        validate=validate.Range(1, BACKTEST_API_MAX),
        metadata={"description": "How many of the latest decided comments to replay (more, "
                                 "up to 5,000: `moderation rules backtest FILE --limit N`)."},
    )


class SpamConfusionSchema(ma.Schema):
    caught = fields.Integer(dump_only=True, metadata={"description": "Would be spam or rejected"})
    pending = fields.Integer(dump_only=True, metadata={"description": "Would be held"})
    missed = fields.Integer(dump_only=True, metadata={"description": "Would be published"})


class HamConfusionSchema(ma.Schema):
    passed = fields.Integer(dump_only=True, metadata={"description": "Would be published"})
    pending = fields.Integer(dump_only=True, metadata={"description": "Would be held"})
    false_positives = fields.Integer(
        dump_only=True, metadata={"description": "Would be spam or rejected"}
    )


class ConfusionSchema(ma.Schema):
    spam = fields.Nested(SpamConfusionSchema, dump_only=True)
    ham = fields.Nested(HamConfusionSchema, dump_only=True)


class RuleFrequencySchema(ma.Schema):
    rule = fields.String(dump_only=True)
    spam_hits = fields.Integer(dump_only=True)
    ham_hits = fields.Integer(dump_only=True)
    spam_percent = fields.Float(dump_only=True)
    ham_percent = fields.Float(dump_only=True)
    s_o = fields.Float(
        dump_only=True,
        allow_none=True,
        metadata={"description": "spam% / (spam% + ham%), as SpamAssassin's hit-frequencies"},
    )


class BacktestSchema(ma.Schema):
    rules_version = fields.String(dump_only=True)
    decided = fields.Integer(dump_only=True, metadata={"description": "Comments replayed"})
    spam = fields.Integer(dump_only=True, metadata={"description": "Moderators said spam/reject"})
    ham = fields.Integer(dump_only=True, metadata={"description": "Moderators approved"})
    confusion = fields.Nested(ConfusionSchema, dump_only=True)
    rules = fields.List(fields.Nested(RuleFrequencySchema), dump_only=True)
