"""Keyset cursors: the position of the last item of a page, and the listing it pages.

Clients treat cursors as opaque; their shape is still documented as a pattern, so a
well-formed cursor always names a position (an id, or a score and an id in the queue).
A cursor ends with a digest of its listing (the route, the sort and every filter): a
position means something only in its own listing (a queue score read as an id, a thread's
id in another thread), so a cursor given with another is refused, not paged from.
"""

from __future__ import annotations

import hashlib
import json

from moderation.errors import Invalid

# The listing's digest: 12 hex digits tell listings apart; a client that forges one only
# pages its own listing from a position of its choice, which a cursor lets it do anyway.
LISTING = r"\.[0-9a-f]{12}"
# Any number of up to 18 digits is well formed; one past the largest id means past the end.
ID_CURSOR = rf"^[0-9]{{1,18}}{LISTING}$"
# Scores are stored rounded to SCORE_DECIMALS, so the cursor carries them exactly. A rule's
# score is any finite number, and a finite float's whole part has at most 309 digits: the
# cursor of a page ending on a huge score must still be one the queue accepts.
SCORE_DECIMALS = 3
QUEUE_CURSOR = rf"^-?[0-9]{{1,309}}\.[0-9]{{3}}_[0-9]{{1,18}}{LISTING}$"

# What a listing is: its name, then its sort and filters as the request gave them.
Listing = tuple[str | int | None, ...]


def _digest(listing: Listing) -> str:
    return hashlib.blake2b(json.dumps(listing).encode(), digest_size=6).hexdigest()


def _position(cursor: str, listing: Listing) -> str:
    """The position in a cursor the schema's pattern has checked; 422 for another listing."""
    position, _, digest = cursor.rpartition(".")
    if digest != _digest(listing):
        raise Invalid(
            "The cursor belongs to another listing; ask for the first page again.",
            {"cursor": ["Made for another sort or filter than this request's."]},
        )
    return position


def encode_id(last_id: int, listing: Listing) -> str:
    return f"{last_id}.{_digest(listing)}"


# Ids are 32-bit columns; a position past the largest id is simply past the end.
MAX_POSITION = 2**31 - 1


def decode_id(cursor: str, listing: Listing) -> int:
    """The id in a cursor of this listing."""
    return min(int(_position(cursor, listing)), MAX_POSITION)


def encode_queue(score: float, last_id: int, listing: Listing) -> str:
    return f"{score:.{SCORE_DECIMALS}f}_{last_id}.{_digest(listing)}"


def decode_queue(cursor: str, listing: Listing) -> tuple[float, int]:
    """(score, id) from a cursor of this listing."""
    score, _, last_id = _position(cursor, listing).partition("_")
    return float(score), min(int(last_id), MAX_POSITION)
