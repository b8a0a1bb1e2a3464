"""Keyed hashes that identify a commenter or a comment without storing what they hash."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
import unicodedata

import sqlalchemy as sa
from flask import current_app

from moderation.errors import SecretMismatch
from moderation.extensions import db
from moderation.models import Comment, SecretFingerprint
from moderation.rules import normalise
from moderation.rules.hosts import normalise_host


def _keyed(purpose: str, value: str) -> str:
    key = f"{current_app.config['SECRET_KEY']}:{purpose}".encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


# What the secret fingerprint is an HMAC of: fixed, so any instance can compute it.
_FINGERPRINTED = "the secret that keys this database's hashes"
SECRET_MISMATCH = (
    "This instance's server secret is not the one this database's email hashes were made "
    "with, so erasure, export, trust and limits would miss every commenter stored by the "
    "other instances: give every instance on this database the same MODERATION_SECRET_KEY "
    "(or instance/secret_key file).")


def secret_fingerprint() -> str:
    """An HMAC of a fixed text under the server secret: tells secrets apart, reveals none."""
    return _keyed("fingerprint", _FINGERPRINTED)


_RECORDED = sa.select(SecretFingerprint.__table__.c.fingerprint).where(
    SecretFingerprint.__table__.c.id == 1)


def secret_matches(connection: sa.Connection | None = None) -> bool | None:
    """Whether the database's recorded fingerprint is this instance's; None if none is
    recorded yet (a database from before 0012 until `moderation init` runs)."""
    recorded = (connection or db.session.connection()).scalar(_RECORDED)
    return None if recorded is None else hmac.compare_digest(recorded, secret_fingerprint())


def require_own_secret() -> None:
    """503 (SecretMismatch) unless this instance hashes as the database's hashes were made."""
    if secret_matches() is False:
        raise SecretMismatch(SECRET_MISMATCH)


SECRET_NOT_THE_DATAS = (
    "The comments in this database were hashed under another server secret than this "
    "instance's (none of the latest addresses hashes as stored): give this instance the "
    "secret the others use (MODERATION_SECRET_KEY, or their instance/secret_key file). If "
    "that secret is lost, `moderation rekey` hashes every address again under this one.")
# How many of the latest stored addresses init hashes to tell whose secret made them.
_SAMPLE = 20


def check_secret_before_migrating(connection: sa.Connection) -> None:
    """`moderation init`, before the migrations: SecretMismatch unless this instance's
    secret is the database's, as recorded, or (none recorded yet: a database from before
    0012) as the stored addresses tell.

    Before the migrations, because 0006 and 0011 hash some addresses again under the
    secret of whoever runs them: run by an instance with another secret, they made those
    hashes its own (and a sample of them agree with it), or, refused after them, left
    them matching no instance. The sample is of addresses those migrations leave alone
    (ASCII, no punycode), which every version hashes alike; erased ones hold nothing.
    """
    tables = sa.inspect(connection)
    matches = secret_matches(connection) if tables.has_table("secret_fingerprint") else None
    if matches is False:
        raise SecretMismatch(SECRET_MISMATCH)
    if matches:
        return
    if not tables.has_table("comments"):
        return  # a new database: nothing hashed yet
    latest = connection.execute(sa.text(
        "SELECT author_email, email_hash FROM comments WHERE author_email != '' "
        "ORDER BY id DESC LIMIT 500")).all()
    sample = [(email, hashed) for email, hashed in latest
              if email.isascii() and "xn--" not in email.lower()][:_SAMPLE]
    if sample and not any(email_hash(email) == hashed for email, hashed in sample):
        raise SecretMismatch(SECRET_NOT_THE_DATAS)


def record_secret() -> None:
    """`moderation init`, after the migrations (and check_secret_before_migrating): record
    this instance's fingerprint on a database that has none."""
    matches = secret_matches()
    if matches is None:
        db.session.add(SecretFingerprint(id=1, fingerprint=secret_fingerprint()))
        db.session.commit()
    elif not matches:
        raise SecretMismatch(SECRET_MISMATCH)


def refuse_intake_if_secret_differs() -> None:
    """Intake: SecretMismatch (503) while this instance's secret is not the database's, as
    after a `moderation rekey` from an instance with a new one, or a replica started
    without `init`: its comments would be hashed so that erasure and export miss them.
    Each worker asks the database at most every SECRET_CHECK_INTERVAL seconds."""
    checked = current_app.extensions.setdefault("moderation.secret_check", [-math.inf, True])
    now = time.monotonic()
    if now - checked[0] >= current_app.config["SECRET_CHECK_INTERVAL"]:
        checked[:] = [now, secret_matches() is not False]
    if not checked[1]:
        raise SecretMismatch(SECRET_MISMATCH)


def rekey(batch: int = 1000) -> int:
    """Hash every stored address again under this instance's secret, and record it as the
    database's; the number of comments whose hash changed.

    For a secret that is lost (a volume gone, and MODERATION_SECRET_KEY never set) or
    to be changed: the addresses are stored beside their hashes, so nothing is lost but
    what is keyed by something else: the flags' reporter hashes (of IPs; a reader may
    flag a comment once more), open form tokens (pages fetch new ones) and the per-email
    rate-limit counters (they expire).

    The fingerprint is recorded first: instances on the old secret then refuse comments
    (503) within SECRET_CHECK_INTERVAL seconds (refuse_intake_if_secret_differs), and
    once that has passed a second pass hashes what they stored meanwhile, and what was
    committed behind a batch already done (PostgreSQL's ids commit out of order).
    """
    recorded = db.session.get(SecretFingerprint, 1)
    if recorded is None:
        db.session.add(SecretFingerprint(id=1, fingerprint=secret_fingerprint()))
    else:
        recorded.fingerprint = secret_fingerprint()
    db.session.commit()
    changed = _hash_again(batch)
    time.sleep(current_app.config["SECRET_CHECK_INTERVAL"] + 1)
    return changed + _hash_again(batch)


def _hash_again(batch: int) -> int:
    changed = 0
    after = 0
    while rows := db.session.execute(
            sa.select(Comment.id, Comment.author_email, Comment.email_hash)
            .where(Comment.id > after, Comment.author_email != "")
            .order_by(Comment.id).limit(batch)).all():
        for comment_id, email, hashed in rows:
            rehashed = email_hash(email)
            if rehashed != hashed:
                db.session.execute(sa.update(Comment).where(Comment.id == comment_id)
                                   .values(email_hash=rehashed))
                changed += 1
        db.session.commit()
        after = rows[-1][0]
    return changed


def canonical_email(email: str) -> str:
    """One spelling for each address that mail delivers to the same place.

    The domain as DNS sees it (IDNA, any case, full-width letters), as intake accepts
    `zoe@bücher.example`, `zoe@xn--bcher-kva.example` and `zoe@BÜCHER.example` alike; the
    local part in lower case and Unicode NFC (an accent typed as one character or as two).
    A `+tag` stays: on many hosts `ada+x@` is another mailbox, and erasing or exporting
    another person's comments is worse than asking for each address.
    """
    local, _, domain = email.strip().rpartition("@")
    local = unicodedata.normalize("NFC", local).lower()
    return f"{local}@{normalise_host(domain) or domain.lower()}"


def email_hash(email: str) -> str:
    """The commenter's identity for trust, limits and erasure: HMAC of the canonical address."""
    return _keyed("email", canonical_email(email))


def canonical_ip(ip: str) -> str:
    """An IP as it is stored: one spelling for one address (lower case, zeros compressed),
    and an IPv4-mapped address as its IPv4 address.

    A site key's `ip` was stored as sent (`2001:DB8:0:0:0:0:0:31`), so a moderator's
    reason quoting `2001:db8::31` kept the address after an erasure and the IP purge,
    which scrub the stored spelling (found by an audit).
    """
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def network_of(ip: str) -> str:
    """The part of an IP that names one person: the address itself for IPv4, the /64 for IPv6.

    An IPv6 host or household is given a whole /64 (RFC 6177), so it can send every request
    from a new address; counted by address, one person was never limited and could flag a
    comment as several readers. An IPv4-mapped address (`::ffff:203.0.113.5`) is its IPv4
    address. Anything that is not an IP ("unknown") is taken as it is.
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address), 64), strict=False))
    return str(address)


def ip_hash(ip: str) -> str:
    """A commenter's IP as the rate limits count it, without the address in their storage."""
    return _keyed("ip", network_of(ip))


def reporter_hash(ip: str) -> str:
    """A reader's identity for counting distinct flags, without keeping the reader's IP."""
    return _keyed("reporter", network_of(ip))


def content_hash(content: str) -> str:
    """Equal for comments that say the same after normalisation (case, spacing, look-alikes)."""
    folded = " ".join(normalise(content).text.split())
    if not folded:
        # Only markup ("<grin>", "<wink>"): the normaliser strips tags for the rules, which
        # left every such comment the same empty text, so a second one from the same
        # address or IP in the thread was a 409. Compare the text itself instead.
        folded = "raw:" + " ".join(content.casefold().split())
    return hashlib.sha256(folded.encode()).hexdigest()
