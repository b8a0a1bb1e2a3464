"""What the commenter's history says: the context the rules engine judges trust from."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from moderation.extensions import db
from moderation.models import Comment, Status
from moderation.rules import ClassifierScore, Context
from moderation.services import learning

BAD = (Status.SPAM, Status.REJECTED)
# How far back a run of bad comments is looked for; longer runs hold just the same.
RECENT = 10


def context_for(
    commenter: str,
    *,
    honeypot_filled: bool,
    form_too_fast: bool,
    before_id: int | None = None,
    classify: Callable[[str], ClassifierScore] = learning.classify,
) -> Context:
    """Counts of this commenter's decided comments, keyed by the email HMAC, and the classifier.

    ``before_id`` counts only comments older than that one (a backtest replaying it).
    """
    decided = sa.and_(
        Comment.email_hash == commenter,
        Comment.status.in_((Status.APPROVED, *BAD)),
        Comment.id < before_id if before_id is not None else sa.true(),
    )
    counts = dict(
        db.session.execute(
            sa.select(Comment.status, sa.func.count()).where(decided).group_by(Comment.status)
        ).all()
    )
    recent = db.session.scalars(
        sa.select(Comment.status).where(decided).order_by(Comment.id.desc()).limit(RECENT)
    )
    bad_run = 0
    for status in recent:
        if status not in BAD:
            break
        bad_run += 1
    return Context(
        approved_count=counts.get(Status.APPROVED, 0),
        rejected_count=sum(counts.get(status, 0) for status in BAD),
        recent_bad_run=bad_run,
        honeypot_filled=honeypot_filled,
        form_too_fast=form_too_fast,
        classify=classify,
    )
