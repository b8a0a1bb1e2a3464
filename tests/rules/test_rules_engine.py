"""Deciding: hard outcomes, thresholds, shadow and disabled rules, sites, trust and bot traps."""

from __future__ import annotations

import pytest

from moderation.rules import ClassifierScore, Context, Submission, Verdict, evaluate, parse_rules

RULES = parse_rules(
    """
version: 1
thresholds: {pending: 3.0, spam: 6.0}
trust: {hold_new_commenters: true, trusted_after: 3, trusted_max_rejection_rate: 0.1,
        trusted_score: -2.0, hold_after_bad_run: 2}
honeypot: {field: website_url}
form_token: {enabled: true}
rules:
  - {id: FRIEND, type: email, addresses: [friend@ok.example], outcome: approved}
  - {id: BLOCKED, type: terms, terms: [blockedword], outcome: rejected}
  - {id: SPAMMY, type: terms, terms: [spamword], outcome: spam}
  - {id: HOLD, type: terms, terms: [holdword], outcome: pending}
  - {id: TWO, type: terms, terms: [two], score: 2.0}
  - {id: FOUR, type: terms, terms: [four], score: 4.0}
  - {id: WATCH, type: terms, terms: [watchword], outcome: rejected, mode: shadow}
  - {id: DISABLED, type: terms, terms: [offword], outcome: rejected, enabled: false}
  - {id: NICE, type: terms, terms: [thanks], score: -1.0,
     explain: "{rule} saw '{match}' in {target} ({count}x, {score:+g})"}
sites:
  news:
    thresholds: {pending: 2.0}
    rules:
      TWO: {score: 3.5}
      FOUR: {enabled: false}
      DISABLED: {enabled: true}
      HOLD: {terms: [otherhold]}
      WATCH: {mode: live}
  strict:
    moderation: {pre_moderate: true}
"""
)
KNOWN = Context(approved_count=10)


def decide(
    content: str, context: Context = KNOWN, site: str = "default", email: str = "ann@example.org"
) -> Verdict:
    return evaluate(RULES, Submission(site, "t", "Ann", email, content=content), context)


@pytest.mark.parametrize(
    ("content", "email", "outcome"),
    [
        ("blockedword spamword holdword", "ann@example.org", "rejected"),
        ("spamword holdword four four two", "ann@example.org", "spam"),
        ("holdword four two", "ann@example.org", "pending"),  # hard pending beats a spam score
        ("blockedword spamword", "friend@ok.example", "approved"),  # the allow-list wins
        ("four four two", "friend@ok.example", "approved"),  # and beats a spam score
    ],
)
def test_hard_outcomes_beat_scores_strongest_first(content: str, email: str, outcome: str) -> None:
    # Not trusted yet (no TRUST_KNOWN bonus), so the scores alone reach the spam threshold.
    verdict = decide(content, Context(approved_count=1), email=email)
    assert verdict.outcome == outcome
    if "four" in content:
        assert verdict.score >= 6.0


@pytest.mark.parametrize(
    ("content", "score", "outcome"),
    [
        ("hello", 0.0, "approved"),
        ("two", 2.0, "approved"),
        ("two two", 2.0, "approved"),
        ("four", 4.0, "pending"),
        ("two four", 6.0, "spam"),
        ("two four thanks", 5.0, "pending"),
        ("four thanks", 3.0, "pending"),  # at the threshold is at it: "at or above"
    ],
)
def test_scores_sum_once_per_rule_and_meet_the_thresholds(
    content: str, score: float, outcome: str
) -> None:
    verdict = decide(content, Context(approved_count=1))
    assert (verdict.score, verdict.outcome) == (score, outcome)


def test_shadow_hits_are_shown_but_do_not_count() -> None:
    verdict = decide("watchword")
    assert verdict.outcome == "approved"
    [shadow] = [hit for hit in verdict.hits if hit.rule == "WATCH"]
    assert shadow.shadow and shadow.as_dict()["shadow"] is True


def test_disabled_rules_do_nothing() -> None:
    verdict = decide("offword")
    assert verdict.outcome == "approved"
    assert [hit.rule for hit in verdict.hits if hit.rule == "DISABLED"] == []


def test_site_overrides_apply_to_that_site_only() -> None:
    assert decide("two", Context(approved_count=1), site="news").outcome == "pending"  # 3.5>=2
    assert decide("two", Context(approved_count=1)).outcome == "approved"
    assert decide("four", Context(approved_count=1), site="news").outcome == "approved"
    assert decide("offword", site="news").outcome == "rejected"
    assert decide("watchword", site="news").outcome == "rejected"
    assert decide("holdword", site="news").outcome == "approved"
    assert decide("otherhold", site="news").outcome == "pending"
    assert decide("otherhold").outcome == "approved"
    assert RULES.settings_for("news").thresholds.pending == 2.0


def test_explain_templates_fill_in_the_hit() -> None:
    [hit] = [hit for hit in decide("Thanks, THANKS").hits if hit.rule == "NICE"]
    assert hit.explanation == "NICE saw 'Thanks' in content (2x, -1)"


def test_the_verdict_serialises_in_the_contract_shape() -> None:
    data = decide("two").as_dict()
    assert set(data) == {"outcome", "score", "hits", "rules_version"}
    assert data["rules_version"] == RULES.version
    assert set(data["hits"][0]) == {
        "rule",
        "target",
        "match",
        "score",
        "outcome",
        "explanation",
        "shadow",
    }


@pytest.mark.parametrize(
    ("context", "content", "outcome", "rules"),
    [
        (Context(approved_count=0), "hello", "pending", ["TRUST_NEW"]),
        (Context(approved_count=0), "spamword", "spam", ["SPAMMY"]),  # spam stays spam
        (Context(approved_count=1), "hello", "approved", []),
        (Context(approved_count=3), "four", "approved", ["FOUR", "TRUST_KNOWN"]),  # 4-2 < 3
        (Context(approved_count=3, rejected_count=1), "four", "pending", ["FOUR"]),  # 25% bad
        # Exactly the allowed rejection rate (1 in 10) still earns the bonus.
        (Context(approved_count=9, rejected_count=1), "hello", "approved", ["TRUST_KNOWN"]),
        (
            Context(approved_count=5, recent_bad_run=2),
            "hello",
            "pending",
            ["TRUST_KNOWN", "TRUST_BAD_RUN"],
        ),
        (Context(approved_count=5, recent_bad_run=1), "hello", "approved", ["TRUST_KNOWN"]),
        (
            Context(approved_count=5, honeypot_filled=True),
            "hello",
            "spam",
            ["HONEYPOT", "TRUST_KNOWN"],
        ),
        (
            Context(approved_count=5, form_token_problem="too_fast"),
            "hello",
            "spam",
            ["FORM_TOO_FAST", "TRUST_KNOWN"],
        ),
    ],
)
def test_trust_and_bot_traps(
    context: Context, content: str, outcome: str, rules: list[str]
) -> None:
    verdict = decide(content, context)
    assert verdict.outcome == outcome
    assert [hit.rule for hit in verdict.hits] == rules


def test_an_allow_listed_newcomer_is_not_held() -> None:
    verdict = decide("hello", Context(approved_count=0), email="friend@ok.example")
    assert verdict.outcome == "approved"


def test_trust_and_bot_traps_follow_the_settings() -> None:
    relaxed = parse_rules("version: 1\ntrust: {hold_new_commenters: false, hold_after_bad_run: 0}")
    submission = Submission("default", "t", "Ann", "ann@example.org", content="hi")
    context = Context(recent_bad_run=5, honeypot_filled=True, form_token_problem="missing")
    verdict = evaluate(relaxed, submission, context)
    assert (verdict.outcome, verdict.hits) == ("approved", ())


def test_pre_moderation_holds_everything_that_would_be_published() -> None:
    verdict = decide("hello", site="strict", email="friend@ok.example")
    assert verdict.outcome == "pending"
    assert [hit.rule for hit in verdict.hits] == ["FRIEND", "TRUST_KNOWN", "PRE_MODERATE"]
    assert decide("spamword", site="strict").outcome == "spam"


def test_the_classifier_adds_its_score_to_the_sum() -> None:
    ruleset = parse_rules(
        "version: 1\ntrust: {hold_new_commenters: false}\n"
        "rules: [{id: LEARNED, type: classifier, weight: 8.0}]"
    )
    submission = Submission("default", "t", "Ann", "a@b.org", content="win money now")
    context = Context(classify=lambda text: ClassifierScore(0.995, True, ("money", "win")))
    verdict = evaluate(ruleset, submission, context)
    assert (verdict.outcome, verdict.score) == ("spam", 7.92)
    assert "money, win" in verdict.hits[0].explanation
    cold = Context(classify=lambda text: ClassifierScore(0.995, False, ()))
    assert evaluate(ruleset, submission, cold).outcome == "approved"


def test_evaluation_is_deterministic_and_names_the_rules_version() -> None:
    first, second = decide("two four"), decide("two four")
    assert first == second
    assert first.rules_version == RULES.version


def test_a_site_may_turn_an_outcome_rule_into_a_scored_one() -> None:
    """A site's `score:` replaces the rule's hard outcome (a rule has one or the other)."""
    ruleset = parse_rules(
        "version: 1\ntrust: {hold_new_commenters: false}\n"
        "rules: [{id: HOLD, type: terms, terms: [holdword], outcome: pending}]\n"
        "sites: {news: {rules: {HOLD: {score: 1.0}}}}\n"
    )
    submission = Submission("news", "t", "Ann", "ann@example.org", content="holdword")
    verdict = evaluate(ruleset, submission, Context())
    assert (verdict.outcome, verdict.score) == ("approved", 1.0)
    held = evaluate(ruleset, Submission("default", "t", "Ann", "a@b.org", content="holdword"),
                    Context())
    assert held.outcome == "pending"


def test_pending_may_equal_spam_so_that_nothing_is_held_on_score() -> None:
    ruleset = parse_rules("version: 1\nthresholds: {pending: 5.0, spam: 5.0}\n"
                          "trust: {hold_new_commenters: false}\n"
                          "rules: [{id: FIVE, type: terms, terms: [five], score: 5.0}]\n")
    submission = Submission("default", "t", "Ann", "a@b.org", content="five")
    assert evaluate(ruleset, submission, Context()).outcome == "spam"


@pytest.mark.parametrize("override", ["plurals: true", "match: substring"])
def test_a_site_may_change_how_a_terms_rule_matches(override: str) -> None:
    """Found by a mutation audit: a site's `plurals: true` reused the file's compiled
    matcher, so "best casinos" stayed approved on that site."""
    ruleset = parse_rules(
        "version: 1\ntrust: {hold_new_commenters: false}\n"
        "rules: [{id: T, type: terms, terms: [casino], outcome: spam}]\n"
        f"sites: {{news: {{rules: {{T: {{{override}}}}}}}}}\n"
    )
    text = "best casinos" if "plurals" in override else "megacasinoworld deals"

    def outcome(site: str) -> str:
        submission = Submission(site, "t", "Ann", "a@b.org", content=text)
        return evaluate(ruleset, submission, Context()).outcome

    assert (outcome("news"), outcome("default")) == ("spam", "approved")
