"""The moderation queue, comment detail, decisions and the audit log."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, InvalidRequestError
from werkzeug.http import parse_etags

from moderation.auth import Caller, require_site
from moderation.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
)
from moderation.extensions import db
from moderation.models import (
    ApiKey,
    Comment,
    CommentHit,
    Decision,
    Flag,
    Role,
    Site,
    Status,
    Thread,
    utcnow,
)
from moderation.render import content_html
from moderation.services import comments, flags, learning
from moderation.services.cursors import (
    Listing,
    decode_id,
    decode_queue,
    encode_id,
    encode_queue,
)
from moderation.services.sites import get_site, get_site_id, hold_site

ACTION_STATUS = {
    "approve": Status.APPROVED,
    "spam": Status.SPAM,
    "reject": Status.REJECTED,
    "delete": Status.DELETED,
}
# The status_reason of a status that a moderator's decision set.
DECIDED = "moderator"


@dataclass(frozen=True)
class QueueFilter:
    site: str | None
    status: str
    thread: str | None
    rule: str | None
    q: str | None
    sort: str
    limit: int
    cursor: str | None

    @property
    def listing(self) -> Listing:
        """What a cursor of this queue pages: the sort and every filter, not the page size.

        The search is case-insensitive, so `q=NOTE` and `q=note` are the same listing: a
        moderator who retypes the search in other case keeps their place.
        """
        q = self.q.lower() if self.q is not None else None
        return ("queue", self.site, self.status, self.thread, self.rule, q, self.sort)


def _scope(caller: Caller, site_slug: str | None) -> list[int] | None:
    """Site ids the caller may see in lists: None means every site (admin, no filter)."""
    if site_slug is not None:
        site_id = get_site_id(site_slug)
        require_site(caller, site_id)
        return [site_id]
    if caller.role is Role.ADMIN:
        return None
    return sorted(caller.site_ids)


_comments = Comment.__table__
_sites = Site.__table__
_threads = Thread.__table__
# A queue item's columns: the comment's, and the site and thread it names (one query).
_QUEUE_COLUMNS = sa.select(
    _comments,
    _sites.c.slug.label("site_slug"),
    _threads.c.key.label("thread_key"),
    _threads.c.title.label("page_title"),  # the comment's own thread_title is what it sent
).select_from(
    _comments.join(_sites, _sites.c.id == _comments.c.site_id).join(
        _threads, _threads.c.id == _comments.c.thread_id
    )
)


def queue(caller: Caller, wanted: QueueFilter) -> dict[str, Any]:
    """One page of the queue, paged by key so that a deep page costs what the first does.

    Read with SQLAlchemy Core and returned JSON-ready (the route sends it as built):
    loading 50 ORM objects and dumping them through marshmallow took a quarter of the
    page's time at 1M comments (9.1 -> 6.9 ms p50, bench/scale_pg.py).
    """
    site_ids = _scope(caller, wanted.site)
    query = _QUEUE_COLUMNS
    if site_ids is not None:
        query = query.where(_comments.c.site_id.in_(site_ids))
    if wanted.status == "flagged":
        query = query.where(_comments.c.status == Status.PENDING,
                            _comments.c.status_reason == "flagged")
    else:
        query = query.where(_comments.c.status == Status(wanted.status))
    if wanted.thread is not None:
        query = query.where(_threads.c.key == wanted.thread)
    if wanted.rule is not None:
        query = query.where(
            sa.exists().where(CommentHit.comment_id == _comments.c.id,
                              CommentHit.rule == wanted.rule)
        )
    if wanted.q is not None:
        pattern = "%" + wanted.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            sa.or_(
                _comments.c.content.ilike(pattern, escape="\\"),
                _comments.c.author_name.ilike(pattern, escape="\\"),
            )
        )
    rows = db.session.execute(_order(query, wanted).limit(wanted.limit + 1)).all()
    next_cursor = None
    if len(rows) > wanted.limit:
        rows = rows[: wanted.limit]
        next_cursor = encode_queue(rows[-1].score, rows[-1].id, wanted.listing)
    items = [_summary(row, row.site_slug, row.thread_key, row.page_title) for row in rows]
    add_flags_and_history(items)
    return {"items": [_json_ready(item) for item in items], "next_cursor": next_cursor}


def _order(query: sa.Select, wanted: QueueFilter) -> sa.Select:
    position = decode_queue(wanted.cursor, wanted.listing) if wanted.cursor else None
    score, comment_id = _comments.c.score, _comments.c.id
    if wanted.sort == "score":
        if position:
            at_score, after = position
            query = query.where(
                sa.or_(score < at_score, sa.and_(score == at_score, comment_id < after))
            )
        return query.order_by(score.desc(), comment_id.desc())
    newest = wanted.sort == "newest"
    if position:
        after = position[1]
        query = query.where(comment_id < after if newest else comment_id > after)
    return query.order_by(comment_id.desc() if newest else comment_id)


def comment_for(caller: Caller, comment_id: int) -> Comment:
    """A comment the caller may moderate, or 404/403."""
    comment = db.session.get(Comment, comment_id)
    if comment is None:
        raise NotFound(f"There is no comment {comment_id}.")
    if not caller.may_act_on(comment.site_id):
        raise Forbidden("This key may not act on that site.")
    return comment


def detail_of(comment: Comment) -> dict[str, Any]:
    """Everything a moderator sees about a comment, its flags and history included."""
    detail = _summary(comment, comment.site.slug, comment.thread.key, comment.thread.title)
    add_flags_and_history([detail])
    return detail


def _summary(comment: Any, site: str, thread_key: str, thread_title: str | None) -> dict[str, Any]:
    """A comment as the queue lists it; ``comment`` is a Comment or a row of its columns."""
    return {
        "id": comment.id,
        "site": site,
        "thread": thread_key,
        "thread_title": thread_title,
        "sent_thread_title": comment.thread_title,
        "sent_thread_url": comment.thread_url,
        "parent_id": comment.parent_id,
        "status": comment.status.value,
        "status_reason": comment.status_reason,
        "author_name": comment.author_name,
        "author_email": comment.author_email,
        "author_url": comment.author_url,
        "content": comment.content,
        "content_html": content_html(comment.content),
        "ip": comment.ip,
        "user_agent": comment.user_agent,
        "referrer": comment.referrer,
        "score": comment.score,
        "hits": comment.hits,
        "rules_version": comment.rules_version,
        "flag_count": comment.flag_count,
        "version": comment.version,
        "created_at": comment.created_at,
        "updated_at": comment.updated_at,
    }


def _decision_of(decision: Any, site_slug: str | None) -> dict[str, Any]:
    """A decision as the audit log shows it; ``decision`` is a Decision or a row of its columns."""
    return {
        "id": decision.id,
        "comment_id": decision.comment_id,
        "site": site_slug,
        "thread": decision.thread,
        "actor": decision.actor,
        "action": decision.action,
        "old_status": decision.old_status,
        "new_status": decision.new_status,
        "reason": decision.reason,
        "created_at": decision.created_at,
    }


_flags = Flag.__table__
_decisions = Decision.__table__


# Ids bound in one statement's IN list, at most: well under PostgreSQL's 65,535 parameters.
IDS_PER_STATEMENT = 10_000


def add_flags_and_history(details: list[dict[str, Any]]) -> None:
    """Give each comment detail its flags and history, oldest first.

    Two queries for all the details, whatever their number: a queue page must not cost a
    query per comment. Both are ranges of an index that leads with comment_id.
    """
    by_id = {detail["id"]: detail for detail in details}
    for detail in details:
        detail["flags"], detail["history"] = [], []
    ids = list(by_id)
    # In slices: each id is a bound parameter, and PostgreSQL takes at most 65,535 in one
    # statement, which an export of one prolific address (a spam bot's) can pass.
    for start in range(0, len(ids), IDS_PER_STATEMENT):
        batch = ids[start:start + IDS_PER_STATEMENT]
        flags = db.session.execute(
            sa.select(_flags.c.comment_id, _flags.c.reason, _flags.c.created_at)
            .where(_flags.c.comment_id.in_(batch))
            .order_by(_flags.c.comment_id, _flags.c.id)
        )
        for flag in flags:
            by_id[flag.comment_id]["flags"].append(
                {"reason": flag.reason, "created_at": flag.created_at}
            )
        decisions = db.session.execute(
            sa.select(_decisions)
            .where(_decisions.c.comment_id.in_(batch))
            .order_by(_decisions.c.comment_id, _decisions.c.id)
        )
        for decision in decisions:
            detail = by_id[decision.comment_id]
            detail["history"].append(_decision_of(decision, detail["site"]))


def _json_ready(detail: dict[str, Any]) -> dict[str, Any]:
    """A detail's times as CommentDetailSchema writes them, for answers sent without it."""
    for entry in (detail, *detail["flags"], *detail["history"]):
        entry["created_at"] = entry["created_at"].isoformat()
    detail["updated_at"] = detail["updated_at"].isoformat()
    return detail


# RFC 9110 8.8.3 and 5.6.1: If-Match is `*` or a list of entity-tags, quoted and maybe
# weak, with empty list elements allowed. Each element stands between commas, so checking
# the grammar never backtracks across elements.
_ENTITY_TAG = r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
_LIST_ELEMENT = rf"[ \t]*(?:{_ENTITY_TAG}[ \t]*)?"
_ENTITY_TAG_LIST = re.compile(rf"{_LIST_ELEMENT}(?:,{_LIST_ELEMENT})*")


def version_to_replace(
    caller: Caller, comment: Comment, action: str, if_match: str | None
) -> int | None:
    """The version that an If-Match header lets a decision replace (RFC 9110 13.1.1).

    None for `*`: any current version will do, as for bulk decisions. 428 when the header
    is missing or empty; 412 when it names no current ETag, which includes weak tags
    (If-Match compares strongly) and a value that is not an ETag list at all. The one
    exception: an ETag one version old, when that version's only successor is this
    caller's same decision. That is a retry (a double click, an answer lost), and RFC 9110
    lets a change already applied be answered 2xx; it is someone else's change that 412
    reports.
    """
    value = (if_match or "").strip()
    if not value:
        raise PreconditionRequired("Send If-Match with the ETag of the comment you saw.")
    if value == "*":
        return None
    if _ENTITY_TAG_LIST.fullmatch(value):
        etags = parse_etags(value)
        if etags.contains(str(comment.version)):
            return comment.version
        previous = comment.version - 1
        if etags.contains(str(previous)) and _applied_since(caller, comment, action, previous):
            return comment.version
    raise PreconditionFailed(
        "If-Match names no current ETag of this comment (weak ETags never match); reload it."
    )


def _repeats(comment: Comment, new_status: Status) -> bool:
    """Whether a moderator's decision already left the comment in ``new_status``.

    Then deciding it again changes nothing. A status the rules gave is not a decision
    yet: a moderator confirming it is audited and teaches the classifier. Nor is approving
    a published comment that readers reported since its approval a repeat: it overrules
    those reports, as on a comment the rules published (else the next report sent it
    back to the queue as if no moderator had looked).
    """
    if comment.status is not new_status or comment.status_reason != DECIDED:
        return False
    return not (new_status is Status.APPROVED and comment.flag_count
                and flags.reporters_since_approval(comment.id))


def _applied_since(caller: Caller, comment: Comment, action: str, version: int) -> bool:
    """Whether the only change since ``version`` was this caller making this decision."""
    if comment.version != version + 1 or not _repeats(comment, ACTION_STATUS[action]):
        return False
    last = db.session.execute(
        sa.select(Decision.actor, Decision.action, Decision.created_at)
        .where(Decision.comment_id == comment.id)
        .order_by(Decision.id.desc())
        .limit(1)
    ).first()
    if last is None or (last.actor, last.action) != (caller.name, action):
        return False
    # The audit log names the key, and a revoked key's name can be given to a new key:
    # only a decision made since this key was created can be this key's own.
    created = db.session.scalar(sa.select(ApiKey.created_at).where(ApiKey.id == caller.key_id))
    return created is not None and last.created_at >= created


def decide(
    caller: Caller, comment: Comment, action: str, reason: str, expected_version: int | None
) -> Comment:
    """Apply a moderator's decision; with a version, 412 if someone else changed it first.

    Without one (`*`, bulk) it overrules whatever is there, but knowingly: the audit log
    names the status it replaced, not the one read before someone else's decision landed.
    A decision that a moderator's decision already stands for changes nothing (no new
    version, audit row or learning step) and answers the comment as it is.
    """
    new_status = ACTION_STATUS[action]
    comment_id = comment.id
    # The site first, as intake and a thread's close hold it: the decision's audit row
    # holds the site's key, and a deletion of the site holds the site and then deletes
    # its comments. Taken after the comment's row, the two locks made a deadlock with
    # that deletion on PostgreSQL (a 503, and a bulk half applied).
    if not hold_site(comment.site_id):
        db.session.rollback()
        raise NotFound(f"There is no comment {comment_id}.")
    while True:
        if not comment.content:
            # Erased with its content at the author's request: publishing it would show an
            # empty comment, and judging it would teach the classifier from nothing. Even
            # a delete is refused: it is deleted already, and a moderator's delete would
            # overwrite the reason "erased", the one sign of why it is empty.
            raise Conflict("This comment's content was erased at its author's request; "
                           "it stays deleted.")
        if _repeats(comment, new_status):
            return comment
        old_status = comment.status
        replaced = comment.version if expected_version is None else expected_version
        # Compare-and-set in the database, so two moderators cannot both win the race.
        update = (
            sa.update(Comment)
            .where(Comment.id == comment.id, Comment.version == replaced)
            .values(
                status=new_status,
                status_reason=DECIDED,
                version=Comment.version + 1,
                updated_at=utcnow(),
            )
        )
        result = db.session.execute(update, execution_options={"synchronize_session": False})
        if result.rowcount == 1:
            break
        try:
            db.session.refresh(comment)
        except InvalidRequestError:
            # Deleted since it was read (the retention purge, say): nothing left to decide.
            db.session.rollback()
            raise NotFound(f"There is no comment {comment_id}.") from None
        if expected_version is not None:
            if _applied_since(caller, comment, action, expected_version):
                return comment  # the same caller's same decision landed first: a retry
            db.session.rollback()
            raise PreconditionFailed("Someone else changed this comment first; reload it.")
    db.session.add(
        Decision(
            site_id=comment.site_id,
            comment_id=comment.id,
            actor=caller.name,
            action=action,
            old_status=old_status.value,
            new_status=new_status.value,
            reason=reason,
        )
    )
    db.session.refresh(comment)
    learning.learn_from_decision(comment, new_status)
    if new_status is Status.APPROVED:
        comments.name_thread_from(comment)  # now public, it may name a page without one
    # Loaded while the site is held, for the answer: loaded after the commit, a deletion
    # of the site that waited for this one had removed them, and the decision that had
    # landed was answered 500 (found by an audit).
    comment.site, comment.thread  # noqa: B018 - loads them
    db.session.commit()
    return comment


def bulk(caller: Caller, ids: list[int], action: str, reason: str) -> list[dict[str, Any]]:
    """Apply one decision to many comments; each id answers its own status or error."""
    results = []
    for comment_id in dict.fromkeys(ids):
        try:
            comment = decide(
                caller, comment_for(caller, comment_id), action, reason, expected_version=None
            )
        except (NotFound, Forbidden, Conflict) as error:
            db.session.rollback()
            results.append({"id": comment_id, "error": error.message, "code": error.code})
        else:
            results.append({"id": comment_id, "status": comment.status.value})
    return results


def audit(
    caller: Caller,
    site: str | None,
    comment_id: int | None,
    actor: str | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """The decision log, newest first, limited to the caller's sites."""
    site_ids = _scope(caller, site)
    listing: Listing = ("audit", site, comment_id, actor)
    query = sa.select(Decision, Site.slug).outerjoin(Site, Site.id == Decision.site_id)
    if site_ids is not None:
        query = query.where(Decision.site_id.in_(site_ids))
    if comment_id is not None:
        query = query.where(Decision.comment_id == comment_id)
    if actor is not None:
        query = query.where(Decision.actor == actor)
    if cursor:
        query = query.where(Decision.id < decode_id(cursor, listing))
    rows = db.session.execute(query.order_by(Decision.id.desc()).limit(limit + 1)).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_id(rows[-1][0].id, listing)
    return {"items": [_decision_of(d, slug) for d, slug in rows], "next_cursor": next_cursor}


def set_thread_closed(caller: Caller, site_slug: str, thread_key: str, closed: bool) -> Thread:
    """Close a page to new comments (or open it again)."""
    site = get_site(site_slug)
    require_site(caller, site.id)
    # Held as intake holds them: the site against its deletion (PostgreSQL answered 500 for
    # an audit row naming a site deleted meanwhile), and the thread against another close,
    # whose outcome the comparison below must read, or both would be logged.
    if not hold_site(site.id):
        raise NotFound(f"There is no site '{site_slug}'.")
    find = (sa.select(Thread).where(Thread.site_id == site.id, Thread.key == thread_key)
            .with_for_update(key_share=True).execution_options(populate_existing=True))
    thread = db.session.scalar(find)
    if thread is None:
        try:
            with db.session.begin_nested():  # a savepoint: a clash undoes only the insert
                thread = Thread(site_id=site.id, key=thread_key)
                db.session.add(thread)
        except IntegrityError:
            # The page's first comment made the thread since it was looked for.
            thread = db.session.scalar(find)
            if thread is None:  # or the site was deleted meanwhile
                raise NotFound(f"There is no site '{site_slug}'.") from None
    if thread.closed != closed:  # as a repeated decision, a repeat is not logged again
        thread.closed = closed
        db.session.add(Decision(site_id=site.id, thread=thread.key, actor=caller.name,
                                action="close" if closed else "open"))
    db.session.commit()
    return thread
