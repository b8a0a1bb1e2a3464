"""bench/replay.py claims to give evaluate.py's outcomes without HTTP: hold it to the service.

The same labelled comments go through the real intake and decision routes (in-process)
and through the replay; every outcome must agree. A change to how intake or learning
judges that the replay does not copy fails here, before it skews an evaluation.
"""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from moderation.rules.config import default_rules_path
from tests.conftest import Api, Keys

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from evaluate import USER_AGENT, Labelled, Tally, commenter, served_rules  # noqa: E402
from replay import load_rules, replay_pass  # noqa: E402

THREAD = "/videos/replay-check"
# Mostly shared words, so that the classifier is unsure of many comments and small
# differences in its sums would show; a few abusive and link-bearing ones reach the rules.
COMMON = ["this", "song", "video", "my", "out", "love", "check", "new", "you", "the",
          "best", "like", "2015", "still", "party"]
SPAM_WORDS = ["subscribe", "channel", "free", "gift", "visit", "http://promo.example/deal"]
HAM_WORDS = ["dance", "memories", "summer", "lyrics", "listening", "fucking"]
AUTHORS = [f"Author {n}" for n in range(25)]


def labelled(generator: random.Random, n: int) -> list[Labelled]:
    rows = []
    for _ in range(n):
        spam = generator.random() < 0.5
        own = SPAM_WORDS if spam else HAM_WORDS
        words = [generator.choice(own if generator.random() < 0.3 else COMMON)
                 for _ in range(generator.randint(2, 9))]
        rows.append(Labelled(generator.choice(AUTHORS), " ".join(words), spam))
    return rows


@pytest.fixture
def app_config(tmp_path: Path) -> dict[str, Any]:
    # The shipped rules as evaluate.py serves them: hold_new_commenters off.
    (tmp_path / "rules.yaml").write_text(served_rules(default_rules_path()))
    shutil.copytree(default_rules_path().parent / "lists", tmp_path / "lists")
    return {"RULES_FILE": str(tmp_path / "rules.yaml"), "CLASSIFIER_MIN_DECISIONS": 4}


def served(api: Api, keys: Keys, train: list[Labelled], test: list[Labelled],
           scores: list[float]) -> Tally:
    """evaluate.py's trained pass against the app in-process; test scores into ``scores``."""
    tally = Tally()

    def submit(row: Labelled) -> Any:
        email, ip = commenter(row)
        return api.post("/api/v1/comments", {
            "thread": THREAD, "author_name": row.author, "author_email": email,
            "content": row.content, "ip": ip, "user_agent": USER_AGENT,
        }, key=keys.site)

    for row in train:
        response = submit(row)
        if response.status_code == 201:
            comment_id = response.json["id"]
            detail = api.get(f"/api/v1/moderation/comments/{comment_id}", key=keys.moderator)
            decided = api.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                               {"action": "spam" if row.spam else "approve", "reason": "replay"},
                               key=keys.moderator, headers={"If-Match": detail.headers["ETag"]})
            assert decided.status_code == 200
        elif response.status_code == 403:
            tally.blocked_in_training += 1
        else:
            assert response.status_code == 409
            tally.duplicates += 1
    for row in test:
        response = submit(row)
        if response.status_code == 409:
            tally.duplicates += 1
        elif response.status_code == 403:
            tally.count(row.spam, "rejected")
        else:
            detail = api.get(f"/api/v1/moderation/comments/{response.json['id']}",
                             key=keys.moderator)
            tally.count(row.spam, detail.json["status"])
            scores.append(detail.json["score"])
    return tally


def test_the_replay_gives_the_services_outcomes(api: Api, keys: Keys, app_config) -> None:
    generator = random.Random(7)
    train, test = labelled(generator, 70), labelled(generator, 40)
    test += test[:3] + train[:2]  # duplicates: refused in both
    replayed_scores: list[float] = []
    served_scores: list[float] = []
    replayed = replay_pass(load_rules(Path(app_config["RULES_FILE"])), THREAD, train, test,
                           min_decisions=app_config["CLASSIFIER_MIN_DECISIONS"],
                           scores=replayed_scores)
    through_the_service = served(api, keys, train, test, served_scores)
    # The check has teeth only if the classifier decided some and the rules some others.
    statuses = {status for _, status in replayed.outcomes}
    assert {"spam", "approved"} <= statuses
    assert replayed.outcomes == through_the_service.outcomes
    assert replayed_scores == pytest.approx(served_scores, abs=1e-9)
    assert replayed.duplicates == 5
    assert (replayed.duplicates, replayed.blocked_in_training) == (
        through_the_service.duplicates, through_the_service.blocked_in_training)
