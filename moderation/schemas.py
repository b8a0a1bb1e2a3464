"""marshmallow schemas: one to load each input, others to dump each output."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import email_validator
import marshmallow as ma
from email_validator import EmailNotValidError, validate_email
from marshmallow import RAISE, ValidationError, fields, missing, pre_load, validate

from moderation.render import reachable
from moderation.rules.hosts import HOST_LABEL
from moderation.services.cursors import ID_CURSOR, QUEUE_CURSOR

SLUG = re.compile(r"^[a-z0-9-]{1,64}$")
# Row ids are 32-bit INTEGER columns (2,147 million rows a table is plenty here).
MAX_ID = 2**31 - 1
ID = validate.Range(1, MAX_ID)
STATUSES = ("pending", "approved", "spam", "rejected", "deleted")
ACTIONS = ("approve", "spam", "reject", "delete")
FLAG_REASONS = ("spam", "abuse", "off-topic", "other")


# Characters a URL never holds unescaped (RFC 3986) that would end an HTML attribute or
# tag, should a page put the URL into href="..." as it is.
NOT_IN_URL = frozenset('"<>`')


def _http_url(value: str) -> None:
    try:
        parts = urlsplit(value)
    except ValueError:  # "http://[::1": an unclosed IPv6 bracket, which urlsplit refuses
        raise ValidationError("Must be an http or https URL.") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.netloc
        or any(ch.isspace() or not ch.isprintable() or ch in NOT_IN_URL for ch in value)
    ):
        raise ValidationError("Must be an http or https URL.")
    if "@" in parts.netloc:
        # https://news.example@evil.example/ reads as news.example and leads to evil.example.
        raise ValidationError("Must not hold a user name or password.")
    if "%" in parts.netloc or "\\" in value:
        # A browser decodes https://%32no.co/ to 2no.co and reads https://2no.co\x as
        # https://2no.co/x: the host visited is not the one written.
        raise ValidationError("Must not hold a backslash, nor a percent-escape in its host.")
    if not reachable(value):
        # As content_html links a URL: https://e..example/, https://a_b.example/ or port
        # 99999 is no address a browser can visit, and the page's link would be broken.
        raise ValidationError("Must name a host name (and a port from 1 to 65535) that a "
                              "browser can visit.")


# A host name of HOST_LABELs (RFC 1123) and a port of 1 to 65535 as browsers write it.
# Anything else ("https://a..example", port 0 or 99999) is an origin no browser sends:
# listed as allowed, it would match nothing.
_PORT = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"


def _optional_http_url(value: str) -> None:
    """As intake checks a website; empty is none, as the dry run's comment defaults it."""
    if value:
        _http_url(value)


# The scheme in any case, as the host: stored in lower case (sites.canonical_origin). Spelt
# out letter by letter, since the OpenAPI spec's patterns (ECMA-262) have no inline flags.
ORIGIN = re.compile(rf"^[Hh][Tt][Tt][Pp][Ss]?://{HOST_LABEL}(?:\.{HOST_LABEL})*(?::{_PORT})?$")


def _origin(value: str) -> None:
    if not ORIGIN.fullmatch(value.rstrip("/")):
        raise ValidationError("Must be an origin like https://news.example (IDN in punycode).")


# email-validator refuses special-use domains outright, as no mail from the internet
# reaches them. Some hold real mailboxes of the people a comment form serves: an
# intranet's (ada@corp.local, Active Directory's habit), Tor's (.onion), a staging site's
# (ada@site.test, as RFC 6761 lets software take). An intranet install refused its own
# staff (found by an audit); WordPress takes them. .internal, ICANN's reserved intranet
# name, is not on email-validator's list today: named so that a release adding it does
# not start refusing it. The others (localhost, invalid, arpa...) stay refused.
_MAILBOX_DOMAINS = ("local", "internal", "onion", "test")
email_validator.SPECIAL_USE_DOMAIN_NAMES[:] = [
    name for name in email_validator.SPECIAL_USE_DOMAIN_NAMES if name not in _MAILBOX_DOMAINS]


def _email(value: str) -> None:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValidationError(str(error)) from error


def _ip(value: str) -> None:
    # A zone ("fe80::1%eth0") names an interface of the sender's own host, never a
    # commenter's address, and is unbounded: it overflowed the 45-character column.
    try:
        ipaddress.ip_address(value)
    except ValueError as error:
        raise ValidationError("Must be an IPv4 or IPv6 address.") from error
    if "%" in value:
        raise ValidationError("Must be an IPv4 or IPv6 address without a zone.")


# The control characters a comment may not hold (tabs and line breaks it may) and those
# a one-line field may not: C0, DEL and C1 (U+0080-U+009F, never text: NEL breaks a line,
# the others show as garbage), and for one line also the line and paragraph separators
# U+2028/U+2029, which the admin page and log viewers show as line breaks. One spelling of
# each, as a character class body, for the validators and the spec's patterns alike.
# Searched as a character class, in C: a Python loop over each character cost 0.8% of
# intake's instructions for a 70-character comment, more for longer ones.
TEXT_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
LINE_CONTROLS = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
CONTROL_CHARS = re.compile(f"[{TEXT_CONTROLS}]")
LINE_CONTROL_CHARS = re.compile(f"[{LINE_CONTROLS}]")


def _no_control_chars(value: str) -> None:
    if CONTROL_CHARS.search(value):
        raise ValidationError("Must not contain control characters.")


# Characters that show nothing: format controls (zero-width space and joiners, bidi
# marks), combining marks with nothing to combine with, and the blank "letters" used to
# fake an empty name (Hangul fillers, the blank Braille pattern). Not unassigned or
# private-use code points: an emoji newer than this Python's Unicode tables is one.
_BLANK_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Mn", "Me", "Zl", "Zp", "Zs"})
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _visible(value: str) -> None:
    """Required text must show something once trimmed; invisible characters alone do not."""
    if all(ch in _BLANK_LETTERS or unicodedata.category(ch) in _BLANK_CATEGORIES
           or ch.isspace() for ch in value):
        raise ValidationError("Must contain visible characters.")


def _no_format_chars(value: str) -> None:
    """No zero-width or other format characters: "mod" and "mod\u200b" would look alike in
    the audit log, which names actors by key name."""
    if any(unicodedata.category(ch) == "Cf" for ch in value):
        raise ValidationError("Must not contain invisible characters.")


class FullMatch(validate.Regexp):
    """A pattern the whole value must match. Python's `$` also matches before a final
    newline, so with re.match "news\\n" passed `^[a-z0-9-]{1,64}$` and went on to a 404."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


# An integer as text in its one spelling (surrounding white space aside): ASCII digits, no
# plus sign, no leading zero. int() also read "+5" and "05" as 5, and "٣" as 3.
ASCII_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")


class WholeNumber(fields.Integer):
    """An integer, from JSON or from a form's text ("12"); a fraction is refused, never cut
    down: marshmallow's int() made `"ids": [1.5]` act on comment 1. Text is ASCII digits:
    int() also took `limit=٢` (Arabic-Indic), `３` (full width) and `1_0` as numbers."""

    def _validated(self, value: Any) -> Any:
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid")
        if isinstance(value, str) and not ASCII_INTEGER.fullmatch(value.strip()):
            raise self.make_error("invalid")
        return super()._validated(value)


def _refuse_overlong(field: fields.Field, value: Any) -> None:
    """422 for a query argument longer, as sent, than its field's maximum length.

    The spec's maxLength is of the text as sent; trimmed first, 101 spaces passed for an
    `actor` of at most 100 characters, a request the spec calls invalid (schemathesis)."""
    longest = min((rule.max for rule in field.validators
                   if isinstance(rule, validate.Length) and rule.max is not None), default=None)
    if longest is not None and isinstance(value, str) and len(value) > longest:
        raise ValidationError(f"Longer than maximum length {longest}.")


class TrimmedString(fields.String):
    """A string trimmed of surrounding white space before it is validated (query arguments,
    which the body schemas' trim does not reach); no longer than its maximum as sent."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        _refuse_overlong(self, value)
        text = super()._deserialize(value, attr, data, **kwargs)
        return text.strip()


class _BlankIsNotGiven(fields.Field):
    """A query argument that, sent empty or blank, is not given: its default applies.

    Clients that build URLs from a template send `?cursor=` for the first page, as forms
    send "" for an untouched optional field; a 422 for that helped nobody.
    """

    def deserialize(self, value: Any, attr: str | None = None,
                    data: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            _refuse_overlong(self, value)
            value = missing
        return super().deserialize(value, attr, data, **kwargs)


class OptionalQueryString(_BlankIsNotGiven, fields.String):
    """An optional text query argument; empty or blank, it is not given."""


class OptionalTrimmedQuery(OptionalQueryString, TrimmedString):
    """An optional query argument, trimmed; empty or blank, it is not given."""


class OptionalQueryNumber(_BlankIsNotGiven, WholeNumber):
    """A whole-number query argument that, sent empty or blank, is not given (`?limit=`
    from a URL template: its default applies, as for the cursor beside it)."""


# What the site and cursor query arguments say in the spec.
DEFAULT_SITE_ARGUMENT = {"description": "The site's slug; absent, empty or blank: `default`."}
SITE_FILTER = {"description": "Only this site; absent, empty or blank: every site "
                              "the key may see."}
CURSOR_ARGUMENT = {"description": "The `next_cursor` of the page before, asked with the same "
                                  "sort and filters (a cursor of another listing is 422); "
                                  "absent, empty or blank: the first page."}


def _single_line(value: str) -> None:
    if LINE_CONTROL_CHARS.search(value):
        raise ValidationError("Must be one line without control characters.")


# The bidi controls that open a run (embeddings and overrides U+202A, U+202B, U+202D,
# U+202E; isolates U+2066-U+2068), each with the one that closes it (PDF U+202C, PDI
# U+2069). Searched as a character class, in C: almost every name holds none.
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
_BIDI_CLOSER = {**dict.fromkeys("\u202a\u202b\u202d\u202e", "\u202c"),
                **dict.fromkeys("\u2066\u2067\u2068", "\u2069")}


def _bidi_closed(value: str) -> None:
    """Every bidi embedding, override or isolate the text opens, it closes, nested.

    A name left open ("\u202eevil") shows reversed, and reverses the text after it on
    the line: "Eve says:" on a page, the next column of the queue. Closed, the run ends
    with the name. Platforms wrap a right-to-left name so ("\u202bאסף שמש\u202c", as
    YouTube exports it), and a name pasted from one must be taken.
    """
    opened: list[str] = []
    for control in BIDI_CONTROLS.findall(value):
        if control in _BIDI_CLOSER:
            opened.append(_BIDI_CLOSER[control])
        elif not opened or opened.pop() != control:
            raise ValidationError("Must close each bidi control it opens, in order.")
    if opened:
        raise ValidationError("Must close each bidi control it opens, in order.")


# What the validators above enforce, said in the OpenAPI spec too, so clients (and
# schemathesis) know a valid request before sending it.
ONE_LINE = rf"^[^{LINE_CONTROLS}]*$"
ONE_LINE_TEXT = rf"^[^{LINE_CONTROLS}]*[^\s{LINE_CONTROLS}][^{LINE_CONTROLS}]*$"
# The one character that is not white space must not be a control character either: with
# a bare \S the pattern passed "a\x01b", which the validator refuses.
TEXT = rf"^[^{TEXT_CONTROLS}]*[^\s{TEXT_CONTROLS}][^{TEXT_CONTROLS}]*$"
# Free text that may be empty (a moderator's reason): lines and tabs, no other control.
TEXT_OR_EMPTY = rf"^[^{TEXT_CONTROLS}]*$"


def _format_characters() -> str:
    """The format (Cf) characters of this Python's Unicode tables up to U+FFFF, as ranges
    for a regex character class (the characters themselves: JSON Schema has no \\p{Cf}).

    Those past U+FFFF (Unicode tags, musical and hieroglyph format controls) are left out:
    with them in the pattern ReDoc rendered a blank docs page. The API still refuses them.
    """
    found = [code for code in range(0x10000) if unicodedata.category(chr(code)) == "Cf"]
    ranges, start = [], found[0]
    for previous, code in zip(found, [*found[1:], None], strict=True):
        if code != previous + 1:
            ranges.append(chr(start) if start == previous else f"{chr(start)}-{chr(previous)}")
            start = code
    return "".join(ranges)


# A key name as _no_format_chars takes it: ONE_LINE_TEXT without format characters.
_NOT_NAME = LINE_CONTROLS + _format_characters()
KEY_NAME = rf"^[^{_NOT_NAME}]*[^\s{_NOT_NAME}][^{_NOT_NAME}]*$"
HTTP_URL = {"format": "uri",
            "pattern": "^https?://[^/?#\\s@%\\\\\"<>`]+([/?#][^\\s\\\\\"<>`]*)?$"}
IP = {"anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}


class StrictBoolean(fields.Boolean):
    """JSON true or false only: 0, 1, "yes" and "on" are not booleans in a JSON API."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


NO_NUL = r"^[^\u0000]*$"


# What Python makes of a command-line argument's bytes that are not UTF-8 (the JSON
# decoder refuses escaped ones, forms are decoded strictly): no database driver encodes it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _text_fault(value: Any) -> str | None:
    """Why no database column can store this text, or the text in this list or mapping."""
    if isinstance(value, str):
        if "\x00" in value:
            return "Must not contain NUL characters."
        if not value.isascii() and _SURROGATE.search(value):
            return "Must be UTF-8 text."
        return None
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list):
        return next(filter(None, map(_text_fault, value)), None)
    return None


def _unstorable_errors(data: Any) -> dict[str, list[str]]:
    """Fields whose text holds a NUL character or a lone surrogate."""
    if not isinstance(data, Mapping):
        return {}
    return {key: [fault] for key, value in data.items() if (fault := _text_fault(value))}


# A TrimmedString's length is checked once trimmed, so blank text is empty: refused.
NOT_BLANK = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"


def string_without_nul(converter: Any, field: fields.Field, ret: dict[str, Any], **kwargs: Any):
    """OpenAPI: say of every free-text input field that NUL is not allowed (nor blank text
    where it is trimmed: schemathesis sent `thread=%09` as valid data)."""
    if isinstance(field, fields.String) and not field.dump_only and not (
        {"pattern", "format", "enum", "anyOf"} & set(ret)
    ):
        return {"pattern": NOT_BLANK if isinstance(field, TrimmedString) else NO_NUL}
    return {}


def empty_value_allowed(converter: Any, field: fields.Field, ret: dict[str, Any],
                        **kwargs: Any) -> dict[str, Any]:
    """OpenAPI: a query argument that, sent empty, is not given says `allowEmptyValue`,
    whose meaning that is ("the server SHOULD interpret [it] as the parameter being
    unused"): `?limit=` is no number, and the spec said only numbers were taken."""
    if isinstance(field, _BlankIsNotGiven) and ret.get("in") == "query":
        return {"allowEmptyValue": True}
    return {}


def blank_allowed(converter: Any, field: fields.Field, ret: dict[str, Any], **kwargs: Any):
    """OpenAPI: say that an OptionalQueryString takes a blank value as well as its own
    (a trimmed one, its own between spaces too)."""
    if isinstance(field, OptionalQueryString) and "pattern" in ret:
        own = ret["pattern"].removeprefix("^").removesuffix("$")
        if isinstance(field, TrimmedString):
            return {"pattern": f"^\\s*(?:{own})?\\s*$"}
        return {"pattern": f"^(?:{own}|\\s*)$"}
    return {}


class StrictSchema(ma.Schema):
    class Meta:
        unknown = RAISE

    @pre_load
    def refuse_unstorable_text(self, data: Any, **kwargs: Any) -> Any:
        errors = _unstorable_errors(data)
        if errors:
            raise ValidationError(errors)
        return data


class TrimmedSchema(StrictSchema):
    """Trims surrounding white space from every string before validating lengths."""

    @pre_load
    def trim(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict):
            return {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}
        return data


Slug = fields.String(validate=FullMatch(SLUG, error="Must match [a-z0-9-]{{1,64}}."))


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
        validate=[validate.Length(1, 512), _single_line],
        metadata={"pattern": ONE_LINE_TEXT},
    )
    thread_title = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=500), _single_line, _bidi_closed],
        metadata={"pattern": ONE_LINE},
    )
    thread_url = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=2048), _http_url],
        metadata=HTTP_URL,
    )
    parent_id = WholeNumber(load_default=None, allow_none=True, validate=ID)
    author_name = fields.String(
        required=True,
        validate=[validate.Length(1, 100), _single_line, _bidi_closed, _visible],
        metadata={"pattern": ONE_LINE_TEXT},
    )
    author_email = fields.String(
        required=True,
        validate=[validate.Length(max=254), _email],
        metadata={"format": "email"},
    )
    author_url = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=2048), _http_url],
        metadata=HTTP_URL,
    )
    content = fields.String(
        required=True,
        validate=[validate.Length(1, 10_000), _no_control_chars, _visible],
        metadata={"pattern": TEXT},
    )
    ip = fields.String(load_default=None,
        allow_none=True, validate=_ip, metadata=IP)
    user_agent = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=512), _single_line],
        metadata={"pattern": ONE_LINE},
    )
    referrer = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=2048), _single_line],
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
    reason = fields.String(load_default="", validate=[validate.Length(max=500), _no_control_chars],
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
        validate=[validate.Length(1, 512), _single_line],
        metadata={"pattern": ONE_LINE_TEXT},
    )
    closed = StrictBoolean(required=True)


class ThreadStateAnswerSchema(ma.Schema):
    site = fields.String(dump_only=True)
    thread = fields.String(dump_only=True)
    closed = fields.Boolean(dump_only=True)


class NoQuerySchema(StrictSchema):
    """The query of a route that takes no arguments: any argument is refused (422)."""


class DeleteSiteQuerySchema(StrictSchema):
    delete_comments = fields.Boolean(load_default=False, metadata={
        "description": "Delete the site's comments with it; without this, a site that has "
                       "comments is not deleted (409)."})


def _site_name(**kwargs: Any) -> fields.String:
    # One line: `moderation sites list` prints one site a line, its fields split by tabs.
    return fields.String(validate=[validate.Length(max=200), _single_line],
                         metadata={"pattern": ONE_LINE}, **kwargs)


def _allowed_origins(**kwargs: Any) -> fields.List:
    return fields.List(
        fields.String(
            validate=[validate.Length(max=255), _origin], metadata={"pattern": ORIGIN.pattern}
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
        validate=[validate.Length(1, 100), _single_line, _no_format_chars],
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


class HealthSchema(ma.Schema):
    status = fields.String(dump_only=True)
    checks = fields.Dict(dump_only=True)


class EraseSchema(StrictSchema):
    email = TrimmedString(required=True, validate=[validate.Length(1, 254), _email],
                          metadata={"format": "email"})
    delete_content = StrictBoolean(load_default=False)


class EraseAnswerSchema(ma.Schema):
    erased = fields.Integer(dump_only=True, metadata={"description": "Comments anonymised"})


class ExportQuerySchema(StrictSchema):
    # Trimmed as intake trims the address it stores.
    email = TrimmedString(required=True, validate=[validate.Length(1, 254), _email],
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
        load_default="", validate=[validate.Length(max=254), _email], metadata={"format": "email"}
    )
    author_url = fields.String(
        load_default="", allow_none=True,
        validate=[validate.Length(max=2048), _optional_http_url],
        metadata={"pattern": f"^(?:{HTTP_URL['pattern'][1:-1]})?$"},
    )
    content = fields.String(load_default="", validate=validate.Length(max=10_000))
    ip = fields.String(load_default="", allow_none=True, validate=_ip, metadata=IP)
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
