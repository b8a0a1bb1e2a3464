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


def test_trust_is_earned_on_each_site(api, keys):
    """Approved on one site, a commenter is new on another: a stranger who typed that
    address there was published at once, and learnt it was known elsewhere."""
    first = api.post("/api/v1/comments", comment(content="Hello, first time here."))
    api.post(f"/api/v1/moderation/comments/{first.get_json()['id']}/decision",
             {"action": "approve"}, key=keys.moderator, headers={"If-Match": "*"})
    assert api.post("/api/v1/comments", comment(content="Back again.")).get_json()["status"] \
        == "approved"
    elsewhere = api.post("/api/v1/comments", comment(site="other", content="Hello there."))
    assert elsewhere.get_json()["status"] == "pending"
    hits = api.get(f"/api/v1/moderation/comments/{elsewhere.get_json()['id']}",
                   key=keys.other_moderator).get_json()["hits"]
    assert "TRUST_NEW" in [hit["rule"] for hit in hits]


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


def test_history_counts_and_the_bad_run_since_the_last_approval(app, api, keys):
    """Counts over the whole history; the bad run counts only what follows the last approval."""
    from moderation.services import trust
    from moderation.services.identity import email_hash
    from moderation.services.sites import get_site_id

    def decide(action: str) -> None:
        made = api.post("/api/v1/comments", comment(content=f"Remark {decide.n}.")).get_json()
        decide.n += 1
        api.post("/api/v1/moderation/bulk", {"ids": [made["id"]], "action": action},
                 key=keys.admin)
    decide.n = 0

    def history() -> tuple[int, int, int]:
        with app.test_request_context():
            context = trust.context_for(email_hash(comment()["author_email"]),
                                        get_site_id("default"),
                                        honeypot_filled=False, form_token_problem=None)
            return context.approved_count, context.rejected_count, context.recent_bad_run

    assert history() == (0, 0, 0)
    for action in ["approve"] * 12 + ["spam", "reject"]:
        decide(action)
    assert history() == (12, 2, 2)
    decide("approve")
    assert history() == (13, 2, 0)
    for _ in range(trust.RECENT + 2):
        decide("spam")
    assert history() == (13, 14, trust.RECENT)
