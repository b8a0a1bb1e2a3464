"""What the service learns from moderators' decisions: the spam classifier's counts.

The counts live in the database (``classifier_tokens``, ``classifier_totals``), so every
worker and every instance judges by the same, current state; there is nothing to pickle
or reload. The maths is in ``moderation.classifier``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from moderation.classifier import Counts, score, tokens
from moderation.extensions import db
from moderation.models import ClassifierToken, ClassifierTotal, Comment, Status
from moderation.rules import ClassifierScore
from moderation.services.rules import current_rules

SPAM = "spam"
HAM = "ham"
# `approve` teaches ham and `spam` teaches spam. `reject` is about abuse, which the
# rules' abuse lists and the moderators handle, and says nothing about advertising;
# `delete` says nothing about why. Both un-learn what the comment had taught.
LABELS = {Status.APPROVED: HAM, Status.SPAM: SPAM}
# Rows per statement: well under SQLite's and PostgreSQL's bound-parameter limits.
CHUNK = 1000
NEUTRAL = ClassifierScore(probability=0.5, ready=False)


def learn_from_decision(comment: Comment, new_status: Status) -> None:
    """Make what the classifier learned from ``comment`` match the moderator's latest decision.

    Called inside the decision's transaction, after the status update locked the
    comment's row, so ``learned_as`` cannot change underneath. A reversal (approve,
    then spam) un-learns the first label before learning the second; a decision that
    teaches nothing (reject, delete) un-learns whatever the comment had taught.
    """
    label = LABELS.get(new_status)
    if comment.learned_as == label:
        return
    features = tokens(learning_text(comment))
    if comment.learned_as is not None:
        _unlearn(features, comment.learned_as)
    if label is not None:
        _learn(features, label)
    comment.learned_as = label


def classifier_targets(site: str) -> tuple[str, ...]:
    """The fields the site's classifier rule reads, so learning sees what judging will."""
    for rule in current_rules().rules_for(site):
        if rule.type == "classifier" and rule.enabled:
            return rule.targets
    return ("content",)


def learning_text(comment: Comment) -> str:
    """The comment's text as the classifier rule is handed it (fields joined by newlines)."""
    targets = classifier_targets(comment.site.slug)
    return "\n".join(getattr(comment, target) or "" for target in targets)


_TOKEN_COUNTS = sa.select(ClassifierToken.token, ClassifierToken.spam, ClassifierToken.ham).where(
    ClassifierToken.token.in_(sa.bindparam("tokens", expanding=True))
)
_TOTALS = sa.select(ClassifierTotal.label, ClassifierTotal.messages)


def classify(text: str, *, leave_out: str | None = None) -> ClassifierScore:
    """The classifier's spam probability for ``text``; neutral and not ready on a cold start.

    Two queries: the message totals, then (once ready) the counts of the text's tokens.
    Ready once it has learned ``CLASSIFIER_MIN_DECISIONS`` spam and as many ham comments.
    With ``leave_out`` (a label), the text is taken to be one that was learned under that
    label and its own contribution is subtracted first, so a backtest does not judge a
    comment by what that very comment taught.
    """
    totals = {label: messages for label, messages in db.session.execute(_TOTALS)}
    spam_messages, ham_messages = totals.get(SPAM, 0), totals.get(HAM, 0)
    if leave_out == SPAM:
        spam_messages -= 1
    elif leave_out == HAM:
        ham_messages -= 1
    minimum = int(current_app.config["CLASSIFIER_MIN_DECISIONS"])
    if spam_messages < minimum or ham_messages < minimum:
        return NEUTRAL  # and no need to look at the text
    counts: dict[str, Counts] = {}
    for chunk in _chunks(sorted(tokens(text))):
        rows = db.session.execute(_TOKEN_COUNTS, {"tokens": chunk})
        counts.update((token, Counts(spam, ham)) for token, spam, ham in rows)
    if leave_out == SPAM:
        counts = {t: Counts(max(c.spam - 1, 0), c.ham) for t, c in counts.items()}
    elif leave_out == HAM:
        counts = {t: Counts(c.spam, max(c.ham - 1, 0)) for t, c in counts.items()}
    result = score(counts, spam_messages, ham_messages)
    return ClassifierScore(round(result.probability, 6), True, result.clues)


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _insert(model: type[Any]) -> Any:
    """The dialect's INSERT, which has ON CONFLICT on both SQLite and PostgreSQL."""
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model)


def _learn(features: frozenset[str], label: str) -> None:
    """Add one to the label's count of each token and of the messages, atomically in SQL."""
    column = getattr(ClassifierToken, label)
    # Sorted, so concurrent learners take PostgreSQL's row locks in one order: no deadlock.
    for chunk in _chunks(sorted(features)):
        insert = _insert(ClassifierToken).values(
            [{"token": token, "spam": int(label == SPAM), "ham": int(label == HAM)}
             for token in chunk]
        )
        db.session.execute(
            insert.on_conflict_do_update(index_elements=["token"], set_={label: column + 1})
        )
    insert = _insert(ClassifierTotal).values(label=label, messages=1)
    db.session.execute(
        insert.on_conflict_do_update(
            index_elements=["label"], set_={"messages": ClassifierTotal.messages + 1}
        )
    )


def _unlearn(features: frozenset[str], label: str) -> None:
    """Take one off the label's count of each token and of the messages; drop empty rows."""
    column = getattr(ClassifierToken, label)
    for chunk in _chunks(sorted(features)):
        # Lock in token order first (a no-op on SQLite, which locks the whole file).
        db.session.execute(
            sa.select(ClassifierToken.token)
            .where(ClassifierToken.token.in_(chunk))
            .order_by(ClassifierToken.token)
            .with_for_update()
        )
        # `> 0` keeps counts sane if the text changed since it was learned (an erasure).
        db.session.execute(
            sa.update(ClassifierToken)
            .where(ClassifierToken.token.in_(chunk), column > 0)
            .values({label: column - 1}),
            execution_options={"synchronize_session": False},
        )
        db.session.execute(
            sa.delete(ClassifierToken).where(
                ClassifierToken.token.in_(chunk), ClassifierToken.spam == 0,
                ClassifierToken.ham == 0,
            ),
            execution_options={"synchronize_session": False},
        )
    db.session.execute(
        sa.update(ClassifierTotal)
        .where(ClassifierTotal.label == label, ClassifierTotal.messages > 0)
        .values(messages=ClassifierTotal.messages - 1),
        execution_options={"synchronize_session": False},
    )
