"""Backtests: a hand-made moderation history replayed through candidate rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from moderation.rules import default_rules_path
from tests.conftest import Api, Keys, comment

CANDIDATE = """\
version: 1
thresholds: {pending: 3.0, spam: 6.0}
trust: {hold_new_commenters: false}
rules:
  - {id: CASINO, type: terms, terms: [casino], score: 6.0}
  - {id: PILLS, type: terms, terms: [pills], score: 3.5}
  - {id: NEVER, type: terms, terms: [zeppelin], score: 1.0}
"""


def post(api: Api, text: str, email: str) -> int:
    response = api.post("/api/v1/comments", comment(content=text, author_email=email))
    assert response.status_code == 201, response.json
    return response.json["id"]


def decide(api: Api, keys: Keys, comment_id: int, action: str) -> None:
    etag = api.get(f"/api/v1/moderation/comments/{comment_id}", key=keys.moderator).headers["ETag"]
    response = api.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                        {"action": action, "reason": "test"}, key=keys.moderator,
                        headers={"If-Match": etag})
    assert response.status_code == 200, response.json


def history(api: Api, keys: Keys) -> None:
    """Three spam (one rejected, one reversed from approve) and two ham, plus noise."""
    decide(api, keys, post(api, "Visit my casino for a bonus", "a@example.org"), "spam")
    decide(api, keys, post(api, "The casino night raised funds for the school",
                           "b@example.org"), "approve")
    decide(api, keys, post(api, "A fair and careful article", "c@example.org"), "approve")
    decide(api, keys, post(api, "Cheap pills shipped overnight", "d@example.org"), "reject")
    deleted = post(api, "Off-topic rambling", "e@example.org")
    decide(api, keys, deleted, "approve")
    decide(api, keys, deleted, "delete")  # deleted: says nothing about spam, left out
    post(api, "Nobody decided this casino comment yet", "f@example.org")
    reversed_id = post(api, "Great casino bonus codes", "g@example.org")
    decide(api, keys, reversed_id, "approve")
    decide(api, keys, reversed_id, "spam")


def backtest(api: Api, keys: Keys, rules: str, limit: int = 100) -> Any:
    return api.post("/api/v1/admin/rules/backtest", {"rules": rules, "limit": limit},
                    key=keys.admin)


def learned_rule(api: Api, keys: Keys, pairs: int, spam_above: float,
                 ham_below: float) -> dict[str, Any]:
    """Decide ``pairs`` spam and ham comments, then backtest a classifier rule LEARNED with
    those thresholds: its line of the report."""
    for n in range(pairs):
        decide(api, keys, post(api, f"Cheap replica watches discount code {n} buy now",
                               f"s{n}@example.org"), "spam")
        decide(api, keys, post(api, f"The council should publish minute {n} of the meeting",
                               f"h{n}@example.org"), "approve")
    rules = CANDIDATE + ("  - {id: LEARNED, type: classifier, weight: 10.0, "
                         f"spam_above: {spam_above}, ham_below: {ham_below}}}\n")
    report = backtest(api, keys, rules).json
    return {rule["rule"]: rule for rule in report["rules"]}["LEARNED"]


def test_counts_match_the_hand_made_history(api: Api, keys: Keys) -> None:
    history(api, keys)
    response = backtest(api, keys, CANDIDATE)
    assert response.status_code == 200, response.json
    report = response.json
    assert (report["decided"], report["spam"], report["ham"]) == (5, 3, 2)
    assert report["confusion"] == {
        "spam": {"caught": 2, "pending": 1, "missed": 0},
        "ham": {"passed": 1, "pending": 0, "false_positives": 1},
    }
    rules = {rule["rule"]: rule for rule in report["rules"]}
    assert rules["CASINO"]["spam_hits"] == 2 and rules["CASINO"]["ham_hits"] == 1
    assert rules["CASINO"]["spam_percent"] == 66.67 and rules["CASINO"]["ham_percent"] == 50.0
    assert rules["CASINO"]["s_o"] == round(66.667 / 116.667, 3)
    assert (rules["PILLS"]["spam_hits"], rules["PILLS"]["ham_hits"], rules["PILLS"]["s_o"]) == (
        1, 0, 1.0)
    assert (rules["NEVER"]["spam_hits"], rules["NEVER"]["ham_hits"], rules["NEVER"]["s_o"]) == (
        0, 0, None)


def test_limit_takes_the_latest_decisions(api: Api, keys: Keys) -> None:
    history(api, keys)
    report = backtest(api, keys, CANDIDATE, limit=2).json
    # The latest two: the reversed casino comment (spam) and the rejected pills.
    assert (report["decided"], report["spam"], report["ham"]) == (2, 2, 0)
    assert report["confusion"]["spam"] == {"caught": 1, "pending": 1, "missed": 0}


def test_history_counts_only_what_came_before(api: Api, keys: Keys) -> None:
    first = post(api, "My first comment here", "regular@example.org")
    decide(api, keys, first, "approve")
    second = post(api, "And my second one", "regular@example.org")
    decide(api, keys, second, "approve")
    holding = CANDIDATE.replace("hold_new_commenters: false", "hold_new_commenters: true")
    report = backtest(api, keys, holding).json
    # The first comment had no approved one before it; its own approval does not count.
    assert report["confusion"]["ham"] == {"passed": 1, "pending": 1, "false_positives": 0}
    rules = {rule["rule"]: rule for rule in report["rules"]}
    assert rules["TRUST_NEW"]["ham_hits"] == 1


def test_invalid_rules_answer_422_naming_the_place(api: Api, keys: Keys) -> None:
    broken = CANDIDATE + "  - {id: BROKEN, type: regex, pattern: '(unclosed', score: 1.0}\n"
    response = backtest(api, keys, broken)
    assert response.status_code == 422
    assert "BROKEN" in response.json["message"]
    assert "pattern" in " ".join(response.json["errors"]["rules"])


def test_only_admins_backtest(api: Api, keys: Keys) -> None:
    response = api.post("/api/v1/admin/rules/backtest", {"rules": CANDIDATE},
                        key=keys.moderator)
    assert response.status_code == 403
    assert backtest(api, keys, CANDIDATE, limit=0).status_code == 422


def test_cli_prints_the_confusion_and_the_rules(
    app: Flask, api: Api, keys: Keys, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    history(api, keys)
    path = tmp_path / "candidate.yaml"
    path.write_text(CANDIDATE)
    result = runner.invoke(args=["rules", "backtest", str(path), "--limit", "100"])
    assert result.exit_code == 0, result.output
    assert "5 decided comments: 3 spam, 2 ham" in result.output
    assert "spam: 2 caught, 1 pending, 0 missed" in result.output
    assert "ham:  1 passed, 0 pending, 1 false positives" in result.output
    (casino,) = [line for line in result.output.splitlines() if line.endswith(" CASINO")]
    assert casino.split() == ["66.67", "50.00", "0.571", "2", "1", "CASINO"]

    path.write_text(CANDIDATE + "  - {id: BROKEN, type: regex, pattern: '(unclosed', score: 1.0}\n")
    result = runner.invoke(args=["rules", "backtest", str(path)])
    assert result.exit_code == 1
    assert "BROKEN" in result.output


# The rules in force set the honeypot, so intake takes the field and records the trap.
@pytest.mark.parametrize("app_config", [{"RULES_FILE": str(default_rules_path())}])
def test_bots_caught_by_the_honeypot_are_caught_in_the_backtest(api: Api, keys: Keys) -> None:
    """The backtest replayed every comment with an empty honeypot: the bots the honeypot
    caught, and moderators confirmed, were reported as missed."""
    for n in range(2):
        bot = api.post("/api/v1/comments", {**comment(content=f"Nice post {n}",
                                                      author_email=f"bot{n}@example.org"),
                                            "website_url": "http://bot.example"})
        decide(api, keys, bot.json["id"], "spam")
    decide(api, keys, post(api, "A fair and careful article", "c@example.org"), "approve")
    trapping = CANDIDATE + "honeypot: {field: website_url}\n"
    report = backtest(api, keys, trapping).json
    assert report["confusion"]["spam"] == {"caught": 2, "pending": 0, "missed": 0}
    rules = {rule["rule"]: rule for rule in report["rules"]}
    assert (rules["HONEYPOT"]["spam_hits"], rules["HONEYPOT"]["ham_hits"]) == (2, 0)


def test_erased_comments_are_left_out(api: Api, keys: Keys) -> None:
    """An erased comment has lost its author, address and user agent, and every erased
    commenter shared one trust history: replayed, it was judged on what it no longer has."""
    kept = post(api, "Visit my casino for a bonus", "a@example.org")
    decide(api, keys, kept, "spam")
    erased = post(api, "Cheap pills shipped overnight", "d@example.org")
    assert api.post("/api/v1/admin/privacy/erase", {"email": "d@example.org"},
                    key=keys.admin).status_code == 200
    decide(api, keys, erased, "spam")
    report = backtest(api, keys, CANDIDATE).json
    assert (report["decided"], report["spam"]) == (1, 1)


@pytest.mark.parametrize("app_config", [{"CLASSIFIER_MIN_DECISIONS": 2}])
def test_the_classifier_hits_where_it_scored_toward_spam(api: Api, keys: Keys) -> None:
    """Counted where it vouched for a comment too (a negative score, on most ham), a
    classifier that told spam from ham well read S/O 0.495 (audit)."""
    learned = learned_rule(api, keys, pairs=4, spam_above=0.6, ham_below=0.4)
    assert (learned["spam_hits"], learned["ham_hits"], learned["s_o"]) == (4, 0, 1.0)


def test_the_limit_is_a_whole_number_the_api_answers_in_time(api: Api, keys: Keys) -> None:
    """A number as text ("10") is taken, as elsewhere; past 2,000 the replay could outlast
    the worker's timeout on PostgreSQL (audit): the command line takes more."""
    history(api, keys)
    assert backtest(api, keys, CANDIDATE, limit="2").json["decided"] == 2  # type: ignore[arg-type]
    assert backtest(api, keys, CANDIDATE, limit=2001).status_code == 422
    too_long = CANDIDATE + "# " + "x" * 250_000 + "\n"
    answer = backtest(api, keys, too_long)
    assert answer.status_code == 422 and "rules" in answer.json["errors"]


def test_ham_the_candidate_would_reject_is_a_false_positive(api: Api, keys: Keys) -> None:
    decide(api, keys, post(api, "The council met on Tuesday", "a@example.org"), "approve")
    rules = CANDIDATE + "  - {id: BAN, type: terms, terms: [council], outcome: rejected}\n"
    report = backtest(api, keys, rules).json
    assert report["confusion"]["ham"]["false_positives"] == 1


def test_readers_flags_after_an_approval_leave_the_moderators_decision(
    api: Api, keys: Keys
) -> None:
    """Enough flags send an approved comment back to the queue, logged as the readers'
    doing; the moderator's approval is still the decision a backtest replays."""
    comment_id = post(api, "A careful article", "a@example.org")
    decide(api, keys, comment_id, "approve")
    for ip in ("10.1.0.1", "10.1.0.2", "10.1.0.3"):
        api.post(f"/api/v1/comments/{comment_id}/flags", {"reason": "spam"},
                 environ_base={"REMOTE_ADDR": ip})
    detail = api.get(f"/api/v1/moderation/comments/{comment_id}", key=keys.moderator).json
    assert detail["status"] == "pending" and detail["history"][-1]["actor"] == "readers"
    report = backtest(api, keys, CANDIDATE).json
    assert (report["decided"], report["ham"]) == (1, 1)


@pytest.mark.parametrize("app_config", [{"CLASSIFIER_MIN_DECISIONS": 3}])
def test_each_replayed_comment_is_left_out_of_the_classifier(api: Api, keys: Keys) -> None:
    """Exactly the minimum of each kind: with its own decision left out, no replay has
    enough to judge by, so the classifier hits nothing (it would hit them all, judging
    the comments it learned from)."""
    learned = learned_rule(api, keys, pairs=3, spam_above=0.51, ham_below=0.49)
    assert (learned["spam_hits"], learned["ham_hits"]) == (0, 0)
