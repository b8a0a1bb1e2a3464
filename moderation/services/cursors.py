"""Keyset cursors: the position of the last item of a page, as a short string.

Clients treat cursors as opaque; their shape is still documented as a pattern, so a
well-formed cursor always names a position (an id, or a score and an id in the queue).
"""

from __future__ import annotations

# Any number of up to 18 digits is well formed; one past the largest id means past the end.
ID_CURSOR = r"^[0-9]{1,18}$"
# Scores are stored rounded to SCORE_DECIMALS, so the cursor carries them exactly. A rule's
# score is any finite number, and a finite float's whole part has at most 309 digits: the
# cursor of a page ending on a huge score must still be one the queue accepts.
SCORE_DECIMALS = 3
QUEUE_CURSOR = r"^-?[0-9]{1,309}\.[0-9]{3}_[0-9]{1,18}$"


def encode_id(last_id: int) -> str:
    return str(last_id)


# Ids are 32-bit columns; a position past the largest id is simply past the end.
MAX_POSITION = 2**31 - 1


def decode_id(cursor: str) -> int:
    """The id in a cursor the schema's ID_CURSOR pattern has already checked."""
    return min(int(cursor), MAX_POSITION)


def encode_queue(score: float, last_id: int) -> str:
    return f"{score:.{SCORE_DECIMALS}f}_{last_id}"


def decode_queue(cursor: str) -> tuple[float, int]:
    """(score, id) from a cursor the schema's QUEUE_CURSOR pattern has already checked."""
    score, _, last_id = cursor.partition("_")
    return float(score), min(int(last_id), MAX_POSITION)
