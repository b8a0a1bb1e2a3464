"""The request body, read whole before the app sees the request: its size limit for
chunked bodies, and a body that ends early or stops coming."""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from contextlib import suppress
from typing import Any

from flask import request
from werkzeug.exceptions import BadRequest, RequestTimeout

# Where the middleware leaves a body it could not read whole, for the app to answer:
# 400 (ended before its Content-Length) or 408 (stopped coming).
BODY_FAULT = "moderation.body_fault"
# When the app began to take the request (time.perf_counter()): the access log's duration
# and the latency histogram count from here, the body's reading included. Counted from
# Flask's first hook, a comment whose body took 3 s to come read as 10 ms, and a 408
# after 10 s as 0.1 ms: slow clients holding workers did not show (found by an audit).
RECEIVED_AT = "moderation.received_at"
READ_SIZE = 65536
# The methods whose bodies routes read.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class RequestBody:
    """WSGI middleware: read the body here, up to the limit, and hand the app a whole one.

    - Chunked bodies: with a Content-Length, Werkzeug answers 413 before reading a byte of
      a body that is too large. A chunked body has none, and Werkzeug's form parser then
      stopped at the limit without a word: a 68 KB form was stored as a comment cut short
      (found by an audit). Read here, a body within the limit reaches the app as if sent
      with its length; a larger one is announced as one byte over, so the app answers 413.
    - A body shorter than its Content-Length: gunicorn marks its input as terminated, so
      Werkzeug reads to its end without checking the length, and a form whose client hung
      up half-way was stored as the half that came ("Please do NOT" of "Please do NOT cut
      me short"; found by an audit). Such a body is refused with 400, and nothing stored.
    - A body that stops coming: gunicorn's workers read with a timeout
      (gunicorn.conf.py), and the read that times out here is answered 408. Before, the
      worker waited until gunicorn killed it at its timeout, and answered 500.

    The app is told of a fault through the WSGI environ (``BODY_FAULT``) and answers it in
    its usual JSON shape, with its usual headers, log line and metrics.
    """

    def __init__(self, app: Any, limit: int):
        self.app = app
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ[RECEIVED_AT] = time.perf_counter()
        try:
            return self._with_body_read(environ, start_response)
        finally:
            # The read timeout is for reading the request: sending a large answer (an
            # export) to a slow reader is bounded by the worker timeout, as before.
            sock = environ.get("gunicorn.socket")
            if sock is not None:
                with suppress(OSError):
                    sock.settimeout(None)

    def _with_body_read(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in BODY_METHODS:
            # No route reads the body of these: a GET sent with a Content-Length and no
            # body waited for it, then got a 408 (found by a review).
            return self.app(environ, start_response)
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            body = self._read(environ, self.limit + 1)
            # Werkzeug ignores Content-Length on a chunked request (as HTTP says to): the
            # body is no longer chunked, so it now goes by the length.
            del environ["HTTP_TRANSFER_ENCODING"]
        else:
            length = _content_length(environ)
            if length is None or length <= 0 or length > self.limit:
                # No body, or one Werkzeug refuses (413) without reading it.
                return self.app(environ, start_response)
            body = self._read(environ, length)
            if environ.get(BODY_FAULT) is None and len(body) < length:
                environ[BODY_FAULT] = 400
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)

    @staticmethod
    def _read(environ: dict[str, Any], most: int) -> bytes:
        """Up to ``most`` bytes of the body; what came, with a 408 fault, if it stopped."""
        stream, parts, left = environ["wsgi.input"], [], most
        try:
            while left > 0:
                part = stream.read(min(left, READ_SIZE))
                if not part:
                    break
                parts.append(part)
                left -= len(part)
        except TimeoutError:
            environ[BODY_FAULT] = 408
            return b""
        return b"".join(parts)


def _content_length(environ: dict[str, Any]) -> int | None:
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None  # not a number: left to Werkzeug, as before


def refuse_a_broken_body() -> None:
    """Answer what RequestBody found (before the limits and the views read the body)."""
    fault = request.environ.get(BODY_FAULT)
    if fault == 400:
        raise BadRequest("The body ended before its Content-Length: nothing was stored.")
    if fault == 408:
        raise RequestTimeout("The body stopped coming before it was whole: nothing was "
                             "stored. Send it again.")
