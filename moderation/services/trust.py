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


_comments = Comment.__table__


def _status_is(*statuses: Status) -> sa.ColumnElement[bool]:
    """The comment has one of ``statuses``.

    Equalities joined by OR, not IN: SQLAlchemy renders an IN list's values into the
    statement's SQL at every execution, which cost a thirtieth of intake.
    """
    return sa.or_(*(_comments.c.status == status for status in statuses))


# A commenter's decided comments on one site (older than :before_id), keyed by the email
# HMAC. Per site: each site's moderators decide whom they trust, and a commenter approved
# on one site of the install was published at once on every other, to anyone who typed
# that address, and told them the address was known there.
_DECIDED = (
    _comments.c.email_hash == sa.bindparam("commenter"),
    _comments.c.site_id == sa.bindparam("site_id"),
    _status_is(Status.APPROVED, *BAD),
    # BIGINT, so that "no limit" fits where ids are 32-bit (PostgreSQL's INTEGER).
    _comments.c.id < sa.bindparam("before_id", type_=sa.BigInteger),
)
_APPROVED = _status_is(Status.APPROVED)
_BAD = _status_is(*BAD)
_LAST_APPROVED = (
    sa.select(sa.func.coalesce(sa.func.max(_comments.c.id), 0))
    .where(*_DECIDED, _APPROVED)
    .scalar_subquery()
)
# One query, built once: a first-time commenter costs one index probe. The recent bad run
# is the spam or rejected comments newer than the newest approved one.
_HISTORY = sa.select(
    sa.func.count(sa.case((_APPROVED, 1))),
    sa.func.count(sa.case((_BAD, 1))),
    sa.func.count(sa.case((sa.and_(_BAD, _comments.c.id > _LAST_APPROVED), 1))),
).where(*_DECIDED)
# Above any comment id.
_NO_LIMIT = 2**62


def context_for(
    commenter: str,
    site_id: int,
    *,
    honeypot_filled: bool,
    form_token_problem: str | None,
    before_id: int | None = None,
    classify: Callable[[str], ClassifierScore] = learning.classify,
) -> Context:
    """Counts of this commenter's decided comments on the site, keyed by the email HMAC,
    and the classifier.

    ``before_id`` counts only comments older than that one (a backtest replaying it).
    """
    approved_count, rejected_count, bad_run = db.session.connection().execute(
        _HISTORY,
        {"commenter": commenter, "site_id": site_id,
         "before_id": _NO_LIMIT if before_id is None else before_id},
    ).one()
    return Context(
        approved_count=approved_count,
        rejected_count=rejected_count,
        recent_bad_run=min(bad_run, RECENT),
        honeypot_filled=honeypot_filled,
        form_token_problem=form_token_problem,
        classify=classify,
    )
