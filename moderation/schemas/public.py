"""What commenters and readers send and are answered, and the health probes' answers."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, pre_load, validate

from moderation.schemas.base import (
    CURSOR_ARGUMENT,
    DEFAULT_SITE_ARGUMENT,
    FLAG_REASONS,
    HTTP_URL,
    ID,
    IP,
    ONE_LINE,
    ONE_LINE_TEXT,
    SLUG,
    TEXT,
    FullMatch,
    OptionalQueryNumber,
    OptionalQueryString,
    OptionalTrimmedQuery,
    StrictSchema,
    TrimmedSchema,
    TrimmedString,
    WholeNumber,
    bidi_closed,
    email_address,
    http_url,
    ip_address,
    no_control_chars,
    single_line,
    visible,
)
from moderation.services.cursors import ID_CURSOR

OPTIONAL_SUBMISSION_FIELDS = ("site", "thread_title", "thread_url", "author_url", "parent_id",
                              "referrer", "user_agent", "ip", "form_token")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _bare_scheme(value: Any) -> bool:
    """Whether ``value`` is a scheme and nothing else ("http://"), as themes pre-fill."""
    return isinstance(value, str) and value.strip().lower() in ("http://", "https://")


def as_intake_stores(data: Any) -> Any:
    """A submission's fields as intake stores them, before their lengths are checked (the
    intake's schema and the rules' dry run both load through it)."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    if _bare_scheme(data.get("author_url")):
        # Older themes fill the Website box with "http://", which WordPress reads as no
        # website: so does this (it refused the whole comment, found by an audit).
        del data["author_url"]
    for name in ("author_url", "thread_url"):
        # A URL may hold an apostrophe (RFC 3986), and readers are shown author_url as
        # sent: a site's template writing href='...' ended its attribute there, and
        # "https://x.example/'onmouseover='alert(1)" ran (found by an audit). %27 is the
        # same URL to every server, and ends no attribute.
        if isinstance(data.get(name), str):
            data[name] = data[name].replace("'", "%27")
    if isinstance(data.get("content"), str):
        # A line break is one, however sent: a form's CRLF was folded already, a JSON
        # body's counted twice toward the length, and a lone CR showed as no break.
        data["content"] = data["content"].replace("\r\n", "\n").replace("\r", "\n")
    return data


class CommentSubmissionSchema(TrimmedSchema):
    site = fields.String(
        load_default="default",
        allow_none=True,
        validate=FullMatch(SLUG, error="Must match [a-z0-9-]{{1,64}}."),
    )
    thread = fields.String(
        required=True,
        validate=[validate.Length(1, 512), single_line],
        metadata={"pattern": ONE_LINE_TEXT},
    )
    thread_title = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=500), single_line, bidi_closed],
        metadata={"pattern": ONE_LINE},
    )
    thread_url = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=2048), http_url],
        metadata=HTTP_URL,
    )
    parent_id = WholeNumber(load_default=None, allow_none=True, validate=ID)
    author_name = fields.String(
        required=True,
        validate=[validate.Length(1, 100), single_line, bidi_closed, visible],
        metadata={"pattern": ONE_LINE_TEXT},
    )
    author_email = fields.String(
        required=True,
        validate=[validate.Length(max=254), email_address],
        metadata={"format": "email"},
    )
    author_url = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=2048), http_url],
        metadata=HTTP_URL,
    )
    content = fields.String(
        required=True,
        validate=[validate.Length(1, 10_000), no_control_chars, visible],
        metadata={"pattern": TEXT},
    )
    ip = fields.String(load_default=None,
        allow_none=True, validate=ip_address, metadata=IP)
    user_agent = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=512), single_line],
        metadata={"pattern": ONE_LINE},
    )
    referrer = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=2048), single_line],
        metadata={"pattern": ONE_LINE},
    )
    # A token carries its site and thread key: for a 512-character key of hard-to-compress
    # text it is about 700 characters, and up to about 2,300 for one of emoji.
    form_token = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=4096),
        metadata={"description": "The signed token from GET /api/v1/form-token, when enabled: "
                                 "good for the site and thread it was fetched for, from "
                                 "`min_seconds` to `max_age_seconds` after it was served."},
    )

    @pre_load
    def empty_optional_means_absent(self, data: Any, **kwargs: Any) -> Any:
        # HTML forms send "" for an untouched optional field ("Website"), a form filled with
        # a space sends " ", and JSON clients send null for "not given".
        if isinstance(data, dict):
            return {k: v for k, v in data.items()
                    if not (k in OPTIONAL_SUBMISSION_FIELDS and _blank(v))}
        return data

    @pre_load
    def as_stored(self, data: Any, **kwargs: Any) -> Any:
        return as_intake_stores(data)


class SubmissionAnswerSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    site = fields.String(dump_only=True)
    thread = fields.String(dump_only=True)
    parent_id = fields.Integer(dump_only=True, allow_none=True)
    status = fields.String(dump_only=True, metadata={
        "enum": ["approved", "pending", "spam"],
        "description": "`spam` only where the rules file sets `public: {reveal_spam: true}`; "
                       "otherwise spam is answered as `pending`.",
    })
    created_at = fields.DateTime(dump_only=True)
    message = fields.String(dump_only=True)


class PublicCommentSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    parent_id = fields.Integer(dump_only=True, allow_none=True)
    author_name = fields.String(dump_only=True)
    author_url = fields.String(dump_only=True, allow_none=True)
    content = fields.String(dump_only=True)
    content_html = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    replies = fields.List(fields.Nested(lambda: PublicCommentSchema()), dump_only=True)


class ThreadPageSchema(ma.Schema):
    site = fields.String(dump_only=True)
    thread = fields.String(dump_only=True)
    title = fields.String(dump_only=True, allow_none=True)
    closed = fields.Boolean(dump_only=True)
    items = fields.List(fields.Nested(PublicCommentSchema), dump_only=True)
    next_cursor = fields.String(dump_only=True, allow_none=True)


class ThreadQuerySchema(StrictSchema):
    site = OptionalTrimmedQuery(load_default="default", validate=FullMatch(SLUG),
                               metadata=DEFAULT_SITE_ARGUMENT)
    # Trimmed as a submission's thread is, so that the page finds what was posted.
    thread = TrimmedString(required=True, validate=validate.Length(1, 512))
    limit = OptionalQueryNumber(load_default=20, validate=validate.Range(1, 100))
    cursor = OptionalQueryString(load_default=None, validate=FullMatch(ID_CURSOR),
                                 metadata=CURSOR_ARGUMENT)


class FlagSchema(StrictSchema):
    reason = fields.String(required=True, validate=validate.OneOf(FLAG_REASONS))


class FlagAnswerSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    message = fields.String(dump_only=True)


class FormTokenQuerySchema(StrictSchema):
    site = OptionalTrimmedQuery(load_default="default", validate=FullMatch(SLUG),
                               metadata=DEFAULT_SITE_ARGUMENT)
    thread = TrimmedString(required=True, validate=validate.Length(1, 512))


class FormTokenSchema(ma.Schema):
    form_token = fields.String(dump_only=True)


class HealthSchema(ma.Schema):
    status = fields.String(dump_only=True)
    checks = fields.Dict(dump_only=True)
