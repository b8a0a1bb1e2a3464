"""The body-size limit for bodies sent without a Content-Length (chunked transfer)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any


class ChunkedBodyLimit:
    """WSGI middleware: read a chunked body here, up to the limit, and give it a length.

    With a Content-Length, Werkzeug answers 413 before reading a byte of a body that is too
    large. A chunked body has none, and Werkzeug's form parser then stopped at the limit
    without a word: a 68 KB form was stored as a comment cut short (found by an audit).
    Read here, a body within the limit reaches the app as if sent with its length; a larger
    one is announced as one byte over, so the app answers 413 in its usual JSON shape.
    """

    def __init__(self, app: Any, limit: int):
        self.app = app
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            body = environ["wsgi.input"].read(self.limit + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            # Werkzeug ignores Content-Length on a chunked request (as HTTP says to): the
            # body is no longer chunked, so it now goes by the length.
            del environ["HTTP_TRANSFER_ENCODING"]
        return self.app(environ, start_response)
