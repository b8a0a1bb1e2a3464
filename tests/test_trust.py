"""Trust through the API: newcomers held, regulars rewarded, a run of spam held again."""

from __future__ import annotations

import pytest

from tests.conftest import RULES_DIR, comment


@pytest.fixture
def app_config():
    return {"RULES_FILE": str(RULES_DIR / "trust_rules.yaml")}


def test_trust_holds_newcomers_and_rewards_regulars(api, keys):
    first = api.post("/api/v1/comments", comment(content="Hello, first time here."))
    assert first.get_json()["status"] == "pending"
    detail = api.get(f"/api/v1/moderation/comments/{first.get_json()['id']}",
                     key=keys.moderator)
    assert "TRUST_NEW" in [hit["rule"] for hit in detail.get_json()["hits"]]
    api.post(f"/api/v1/moderation/comments/{first.get_json()['id']}/decision",
             {"action": "approve"}, key=keys.moderator,
             headers={"If-Match": detail.headers["ETag"]})
    second = api.post("/api/v1/comments", comment(content="Back again with a thought."))
    assert second.get_json()["status"] == "approved"
    for n in range(2):
        made = api.post("/api/v1/comments", comment(content=f"Regular remark {n}.")).get_json()
        assert made["status"] == "approved"
    regular = api.post("/api/v1/comments", comment(content="A holdword from a regular."))
    assert regular.get_json()["status"] == "approved"
    hits = api.get(f"/api/v1/moderation/comments/{regular.get_json()['id']}",
                   key=keys.moderator).get_json()["hits"]
    assert {"HOLD_WORD", "TRUST_KNOWN"} <= {hit["rule"] for hit in hits}


def test_a_run_of_spam_puts_a_commenter_back_under_review(api, keys):
    first = api.post("/api/v1/comments", comment(content="Hi there.")).get_json()
    etag = api.get(f"/api/v1/moderation/comments/{first['id']}", key=keys.admin).headers["ETag"]
    api.post(f"/api/v1/moderation/comments/{first['id']}/decision", {"action": "approve"},
             key=keys.admin, headers={"If-Match": etag})
    for n in range(2):
        made = api.post("/api/v1/comments", comment(content=f"Buy stuff {n}.")).get_json()
        api.post("/api/v1/moderation/bulk", {"ids": [made["id"]], "action": "spam"},
                 key=keys.admin)
    held = api.post("/api/v1/comments", comment(content="An ordinary remark.")).get_json()
    assert held["status"] == "pending"
    hits = api.get(f"/api/v1/moderation/comments/{held['id']}", key=keys.admin).get_json()["hits"]
    assert "TRUST_BAD_RUN" in [hit["rule"] for hit in hits]
