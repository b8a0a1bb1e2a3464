"""The learned classifier: its maths, and learning and un-learning through decisions."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from moderation.classifier import (
    MAX_TOKEN,
    STRENGTH,
    Counts,
    chi2_q,
    combine,
    logistic_step,
    score,
    token_probability,
    tokens,
)
from moderation.extensions import db
from moderation.models import ClassifierStep, ClassifierToken, ClassifierTotal, Comment
from moderation.services import learning
from tests.conftest import Api, Keys, comment

CLASSIFIER_RULES = """\
version: 1
thresholds: {pending: 3.0, spam: 6.0}
trust: {hold_new_commenters: false}
rules:
  - {id: CLASSIFIER, type: classifier, weight: 10.0, spam_above: 0.8, ham_below: 0.2}
"""
SPAM_TEXTS = [
    "Buy cheap replica watches today, huge discount, order now",
    "Cheap watches at a discount, order your replica now",
    "Huge discount on replica watches, buy now",
]
HAM_TEXTS = [
    "The council vote on the new library was closer than the article suggests",
    "I was at the library meeting and the council listened to residents",
    "Good reporting on the council and the library budget",
]


# The classifier reading every field it may: the author's name and website too.
NAME_AND_URL_RULES = CLASSIFIER_RULES.replace(
    "ham_below: 0.2}", "ham_below: 0.2,\n     targets: [content, author_name, author_url]}")


@pytest.fixture
def app_config(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(getattr(request, "param", CLASSIFIER_RULES))
    return {"RULES_FILE": str(rules), "CLASSIFIER_MIN_DECISIONS": 3}


def post(api: Api, text: str, n: int, thread: str = "/2026/11/27/a-story") -> int:
    response = api.post("/api/v1/comments", comment(content=text, thread=thread,
                                                    author_email=f"c{n}@example.org"))
    assert response.status_code == 201, response.json
    return response.json["id"]


def decide(api: Api, keys: Keys, comment_id: int, action: str) -> dict[str, Any]:
    detail = api.get(f"/api/v1/moderation/comments/{comment_id}", key=keys.moderator)
    response = api.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                        {"action": action, "reason": "test"}, key=keys.moderator,
                        headers={"If-Match": detail.headers["ETag"]})
    assert response.status_code == 200, response.json
    return response.json


def train(api: Api, keys: Keys) -> None:
    # Each text twice (in two threads, so not a duplicate): a word seen in only three
    # comments is not yet a strong clue (see moderation.classifier.STRENGTH).
    for thread in ("/2026/11/27/a-story", "/2026/11/28/another-story"):
        for n, text in enumerate(SPAM_TEXTS):
            decide(api, keys, post(api, text, n, thread), "spam")
        for n, text in enumerate(HAM_TEXTS):
            decide(api, keys, post(api, text, 100 + n, thread), "approve")


def probability(app: Flask, text: str) -> float:
    with app.app_context():
        result = learning.classify(text)
        assert result.ready
        return result.probability


def token_rows(app: Flask) -> dict[str, tuple[int, int]]:
    with app.app_context():
        rows = db.session.execute(sa.select(ClassifierToken.token, ClassifierToken.spam,
                                            ClassifierToken.ham))
        return {token: (spam, ham) for token, spam, ham in rows}


# --- tokenizer and maths -----------------------------------------------------------------


def test_tokens_fold_words_like_the_rules_do() -> None:
    features = tokens("Cheap V1AGRA and v.i.a.g.r.a here")
    assert {"cheap", "viagra", "here"} <= features
    # No word pairs: they repeat their words' evidence (see ``tokens``).
    assert "cheap viagra" not in features


def test_tokens_add_stems_and_the_opening_word() -> None:
    features = tokens("Please subscribers, subscribe!")
    assert {"first:please", "stem:subsc", "stem:pleas"} <= features
    # Short words are their own stem; numbers and skipped words have none.
    assert not any(token.startswith("stem:") for token in tokens("sub me 12345678 now"))


def test_tokens_name_link_hosts_and_shapes() -> None:
    features = tokens("SEE www.Shop.Example.com/deal and https://bit.ly/x !! 😍")
    assert {"url:www.shop.example.com", "url:example.com", "url:bit.ly"} <= features
    assert {"shape:link", "shape:links", "shape:caps", "shape:exclaim", "sym:😍"} <= features
    assert "shape:link" not in tokens("no links at all")


def test_tokens_fit_the_column() -> None:
    features = tokens("a" * 300 + " " + "x.example." * 30 + "com")
    assert features
    assert all(len(token) <= MAX_TOKEN for token in features)
    assert "skip:a 300" in features


def test_token_probability_is_smoothed_towards_unknown() -> None:
    assert token_probability(Counts(0, 0), 10, 10) == 0.5
    once = token_probability(Counts(1, 0), 10, 10)
    often = token_probability(Counts(20, 0), 20, 20)
    assert once == pytest.approx((STRENGTH * 0.5 + 1) / (STRENGTH + 1))
    assert 0.5 < once < often < 1
    assert token_probability(Counts(0, 5), 10, 10) < 0.2


def test_chi2_q_matches_the_closed_form_for_two_degrees() -> None:
    assert chi2_q(0.0, 2) == 1.0
    assert chi2_q(4.0, 2) == pytest.approx(math.exp(-2.0))
    assert chi2_q(1000.0, 10) < 1e-100


def test_combining_agrees_with_its_evidence() -> None:
    assert combine([]) == 0.5
    assert combine([0.99] * 5) > 0.99
    assert combine([0.01] * 5) < 0.01
    assert combine([0.99, 0.01]) == pytest.approx(0.5)


def test_score_names_the_clues_that_pulled_its_way() -> None:
    result = score({"cheap": Counts(9, 0), "watches": Counts(8, 1), "the": Counts(5, 5),
                    "library": Counts(0, 1)}, 10, 10)
    assert result.probability > 0.55
    assert result.clues == ("cheap", "watches")
    assert "the" not in result.clues and "library" not in result.clues


def test_only_strong_clues_make_the_indicator_confident() -> None:
    # One strong clue (p >= 0.85) and a weak one: Fisher's indicator, with its distance
    # from 0.5 scaled by 1 / (1 + 1).
    counts = {"cheap": Counts(9, 0), "watches": Counts(8, 1)}
    fisher = combine(token_probability(seen, 10, 10) for seen in counts.values())
    assert score(counts, 10, 10).probability == pytest.approx(0.5 + (fisher - 0.5) / 2)
    # Many middling clues, none strong (common words a small corpus saw more in spam):
    # Fisher alone would be sure; without strong clues the verdict stays unsure.
    middling = {word: Counts(7, 2) for word in ("if", "you", "my", "so", "much")}
    assert combine(token_probability(seen, 10, 10) for seen in middling.values()) > 0.85
    assert score(middling, 10, 10).probability == pytest.approx(0.5)
    # A strong clue the other way argues against the verdict; it does not back it.
    mixed = {"cheap": Counts(9, 0), "watches": Counts(8, 1), "library": Counts(0, 9)}
    fisher = combine(token_probability(seen, 10, 10) for seen in mixed.values())
    assert fisher > 0.5
    assert score(mixed, 10, 10).probability == pytest.approx(0.5 + (fisher - 0.5) / 2)
    # Strong clues that agree: confident.
    strong = {word: Counts(10, 0) for word in ("replica", "watches", "cheap", "order")}
    assert score(strong, 10, 10).probability > 0.8
    assert score({w: Counts(0, 10) for w in strong}, 10, 10).probability < 0.2


def test_a_regression_step_moves_the_bias_between_passes() -> None:
    """Five passes of 0.1 on one new token, the bias following at a tenth: 0.2366537
    (0.2378319 if the bias stood still, as it did in a mutation nothing caught)."""
    assert logistic_step(0.0, {}, frozenset({"a"}), True) == pytest.approx(0.2366537, abs=1e-7)
    assert logistic_step(0.0, {}, frozenset({"a"}), False) == pytest.approx(-0.2366537, abs=1e-7)


# --- learning through the decision API ---------------------------------------------------


def test_cold_start_is_neutral_and_adds_no_hit(app: Flask, api: Api, keys: Keys) -> None:
    with app.app_context():
        result = learning.classify(SPAM_TEXTS[0])
    assert (result.ready, result.probability, result.tokens) == (False, 0.5, ())
    comment_id = post(api, SPAM_TEXTS[0], 1)
    detail = api.get(f"/api/v1/moderation/comments/{comment_id}", key=keys.moderator).json
    assert detail["status"] == "approved"
    assert [hit for hit in detail["hits"] if hit["rule"] == "CLASSIFIER"] == []


def test_not_ready_until_enough_of_each_kind(app: Flask, api: Api, keys: Keys) -> None:
    for n, text in enumerate(SPAM_TEXTS * 2):
        decide(api, keys, post(api, f"{text} {n}", n), "spam")
    with app.app_context():
        assert not learning.classify(SPAM_TEXTS[0]).ready  # six spam, no ham yet


def test_ready_with_exactly_the_minimum_of_each_kind(app: Flask, api: Api, keys: Keys) -> None:
    for n, text in enumerate(SPAM_TEXTS):
        decide(api, keys, post(api, text, n), "spam")
    for n, text in enumerate(HAM_TEXTS):
        decide(api, keys, post(api, text, 100 + n), "approve")
    with app.app_context():
        assert learning.classify(SPAM_TEXTS[0]).ready  # 3 and 3, the minimum here
        # A backtest replaying one of them leaves it out: then one kind is short of it.
        assert not learning.classify(SPAM_TEXTS[0], leave_out="spam").ready
        assert not learning.classify(SPAM_TEXTS[0], leave_out="ham").ready


EXTRA_SPAM = "Order cheap replica watches now with a huge discount code"
EXTRA_HAM = "The library budget vote at the council was reported fairly"


@pytest.mark.parametrize(("text", "action", "label"),
                         [(EXTRA_SPAM, "spam", "spam"), (EXTRA_HAM, "approve", "ham")])
def test_leaving_a_comment_out_is_as_if_it_was_never_learned(
    app: Flask, api: Api, keys: Keys, text: str, action: str, label: str
) -> None:
    """What a backtest asks when it replays a decided comment: else the classifier is
    credited for remembering the very comment it judges."""
    train(api, keys)
    comment_id = post(api, text, 999)
    with app.app_context():
        before = learning.classify(text)
    decide(api, keys, comment_id, action)
    with app.app_context():
        after = learning.classify(text)
        left_out = learning.classify(text, leave_out=label, comment_id=comment_id)
    assert after.probability != pytest.approx(before.probability, abs=1e-3)
    assert left_out.ready and left_out.probability == pytest.approx(before.probability,
                                                                     abs=1e-9)


DISABLED_FIRST = """\
version: 1
trust: {hold_new_commenters: false}
rules:
  - {id: OLD, type: classifier, targets: [author_name], enabled: false}
  - {id: CLASSIFIER, type: classifier, weight: 10.0, targets: [content, author_url]}
"""


@pytest.mark.parametrize("app_config", [DISABLED_FIRST], indirect=True)
def test_learning_reads_the_fields_of_the_classifier_in_force(app: Flask) -> None:
    with app.app_context():
        assert learning.classifier_targets("default") == ("content", "author_url")


def test_decisions_teach_and_the_hit_shows_tokens(app: Flask, api: Api, keys: Keys) -> None:
    train(api, keys)
    # Several strong clues each way: past 0.85 and under 0.15 (the evidence scaling holds
    # five strong clues to 0.08..0.92).
    assert probability(app, "cheap replica watches, order now") > 0.85
    assert probability(app, "the council and the library") < 0.15

    comment_id = post(api, "Order cheap replica watches now", 50)
    detail = api.get(f"/api/v1/moderation/comments/{comment_id}", key=keys.moderator).json
    assert detail["status"] == "spam"
    (hit,) = [hit for hit in detail["hits"] if hit["rule"] == "CLASSIFIER"]
    assert hit["score"] > 6
    assert "replica" in hit["match"] and "watches" in hit["match"]
    assert "replica" in hit["explanation"]

    comment_id = post(api, "What did the council say about the library?", 51)
    detail = api.get(f"/api/v1/moderation/comments/{comment_id}", key=keys.moderator).json
    (hit,) = [hit for hit in detail["hits"] if hit["rule"] == "CLASSIFIER"]
    assert detail["status"] == "approved" and hit["score"] < -6


def test_a_reversed_decision_moves_the_score_back(app: Flask, api: Api, keys: Keys) -> None:
    train(api, keys)
    text = "A discount for library members, order at the council office"
    before = probability(app, text)
    counts_before = token_rows(app)

    comment_id = post(api, text, 60)
    decide(api, keys, comment_id, "approve")
    as_ham = probability(app, text)
    decide(api, keys, comment_id, "spam")
    as_spam = probability(app, text)
    assert as_ham < before < as_spam

    decide(api, keys, comment_id, "approve")
    assert probability(app, text) == pytest.approx(as_ham)
    decide(api, keys, comment_id, "reject")
    assert probability(app, text) == pytest.approx(before)
    assert token_rows(app) == counts_before
    with app.app_context():
        assert db.session.get(Comment, comment_id).learned_as is None


@pytest.mark.parametrize("action", ["reject", "delete"])
def test_reject_and_delete_unlearn(app: Flask, api: Api, keys: Keys, action: str) -> None:
    train(api, keys)
    counts_before = token_rows(app)
    comment_id = post(api, "Replica watches for the library fundraiser", 70)
    decide(api, keys, comment_id, "spam")
    assert token_rows(app) != counts_before
    decide(api, keys, comment_id, action)
    assert token_rows(app) == counts_before


def weight_rows(app: Flask) -> dict[str, float]:
    """The regression's weights by token, and its bias as ``@bias``."""
    with app.app_context():
        weights = dict(db.session.execute(sa.select(ClassifierToken.token,
                                                    ClassifierToken.weight)).all())
        weights["@bias"] = db.session.scalar(sa.select(sa.func.sum(ClassifierTotal.weight)))
        return weights


@pytest.mark.parametrize("action", ["reject", "delete"])
def test_unlearning_takes_back_the_regression_step(
    app: Flask, api: Api, keys: Keys, action: str
) -> None:
    train(api, keys)
    before = weight_rows(app)
    comment_id = post(api, "Replica watches for the library fundraiser", 90)
    decide(api, keys, comment_id, "spam")
    learned = weight_rows(app)
    assert learned["replica"] > before["replica"] and learned["fundraiser"] > 0
    decide(api, keys, comment_id, "approve")  # a reversal: the spam step out, a ham step in
    assert weight_rows(app)["fundraiser"] < 0
    decide(api, keys, comment_id, action)
    assert weight_rows(app) == pytest.approx(before)
    with app.app_context():
        assert db.session.get(ClassifierStep, comment_id) is None


def test_the_same_decision_twice_learns_once(app: Flask, api: Api, keys: Keys) -> None:
    train(api, keys)
    trained = token_rows(app)["replica"]
    comment_id = post(api, "Replica watches again", 80)
    decide(api, keys, comment_id, "spam")
    once = token_rows(app)
    decide(api, keys, comment_id, "spam")
    assert token_rows(app) == once
    assert once["replica"] == (trained[0] + 1, trained[1])


def test_erasure_unlearns_from_the_text_that_taught(app: Flask, api: Api, keys: Keys) -> None:
    train(api, keys)
    counts_before, weights_before = token_rows(app), weight_rows(app)
    kept = post(api, "Replica watches for the library fundraiser", 60)
    decide(api, keys, kept, "spam")
    taught = token_rows(app)
    erased = post(api, "Fundraiser tickets, replica watches, order now", 61)
    decide(api, keys, erased, "spam")

    # Erasing with the content deleted takes back what that comment taught...
    response = api.post("/api/v1/admin/privacy/erase",
                        {"email": "c61@example.org", "delete_content": True}, key=keys.admin)
    assert response.status_code == 200
    assert token_rows(app) == taught
    # ...and keeping the content keeps what it taught; a reversal after the erasure then
    # takes back exactly that, not counts of tokens the changed comment never taught.
    api.post("/api/v1/admin/privacy/erase", {"email": "c60@example.org"}, key=keys.admin)
    assert token_rows(app) == taught
    decide(api, keys, kept, "delete")
    assert token_rows(app) == counts_before
    assert weight_rows(app) == pytest.approx(weights_before)


@pytest.mark.parametrize("app_config", [NAME_AND_URL_RULES], indirect=True)
@pytest.mark.parametrize("delete_content", [False, True])
def test_erasure_leaves_no_token_of_the_name_or_website(
    app: Flask, api: Api, keys: Keys, delete_content: bool
) -> None:
    """A classifier that reads the author's name and website learns them as tokens
    ("zebulon", "url:zebsblog.example"): an erasure takes them out of its tables, and
    keeps what the text taught while the text is kept."""
    train(api, keys)
    trained = token_rows(app)["replica"]
    made = api.post("/api/v1/comments", comment(
        content="Replica watches here", author_name="Zebulon Quark",
        author_email="zq@example.org", author_url="https://zebsblog.example/me"))
    decide(api, keys, made.json["id"], "spam")

    def traces() -> list[str]:
        with app.app_context():
            stored = list(db.session.scalars(sa.select(ClassifierToken.token)))
            stored += db.session.scalars(sa.select(ClassifierStep.tokens))
        return [t for t in stored if any(part in t for part in ("zebul", "quark", "zebsb"))]

    assert traces()  # learned, so the erasure has something to take back
    api.post("/api/v1/admin/privacy/erase",
             {"email": "zq@example.org", "delete_content": delete_content}, key=keys.admin)
    assert traces() == []
    assert token_rows(app)["replica"] == (trained[0] + (not delete_content), trained[1])


def test_unlearning_takes_back_what_was_taught_after_the_tokenizer_changed(
    app: Flask, api: Api, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upgrade may tokenise the same text differently (a new normaliser rule, say), or
    the classifier rule may read other fields by now: a reversal must still take back the
    tokens the decision taught, not today's tokens of the text."""
    train(api, keys)
    counts_before, weights_before = token_rows(app), weight_rows(app)
    comment_id = post(api, "Replica watches for the library fundraiser", 95)
    decide(api, keys, comment_id, "spam")

    def upgraded(text: str) -> frozenset[str]:
        return frozenset(token for token in tokens(text) if token != "replica") | {"new:token"}

    monkeypatch.setattr(learning, "tokens", upgraded)
    decide(api, keys, comment_id, "reject")
    assert token_rows(app) == counts_before
    assert weight_rows(app) == pytest.approx(weights_before)


def test_a_comment_learned_before_tokens_were_kept_unlearns_from_its_text(
    app: Flask, api: Api, keys: Keys
) -> None:
    train(api, keys)
    counts_before = token_rows(app)
    comment_id = post(api, "Replica watches for the library fundraiser", 96)
    decide(api, keys, comment_id, "spam")
    with app.app_context():  # as migration 0005 leaves the steps learned before it
        db.session.execute(sa.update(ClassifierStep).values(tokens=None))
        db.session.commit()
    decide(api, keys, comment_id, "reject")
    assert token_rows(app) == counts_before
