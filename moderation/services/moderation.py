"""Moderators' decisions on comments, and the closing of threads (what they read: review.py)."""

from __future__ import annotations

import re
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
    Decision,
    Status,
    Thread,
    utcnow,
)
from moderation.services import comments, flags, learning, review
from moderation.services.sites import get_site, hold_site

ACTION_STATUS = {
    "approve": Status.APPROVED,
    "spam": Status.SPAM,
    "reject": Status.REJECTED,
    "delete": Status.DELETED,
}
# The status_reason of a status that a moderator's decision set.
DECIDED = "moderator"


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
            comment = decide(caller, review.comment_for(caller, comment_id), action, reason,
                             expected_version=None)
        except (NotFound, Forbidden, Conflict) as error:
            db.session.rollback()
            results.append({"id": comment_id, "error": error.message, "code": error.code})
        else:
            results.append({"id": comment_id, "status": comment.status.value})
    return results


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
