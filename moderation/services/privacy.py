"""A commenter's rights: access (export) and erasure, found by email address."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from moderation.database import busy_timeout
from moderation.extensions import db
from moderation.models import (
    ClassifierStep,
    Comment,
    Decision,
    IdempotencyRecord,
    Site,
    Status,
    Thread,
    utcnow,
)
from moderation.services import learning, review
from moderation.services.identity import email_hash, require_own_secret
from moderation.services.sites import hold_site

log = logging.getLogger(__name__)

ANONYMOUS = "Anonymous"
# What an erased comment's hits say in place of what they matched: a hit quotes the text
# it matched and explains itself with it, which may be the address, the IP, the name, the
# URL or the words of the comment. Which rules hit, and their scores, stay.
ERASED = "(erased)"
# What a decision's reason column holds.
REASON_LENGTH = Decision.__table__.c.reason.type.length


def redacted_hits(hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**hit, "match": ERASED, "explanation": ERASED} for hit in hits or []]


def scrubbed(text: str, traces: Iterable[str | None], limit: int,
             replacement: str = ERASED) -> str:
    """The text with each trace (an address, IP, name...) in it, in any case, as ERASED
    (or ``replacement``); a name is a whole word, so the name "Ann" leaves "Annual" alone.

    ERASED is longer than a short name ("Al"), so the text can grow: past ``limit``
    characters its end is cut (marked "…"), as the column holds no more and an erasure
    must never fail on what a moderator once wrote.
    """
    for trace in sorted({t for t in traces if t}, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(trace)}(?!\w)", lambda _: replacement, text,
                      flags=re.IGNORECASE)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# What names the commenter, as erasure scrubs it from a moderator's reason.
_TRACES = (Comment.author_email, Comment.author_name, Comment.author_url, Comment.ip,
           Comment.user_agent, Comment.referrer)


def forget_commenters_in_reasons(comments: sa.Select) -> None:
    """Before the comments ``comments`` selects (their ids) are deleted: what their
    decisions' reasons say of each commenter goes, as an erasure would take it.

    The decisions stay in the audit log, linked to no comment (ON DELETE SET NULL), where
    no erasure could find them by the address any more: a reason such as "spam again from
    zoe@example.org" would have outlived the comment, and the commenter's right to erasure.
    """
    decisions = db.session.execute(
        sa.select(Decision, *_TRACES)
        .join(Comment, Comment.id == Decision.comment_id)
        .where(Decision.comment_id.in_(comments), Decision.reason != "")
    ).all()
    for decision, *traces in decisions:
        decision.reason = scrubbed(decision.reason, traces, REASON_LENGTH)
    db.session.flush()


def wipe_the_write_ahead_log() -> None:
    """On SQLite: copy the write-ahead log into the database and empty it, after an erasure
    or a purge has committed.

    The log keeps whole pages as they were before each change, and SQLite reuses it from
    its start without shrinking it: a quiet site's log held an erased commenter's address,
    IP and words, plain, for as long as it took later writes to cover them (found by an
    audit). The database's own freed space is zeroed as it is freed (`secure_delete`,
    moderation/database.py). A reader still on an older snapshot keeps the log from being
    emptied: then the next erasure, purge or SQLite's own checkpoint does it.
    """
    if db.engine.dialect.name != "sqlite":
        return  # PostgreSQL: dead rows go at the next VACUUM (autovacuum), see the README
    try:
        busy = _checkpoint()
    except (sqlite3.Error, SQLAlchemyError) as error:
        # After the erasure or purge has committed: its answer stands (a full disk made
        # the erasure's answer a 500 that said it had failed; found by fault injection).
        log.warning("The write-ahead log could not be emptied (%s); the next erasure, purge "
                    "or checkpoint empties it.", str(error).splitlines()[0][:200])
        return
    if busy:
        log.warning("The write-ahead log could not be emptied (a reader is busy); the next "
                    "erasure, purge or checkpoint empties it.")


# Seconds the checkpoint waits for readers and writers. It holds up new writers while
# it waits: with the connections' own 15 s, a long read during an erasure stalled every
# intake for 15 s, and a big erasure could pass the worker timeout after its commit (found
# by a review). A checkpoint that cannot run at once is left to the next one.
CHECKPOINT_WAIT = 0.2


def _checkpoint() -> bool:
    """SQLite's TRUNCATE checkpoint, outside any transaction; whether a reader or a writer
    kept it from emptying the log."""
    connection = db.engine.raw_connection()
    try:
        with busy_timeout(connection, CHECKPOINT_WAIT):
            busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        connection.close()
    return bool(busy)


def _by_commenter(email: str) -> sa.Select:
    # The HMAC finds every comment however the address was capitalised when posted.
    return sa.select(Comment).where(Comment.email_hash == email_hash(email)).order_by(Comment.id)


def _ids_by_commenter(email: str) -> sa.Select:
    """Their comments' ids, as a subquery: an IN list binds a parameter per id, and
    PostgreSQL takes at most 65,535 in one statement (a spam bot's 70,000 comments)."""
    return _by_commenter(email).with_only_columns(Comment.id).order_by(None)


def export(email: str) -> dict[str, Any]:
    """Everything stored about the commenter with this address: each comment as stored
    (with the verdict's score and hits), the decisions taken on it and the flags on it."""
    require_own_secret()  # else another secret's hashes: an empty export, said to be whole
    rows = db.session.execute(
        _by_commenter(email)
        .add_columns(Site.slug, Thread.key)
        .join(Site, Site.id == Comment.site_id)
        .join(Thread, Thread.id == Comment.thread_id)
    ).all()
    # What else is kept with each comment: the Idempotency-Keys it was posted with, and
    # the tokens the classifier learned from it (a JSON list, as its step keeps them).
    ids = _ids_by_commenter(email)
    keys_of: dict[int, list[dict[str, Any]]] = {}
    for comment_id, key, created_at in db.session.execute(
            sa.select(IdempotencyRecord.comment_id, IdempotencyRecord.key,
                      IdempotencyRecord.created_at)
            .where(IdempotencyRecord.comment_id.in_(ids)).order_by(IdempotencyRecord.id)):
        keys_of.setdefault(comment_id, []).append({"key": key, "created_at": created_at})
    tokens_of = dict(db.session.execute(
        sa.select(ClassifierStep.comment_id, ClassifierStep.tokens)
        .where(ClassifierStep.comment_id.in_(ids))).all())
    comments = [
        {
            "id": comment.id,
            "site": slug,
            "thread": thread,
            "parent_id": comment.parent_id,
            "root_id": comment.root_id,
            "status": comment.status.value,
            "status_reason": comment.status_reason,
            "author_name": comment.author_name,
            "author_email": comment.author_email,
            "email_hash": comment.email_hash,
            "author_url": comment.author_url,
            "content": comment.content,
            "content_hash": comment.content_hash,
            "ip": comment.ip,
            "user_agent": comment.user_agent,
            "referrer": comment.referrer,
            # As the moderator's view names them: `thread_title` there is the page's own.
            "sent_thread_title": comment.thread_title,
            "sent_thread_url": comment.thread_url,
            "score": comment.score,
            "hits": comment.hits,
            "rules_version": comment.rules_version,
            "learned_as": comment.learned_as,
            "learned_tokens": json.loads(tokens_of[comment.id])
            if tokens_of.get(comment.id) else [],
            "flag_count": comment.flag_count,
            "version": comment.version,
            "idempotency_keys": keys_of.get(comment.id, []),
            "created_at": comment.created_at,
            "updated_at": comment.updated_at,
        }
        for comment, slug, thread in rows
    ]
    # The same flags and history a moderator sees (the export lists them as "decisions").
    review.add_flags_and_history(comments)
    return {"email": email, "comments": comments}


def erase(actor: str, email: str, delete_content: bool) -> int:
    """Anonymise every comment by this address; the audit log records it, by ``actor``,
    without the email."""
    require_own_secret()  # else another secret's hashes: "erased 0", and the comments stay
    # The sites first, as a decision holds its site before its comment: a site's deletion
    # holds the site, then deletes its comments, so the other order could deadlock.
    for site_id in db.session.scalars(
            sa.select(Comment.site_id).where(Comment.email_hash == email_hash(email))
            .distinct().order_by(Comment.site_id)):
        hold_site(site_id)
    # Locked, as a decision locks its comment: both change what the comment has taught.
    comments = list(db.session.scalars(_by_commenter(email).with_for_update()))
    # An Idempotency-Key's record keeps a hash of the whole request (address, name, IP,
    # text), which would confirm a guess at who wrote the comment. Deleted by the address's
    # hash while the comments still carry it.
    db.session.execute(sa.delete(IdempotencyRecord).where(
        IdempotencyRecord.comment_id.in_(_ids_by_commenter(email))))
    # A moderator's reason may name the commenter ("spam from zoe@..., 192.0.2.7"), by any
    # of what any of their comments holds: the IP of one in a reason on another.
    traces = tuple(dict.fromkeys(
        trace for comment in comments
        for trace in (email, *(getattr(comment, column.key) for column in _TRACES)) if trace))
    # The reasons of every decision on those comments, in one query: a query per comment
    # flushed the changes to the one before it, a statement each, and the erasure of a
    # spam bot's 3,000 comments took 5.6 s, its 70,000 two and a half minutes.
    for decision in db.session.scalars(
        sa.select(Decision).where(Decision.comment_id.in_(_ids_by_commenter(email)),
                                  Decision.reason != "")
    ):
        decision.reason = scrubbed(decision.reason, traces, REASON_LENGTH)
    audit: list[dict[str, Any]] = []
    for comment in comments:
        old_status = comment.status
        # What the classifier learned from this comment is taken back while its text is
        # still here, and taught again below from what the erasure keeps.
        taught = comment.learned_as
        learning.teach(comment, None)
        comment.author_name = ANONYMOUS
        comment.author_email = ""
        comment.email_hash = ""
        comment.author_url = None
        comment.ip = None
        comment.user_agent = None
        comment.referrer = None
        comment.hits = redacted_hits(comment.hits)
        if delete_content:
            comment.content = ""
            comment.content_hash = ""
            # Text the commenter sent too; approving the comment can no longer name a page.
            comment.thread_title = None
            comment.thread_url = None
            comment.status = Status.DELETED
        if not delete_content:
            learning.teach(comment, taught)
        else:
            # Only a deleted comment's reason says so: a published or flagged one keeps its
            # own, or a flagged comment left the queue's `flagged` list on erasure.
            comment.status_reason = "erased"
        comment.version += 1
        comment.updated_at = utcnow()
        audit.append({
            "site_id": comment.site_id,
            "comment_id": comment.id,
            "actor": actor,
            "action": "erase",
            "old_status": old_status.value,
            "new_status": comment.status.value,
            "reason": "erasure requested by the commenter"
            + (" (content deleted)" if delete_content else ""),
        })
    if audit:
        # One statement for all the rows (objects added to the session were one INSERT each).
        db.session.execute(sa.insert(Decision), audit)
    db.session.commit()
    wipe_the_write_ahead_log()
    return len(comments)
