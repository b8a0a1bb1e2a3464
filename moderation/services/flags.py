"""Reader reports: enough distinct reporters send a published comment back to the queue."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from moderation.errors import NotFound
from moderation.extensions import db
from moderation.models import FLAG_ACTOR, Comment, Decision, Flag, Status, utcnow
from moderation.services.identity import reporter_hash
from moderation.services.rules import current_rules
from moderation.services.sites import hold_site
from moderation.services.threads import approved_comment


def flag(comment_id: int, reason: str, reporter_ip: str) -> bool:
    """Record one reader's report; True when it put the comment back in the queue.

    The comment's row is locked (on PostgreSQL; SQLite has one writer anyway), so that
    readers flagging at once are counted one after the other: each count then sees the
    flags before it, and the one that reaches the threshold is seen to. The site is held
    before that, as decisions hold it: the flag's audit row holds the site's key, and a
    site's deletion holds the site, then deletes its comments. Taken after the comment's
    row, the two locks deadlocked on PostgreSQL (a 503 for the flag or the deletion,
    found by an audit).
    """
    if not hold_site(approved_comment(comment_id).site_id):
        db.session.rollback()
        raise NotFound(f"There is no published comment {comment_id}.")
    comment = approved_comment(comment_id, for_update=True)
    db.session.add(Flag(comment_id=comment.id, reporter_hash=reporter_hash(reporter_ip),
                        reason=reason))
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()  # this reader flagged it already; one voice each
        return False
    reporters = db.session.scalar(
        sa.select(sa.func.count()).select_from(Flag).where(Flag.comment_id == comment.id)
    )
    comment.flag_count = reporters
    threshold = current_rules().settings_for(comment.site.slug).flags.threshold
    since_approval = reporters_since_approval(comment.id)
    returned = since_approval >= threshold and _return_to_queue(comment.id, comment.version)
    if returned:
        db.session.add(
            Decision(
                site_id=comment.site_id,
                comment_id=comment.id,
                actor=FLAG_ACTOR,
                action="flag",
                old_status=Status.APPROVED.value,
                new_status=Status.PENDING.value,
                # Those who sent it back: the ones a moderator overruled before are not.
                reason=f"flagged by {since_approval} readers",
            )
        )
    db.session.commit()
    return returned


def _return_to_queue(comment_id: int, version: int) -> bool:
    """Send a published comment back to the queue, unless it changed since it was read.

    Compare-and-set, as decisions do: a moderator's decision that landed meanwhile stands,
    rather than being overwritten under the same version number.
    """
    result = db.session.execute(
        sa.update(Comment)
        .where(Comment.id == comment_id, Comment.version == version,
               Comment.status == Status.APPROVED)
        .values(status=Status.PENDING, status_reason="flagged",
                version=Comment.version + 1, updated_at=utcnow()),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount == 1


def reporters_since_approval(comment_id: int) -> int:
    """Readers who flagged the comment since a moderator last approved it.

    A moderator who approves a flagged comment has overruled its reporters: counting
    them again would let one new flag undo the decision.
    """
    approved_at = db.session.scalar(
        sa.select(sa.func.max(Decision.created_at)).where(
            Decision.comment_id == comment_id, Decision.action == "approve"
        )
    )
    query = sa.select(sa.func.count()).select_from(Flag).where(Flag.comment_id == comment_id)
    if approved_at is not None:
        query = query.where(Flag.created_at > approved_at)
    return db.session.scalar(query)
