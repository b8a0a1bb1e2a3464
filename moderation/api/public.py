"""Public routes: what a site's comment form and its readers call, with no key."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from flask import Response, g, jsonify, redirect, request
from marshmallow import ValidationError
from webargs.flaskparser import is_json_request
from werkzeug.exceptions import UnsupportedMediaType

from moderation.api import NO_QUERY, Blueprint, cors, errors, forms
from moderation.api.json_body import json_object
from moderation.auth import current_caller, site_caller
from moderation.database import read_only
from moderation.errors import Forbidden, Invalid
from moderation.extensions import limiter
from moderation.schemas.base import LINE_CONTROL_CHARS
from moderation.schemas.public import (
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
from moderation.services.sites import DEFAULT_SITE, get_site, origin_in

blp = Blueprint("public", __name__, url_prefix="/api/v1", description="Comment forms and readers")


# The spec of a public route: no key needed, and one sent must be good (a bad one is a 401).
KEY_OPTIONAL = [{}, {"bearerAuth": []}]


@blp.before_request
def _refuse_a_bad_key() -> None:
    """A key sent wrongly, unknown or revoked is a 401 on the public routes too, before
    anything else is read, as GitHub answers a bad token on its public routes: ignored, a
    site backend's misconfigured key went unnoticed until it mattered. No key is no key."""
    current_caller()


# One schema instance for every request: building one deep-copies its fields, which cost
# more than the load itself. Loading keeps no state on the instance.
SUBMISSION = CommentSubmissionSchema()


def _submission_body() -> tuple[dict[str, Any], dict[str, str] | None]:
    """The posted fields and, for an HTML form, the names the form gives them by (each of
    intake's field names to the form's); 400/415 when unusable."""
    mimetype = request.mimetype
    if is_json_request(request):  # application/json, or a +json type, as on every route
        if not request.get_data(cache=True):
            return {}, None  # no body: the schema names the missing fields (422)
        return json_object(request), None
    if mimetype in FORM_TYPES:
        return forms.read_form(mimetype)
    if not mimetype and not request.get_data(cache=True):
        return {}, None  # nothing sent at all: as an empty JSON body, 422 naming the fields
    raise UnsupportedMediaType("Send application/json or an HTML form.")


@blp.route("/comments", methods=["POST"])
@blp.doc(
    requestBody={
        "required": True,
        "content": {
            "application/json": {"schema": CommentSubmissionSchema},
            "application/x-www-form-urlencoded": {"schema": forms.FORM_SUBMISSION},
            "multipart/form-data": {"schema": forms.FORM_SUBMISSION},
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
    if from_form and answer.status_code == 201 and forms.is_navigation():
        target = forms.return_url(fields, answer)
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
    origins = cors.origins_of(site)
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
        body = {name: value for name, value in body.items() if name in forms.INTAKE_FIELDS}
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
