"""Deciding: findings become hits, hits and the commenter's history become a verdict."""

from __future__ import annotations

from .explain import render
from .matchers import Finding, Subject
from .model import (
    APPROVED,
    OUTCOME_PRIORITY,
    PENDING,
    SPAM,
    TOKEN_EXPIRED,
    TOKEN_MISSING,
    TOKEN_OTHER_PAGE,
    TOKEN_TOO_FAST,
    Context,
    Hit,
    SiteSettings,
    Submission,
    Verdict,
)
from .ruleset import Rule, RuleSet

__all__ = ["evaluate"]

# A commenter nobody knows anything about (Context is frozen, so one instance serves all).
NO_CONTEXT = Context()


def _hit(rule: Rule, finding: Finding) -> Hit:
    # Only the classifier computes its own score; a hard outcome carries none.
    score = finding.score if finding.score is not None else 0.0 if rule.outcome else rule.score
    if rule.explain:
        explanation = render(
            rule.explain,
            {
                "rule": rule.id,
                "target": finding.target,
                "match": finding.match,
                "count": finding.count,
                "detail": finding.detail,
                "score": score,
                "outcome": rule.outcome or "",
                "description": rule.description,
            },
        )
    else:
        explanation = finding.note
    return Hit(
        rule.id, finding.target, finding.match, score, rule.outcome, explanation, rule.shadow
    )


def _rule_hits(ruleset: RuleSet, subject: Subject, context: Context) -> list[Hit]:
    compiled = ruleset.compiled_for(subject.submission.site)
    found: dict[int, list[Finding]] = {}
    if compiled.terms is not None and compiled.terms_wanted:
        found.update(compiled.terms.scan(subject, compiled.terms_wanted))
    if compiled.regexes is not None and compiled.regexes_wanted:
        found.update(compiled.regexes.scan(subject, compiled.regexes_wanted))
    for slot in compiled.others:
        rule = compiled.rules[slot]
        findings = rule.matcher.find(subject, rule.targets, context)
        if findings:
            found[slot] = findings
    return [
        _hit(compiled.rules[slot], finding) for slot in sorted(found) for finding in found[slot]
    ]


def _seconds(seconds: float) -> str:
    return f"{seconds:g} second" if seconds == 1 else f"{seconds:g} seconds"


def _form_token_explanation(settings: SiteSettings, problem: str) -> str:
    """What was wrong with the form token, in words a site owner can act on."""
    token = settings.form_token
    if problem == TOKEN_MISSING:
        return "no form token was sent"
    if problem == TOKEN_OTHER_PAGE:
        return "the form token was served for another site or page"
    if problem == TOKEN_EXPIRED:
        return f"the form token expired (served more than {_seconds(token.max_age_seconds)} ago)"
    if problem == TOKEN_TOO_FAST:
        return (f"the form was sent less than {_seconds(token.min_seconds)} "
                "after the page was served")
    return "the form token is not valid for this page"


def _bot_and_trust_hits(settings: SiteSettings, context: Context) -> list[Hit]:
    """The engine's own hits that take part in the decision (bot traps, known commenters)."""
    hits = []
    if context.honeypot_filled and settings.honeypot.field:
        hits.append(
            Hit(
                "HONEYPOT",
                "form",
                settings.honeypot.field,
                0.0,
                SPAM,
                f"the hidden form field '{settings.honeypot.field}' was filled in, "
                "which only bots do",
            )
        )
    if context.form_token_problem and settings.form_token.enabled:
        hits.append(
            Hit(
                "FORM_TOO_FAST",
                "form",
                context.form_token_problem,
                0.0,
                SPAM,
                _form_token_explanation(settings, context.form_token_problem),
            )
        )
    trust = settings.trust
    decided = context.approved_count + context.rejected_count
    if (
        trust.trusted_score
        and context.approved_count >= trust.trusted_after
        and context.rejected_count / decided <= trust.trusted_max_rejection_rate
    ):
        hits.append(
            Hit(
                "TRUST_KNOWN",
                "author_email",
                "",
                trust.trusted_score,
                None,
                f"a known commenter: {context.approved_count} approved and "
                f"{context.rejected_count} rejected comments",
            )
        )
    return hits


def _hold_hits(settings: SiteSettings, context: Context, allow_listed: bool) -> list[Hit]:
    """Reasons to hold a comment that would otherwise be published."""
    hits = []
    trust = settings.trust
    if not allow_listed:
        if trust.hold_new_commenters and context.approved_count == 0:
            hits.append(
                Hit(
                    "TRUST_NEW",
                    "author_email",
                    "",
                    0.0,
                    PENDING,
                    "no approved comment yet under this email address, so it is held for review",
                )
            )
        if trust.hold_after_bad_run and context.recent_bad_run >= trust.hold_after_bad_run:
            hits.append(
                Hit(
                    "TRUST_BAD_RUN",
                    "author_email",
                    "",
                    0.0,
                    PENDING,
                    f"the last {context.recent_bad_run} comments under this email "
                    "address ended as spam or rejected",
                )
            )
    if settings.moderation.pre_moderate:
        hits.append(
            Hit(
                "PRE_MODERATE", "site", "", 0.0, PENDING, "this site holds every comment for review"
            )
        )
    return hits


def evaluate(ruleset: RuleSet, submission: Submission, context: Context = NO_CONTEXT) -> Verdict:
    """Decide on ``submission`` under ``ruleset``; pure, so the same input gives the same verdict.

    A live hard outcome beats any score, the strongest one winning (approved, then
    rejected, spam, pending); otherwise the summed live scores meet the site's thresholds.
    A comment that would then be approved may still be held for the commenter's history
    (unless an allow-list approved it) or because the site pre-moderates.
    """
    settings = ruleset.settings_for(submission.site)
    hits = _rule_hits(ruleset, Subject(submission), context)
    hits += _bot_and_trust_hits(settings, context)
    live = [hit for hit in hits if not hit.shadow]
    score = round(float(sum(hit.score for hit in live)), 6)
    hard = [hit.outcome for hit in live if hit.outcome]
    if hard:
        outcome = max(hard, key=OUTCOME_PRIORITY.__getitem__)
    elif score >= settings.thresholds.spam:
        outcome = SPAM
    elif score >= settings.thresholds.pending:
        outcome = PENDING
    else:
        outcome = APPROVED
    if outcome == APPROVED:
        holds = _hold_hits(settings, context, allow_listed=bool(hard))
        if holds:
            outcome = PENDING
            hits += holds
    return Verdict(outcome, score, tuple(hits), ruleset.version)
