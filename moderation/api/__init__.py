"""Thin blueprints: parse with a schema, call a service, dump with a schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

import flask_smorest
from flask import Request, Response, request
from flask_smorest.error_handler import ErrorSchema
from marshmallow import fields as ma_fields
from marshmallow import missing
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType
from werkzeug.routing import IntegerConverter

from moderation.api.json_body import json_object
from moderation.auth import require
from moderation.errors import Invalid
from moderation.models import Role
from moderation.schemas.base import MAX_ID, NoQuerySchema

F = TypeVar("F", bound=Callable[..., Any])

# For every route that takes no query arguments: it refuses them all (422), as StrictParser
# makes the others refuse unknown ones, so a misspelt or stray argument (`?dry_run=1` on a
# DELETE, `?site=news` on intake, `?limit=1000` on a backtest) never looks applied.
NO_QUERY = NoQuerySchema()


def _numbers_up_to(limit: int) -> str:
    """A regex of the decimal numbers 1..limit, written without leading zeros."""
    digits = str(limit)
    shorter = f"[1-9][0-9]{{0,{len(digits) - 2}}}" if len(digits) > 1 else ""
    same_length = []  # numbers of limit's length: equal up to a digit, then smaller there
    for index, digit in enumerate(digits):
        low = "1" if index == 0 else "0"
        if digit > low:
            smaller = f"[{low}-{int(digit) - 1}]"
            same_length.append(f"{digits[:index]}{smaller}[0-9]{{{len(digits) - index - 1}}}")
    return "|".join(filter(None, [shorter, *same_length, digits]))


class IdConverter(IntegerConverter):
    """A row id in a path: 1 up to MAX_ID (the 32-bit id columns), so no id overflows them.

    ASCII digits only: werkzeug's `\\d+` with int() took `/comments/٣` (Arabic-Indic three)
    as comment 3, so one comment had many spellings in the access log. Others are a 404.
    The bound is in the pattern, not only in the conversion: a path that only the
    conversion refused still matched the route's other methods, so
    `DELETE /keys/2147483648` was a 405 where `GET` was a 404.
    """

    regex = f"(?:{_numbers_up_to(MAX_ID)})"  # no leading zero: /comments/056 is not 56

    def __init__(self, map, *args, **kwargs):  # noqa: A002 - werkzeug's argument name
        super().__init__(map, min=1, max=MAX_ID)


def id_parameter_schema(converter: IdConverter) -> dict[str, Any]:
    return {"type": "integer", "minimum": 1, "maximum": MAX_ID}


class StrictParser(FlaskParser):
    # webargs ignores unknown query arguments by default; ours refuses them (the schema's
    # Meta.unknown = RAISE decides), so a misspelt filter is a 422, not a silent no-op.
    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None
    }

    def parse(self, argmap: Any, req: Request | None = None, *, location: str | None = None,
              **kwargs: Any) -> Any:
        """As webargs parses, but an empty query for a route that takes none is {} at once.

        Intake refuses query arguments like every route (NoQuerySchema); loading an empty
        query through the schema cost 2.6% of a comment's instructions (callgrind).
        """
        if (location in ("query", "querystring") and isinstance(argmap, NoQuerySchema)
                and not (req or request).args):
            return {}
        return super().parse(argmap, req, location=location, **kwargs)

    def load_querystring(self, req: Request, schema: Any) -> Any:
        """The query's arguments; 422 for one given twice (`?site=a&site=b`), 400 for a
        query that is not UTF-8.

        webargs would take the first and drop the other without a word, so a moderator
        asking for two sites would see one and believe it was both. Werkzeug keeps an
        escape it cannot decode as it was written: `?thread=%ff` read the thread "%FF",
        another page than the one meant, where a form body of the same bytes is a 400.
        """
        raw = req.query_string
        if b"%" in raw or not raw.isascii():
            try:
                unquote_to_bytes(raw).decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest("The query string is not UTF-8 text.") from None
        lists = {field.data_key or name for name, field in schema.fields.items()
                 if isinstance(field, ma_fields.List)}
        repeated = sorted(name for name in req.args
                          if name not in lists and len(req.args.getlist(name)) > 1)
        if repeated:
            raise Invalid("A query argument is given more than once.",
                          {name: ["Give it once."] for name in repeated})
        return super().load_querystring(req, schema)

    def _raw_load_json(self, req: Request) -> Any:
        """The JSON body, decoded as intake decodes it; 415 for a body of another type.

        webargs would treat a body that is not JSON as no body, so a form post to a JSON
        route got 422 "Missing data" instead of 415; and a malformed body got its stock
        message with a made-up field error, where the contract gives 400 and a message.
        """
        if not is_json_request(req):
            if req.content_length or req.get_data(cache=True):
                raise UnsupportedMediaType("Send the body as application/json.")
            return missing
        if not req.get_data(cache=True):
            return missing  # no body: the schema names the missing fields (422)
        return json_object(req)


def _documenting_only(decorate: Callable[[F], F]) -> Callable[[F], F]:
    """flask-smorest's decorator, keeping the doc it writes but not its wrapper.

    @blp.doc and @blp.alt_response wrap the view in a function that only calls it (through
    current_app.ensure_sync) to carry the view's `_apidoc`. With errors() documenting each
    error answer, intake ran under 14 such wrappers on every request: 2.3% of its
    instructions (callgrind). The doc is put on the view itself instead, where @blp.route
    reads it; views here are plain functions, each registered once. The spec is the same.
    """

    def decorator(view: F) -> F:
        view._apidoc = decorate(view)._apidoc  # type: ignore[attr-defined]
        return view

    return decorator


class Blueprint(flask_smorest.Blueprint):
    # Routes hand @blp.arguments a schema instance, not its class: given a class, webargs
    # builds (and deep-copies the fields of) a new schema on every request.
    ARGUMENTS_PARSER = StrictParser()

    def doc(self, **kwargs: Any) -> Callable[[F], F]:
        return _documenting_only(super().doc(**kwargs))

    def alt_response(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        return _documenting_only(super().alt_response(*args, **kwargs))

    def arguments(self, schema: Any, *, location: str = "json", **kwargs: Any) -> Any:
        """flask-smorest's, and a JSON body's own answers said in the spec: the decoder
        answers 400 and 415, and every body above MAX_CONTENT_LENGTH is a 413."""
        parse = super().arguments(schema, location=location, **kwargs)
        if location != "json":
            return parse

        def decorator(view: F) -> F:
            return errors(self, 400, 413, 415)(parse(view))

        return decorator


RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
WWW_AUTHENTICATE = {"WWW-Authenticate": {
    "description": 'The scheme to use: `Bearer`, or `Bearer error="invalid_token"` for a key '
                   "that failed", "schema": {"type": "string"}}}
ERROR_HEADERS = {401: WWW_AUTHENTICATE, 429: RETRY_AFTER, 503: RETRY_AFTER}
ERROR_DESCRIPTIONS = {
    400: "Malformed body, or a query string that is not UTF-8",
    401: "No API key, or an invalid one",
    403: "The key's role or sites do not cover this",
    404: "Not found",
    408: "The body stopped coming before it was whole",
    409: "Conflict",
    412: "Changed by someone else since the given ETag",
    413: "Body too large",
    415: "Unsupported content type",
    422: "Invalid fields",
    428: "If-Match is required",
    429: "Too many requests",
    503: "The database is unreachable",
}


def errors(blp: Blueprint, *codes: int) -> Callable[[F], F]:
    """Document error answers in the contract's JSON shape (503 on every database route,
    400 on every route: any query string may fail to be UTF-8, and any body end before its
    Content-Length; 408 on every route: any body may stop coming)."""

    def decorator(view: F) -> F:
        for code in dict.fromkeys((*codes, 400, 408, 503)):
            view = blp.alt_response(
                code,
                schema=ErrorSchema,
                description=ERROR_DESCRIPTIONS[code],
                headers=ERROR_HEADERS.get(code),
            )(view)
        return view

    return decorator


def empty_options_answer_is_204(response: Response) -> Response:
    """Flask answers OPTIONS (a CORS preflight) with an empty 200 typed text/html; an
    empty answer is a 204, as well-known APIs answer a preflight."""
    if (request.method == "OPTIONS" and response.status_code == 200
            and response.calculate_content_length() == 0):
        response.status_code = 204
    return response


def no_content_type_without_content(response: Response) -> Response:
    """A 204 carries no body, so it names no type for one (RFC 9110 8.3).

    flask-smorest's 204 kept Flask's default `application/json`; Werkzeug already strips
    a 304 of its type and a 204 of its length, and sends neither a body.
    """
    if response.status_code == 204:
        response.headers.pop("Content-Type", None)
    return response


# Answers that may carry a secret (a new key), personal data (emails and IPs in the queue,
# an export) or a token meant for one visitor (a form token): no cache, shared or private,
# may keep them. The public thread page and the docs stay cacheable.
PRIVATE_PATHS = ("/api/v1/moderation", "/api/v1/admin", "/api/v1/form-token")
# The docs page (ReDoc, the one HTML page): its script, styles and spec from here only.
# ReDoc's bundle shows a logo from cdn.redoc.ly, which told Redocly of every visit to the
# docs (found by an audit); its styles are injected inline, and it may render in a worker.
DOCS_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
               "worker-src 'self' blob:; base-uri 'none'; form-action 'none'; "
               "frame-ancestors 'none'")


def security_headers(response: Response) -> Response:
    """Headers every answer carries, whichever route (or error handler) made it.

    nosniff: a browser must not read a JSON answer holding a commenter's text as HTML or
    script. Framing is refused: nothing here is meant to be shown inside another page.
    Added, not set: no route sets them, and setdefault's scans of the headers cost four
    times as much (8 us a request against 2).
    """
    headers = response.headers
    headers.add("X-Content-Type-Options", "nosniff")
    headers.add("X-Frame-Options", "DENY")
    if response.is_json:
        # A JSON answer opened as a page (a link to the API, a browser's viewer) runs and
        # loads nothing, whatever a commenter's text holds. The docs page and its script
        # are left to load what they need.
        headers.add("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
    elif response.mimetype == "text/html":
        headers.add("Content-Security-Policy", DOCS_POLICY)
    if "HTTP_AUTHORIZATION" in request.environ or request.path.startswith(PRIVATE_PATHS):
        headers["Cache-Control"] = "no-store"
    return response


def guarded(blp: Blueprint, *roles: Role) -> Callable[[F], F]:
    """Require a key of one of these roles (401/403), and say so in the OpenAPI spec."""

    def decorator(view: F) -> F:
        view = require(*roles)(view)
        view = blp.doc(security=[{"bearerAuth": []}])(view)
        return errors(blp, 401, 403)(view)

    return decorator
