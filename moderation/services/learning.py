"""What the service learns from moderators' decisions: the spam classifier's counts and weights.

The counts and the regression's weights live in the database (``classifier_tokens``,
``classifier_totals``; ``classifier_steps`` for un-learning), so every worker and every
instance judges by the same, current state; there is nothing to pickle or reload. The
maths is in ``moderation.classifier``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from moderation.classifier import BIAS_RATE, Counts, indicator, logistic_step, tokens
from moderation.extensions import db
from moderation.models import (
    ClassifierStep,
    ClassifierToken,
    ClassifierTotal,
    Comment,
    Status,
)
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
# The PostgreSQL advisory lock that learning transactions hold until they end (any number
# will do; it names the lock).
LEARNING_LOCK = 0x6C6561726E


def learn_from_decision(comment: Comment, new_status: Status) -> None:
    """Make what the classifier learned from ``comment`` match the moderator's latest decision.

    Called inside the decision's transaction, after the status update locked the
    comment's row, so ``learned_as`` cannot change underneath. A reversal (approve,
    then spam) un-learns the first label before learning the second; a decision that
    teaches nothing (reject, delete) un-learns whatever the comment had taught.
    """
    teach(comment, LABELS.get(new_status))


def teach(comment: Comment, label: str | None) -> None:
    """Make ``comment`` teach ``label`` (None: nothing), from its text as it stands now.

    Un-learning takes back the tokens kept with the comment's step, not those of its text
    as tokenised today: an upgrade's tokenizer, or the classifier rule's fields, may have
    changed since. An erasure, which changes the text, un-learns before the change and
    teaches again after it.
    """
    if comment.learned_as == label:
        return
    _one_learner_at_a_time()
    features = tokens(learning_text(comment))
    if comment.learned_as is not None:
        step, taught = _forget_step(comment.id)
        _unlearn(features if taught is None else taught, comment.learned_as, step)
        comment.learned_as = None
    if label is not None:
        step = _regression_step(features, spam=label == SPAM)
        _learn(features, label, step)
        db.session.execute(_insert(ClassifierStep).values(
            comment_id=comment.id, step=step, tokens=json.dumps(sorted(features))
        ))
    comment.learned_as = label


def _one_learner_at_a_time() -> None:
    """Wait for any other learning transaction to end (PostgreSQL; SQLite has one writer).

    Sorted tokens alone did not keep learners from deadlocking: a reversal takes its
    tokens, its old label's total, then the new label's total, so two opposite reversals
    on comments with no token in common each held the total the other wanted (one of them
    a 503). Decisions are made at a person's pace, so taking turns costs nothing.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.select(sa.func.pg_advisory_xact_lock(LEARNING_LOCK)))


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


# The two reads every intake makes (classify): Core statements on the tables, run on the
# session's connection, since the ORM's result machinery cost more than the queries.
_token_table = ClassifierToken.__table__
_total_table = ClassifierTotal.__table__
_TOKEN_COUNTS = sa.select(
    _token_table.c.token, _token_table.c.spam, _token_table.c.ham, _token_table.c.weight
).where(_token_table.c.token.in_(sa.bindparam("tokens", expanding=True)))
_TOTALS = sa.select(_total_table.c.label, _total_table.c.messages, _total_table.c.weight)
_STEP = sa.select(ClassifierStep.step, ClassifierStep.tokens).where(
    ClassifierStep.comment_id == sa.bindparam("id")
)


def classify(
    text: str, *, leave_out: str | None = None, comment_id: int | None = None
) -> ClassifierScore:
    """The classifier's spam probability for ``text``; neutral and not ready on a cold start.

    Two queries: the message totals and the bias, then (once ready) the counts and weights
    of the text's tokens. The probability blends Robinson-Fisher on the counts with the
    logistic regression on the weights; the tokens named are Robinson-Fisher's clues.
    Ready once it has learned ``CLASSIFIER_MIN_DECISIONS`` spam and as many ham comments.
    With ``leave_out`` (a label), the text is taken to be one that was learned under that
    label and its own contribution is subtracted first, so a backtest does not judge a
    comment by what that very comment taught; given ``comment_id`` too, its regression step
    is subtracted as well.
    """
    messages, bias = _totals()
    spam_messages, ham_messages = messages.get(SPAM, 0), messages.get(HAM, 0)
    if leave_out == SPAM:
        spam_messages -= 1
    elif leave_out == HAM:
        ham_messages -= 1
    minimum = int(current_app.config["CLASSIFIER_MIN_DECISIONS"])
    if spam_messages < minimum or ham_messages < minimum:
        return NEUTRAL  # and no need to look at the text
    features = tokens(text)
    counts, weights = _token_state(features)
    if leave_out is not None:
        step, taught = _taught(comment_id) if comment_id is not None else (0.0, None)
        if taught is None:
            taught = features
        weights = {t: w - step if t in taught else w for t, w in weights.items()}
        bias -= step * BIAS_RATE
        spam_taught, ham_taught = int(leave_out == SPAM), int(leave_out == HAM)
        counts = {
            t: Counts(max(c.spam - spam_taught, 0), max(c.ham - ham_taught, 0))
            if t in taught else c
            for t, c in counts.items()
        }
    result = indicator(features, counts, weights, bias, spam_messages, ham_messages)
    return ClassifierScore(result.probability, True, result.clues)


def _totals() -> tuple[dict[str, int], float]:
    """Messages learned by label, and the regression's bias (the sum of the labels' shares)."""
    rows = db.session.connection().execute(_TOTALS).all()
    return {label: messages for label, messages, _ in rows}, sum(weight for _, _, weight in rows)


def _token_state(features: frozenset[str]) -> tuple[dict[str, Counts], dict[str, float]]:
    """The counts and weights of those of ``features`` the classifier has learned."""
    counts: dict[str, Counts] = {}
    weights: dict[str, float] = {}
    for chunk in _chunks(sorted(features)):
        found = db.session.connection().execute(_TOKEN_COUNTS, {"tokens": chunk})
        for token, spam, ham, weight in found:
            counts[token] = Counts(spam, ham)
            weights[token] = weight
    return counts, weights


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _insert(model: type[Any]) -> Any:
    """The dialect's INSERT, which has ON CONFLICT on both SQLite and PostgreSQL."""
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model)


def _regression_step(features: frozenset[str], *, spam: bool) -> float:
    """The regression's online step for one comment, from the weights as they stand
    (learners take turns, so the previous decision's step is in them)."""
    _, bias = _totals()
    _, weights = _token_state(features)
    return logistic_step(bias, weights, features, spam)


def _taught(comment_id: int) -> tuple[float, frozenset[str] | None]:
    """The step the comment's learning added and the tokens it taught.

    (0, None) for a comment learned before there were weights; the tokens are None for
    one learned before they were kept (migration 0005).
    """
    kept = db.session.execute(_STEP, {"id": comment_id}).first()
    if kept is None:
        return 0.0, None
    step, taught = kept
    return step, None if taught is None else frozenset(json.loads(taught))


def _forget_step(comment_id: int) -> tuple[float, frozenset[str] | None]:
    """``_taught``, and the record of it deleted."""
    taught = _taught(comment_id)
    db.session.execute(sa.delete(ClassifierStep).where(ClassifierStep.comment_id == comment_id))
    return taught


def _learn(features: frozenset[str], label: str, step: float) -> None:
    """Add one to the label's count of each token and of the messages, and the regression's
    step to the tokens' weights (BIAS_RATE of it to the label's share of the bias),
    atomically in SQL."""
    column = getattr(ClassifierToken, label)
    weight = ClassifierToken.weight
    # Sorted, so concurrent learners take PostgreSQL's row locks in one order: no deadlock.
    for chunk in _chunks(sorted(features)):
        insert = _insert(ClassifierToken).values(
            [{"token": token, "spam": int(label == SPAM), "ham": int(label == HAM),
              "weight": step} for token in chunk]
        )
        db.session.execute(
            insert.on_conflict_do_update(
                index_elements=["token"], set_={label: column + 1, "weight": weight + step}
            )
        )
    insert = _insert(ClassifierTotal).values(label=label, messages=1, weight=step * BIAS_RATE)
    db.session.execute(
        insert.on_conflict_do_update(
            index_elements=["label"],
            set_={"messages": ClassifierTotal.messages + 1,
                  "weight": ClassifierTotal.weight + step * BIAS_RATE},
        )
    )


def _unlearn(features: frozenset[str], label: str, step: float) -> None:
    """Take one off the label's count of each token and of the messages, and the comment's
    step off the weights; drop empty rows (their weight is then 0: it is the sum of the
    steps of the learned comments that have the token)."""
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
            .values({label: column - 1, "weight": ClassifierToken.weight - step}),
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
        .values(messages=ClassifierTotal.messages - 1,
                weight=ClassifierTotal.weight - step * BIAS_RATE),
        execution_options={"synchronize_session": False},
    )
