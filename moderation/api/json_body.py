"""Request bodies in JSON: decoded once, the same way for every route, or refused with 400.

Python's decoder accepts two things that break later, as a 500 instead of a 400:
- an escaped lone UTF-16 surrogate (``"\\ud800"``): valid JSON grammar but not text, so
  no database driver and no UTF-8 encoder can take the string it makes (RFC 8259 8.2);
- deep nesting (``[[[[...``): it recurses once per level and raises RecursionError
  long before the 256 KiB body limit.

And it keeps the last of two members with the same name, where other parsers keep the
first (RFC 8259 4: such an object's meaning is unpredictable): a site's backend or a proxy
that read `{"thread": "/a", "thread": "/b"}` as /a saw another comment than the one
stored. Such a body is refused too.

And it reads `NaN`, `Infinity` and `-Infinity`, which are not JSON (RFC 8259 6), and a
number too large for a float (`1e400`) as infinity: the caller was told the field was
not a valid number or string (422) instead of that the body was not JSON.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flask import Request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest

# An escaped UTF-16 surrogate, \uD800 to \uDFFF; most bodies have none, so only those
# that do pay for the check that each one is half of a pair.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class MalformedBody(ValueError):
    """A body that decodes as JSON but cannot be used; ``str()`` says why, for the caller."""


def _members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's members, refusing a name given twice."""
    members = dict(pairs)
    if len(members) != len(pairs):
        raise MalformedBody("The JSON body gives the same member twice in one object.")
    return members


def _not_json(constant: str) -> Any:
    raise MalformedBody(f"The body is not valid JSON ({constant} is not a JSON value).")


def _finite(number: str) -> float:
    value = float(number)
    if math.isinf(value):
        raise MalformedBody(f"The body is not valid JSON ({number[:20]} is too large a number).")
    return value


def loads(data: str | bytes) -> Any:
    """json.loads, refusing (ValueError) what is not UTF-8, deep nesting, lone surrogates,
    a member named twice in one object and numbers JSON does not have.

    Bytes are decoded strictly as UTF-8 (RFC 8259 8.1; a byte order mark is ignored):
    json.loads would also take UTF-16 and UTF-32, and UTF-8 bytes that encode a lone
    surrogate, which no database can store either.
    """
    if isinstance(data, (bytes, bytearray)):
        try:
            text = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise MalformedBody("The body is not UTF-8 text.") from None
    else:
        text = data
    try:
        value = json.loads(text, object_pairs_hook=_members, parse_constant=_not_json,
                           parse_float=_finite)
    except RecursionError:
        raise MalformedBody("The JSON body is nested too deeply.") from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedBody(
                "The JSON body holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text."
            ) from None
    return value


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, decoding with ``loads`` above: request.get_json(silent=True) (the rate
    limits read the body) then gets None for such a body instead of raising."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


def json_object(request: Request) -> dict[str, Any]:
    """The request's body as a JSON object, or 400 saying what is wrong with it."""
    try:
        body = loads(request.get_data(cache=True))
    except MalformedBody as error:
        raise BadRequest(str(error)) from None
    except ValueError:  # json.JSONDecodeError, UnicodeDecodeError
        raise BadRequest("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The body is not a JSON object.")
    return body
