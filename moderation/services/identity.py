"""Keyed hashes that identify a commenter or a comment without storing what they hash."""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app

from moderation.rules import normalise


def _keyed(purpose: str, value: str) -> str:
    key = f"{current_app.config['SECRET_KEY']}:{purpose}".encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def email_hash(email: str) -> str:
    """The commenter's identity for trust and erasure: HMAC of the lower-cased address."""
    return _keyed("email", email.strip().lower())


def reporter_hash(ip: str) -> str:
    """A reader's identity for counting distinct flags, without keeping the reader's IP."""
    return _keyed("reporter", ip)


def content_hash(content: str) -> str:
    """Equal for comments that say the same after normalisation (case, spacing, look-alikes)."""
    folded = " ".join(normalise(content).text.split())
    return hashlib.sha256(folded.encode()).hexdigest()
