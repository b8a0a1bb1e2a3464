"""Public routes: what a site's comment form and its readers call, with no key."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from flask import Response, g, jsonify, redirect, request
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from webargs.flaskparser import is_json_request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnsupportedMediaType
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from moderation.api import NO_QUERY, Blueprint, errors
from moderation.api.json_body import json_object
from moderation.auth import current_caller, site_caller
from moderation.database import read_only
from moderation.errors import Forbidden, Invalid, NotFound
from moderation.extensions import limiter
from moderation.rules.hosts import normalise_host
from moderation.schemas import (
    LINE_CONTROL_CHARS,
    SLUG,
    CommentSubmissionSchema,
    FlagAnswerSchema,
    FlagSchema,
    FormTokenQuerySchema,
    FormTokenSchema,
    SubmissionAnswerSchema,
    ThreadPageSchema,
    ThreadQuerySchema,
)
from moderation.services import comments, flags, form_tokens, limits, threads
from moderation.services.identity import canonical_ip
from moderation.services.limits import FORM_TYPES
from moderation.services.rules import current_rules
from moderation.services.sites import DEFAULT_SITE, get_site, origin_allowed, origin_in

blp = Blueprint("public", __name__, url_prefix="/api/v1", description="Comment forms and readers")


# The spec of a public route: no key needed, and one sent must be good (a bad one is a 401).
KEY_OPTIONAL = [{}, {"bearerAuth": []}]


@blp.before_request
def _refuse_a_bad_key() -> None:
    """A key sent wrongly, unknown or revoked is a 401 on the public routes too, before
    anything else is read, as GitHub answers a bad token on its public routes: ignored, a
    site backend's misconfigured key went unnoticed until it mattered. No key is no key."""
    current_caller()

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
# One schema instance for every request: building one deep-copies its fields, which cost
# more than the load itself. Loading keeps no state on the instance.
SUBMISSION = CommentSubmissionSchema()

# What starts with a scheme (RFC 3986 3.1), unless it is a host name and port
# ("example.org:8080/blog"): a dotted name, and only digits after the colon, so
# "javascript:1" or "mailto:x" is still read as the scheme it is. A colon further on
# ("en.wikipedia.org/wiki/Help:Contents", "?t=12:30") is no scheme's.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_HOST_AND_PORT = re.compile(r"[^/?#:@\s.]+(?:\.[^/?#:@\s.]+)+:[0-9]+(?:[/?#]|$)")


def _submission_body() -> tuple[dict[str, Any], dict[str, str] | None]:
    """The posted fields and, for an HTML form, the names the form gives them by (each of
    intake's field names to the form's); 400/415 when unusable."""
    mimetype = request.mimetype
    if is_json_request(request):  # application/json, or a +json type, as on every route
        if not request.get_data(cache=True):
            return {}, None  # no body: the schema names the missing fields (422)
        return json_object(request), None
    if mimetype in FORM_TYPES:
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
    if not mimetype and not request.get_data(cache=True):
        return {}, None  # nothing sent at all: as an empty JSON body, 422 naming the fields
    raise UnsupportedMediaType("Send application/json or an HTML form.")


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
    if text.startswith("\ufeff"):
        # A byte-order mark made the first field's name "\ufeffsite": ignored as a theme's
        # own field, it sent the comment to the `default` site (found by an audit).
        raise BadRequest("The form begins with a byte-order mark; send it without one.")
    form: dict[str, str] = {}
    for name, value in pairs:
        _add_field(form, name, value)
    return form


# Each field intake reads, with the names a form may give it by (its own, WordPress's).
_FORM_NAMES = {field: {field, *(name for name, ours in WORDPRESS_FIELDS.items() if ours == field)}
               for field in SUBMISSION.load_fields}


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


@blp.route("/comments", methods=["POST"])
@blp.doc(
    requestBody={
        "required": True,
        "content": {
            "application/json": {"schema": CommentSubmissionSchema},
            "application/x-www-form-urlencoded": {"schema": FORM_SUBMISSION},
            "multipart/form-data": {"schema": FORM_SUBMISSION},
        },
    },
    parameters=[
        {
            "in": "header",
            "name": "Idempotency-Key",
            "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                       "pattern": f"^{comments.IDEMPOTENCY_KEY.pattern}$"},
        }
    ],
)
@limiter.limit(
    limits.per_ip,
    key_func=limits.ip_key,
    scope="submit-ip",
    exempt_when=lambda: limits.no_ip_limit() or _invalid_submission(),
)
@limiter.limit(
    limits.per_email,
    key_func=limits.email_key,
    scope="submit-email",
    exempt_when=lambda: limits.no_email_limit() or _invalid_submission(),
)
@blp.doc(security=KEY_OPTIONAL)  # no key (a form), or the site's own key
@blp.arguments(NO_QUERY, location="query", as_kwargs=True)
@blp.response(201, SubmissionAnswerSchema)
@blp.alt_response(303, description="A form submitted by the browser (a navigation) goes "
                  "back to the page, outcome in the URL; a script's post gets the 201",
                  headers={"Location": {"description": "The page, with comment_status and "
                                        "comment_id in its query", "schema": {"type": "string"}}})
@errors(blp, 400, 401, 403, 404, 409, 413, 415, 422, 429)
def submit_comment() -> Any:
    """Submit a comment from a site's form or its backend."""
    submission = _submission()
    if submission.errors is not None:
        raise Invalid("Some fields are invalid.", submission.errors)
    fields, from_form, honeypot_filled = (
        submission.fields, submission.from_form, submission.honeypot_filled)
    idempotency_key = request.headers.get("Idempotency-Key")
    if idempotency_key is not None and not comments.usable_idempotency_key(idempotency_key):
        raise Invalid("Idempotency-Key must be 1 to 255 characters, none a control character.",
                      {"Idempotency-Key": ["Length must be between 1 and 255, "
                                           "without control characters."]})
    with read_only():  # not holding SQLite's write lock while the comment is judged
        _refuse_a_foreign_page(fields["site"], unknown_page_allowed=True)
    signals = _signals(fields, honeypot_filled, _form_token_problem(fields))
    try:
        answer = comments.submit(fields, signals, idempotency_key)
    except Invalid as error:  # a reply to no published comment: named as the form named it
        if error.errors is not None:
            error.errors = {submission.form_names.get(name, name): problem
                            for name, problem in error.errors.items()}
        raise
    if answer.replayed:
        limits.give_back_what_this_request_took()
    if from_form and answer.status_code == 201 and _is_navigation():
        target = _form_return_url(fields, answer)
        if target:
            return redirect(target, code=303)
    response = jsonify(answer.body)
    response.status_code = answer.status_code
    return response


@dataclass(frozen=True)
class _Submission:
    """The request's submission, read and checked once: its fields, or what is wrong with
    them (``errors``, a 422), and where it came from."""

    fields: dict[str, Any]
    errors: dict[str, Any] | None
    from_form: bool
    honeypot_filled: bool
    # Our field names to those the form gave them by (WordPress's); empty for JSON.
    form_names: dict[str, str]


def _refuse_a_foreign_page(site: str | None, *, unknown_page_allowed: bool = False) -> None:
    """403 for a browser's post from a page whose origin the site does not list.

    CORS only kept such a page from reading the answer: the post itself was carried out,
    so any page (or one site's pages, whose origins pass the preflight) could have its
    visitors' browsers post comments, or flag another site's comments from as many IPs
    as it had visitors, three of which send a comment back to the queue. A site that
    lists no origins takes posts from any page, as before; a request with the site's
    key, or without Origin (a backend, curl), is no page's.

    `Origin: null` names no page: browsers send it for a form posted from a page whose
    Referrer-Policy is `no-referrer` (a common hardening), or from a sandboxed frame.
    A comment form may be such a page (``unknown_page_allowed``); a flag, which a page's
    script sends as JSON (preflighted, and no preflight admits `null`), never is.
    """
    origin = request.headers.get("Origin")
    if not origin or site is None or site_caller() is not None:
        return
    if origin == "null" and unknown_page_allowed:
        return
    origins = _origins_of(site)
    if origins and not origin_in(origin, origins):
        raise Forbidden("This page's origin is not one of the site's allowed origins.")


def _submission() -> _Submission:
    """The submission as intake judges it (cached on ``g``); raises for a body it cannot
    read at all (400, 413, 415) or a bad key (401)."""
    if "submission" in g:
        return g.submission
    body, form_names = _submission_body()
    from_form = form_names is not None
    site = limits.site_named(body.get("site"))
    if site is not None:  # else not text: the schema says so (422)
        body["site"] = site
    honeypot_filled = _take_honeypot(body)
    if site_caller() is None:
        # Without a site key the contract ignores these (the request's own are used), so
        # they are not judged either: a browser's stray `ip` is no reason for a 422.
        for name in NETWORK_FIELDS:
            body.pop(name, None)
    if from_form:
        # A form carries what its theme and plugins add (WordPress's own extras, Akismet's
        # ak_js, a nonce); the page's visitor cannot fix those, so they are ignored, not 422.
        body = {name: value for name, value in body.items() if name in SUBMISSION.load_fields}
    try:
        fields, errors = SUBMISSION.load(body), None
    except ValidationError as error:
        fields, errors = {}, {(form_names or {}).get(name, name): problem
                              for name, problem in error.messages.items()}  # type: ignore[union-attr]
    g.submission = _Submission(fields, errors, from_form, honeypot_filled,  # type: ignore[arg-type]
                               form_names or {})
    return g.submission


def _invalid_submission() -> bool:
    """Whether the submission's fields are refused (422): such a post stores nothing, so
    the flood limits do not count it. Counted, a commenter who mistyped their address a
    few times was answered 429 once it was right, as was everyone behind their IP.

    Run by the limits before the view (which reuses what it read), so it must not raise:
    a body it cannot read is counted, and answered by the view.
    """
    try:
        return _submission().errors is not None
    except Exception:  # noqa: BLE001 - the view raises it again, and answers it
        return False


def _take_honeypot(body: dict[str, Any]) -> bool:
    """Remove the site's honeypot field from the body; True if a bot filled it in."""
    site = body.get("site")  # settled by submit_comment; not text only when invalid
    slug = site if isinstance(site, str) else DEFAULT_SITE
    field = current_rules().settings_for(slug).honeypot.field
    if not field or field not in body:
        return False
    value = body.pop(field)
    # Left empty is what a page's script sends for an untouched field: "" or blank, and
    # in JSON also null, false, 0 or []; str(None) read "None" as filled in, and every
    # comment from such a page was filed as spam. A bot fills in text.
    return bool(value.strip()) if isinstance(value, str) else bool(value)


def _form_token_problem(fields: dict[str, Any]) -> str | None:
    """With form tokens on for the site, what is wrong with the submission's token, if anything:
    missing, forged, for another page, expired or too quick (each marks a bot, or a page
    that serves a stale or no token).

    Not a missing one from the site's own backend (its key): the backend served its form
    itself, and may relay the page's token, which is then checked, but need not.
    """
    settings = current_rules().settings_for(fields["site"]).form_token
    if not settings.enabled:
        return None
    if fields.get("form_token") is None and site_caller() is not None:
        return None
    return form_tokens.problem(
        fields.get("form_token"), fields["site"], fields["thread"],
        settings.min_seconds, settings.max_age_seconds,
    )


# What a site's backend passes for its commenter; honoured only with a site key.
NETWORK_FIELDS = ("ip", "user_agent", "referrer")


def _signals(
    fields: dict[str, Any], honeypot_filled: bool, form_token_problem: str | None
) -> comments.Signals:
    """Network facts: from the body only for the site's own key, else from the request."""
    caller = site_caller()
    if caller is not None:
        with read_only():  # not holding SQLite's write lock while the comment is judged
            site_id = get_site(fields["site"]).id
        if not caller.may_act_on(site_id):
            raise Forbidden("This key may not submit to that site.")
        return comments.Signals(
            ip=canonical_ip(fields["ip"]) if fields.get("ip") else None,  # checked: an IP
            user_agent=fields.get("user_agent"),
            referrer=fields.get("referrer"),
            honeypot_filled=honeypot_filled,
            form_token_problem=form_token_problem,
            from_site_key=True,
        )
    return comments.Signals(
        ip=_request_ip(),
        user_agent=_header_text(request.user_agent.string, 512),
        referrer=_header_text(request.referrer, 2048),
        honeypot_filled=honeypot_filled,
        form_token_problem=form_token_problem,
    )


def _request_ip() -> str | None:
    """The address the request came from, without an IPv6 zone; None when it is no address.

    Behind MODERATION_PROXY_HOPS it is what X-Forwarded-For says, which a client writes
    itself when the proxy passes its header on: stored as it was, text longer than the
    IP column (or holding a NUL) made PostgreSQL refuse a valid comment.
    """
    address = (request.remote_addr or "").split("%", 1)[0]
    try:
        return canonical_ip(address)
    except ValueError:
        return None


def _header_text(value: str | None, length: int) -> str | None:
    """A request header kept with the comment: cut to its column, without control
    characters (the commenter's browser sent it, not the commenter). No database column
    stores NUL; header bytes 0x80-0x9F arrive as C1 controls (HTTP headers are read as
    Latin-1), which the moderator's page would show as garbage or a line break. The same
    characters are refused when a site's backend sends the fields in the body.

    Clients that put non-ASCII in a header send UTF-8 (an app's name in its User-Agent),
    which Latin-1 reading turns into mojibake ("CafÃ©"): bytes that are valid UTF-8 are
    read as such; anything else stays as Latin-1 read it."""
    text = value or ""
    with contextlib.suppress(UnicodeError):
        text = text.encode("latin-1").decode("utf-8")
    return LINE_CONTROL_CHARS.sub("", text)[:length] or None


def _is_navigation() -> bool:
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


def _form_return_url(fields: dict[str, Any], answer: comments.Answer) -> str | None:
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


@blp.route("/comments", methods=["GET"])
@blp.arguments(ThreadQuerySchema(), location="query")
@blp.response(200, ThreadPageSchema, headers={"ETag": {
    "description": "The page's version: send it back as If-None-Match to be answered 304 "
                   "while the page is unchanged", "schema": {"type": "string"}}})
@blp.alt_response(304, description="Not modified: the page is still the one whose ETag "
                  "was sent in If-None-Match")
@blp.doc(security=KEY_OPTIONAL)
@errors(blp, 401, 404, 422)
def list_comments(query: dict[str, Any]) -> Response:
    """Approved comments of one thread, oldest first, replies nested."""
    # Sent as built: thread_page already returns ThreadPageSchema's shape, and dumping a
    # page of nested comments through marshmallow cost as much as the queries (the
    # schemathesis suite checks the answers against the schema).
    response = jsonify(
        threads.thread_page(query["site"], query["thread"], query["limit"], query["cursor"])
    )
    # A page that polls for new comments, and a CDN in front, revalidate with the ETag
    # (the page's hash) and get a 304 with no body while nothing changed. Always: with no
    # rule, a cache may keep a page for its own default time (Varnish 120 s, a CDN up to
    # an hour), serving a comment a moderator removed or an erasure scrubbed (an audit).
    response.headers["Cache-Control"] = "no-cache"
    response.add_etag()
    return response.make_conditional(request)


@blp.route("/comments/<id:comment_id>/flags", methods=["POST"])
@limiter.limit(
    limits.per_reporter,
    key_func=limits.reporter_key,
    scope="flag",
    exempt_when=limits.no_reporter_limit,
)
@blp.arguments(NO_QUERY, location="query", as_kwargs=True)
@blp.arguments(FlagSchema())
@blp.response(202, FlagAnswerSchema)
@blp.doc(security=KEY_OPTIONAL)
@errors(blp, 400, 401, 403, 404, 415, 422, 429)
def flag_comment(report: dict[str, Any], comment_id: int) -> dict[str, Any]:
    """Report a published comment; enough readers send it back to the moderators."""
    with read_only():
        _refuse_a_foreign_page(threads.site_of_comment(comment_id, published_only=True))
    flags.flag(comment_id, report["reason"], request.remote_addr or "unknown")
    return {"id": comment_id, "message": "Thank you; a moderator will take a look."}


@blp.route("/form-token", methods=["GET"])
@blp.arguments(FormTokenQuerySchema(), location="query")
@blp.response(200, FormTokenSchema)
@blp.doc(security=KEY_OPTIONAL)
@errors(blp, 401, 404, 422)
def form_token(query: dict[str, Any]) -> dict[str, Any]:
    """A signed token for a comment form served now; post it back as `form_token`.

    The token is good only for this site and thread, from the rules file's
    `form_token.min_seconds` after it was served (sooner, a person could not have typed
    the comment) until its `max_age_seconds` (a day by default).
    """
    get_site(query["site"])
    return {"form_token": form_tokens.issue(query["site"], query["thread"])}


# Public routes a site's pages call from the browser.
CORS_PATHS = ("/api/v1/comments", "/api/v1/form-token")
# What a page's script may read of an answer beyond the basic headers: how long to wait
# after a 429 or 503, how many posts the limits leave, and the id to quote to the site owner.
CORS_EXPOSED = ("Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, "
                "X-Request-ID")


def add_cors_headers(response: Response) -> Response:
    """Let a site's own pages call the public routes from the browser, and no other origin.

    The answer, an error's too, is readable only by the origins of the site it concerns.
    A preflight (OPTIONS) names no site, so it admits the origins of every site; the
    request that follows is then answered for its own site's origins only. An error that
    concerns no site the service shows (an unknown site, a comment that is not public, a
    body it could not read) is answered like a preflight, so the page can say what failed.
    """
    if not request.path.startswith(CORS_PATHS):
        return response
    # Said to a request without Origin too, so that a cache never gives its answer to one
    # with an Origin (the Fetch standard's "CORS protocol and HTTP caches").
    response.headers.add("Vary", "Origin")
    origin = request.headers.get("Origin")
    if not origin:
        return response
    if request.method == "OPTIONS":
        allowed = _lookup(lambda: origin_allowed(origin))
    else:
        allowed = _lookup(lambda: _readable_by(origin, response))
    if allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, Idempotency-Key"
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED
        response.headers["Access-Control-Max-Age"] = "600"
    return response


def _lookup(check: Callable[[], bool]) -> bool:
    """Run a CORS lookup as a read; with the database away, the answer (a 503) stays as it
    is, only unreadable cross-origin, instead of becoming a 500."""
    try:
        with read_only():
            return check()
    except (DBAPIError, PoolTimeout):
        return False


def _readable_by(origin: str, response: Response) -> bool:
    """Whether the origin is among those of the site the answer concerns, or of any site
    when it concerns none (only an error can: a success always names a site)."""
    origins = _origins_of(_site_of_request(response))
    return origin_allowed(origin) if origins is None else origin_in(origin, origins)


def _site_of_request(response: Response) -> str | None:
    """The site an answer concerns: the comment's for a flag, else the one the request names."""
    if request.view_args and "comment_id" in request.view_args:
        # A flag taken may have sent its comment back to the queue, and is still that
        # site's; an error names only a published comment's site, not a hidden one's.
        return threads.site_of_comment(request.view_args["comment_id"],
                                        published_only=response.status_code >= 400)
    if request.method == "GET":
        return request.args.get("site", "").strip() or DEFAULT_SITE
    try:
        return limits.submitted_site()
    except RequestEntityTooLarge:
        # The body is past the limit and never read: raised here, in the answer's last
        # step, it turned the 413 into a 500.
        return None


def _origins_of(slug: str | None) -> list[str] | None:
    """The site's allowed origins; None when no site the service has goes by that slug."""
    if slug is None or not SLUG.fullmatch(slug):
        return None
    try:
        return get_site(slug).allowed_origins or []
    except NotFound:
        return None
