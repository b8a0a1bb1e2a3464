"""HTML comment forms: reading what a browser posts, and sending it back to the page."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from flask import request
from werkzeug.exceptions import BadRequest
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from moderation.database import read_only
from moderation.errors import Invalid
from moderation.rules.hosts import normalise_host
from moderation.schemas.public import CommentSubmissionSchema
from moderation.services import comments
from moderation.services.sites import get_site, origin_in

URLENCODED = "application/x-www-form-urlencoded"
# The WordPress comment form's field names, so its HTML can post here unchanged.
WORDPRESS_FIELDS = {
    "author": "author_name",
    "email": "author_email",
    "url": "author_url",
    "comment": "content",
    "comment_post_ID": "thread",
    "comment_parent": "parent_id",
}
# Fields a WordPress form sends that mean nothing here (named in the spec; a form's
# other unknown fields are ignored too).
WORDPRESS_EXTRAS = ("submit", "wp-comment-cookies-consent", "_wp_unfiltered_html_comment")
# The form body in the spec: the JSON fields or the WordPress form's names for them, none
# required by the schema (either name will do; intake names what is missing), and any
# other field allowed (the WordPress form's extras, a site's honeypot).
FORM_SUBMISSION = {
    "type": "object",
    "properties": {
        **{name: {"type": "string"} for name in (
            "site", "thread", "thread_title", "thread_url", "parent_id", "author_name",
            "author_email", "author_url", "content", "form_token", *WORDPRESS_FIELDS,
            *WORDPRESS_EXTRAS)},
        "author_email": {"type": "string", "format": "email"},
        "email": {"type": "string", "format": "email"},
    },
    "additionalProperties": True,
}
# The fields intake reads.
INTAKE_FIELDS = frozenset(CommentSubmissionSchema().load_fields)

# What starts with a scheme (RFC 3986 3.1), unless it is a host name and port
# ("example.org:8080/blog"): a dotted name, and only digits after the colon, so
# "javascript:1" or "mailto:x" is still read as the scheme it is. A colon further on
# ("en.wikipedia.org/wiki/Help:Contents", "?t=12:30") is no scheme's.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_HOST_AND_PORT = re.compile(r"[^/?#:@\s.]+(?:\.[^/?#:@\s.]+)+:[0-9]+(?:[/?#]|$)")


def read_form(mimetype: str) -> tuple[dict[str, str], dict[str, str]]:
    """A posted HTML form's fields under intake's names, and the names the form gave them
    by (each of intake's field names to the form's); 400 unless it is UTF-8 text."""
    form = _urlencoded_form() if mimetype == URLENCODED else _multipart_form()
    if form.get("comment_parent", "").strip() == "0":  # WordPress's "not a reply"
        form.pop("comment_parent")
    # A form that names its fields as WordPress's does is told of a field by that name,
    # given or missing: its script finds the input to mark by the name it posted.
    wordpress_form = any(name in form for name in WORDPRESS_FIELDS)
    names = {}
    for wordpress, ours in WORDPRESS_FIELDS.items():
        if wordpress in form:
            names[ours] = wordpress
            form.setdefault(ours, form.pop(wordpress))
        elif wordpress_form and ours not in form:
            names[ours] = wordpress
    if "content" in form:
        # A browser sends each line break of a textarea as CRLF (the HTML form encoding),
        # but its maxlength, and the commenter, count it as one character: a comment the
        # form let through would be 422 for being longer than 10,000 characters.
        form["content"] = form["content"].replace("\r\n", "\n")
    website = form.get("author_url", "").strip()
    if website and website[0] not in "/?#" and (
            not _SCHEME.match(website) or _HOST_AND_PORT.match(website)):
        # People type "www.example.org" into the form's Website box; WordPress takes it
        # as http://www.example.org (esc_url), and so does this; "example.org:8080"
        # too, whose colon is a port's, not a scheme's.
        form["author_url"] = "http://" + website
    return form, names


def _urlencoded_form() -> dict[str, str]:
    """A urlencoded form's fields; 400 unless it is UTF-8 text.

    Werkzeug kept an escape it could not decode as it was (a Latin-1 page's "caf%E9" was
    stored as the comment) and dropped a body holding a raw non-UTF-8 byte entirely.
    """
    try:
        text = request.get_data(cache=True).decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("The form is not UTF-8 text.") from None
    if text.startswith("\ufeff") or (pairs and pairs[0][0].startswith("\ufeff")):
        # A byte-order mark made the first field's name "\ufeffsite": ignored as a theme's
        # own field, it sent the comment to the `default` site (found by an audit). Sent
        # percent-encoded (%EF%BB%BF), it is the same mark once decoded.
        raise BadRequest("The form begins with a byte-order mark; send it without one.")
    form: dict[str, str] = {}
    for name, value in pairs:
        _add_field(form, name, value)
    return form


# Each field intake reads, with the names a form may give it by (its own, WordPress's).
_FORM_NAMES = {field: {field, *(name for name, ours in WORDPRESS_FIELDS.items() if ours == field)}
               for field in INTAKE_FIELDS}


def _add_field(form: dict[str, str], name: str, value: str) -> None:
    """Add a form field; 422 for a field intake reads given twice, or under both its names.

    Which one counts would be a guess (as with a JSON member named twice): a site's
    backend or a proxy that checked the first saw another comment than the one stored.
    A theme's own fields (checkbox lists and the like) may repeat; they are ignored.
    """
    field = WORDPRESS_FIELDS.get(name, name)
    if any(given in form for given in _FORM_NAMES.get(field, ())):
        raise Invalid("Some fields are invalid.",  # named as the form named it
                      {name: ["Given more than once (or under both of its names)."]})
    form.setdefault(name, value)


def _multipart_form() -> dict[str, str]:
    """A multipart form's text fields (files ignored); 400 unless it is well-formed and
    its fields are UTF-8 text.

    Werkzeug decodes a field that is not UTF-8 with replacement characters (a Latin-1
    page's "café" was stored as "caf" and U+FFFD), and reads a malformed body as an empty
    form (a 422 naming every field); the urlencoded form is held to UTF-8 already.
    """
    boundary = request.mimetype_params.get("boundary")
    if not boundary:
        raise BadRequest("The multipart form names no boundary.")
    form: dict[str, str] = {}
    name, chunks = None, []
    try:
        decoder = MultipartDecoder(boundary.encode("latin-1"))
        decoder.receive_data(request.get_data(cache=True))
        decoder.receive_data(None)
        event = decoder.next_event()
        while not isinstance(event, Epilogue):
            if isinstance(event, NeedData):  # the body ends before the form does
                raise ValueError("truncated")
            if isinstance(event, (Field, File)):
                name, chunks = (event.name if isinstance(event, Field) else None), []
            elif isinstance(event, Data) and name is not None:
                chunks.append(event.data)
                if not event.more_data:
                    _add_field(form, name, b"".join(chunks).decode("utf-8"))
            event = decoder.next_event()
    except UnicodeDecodeError:
        raise BadRequest("The form is not UTF-8 text.") from None
    except ValueError:
        raise BadRequest("The body is not a valid multipart/form-data form.") from None
    return form


def is_navigation() -> bool:
    """True when the browser will show the answer as a page: a plain form submission.

    A page's script that posts the form itself (``fetch`` with its ``FormData``, as the
    README suggests for showing errors in the page) must get the JSON answer: redirected,
    the browser follows the 303 to the page across origins and the script sees a network
    error, or the page's HTML, instead of the outcome. Browsers say which it is in
    ``Sec-Fetch-Mode`` (``navigate`` for a form submission, ``cors`` for a script); a
    browser too old to send it is taken at its ``Accept``: a script that prefers JSON to
    HTML gets JSON.
    """
    mode = request.headers.get("Sec-Fetch-Mode")
    if mode:  # "nested-navigate": a form aimed at a frame, in Chrome before version 80
        return mode in ("navigate", "nested-navigate")
    accept = request.accept_mimetypes
    return accept.quality("application/json") <= accept.quality("text/html")


# What a form post's redirect adds to the page's query.
OUTCOME_PARAMETERS = ("comment_status", "comment_id")


def return_url(fields: dict[str, Any], answer: comments.Answer) -> str | None:
    """Back to the page the form was on, if it belongs to the site (never an open redirect)."""
    with read_only():  # after intake's commit: a lookup, not a write transaction
        allowed = get_site(fields["site"]).allowed_origins or []
    for candidate in (fields.get("thread_url"), request.referrer):
        if not candidate:
            continue
        try:
            parts = urlsplit(candidate)
            netloc = _ascii_netloc(parts)
        except ValueError:  # a Referer no browser sends ("http://[::1"): not the page
            continue
        origin = f"{parts.scheme}://{netloc}"
        no_userinfo = "@" not in parts.netloc
        if parts.scheme in ("http", "https") and no_userinfo and origin_in(origin, allowed):
            # Back from an earlier post, the page's URL holds that post's outcome: this one
            # replaces it, rather than following it where the page's script reads the first.
            # Names as a page reads them, decoded: "comment%5Fstatus=approved" stayed, and
            # URLSearchParams read that forged outcome first (found by an audit).
            kept = [pair for pair in parts.query.split("&")
                    if pair and unquote_plus(pair.split("=", 1)[0]) not in OUTCOME_PARAMETERS]
            outcome = urlencode(
                {"comment_status": answer.body["status"], "comment_id": answer.comment_id}
            )
            query = "&".join([*kept, outcome])
            fragment = f"comment-{answer.comment_id}"
            return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
    return None


def _ascii_netloc(parts: SplitResult) -> str:
    """The URL's host and port as a browser sends them in Origin: an IDN host in punycode.

    A page's thread_url may name its host in Unicode (https://bücher.example/post), while
    the site's allowed origins, like browsers' Origin headers, are in punycode: compared
    as written, the form post went unanswered by a redirect (found by an audit).
    """
    host = parts.hostname or ""
    if host.isascii() or "@" in parts.netloc:
        return parts.netloc
    ascii_host = normalise_host(host)
    if not ascii_host:
        raise ValueError("no host a browser visits")
    return ascii_host if parts.port is None else f"{ascii_host}:{parts.port}"
