"""The fields, validators and base schemas every other schema builds on."""

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


def http_url(value: str) -> None:
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


def optional_http_url(value: str) -> None:
    """As intake checks a website; empty is none, as the dry run's comment defaults it."""
    if value:
        http_url(value)


# The scheme in any case, as the host: stored in lower case (sites.canonical_origin). Spelt
# out letter by letter, since the OpenAPI spec's patterns (ECMA-262) have no inline flags.
ORIGIN = re.compile(rf"^[Hh][Tt][Tt][Pp][Ss]?://{HOST_LABEL}(?:\.{HOST_LABEL})*(?::{_PORT})?$")


def origin_url(value: str) -> None:
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


def email_address(value: str) -> None:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValidationError(str(error)) from error


def ip_address(value: str) -> None:
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


def no_control_chars(value: str) -> None:
    if CONTROL_CHARS.search(value):
        raise ValidationError("Must not contain control characters.")


# Characters that show nothing: format controls (zero-width space and joiners, bidi
# marks), combining marks with nothing to combine with, and the blank "letters" used to
# fake an empty name (Hangul fillers, the blank Braille pattern). Not unassigned or
# private-use code points: an emoji newer than this Python's Unicode tables is one.
_BLANK_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Mn", "Me", "Zl", "Zp", "Zs"})
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def visible(value: str) -> None:
    """Required text must show something once trimmed; invisible characters alone do not."""
    if all(ch in _BLANK_LETTERS or unicodedata.category(ch) in _BLANK_CATEGORIES
           or ch.isspace() for ch in value):
        raise ValidationError("Must contain visible characters.")


def no_format_chars(value: str) -> None:
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


def single_line(value: str) -> None:
    if LINE_CONTROL_CHARS.search(value):
        raise ValidationError("Must be one line without control characters.")


# The bidi controls that open a run (embeddings and overrides U+202A, U+202B, U+202D,
# U+202E; isolates U+2066-U+2068), each with the one that closes it (PDF U+202C, PDI
# U+2069). Searched as a character class, in C: almost every name holds none.
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
_BIDI_CLOSER = {**dict.fromkeys("\u202a\u202b\u202d\u202e", "\u202c"),
                **dict.fromkeys("\u2066\u2067\u2068", "\u2069")}


def bidi_closed(value: str) -> None:
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


# A key name as no_format_chars takes it: ONE_LINE_TEXT without format characters.
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


class NoQuerySchema(StrictSchema):
    """The query of a route that takes no arguments: any argument is refused (422)."""
