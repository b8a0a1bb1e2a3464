"""Opaque keyset cursors: the position after the last item of a page."""

from __future__ import annotations

import base64
import json
from typing import Any

from moderation.errors import Invalid


def encode(position: list[Any]) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, shape: tuple[type, ...]) -> list[Any]:
    """The position in a cursor, checked against the expected types; 422 if it was tampered."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except ValueError:
        position = None
    if (
        not isinstance(position, list)
        or len(position) != len(shape)
        or not all(
            isinstance(value, kind) and not isinstance(value, bool)
            for value, kind in zip(position, shape, strict=True)
        )
    ):
        raise Invalid("The cursor is not valid.", {"cursor": ["Not a cursor from this API."]})
    return position
