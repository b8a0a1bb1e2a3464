"""Backtests: how a candidate rules file would have judged what moderators decided.

Which comments: the last N whose latest decision by a person (any key; readers' flags
are not decisions) was ``approve`` (ham), ``spam`` or ``reject`` (both spam: filtering
should keep them off the page). A comment whose latest decision was ``delete`` or an
erasure says nothing about spam and is left out, and so is an erased comment decided
since: its author, address and user agent are gone, and every erased commenter would
share one history.

How each is judged: with its stored fields, its bot traps as intake found them (the
honeypot filled, the form token's fault: from its stored HONEYPOT and FORM_TOO_FAST hits,
so rules that caught a bot are credited with it), and with the commenter's history on
its site as it stood when the comment arrived, i.e. counting only the commenter's older comments (at
their statuses now). Counting everything would leak the comment's own decision into
its trust; a neutral history would hold every comment under ``hold_new_commenters``.
The classifier judges it leave-one-out: what this very comment taught is taken off the
counts first, so the classifier is not credited for remembering it.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from moderation.errors import Invalid
from moderation.extensions import db
from moderation.models import FLAG_ACTOR, Comment, Decision, Site, Thread
from moderation.rules import RulesError, RuleSet, Submission, evaluate, parse_rules
from moderation.services import learning, trust
from moderation.services.rules import current_rules
from moderation.services.sites import DEFAULT_SITE

SPAM = "spam"
HAM = "ham"
LABEL_OF_ACTION = {"approve": HAM, "spam": SPAM, "reject": SPAM}
CAUGHT = ("spam", "rejected")


def candidate(rules_yaml: str) -> RuleSet:
    """Rules YAML from a request, checked; 422 naming the place of the first fault."""
    source = current_rules().source
    # `file:` lists resolve beside the rules file in force, as they would once deployed.
    base = Path(source).parent if source != "<string>" else None
    try:
        return parse_rules(rules_yaml, "<request>", base)
    except RulesError as error:
        raise Invalid(str(error), {"rules": error.messages or [str(error)]}) from None


def decided(limit: int) -> list[tuple[str, Comment, str, str]]:
    """The last ``limit`` comments moderators labelled: (label, comment, site, thread)."""
    latest = (
        sa.select(sa.func.max(Decision.id))
        .where(Decision.actor != FLAG_ACTOR, Decision.comment_id.is_not(None))
        .group_by(Decision.comment_id)
    )
    rows = db.session.execute(
        sa.select(Decision.action, Comment, Site.slug, Thread.key)
        .join(Comment, Comment.id == Decision.comment_id)
        .join(Site, Site.id == Comment.site_id)
        .join(Thread, Thread.id == Comment.thread_id)
        .where(Decision.id.in_(latest), Decision.action.in_(LABEL_OF_ACTION),
               Comment.email_hash != "")  # erased
        .order_by(Decision.id.desc())
        .limit(limit)
    ).all()
    return [(LABEL_OF_ACTION[action], comment, site, thread) for action, comment, site, thread
            in rows]


def backtest(ruleset: RuleSet, limit: int) -> dict[str, Any]:
    """Confusion counts against the moderators, and each rule's hits on spam and on ham.

    ``s_o`` is SpamAssassin's hit-frequencies ratio: the rule's share of spam hit over
    that plus its share of ham hit; 1.0 hits only spam, 0.0 only ham, None never hit.
    The classifier, which scores both ways, hits where it scored toward spam: counted
    when it vouched for a comment too (a negative score, on most ham), a classifier that
    told the two apart almost perfectly read S/O 0.495 (found by an audit).
    """
    outcomes: Counter[tuple[str, str]] = Counter()
    hits: dict[str, Counter[str]] = {rule.id: Counter() for rule in ruleset.rules_for(DEFAULT_SITE)}
    two_sided = {rule.id for site in (DEFAULT_SITE, *ruleset.sites)
                 for rule in ruleset.rules_for(site) if rule.type == "classifier"}
    for label, comment, site, thread in decided(limit):
        submission = Submission(
            site=site,
            thread=thread,
            author_name=comment.author_name,
            author_email=comment.author_email,
            author_url=comment.author_url or "",
            content=comment.content,
            ip=comment.ip or "",
            user_agent=comment.user_agent or "",
        )
        traps = {hit["rule"]: hit["match"] for hit in comment.hits or []}
        context = trust.context_for(
            comment.email_hash,
            comment.site_id,
            honeypot_filled="HONEYPOT" in traps,
            form_token_problem=traps.get("FORM_TOO_FAST"),
            before_id=comment.id,
            classify=partial(learning.classify, leave_out=comment.learned_as,
                             comment_id=comment.id),
        )
        verdict = evaluate(ruleset, submission, context)
        outcomes[(label, verdict.outcome)] += 1
        for rule in {hit.rule for hit in verdict.hits
                     if not (hit.rule in two_sided and hit.score < 0)}:
            hits.setdefault(rule, Counter())[label] += 1

    spam = sum(n for (label, _), n in outcomes.items() if label == SPAM)
    ham = sum(n for (label, _), n in outcomes.items() if label == HAM)
    return {
        "rules_version": ruleset.version,
        "decided": spam + ham,
        "spam": spam,
        "ham": ham,
        "confusion": {
            "spam": {
                "caught": sum(outcomes[(SPAM, outcome)] for outcome in CAUGHT),
                "pending": outcomes[(SPAM, "pending")],
                "missed": outcomes[(SPAM, "approved")],
            },
            "ham": {
                "passed": outcomes[(HAM, "approved")],
                "pending": outcomes[(HAM, "pending")],
                "false_positives": sum(outcomes[(HAM, outcome)] for outcome in CAUGHT),
            },
        },
        "rules": [_frequency(rule, counts, spam, ham) for rule, counts in hits.items()],
    }


def _frequency(rule: str, counts: Counter[str], spam: int, ham: int) -> dict[str, Any]:
    spam_percent = 100.0 * counts[SPAM] / spam if spam else 0.0
    ham_percent = 100.0 * counts[HAM] / ham if ham else 0.0
    either = spam_percent + ham_percent
    return {
        "rule": rule,
        "spam_hits": counts[SPAM],
        "ham_hits": counts[HAM],
        "spam_percent": round(spam_percent, 2),
        "ham_percent": round(ham_percent, 2),
        "s_o": round(spam_percent / either, 3) if either else None,
    }
