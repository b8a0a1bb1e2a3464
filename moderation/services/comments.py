"""Comment intake: judging and storing what commenters send (readers' pages: threads.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from moderation.database import read_only, reading, writing
from moderation.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from moderation.extensions import db
from moderation.metrics import count_verdict
from moderation.models import (
    Comment,
    CommentHit,
    IdempotencyRecord,
    Site,
    Status,
    Thread,
    utcnow,
)
from moderation.rules import Submission, Verdict, evaluate
from moderation.schemas.base import LINE_CONTROLS
from moderation.services import identity, trust
from moderation.services.cursors import SCORE_DECIMALS
from moderation.services.identity import content_hash, email_hash
from moderation.services.rules import current_rules
from moderation.services.sites import hold_site
from moderation.services.threads import SITE_AND_THREAD

MESSAGES = {
    Status.APPROVED: "Thank you; your comment is published.",
    Status.PENDING: "Thank you; your comment is awaiting moderation.",
}
BLOCKED_MESSAGE = "Your comment could not be accepted."


@dataclass(frozen=True)
class Signals:
    """What the request itself says about the commenter, beyond the fields."""

    ip: str | None
    user_agent: str | None
    referrer: str | None
    honeypot_filled: bool = False
    # Why the form token was refused (one of rules.model's TOKEN_* causes); None when it was not.
    form_token_problem: str | None = None
    # Sent by the site's own backend with its key: trusted for what it says of the page.
    from_site_key: bool = False


@dataclass(frozen=True)
class Answer:
    """The HTTP answer to a submission: replayed as-is for a retried Idempotency-Key."""

    status_code: int
    body: dict[str, Any]
    comment_id: int | None = None
    # The first answer to this Idempotency-Key, given again: the request stored nothing.
    replayed: bool = False


# Intake, like the thread page (threads.py), uses the tables (SQLAlchemy Core) and
# statements built once at import: they are the busiest routes, and building ORM
# expressions and objects on each request cost more than running the SQL. Both run them
# on the session's connection: Session.execute's ORM dispatch, which Core statements do
# not need, cost about as much as the SQLite call itself (3% of a thread page's
# instructions, by callgrind).
_comments = Comment.__table__
_threads = Thread.__table__
_sites = Site.__table__
_hits = CommentHit.__table__
_idempotency = IdempotencyRecord.__table__

_REPLAY = sa.select(
    _idempotency.c.request_hash, _idempotency.c.response_status, _idempotency.c.response_body
).where(_idempotency.c.site_id == sa.bindparam("site_id"),
        _idempotency.c.key == sa.bindparam("key"))
_PARENT = sa.select(_comments.c.thread_id, _comments.c.status, _comments.c.root_id).where(
    _comments.c.id == sa.bindparam("id")
)
# The write phase reads the parent again, in FOR KEY SHARE as inserting the reply would
# take it, but first: a moderator's spam decision and then the purge (or any deletion)
# since the read phase is then seen (a 422 as before, where the insert broke its foreign
# key: a 500), and a deletion that comes later waits for the reply and finds it.
_PARENT_HELD = _PARENT.with_for_update(read=True, key_share=True)
# The write phase's hold on where the comment goes (PostgreSQL; SQLite has one writer and
# leaves the clauses out). The site in FOR KEY SHARE, as inserting the comment would take
# it, but first: a site deletion (FOR UPDATE) then either waits for the comment, and sees
# it, or has removed the site and its threads before the comment looks. The thread in FOR
# NO KEY UPDATE, which closing it also takes: so a thread closed after the read phase is
# seen closed, and the comments of one thread are stored one after the other, which the
# duplicate check needs (two identical comments would each miss the other's insert).
_THREAD_HELD = (
    sa.select(_threads.c.closed).where(_threads.c.id == sa.bindparam("thread_id"))
    .with_for_update(key_share=True)
)
_INSERT_COMMENT = sa.insert(_comments)
_INSERT_HITS = sa.insert(_hits)
_INSERT_IDEMPOTENCY = sa.insert(_idempotency)


@dataclass(frozen=True)
class Place:
    """Where a comment goes: its site and the thread of its page."""

    site_id: int
    site: str
    thread_id: int
    thread: str
    closed: bool = False
    # The thread lacks a title or a URL yet: this comment may give them (see _name_thread).
    unnamed: bool = False


@dataclass(frozen=True)
class Judged:
    """What the read phase of intake found and decided, ready to be written."""

    place: Place
    parent_id: int | None
    root_id: int | None
    commenter: str
    digest: str
    verdict: Verdict
    reveal_spam: bool
    duplicate_window: int


def submit(fields: dict[str, Any], signals: Signals, idempotency_key: str | None) -> Answer:
    """Judge and store a comment; a retry with the same Idempotency-Key gets the first answer.

    Everything that only reads (lookups, history, the rules) runs before the short write
    transaction that stores the comment, so concurrent intakes wait for each other only
    while they insert.
    """
    request_hash = _request_hash(fields) if idempotency_key else ""
    with reading():
        identity.refuse_intake_if_secret_differs()
        place = _locate(fields)
        replay = _replay(place.site_id, idempotency_key, request_hash) if idempotency_key else None
        if replay is None and place.closed:
            # After the replay: a retry of a comment stored before the page closed gets
            # its first answer, not a 403 that says it was never taken.
            raise Forbidden("Comments are closed on this page.")
        judged = _judge(place, fields, signals) if replay is None else None
    if replay is not None:
        db.session.rollback()  # a retry writes nothing: end the write transaction begun
        return replay
    assert judged is not None
    try:
        answer = _store(judged, fields, signals)
        if idempotency_key:
            db.session.connection().execute(_INSERT_IDEMPOTENCY, {
                "site_id": place.site_id,
                "comment_id": answer.comment_id,
                "key": idempotency_key,
                "request_hash": request_hash,
                "response_status": answer.status_code,
                "response_body": answer.body,
            })
        db.session.commit()
    except (IntegrityError, ServiceError):
        # A concurrent request with the same key committed first (its comment then also
        # reads as our duplicate): its answer is the answer, read without the write lock.
        db.session.rollback()
        replay = None
        if idempotency_key:
            with read_only():
                replay = _replay(place.site_id, idempotency_key, request_hash)
        if replay is None:
            raise
        return replay
    count_verdict(judged.verdict.outcome,
                  [hit.rule for hit in judged.verdict.hits if not hit.shadow])
    return answer


def _request_hash(fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# An Idempotency-Key: 1 to 255 characters and no control character. A NUL is more than
# PostgreSQL stores (a 422 "not valid for storage" there, a key taken on SQLite); the
# draft standard's keys are printable text (C1 controls included: a header's bytes are
# read as Latin-1, so 0x80-0x9F arrive as C1, as in the headers kept with a comment).
IDEMPOTENCY_KEY = re.compile(f"[^{LINE_CONTROLS}]{{1,255}}")


def usable_idempotency_key(key: str) -> bool:
    return IDEMPOTENCY_KEY.fullmatch(key) is not None


_ANSWERED = (
    sa.select(_idempotency.c.id)
    .join(_sites, _sites.c.id == _idempotency.c.site_id)
    .where(_sites.c.slug == sa.bindparam("site"), _idempotency.c.key == sa.bindparam("key"))
)


def answered(site_slug: str, idempotency_key: str) -> bool:
    """Whether a submission to this site with this Idempotency-Key has an answer stored."""
    with read_only():  # before intake's phases: not holding SQLite's write lock
        found = db.session.connection().execute(
            _ANSWERED, {"site": site_slug, "key": idempotency_key}
        ).first()
    return found is not None


def _replay(site_id: int, key: str, request_hash: str) -> Answer | None:
    record = db.session.connection().execute(_REPLAY, {"site_id": site_id, "key": key}).first()
    if record is None:
        return None
    first_hash, status_code, body = record
    if first_hash != request_hash:
        raise Invalid(
            "This Idempotency-Key was used with a different request.",
            {"Idempotency-Key": ["Reused with a different body."]},
        )
    return Answer(status_code, body, body.get("id"), replayed=True)


def _locate(fields: dict[str, Any]) -> Place:
    """The site (404 if unknown) and the page's thread, made on first sight, open or not.

    A new thread is made without a title or URL: readers see the title, so it comes from
    the first comment readers may see (see ``_name_thread``), not from spam.
    """
    slug, key = fields["site"], fields["thread"]
    found = db.session.connection().execute(SITE_AND_THREAD, {"site": slug, "thread": key}).first()
    if found is None:
        raise NotFound(f"There is no site '{slug}'.")
    site_id, thread_id, closed, title, url = found
    if thread_id is None:
        try:
            with writing():
                db.session.add(Thread(site_id=site_id, key=key))
        except IntegrityError:
            pass  # made by a concurrent first comment on the same page
        found = db.session.connection().execute(
            SITE_AND_THREAD, {"site": slug, "thread": key}
        ).first()
        if found is None:  # the insert failed because the site was deleted meanwhile
            raise NotFound(f"There is no site '{slug}'.")
        assert found[1] is not None
        site_id, thread_id, closed, title, url = found
    return Place(site_id=site_id, site=slug, thread_id=thread_id, thread=key, closed=closed,
                 unnamed=title is None or url is None)


def _judge(place: Place, fields: dict[str, Any], signals: Signals) -> Judged:
    """The read phase: the parent, the commenter's history and the verdict."""
    parent_id = fields.get("parent_id")
    root_id = _root_of_parent(place, parent_id) if parent_id is not None else None

    ruleset = current_rules()
    settings = ruleset.settings_for(place.site)
    commenter = email_hash(fields["author_email"])
    submission = Submission(
        site=place.site,
        thread=place.thread,
        author_name=fields["author_name"],
        author_email=fields["author_email"],
        author_url=fields.get("author_url") or "",
        content=fields["content"],
        ip=signals.ip or "",
        user_agent=signals.user_agent or "",
    )
    context = trust.context_for(
        commenter,
        place.site_id,
        honeypot_filled=signals.honeypot_filled,
        form_token_problem=signals.form_token_problem,
    )
    return Judged(
        place=place,
        parent_id=parent_id,
        root_id=root_id,
        commenter=commenter,
        digest=content_hash(fields["content"]),
        verdict=evaluate(ruleset, submission, context),
        reveal_spam=settings.public.reveal_spam,
        duplicate_window=settings.duplicates.window_seconds,
    )


def _blocked_body() -> dict[str, Any]:
    return {"code": 403, "status": "Forbidden", "message": BLOCKED_MESSAGE}


def _root_of_parent(place: Place, parent_id: int, statement: sa.Select[Any] = _PARENT) -> int:
    """The top of the conversation a reply joins; 422 unless it replies to a published comment."""
    parent = db.session.connection().execute(statement, {"id": parent_id}).first()
    published = parent is not None and parent.status is Status.APPROVED
    if not published or parent.thread_id != place.thread_id:
        raise Invalid(
            "The comment replied to is not a published comment of this thread.",
            {"parent_id": ["Must be an approved comment in the same thread."]},
        )
    return parent.root_id or parent_id


def _duplicate_query(by_ip: bool) -> sa.Select[Any]:
    """Whether this thread has the same text, recently, from the same email (or IP), in
    reply to the same comment (or to none), as WordPress's check takes the parent: "Thanks!"
    said to two people who answered is two comments, and was refused as one."""
    same_person = _comments.c.email_hash == sa.bindparam("commenter")
    if by_ip:
        same_person = sa.or_(same_person, _comments.c.ip == sa.bindparam("ip"))
    return sa.select(
        sa.exists().where(
            _comments.c.thread_id == sa.bindparam("thread_id"),
            _comments.c.content_hash == sa.bindparam("digest"),
            _comments.c.parent_id.is_not_distinct_from(
                sa.bindparam("parent_id", type_=_comments.c.parent_id.type)),
            _comments.c.created_at >= sa.bindparam("since", type_=_comments.c.created_at.type),
            _comments.c.status != Status.DELETED,
            # A comment a rule blocked was answered 403, not stored as far as its sender
            # knows: a 409 for sending it again told them it was kept (and refused the
            # same words from others at the IP with a 409, not the rule's 403). It is
            # judged again. One a moderator rejected is a duplicate as any other.
            sa.not_(sa.and_(_comments.c.status == Status.REJECTED,
                            _comments.c.status_reason == "rules")),
            same_person,
        )
    )


_DUPLICATE = {by_ip: _duplicate_query(by_ip) for by_ip in (False, True)}


def _refuse_duplicate(connection: sa.Connection, judged: Judged, ip: str | None) -> None:
    """409 when the same commenter (email or IP) said the same in this thread recently, in
    reply to the same comment.

    Checked in the write transaction, with the thread held (_hold_place), so of two
    identical comments racing in, one wins.
    """
    if judged.duplicate_window <= 0:
        return
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=judged.duplicate_window)
    duplicate = connection.scalar(_DUPLICATE[bool(ip)], {
        "commenter": judged.commenter,
        "ip": ip,
        "thread_id": judged.place.thread_id,
        "digest": judged.digest,
        "parent_id": judged.parent_id,
        "since": since,
    })
    if duplicate:
        raise Conflict("You have already posted this comment.")


_NAME_THREAD = (
    sa.update(_threads)
    .where(_threads.c.id == sa.bindparam("thread_id"))
    .values(title=sa.func.coalesce(_threads.c.title, sa.bindparam("title")),
            url=sa.func.coalesce(_threads.c.url, sa.bindparam("url")))
)


def _name_thread(connection: sa.Connection, place: Place, fields: dict[str, Any],
                 status: Status, signals: Signals) -> None:
    """Give a thread the title and URL this comment came with, where it has none, if it may.

    The thread's title is on its public page, so it comes from a comment readers may see:
    one the rules approve, or any the site's own backend sends with its key. Taken from
    the first submission whatever its verdict, a spammer's comment named a new page for
    every reader; taken from one held for review, a stranger's held comment did, and its
    title stayed after it was marked spam. A held comment keeps what it came with, and
    names the page if a moderator approves it (``name_thread_from``). The title is still
    "kept when first seen", as the contract says, but seen by readers.
    """
    given = fields.get("thread_title"), fields.get("thread_url")
    if not place.unnamed or given == (None, None):
        return
    if status is Status.APPROVED or signals.from_site_key:
        connection.execute(_NAME_THREAD, {"thread_id": place.thread_id, "title": given[0],
                                          "url": given[1]})


def name_thread_from(comment: Comment) -> None:
    """A moderator approved ``comment``: it names its thread, where the thread has no name yet."""
    if comment.thread_title is None and comment.thread_url is None:
        return
    db.session.connection().execute(_NAME_THREAD, {
        "thread_id": comment.thread_id, "title": comment.thread_title,
        "url": comment.thread_url})


def _hold_place(connection: sa.Connection, place: Place) -> None:
    """Lock the comment's site and thread for the write, and check again what the read
    phase found of them: the thread may have closed, or the site gone, since."""
    # On SQLite, which has one writer and no row locks, the thread alone tells: a site's
    # deletion removes its threads in the same transaction (ON DELETE CASCADE).
    site_held = connection.dialect.name == "sqlite" or hold_site(place.site_id)
    closed = connection.scalar(_THREAD_HELD, {"thread_id": place.thread_id}) if site_held else None
    if closed is None:
        raise NotFound(f"There is no site '{place.site}'.")
    if closed:
        raise Forbidden("Comments are closed on this page.")


def _store(judged: Judged, fields: dict[str, Any], signals: Signals) -> Answer:
    """The write phase: refuse a duplicate, insert the comment and its hits; no commit."""
    connection = db.session.connection()
    _hold_place(connection, judged.place)
    if judged.parent_id is not None:
        _root_of_parent(judged.place, judged.parent_id, _PARENT_HELD)
    _refuse_duplicate(connection, judged, signals.ip)
    verdict = judged.verdict
    status = Status(verdict.outcome)
    created_at = utcnow()
    inserted = connection.execute(_INSERT_COMMENT, {
        "site_id": judged.place.site_id,
        "thread_id": judged.place.thread_id,
        "parent_id": judged.parent_id,
        "root_id": judged.root_id,
        "status": status,
        "status_reason": "rules",
        "author_name": fields["author_name"],
        "author_email": fields["author_email"],
        "email_hash": judged.commenter,
        "author_url": fields.get("author_url"),
        "content": fields["content"],
        "content_hash": judged.digest,
        "ip": signals.ip,
        "user_agent": signals.user_agent,
        "referrer": signals.referrer,
        "thread_title": fields.get("thread_title"),
        "thread_url": fields.get("thread_url"),
        # Rounded so that queue cursors carry scores exactly.
        "score": round(verdict.score, SCORE_DECIMALS),
        "hits": [hit.as_dict() for hit in verdict.hits],
        "rules_version": verdict.rules_version,
        "created_at": created_at,
        "updated_at": created_at,
    })
    comment_id = inserted.inserted_primary_key[0]
    _name_thread(connection, judged.place, fields, status, signals)
    rules_hit = sorted({hit.rule for hit in verdict.hits})
    if rules_hit:
        connection.execute(_INSERT_HITS,
                           [{"comment_id": comment_id, "rule": rule} for rule in rules_hit])
    if status is Status.REJECTED:
        return Answer(403, _blocked_body(), comment_id)
    shown = status
    if shown is Status.SPAM and not judged.reveal_spam:
        shown = Status.PENDING  # spammers learn nothing from the answer
    body = {
        "id": comment_id,
        "site": judged.place.site,
        "thread": judged.place.thread,
        "parent_id": judged.parent_id,
        "status": shown.value,
        "created_at": created_at.isoformat(),
        "message": MESSAGES.get(shown, "Thank you; your comment was received."),
    }
    return Answer(201, body, comment_id)
