"""Comment intake and the public thread: what commenters and readers touch."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from moderation.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from moderation.extensions import db
from moderation.metrics import count_verdict
from moderation.models import Comment, CommentHit, IdempotencyRecord, Site, Status, Thread
from moderation.render import content_html
from moderation.rules import Submission, Verdict, evaluate
from moderation.services import trust
from moderation.services.cursors import SCORE_DECIMALS, decode_id, encode_id
from moderation.services.identity import content_hash, email_hash
from moderation.services.rules import current_rules
from moderation.services.sites import get_site

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
    form_too_fast: bool = False


@dataclass(frozen=True)
class Answer:
    """The HTTP answer to a submission: replayed as-is for a retried Idempotency-Key."""

    status_code: int
    body: dict[str, Any]
    comment_id: int | None = None


def submit(fields: dict[str, Any], signals: Signals, idempotency_key: str | None) -> Answer:
    """Judge and store a comment; a retry with the same Idempotency-Key gets the first answer."""
    site = get_site(fields["site"])
    request_hash = _request_hash(fields)
    if idempotency_key:
        replay = _replay(site, idempotency_key, request_hash)
        if replay is not None:
            return replay

    try:
        answer = _judge_and_store(site, fields, signals)
    except ServiceError:
        # A concurrent request with the same key may have committed since we looked (its
        # comment then reads as our duplicate): its answer is the answer.
        db.session.rollback()
        replay = _replay(site, idempotency_key, request_hash) if idempotency_key else None
        if replay is None:
            raise
        return replay

    if idempotency_key:
        db.session.add(
            IdempotencyRecord(
                site_id=site.id,
                key=idempotency_key,
                request_hash=request_hash,
                response_status=answer.status_code,
                response_body=answer.body,
            )
        )
    try:
        db.session.commit()
    except IntegrityError:
        # Another request with the same key committed first: its answer is the answer.
        db.session.rollback()
        replay = _replay(site, idempotency_key, request_hash) if idempotency_key else None
        if replay is None:
            raise
        return replay
    return answer


def _request_hash(fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(site: Site, key: str, request_hash: str) -> Answer | None:
    record = db.session.scalar(
        sa.select(IdempotencyRecord).where(
            IdempotencyRecord.site_id == site.id, IdempotencyRecord.key == key
        )
    )
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise Invalid(
            "This Idempotency-Key was used with a different request.",
            {"Idempotency-Key": ["Reused with a different body."]},
        )
    return Answer(record.response_status, record.response_body, record.response_body.get("id"))


def _judge_and_store(site: Site, fields: dict[str, Any], signals: Signals) -> Answer:
    thread = _thread_for(site, fields)
    if thread.closed:
        raise Forbidden("Comments are closed on this page.")
    parent = _parent(thread, fields.get("parent_id"))

    ruleset = current_rules()
    settings = ruleset.settings_for(site.slug)
    commenter = email_hash(fields["author_email"])
    digest = content_hash(fields["content"])
    _refuse_duplicate(thread, digest, commenter, signals.ip, settings.duplicates.window_seconds)

    submission = Submission(
        site=site.slug,
        thread=thread.key,
        author_name=fields["author_name"],
        author_email=fields["author_email"],
        author_url=fields.get("author_url") or "",
        content=fields["content"],
        ip=signals.ip or "",
        user_agent=signals.user_agent or "",
    )
    context = trust.context_for(
        commenter,
        honeypot_filled=signals.honeypot_filled,
        form_too_fast=signals.form_too_fast,
    )
    verdict = evaluate(ruleset, submission, context)
    comment = _store(site, thread, parent, fields, signals, commenter, digest, verdict)
    count_verdict(verdict.outcome, [hit.rule for hit in verdict.hits if not hit.shadow])

    if comment.status is Status.REJECTED:
        return Answer(403, _blocked_body(), comment.id)
    shown = comment.status
    if shown is Status.SPAM and not settings.public.reveal_spam:
        shown = Status.PENDING  # spammers learn nothing from the answer
    body = {
        "id": comment.id,
        "site": site.slug,
        "thread": thread.key,
        "parent_id": comment.parent_id,
        "status": shown.value,
        "created_at": comment.created_at.isoformat(),
        "message": MESSAGES.get(shown, "Thank you; your comment was received."),
    }
    return Answer(201, body, comment.id)


def _blocked_body() -> dict[str, Any]:
    return {"code": 403, "status": "Forbidden", "message": BLOCKED_MESSAGE}


def _thread_for(site: Site, fields: dict[str, Any]) -> Thread:
    """The thread of this page, made on first sight with the title and URL given then."""
    key = fields["thread"]
    query = sa.select(Thread).where(Thread.site_id == site.id, Thread.key == key)
    thread = db.session.scalar(query)
    if thread is not None:
        return thread
    db.session.add(
        Thread(site_id=site.id, key=key, title=fields.get("thread_title"),
               url=fields.get("thread_url"))
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # made by a concurrent first comment on the same page
    thread = db.session.scalar(query)
    assert thread is not None
    return thread


def _parent(thread: Thread, parent_id: int | None) -> Comment | None:
    if parent_id is None:
        return None
    parent = db.session.get(Comment, parent_id)
    if parent is None or parent.thread_id != thread.id or parent.status is not Status.APPROVED:
        raise Invalid(
            "The comment replied to is not a published comment of this thread.",
            {"parent_id": ["Must be an approved comment in the same thread."]},
        )
    return parent


def _refuse_duplicate(
    thread: Thread, digest: str, commenter: str, ip: str | None, window_seconds: int
) -> None:
    """409 when the same commenter (email or IP) said the same in this thread recently."""
    if window_seconds <= 0:
        return
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=window_seconds)
    same_person = Comment.email_hash == commenter
    if ip:
        same_person = sa.or_(same_person, Comment.ip == ip)
    duplicate = db.session.scalar(
        sa.select(
            sa.exists().where(
                Comment.thread_id == thread.id,
                Comment.content_hash == digest,
                Comment.created_at >= since,
                Comment.status != Status.DELETED,
                same_person,
            )
        )
    )
    if duplicate:
        raise Conflict("You have already posted this comment.")


def _store(
    site: Site,
    thread: Thread,
    parent: Comment | None,
    fields: dict[str, Any],
    signals: Signals,
    commenter: str,
    digest: str,
    verdict: Verdict,
) -> Comment:
    comment = Comment(
        site_id=site.id,
        thread_id=thread.id,
        parent_id=parent.id if parent else None,
        root_id=(parent.root_id or parent.id) if parent else None,
        status=Status(verdict.outcome),
        status_reason="rules",
        author_name=fields["author_name"],
        author_email=fields["author_email"],
        email_hash=commenter,
        author_url=fields.get("author_url"),
        content=fields["content"],
        content_hash=digest,
        ip=signals.ip,
        user_agent=signals.user_agent,
        referrer=signals.referrer,
        # Rounded so that queue cursors carry scores exactly.
        score=round(verdict.score, SCORE_DECIMALS),
        hits=[hit.as_dict() for hit in verdict.hits],
        rules_version=verdict.rules_version,
    )
    db.session.add(comment)
    db.session.flush()
    for rule in sorted({hit.rule for hit in verdict.hits}):
        db.session.add(CommentHit(comment_id=comment.id, rule=rule))
    return comment


def thread_page(site_slug: str, thread_key: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """One page of a thread's approved top-level comments, oldest first, replies nested."""
    site = get_site(site_slug)
    after = decode_id(cursor) if cursor else None
    thread = db.session.scalar(
        sa.select(Thread).where(Thread.site_id == site.id, Thread.key == thread_key)
    )
    page: dict[str, Any] = {
        "site": site.slug,
        "thread": thread_key,
        "title": thread.title if thread else None,
        "closed": thread.closed if thread else False,
        "items": [],
        "next_cursor": None,
    }
    if thread is None:
        return page
    query = (
        sa.select(Comment)
        .where(
            Comment.thread_id == thread.id,
            Comment.status == Status.APPROVED,
            Comment.parent_id.is_(None),
        )
        .order_by(Comment.id)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(Comment.id > after)
    roots = list(db.session.scalars(query))
    if len(roots) > limit:
        roots = roots[:limit]
        page["next_cursor"] = encode_id(roots[-1].id)
    page["items"] = _nest(thread, roots)
    return page


def _nest(thread: Thread, roots: list[Comment]) -> list[dict[str, Any]]:
    """Hang each approved reply under its parent; a reply whose parent is hidden is hidden."""
    if not roots:
        return []
    replies = db.session.scalars(
        sa.select(Comment)
        .where(
            Comment.thread_id == thread.id,
            Comment.status == Status.APPROVED,
            Comment.root_id.in_([root.id for root in roots]),
        )
        .order_by(Comment.id)
    )
    nodes: dict[int, dict[str, Any]] = {}
    items = []
    for comment in [*roots, *replies]:
        node = {"comment": comment, "replies": []}
        nodes[comment.id] = node
        if comment.parent_id is None:
            items.append(node)
        elif comment.parent_id in nodes:
            nodes[comment.parent_id]["replies"].append(node)
    return [_public(node) for node in items]


def _public(node: dict[str, Any]) -> dict[str, Any]:
    comment: Comment = node["comment"]
    return {
        "id": comment.id,
        "parent_id": comment.parent_id,
        "author_name": comment.author_name,
        "author_url": comment.author_url,
        "content": comment.content,
        "content_html": content_html(comment.content),
        "created_at": comment.created_at,
        "replies": [_public(child) for child in node["replies"]],
    }


def approved_comment(comment_id: int) -> Comment:
    """A published comment, or 404 (readers never learn that a hidden comment exists)."""
    comment = db.session.get(Comment, comment_id)
    if comment is None or comment.status is not Status.APPROVED:
        raise NotFound(f"There is no published comment {comment_id}.")
    return comment
