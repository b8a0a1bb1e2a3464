"""Retention: drop old spam and rejected comments, and coarsen old IP addresses."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from moderation.extensions import db
from moderation.models import Comment, Decision, Flag, IdempotencyRecord, Status, utcnow
from moderation.services import privacy

# Small batches keep each transaction short, so purging beside live traffic never holds
# the write lock (SQLite) or many row locks (PostgreSQL) for long.
BATCH = 500


@dataclass(frozen=True)
class PurgeReport:
    deleted: int
    ips_truncated: int
    idempotency_keys_forgotten: int
    flag_reporters_forgotten: int = 0


# What a flag's reporter hash becomes once its reader is forgotten (then its id follows,
# as the hash is one of a comment's unique pair): no HMAC output starts so.
FORGOTTEN_READER = "forgotten:"


def truncate_ip(ip: str) -> str:
    """Keep the network, drop the host: IPv4 to /24, IPv6 to /48.

    An IPv4-mapped address (::ffff:203.0.113.77, from a dual-stack socket) is the IPv4 one,
    as the ip rules take it: to /24 (::ffff:203.0.113.0), where /48 would leave only `::`.
    """
    address = ipaddress.ip_address(ip)
    if address.version == 6 and address.ipv4_mapped is not None:
        return f"::ffff:{truncate_ip(str(address.ipv4_mapped))}"
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def purge(spam_days: int = 30, ip_days: int = 90) -> PurgeReport:
    """Delete spam/rejected comments older than spam_days; truncate IPs older than ip_days,
    and forget the Idempotency-Keys of that age."""
    now = utcnow()
    reply = aliased(Comment)
    old_spam = (
        Comment.status.in_((Status.SPAM, Status.REJECTED)),
        Comment.created_at < now - dt.timedelta(days=spam_days),
    )
    deletable = (
        sa.select(Comment.id)
        .where(*old_spam)
        # A comment that others replied to stays, so no reply loses its parent.
        .where(~sa.exists().where(reply.parent_id == Comment.id))
        .limit(BATCH)
    )
    deleted = 0
    while ids := list(db.session.scalars(deletable)):
        # Still spam: a moderator may have approved one since it was chosen (PostgreSQL
        # checks the condition again on a row that changed under it, and the lock keeps it
        # so until the delete).
        locked = sa.select(Comment.id).where(Comment.id.in_(ids), *old_spam)
        ids = list(db.session.scalars(locked.order_by(Comment.id).with_for_update()))
        # Still without replies: a reply stored since the choice (to a comment approved
        # then) held its parent until it committed, and this statement, begun after the
        # lock was granted, sees it. Later replies wait for the delete, and find no parent.
        doomed = sa.select(Comment.id).where(
            Comment.id.in_(ids), ~sa.exists().where(reply.parent_id == Comment.id))
        ids = list(db.session.scalars(doomed))
        privacy.forget_commenters_in_reasons(doomed)  # the rows just locked
        gone = db.session.execute(sa.delete(Comment).where(Comment.id.in_(ids)))
        db.session.commit()
        deleted += gone.rowcount

    truncated = 0
    after = 0
    cutoff = now - dt.timedelta(days=ip_days)
    while True:
        rows = db.session.execute(
            sa.select(Comment.id, Comment.ip, Comment.hits)
            .where(Comment.ip.is_not(None), Comment.created_at < cutoff, Comment.id > after)
            .order_by(Comment.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        coarsened: dict[int, tuple[str, str | None]] = {}
        for comment_id, ip, hits in rows:
            try:
                coarse = truncate_ip(ip)
            except ValueError:
                coarse = None
            if coarse != ip:
                # Only if the IP is still the one read: an erasure that cleared it (and
                # redacted the hits) meanwhile must not have the old hits written back.
                changed = db.session.execute(
                    sa.update(Comment).where(Comment.id == comment_id, Comment.ip == ip)
                    .values(ip=coarse, hits=_with_ip_replaced(hits, ip, coarse))
                )
                truncated += changed.rowcount
                if changed.rowcount:
                    coarsened[comment_id] = (ip, coarse)
        _coarsen_reasons(coarsened)
        db.session.commit()
        after = rows[-1][0]

    # A record keeps the SHA-256 of its whole request, with the IP a site key passed: the
    # rest of the request is still stored, so a /24 truncated above could be undone by
    # hashing each of its 256 addresses. Any retry is long over by then.
    expired = (
        sa.select(IdempotencyRecord.id)
        .where(IdempotencyRecord.created_at < cutoff)
        .order_by(IdempotencyRecord.id)
        .limit(BATCH)
    )
    forgotten = 0
    while ids := list(db.session.scalars(expired)):
        db.session.execute(sa.delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(ids)))
        db.session.commit()
        forgotten += len(ids)
    # A flag keeps a keyed hash of its reader's IP (of the /64 for IPv6): with the key,
    # hashing each of the 2**32 IPv4 addresses finds the reader's again, which the
    # truncation above is there to end. At that age the flag forgets its reader: it still
    # counts and shows, but that reader may flag the comment once more.
    remembered = (
        sa.select(Flag.id)
        .where(Flag.created_at < cutoff, ~Flag.reporter_hash.startswith(FORGOTTEN_READER))
        .order_by(Flag.id)
        .limit(BATCH)
    )
    readers = 0
    while ids := list(db.session.scalars(remembered)):
        db.session.execute(sa.update(Flag).where(Flag.id.in_(ids)).values(
            reporter_hash=FORGOTTEN_READER + sa.cast(Flag.id, sa.String)))
        db.session.commit()
        readers += len(ids)
    # The last look-up above began a transaction (holding SQLite's write lock) that found
    # nothing: ended, so the log can be emptied of the pages as they were before the purge.
    db.session.commit()
    privacy.wipe_the_write_ahead_log()
    return PurgeReport(deleted=deleted, ips_truncated=truncated,
                       idempotency_keys_forgotten=forgotten, flag_reporters_forgotten=readers)


def _coarsen_reasons(coarsened: dict[int, tuple[str, str | None]]) -> None:
    """The full IPs quoted in moderators' reasons on those comments ("a regular at
    203.0.113.77"), coarsened as the comments' own: left, they outlived the retention."""
    if not coarsened:
        return
    decisions = db.session.scalars(sa.select(Decision).where(
        Decision.comment_id.in_(list(coarsened)), Decision.reason != ""))
    for decision in decisions:
        ip, coarse = coarsened[decision.comment_id]
        decision.reason = privacy.scrubbed(decision.reason, [ip], privacy.REASON_LENGTH,
                                           replacement=coarse or "(removed)")
    db.session.flush()


def _with_ip_replaced(hits: list[dict] | None, ip: str, coarse: str | None) -> list[dict]:
    """The hits with the full address replaced: an IP rule's hit quotes the address it
    matched, in its match and its explanation."""
    shown = coarse or "(removed)"
    return [{key: value.replace(ip, shown) if isinstance(value, str) and key in (
        "match", "explanation") else value for key, value in hit.items()}
            for hit in hits or []]
