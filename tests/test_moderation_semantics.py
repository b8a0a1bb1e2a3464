"""Moderation semantics a client relies on: If-Match per RFC 9110, queue items as full
details, and no silently ignored query arguments."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from moderation.extensions import db
from tests.conftest import comment

QUEUE = "/api/v1/moderation/queue"


def held(api, n: int = 0) -> int:
    """A new comment held for moderation."""
    response = api.post("/api/v1/comments",
                        comment(content=f"holdword {n}", author_email=f"h{n}@example.org"))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def detail(api, key, comment_id):
    return api.get(f"/api/v1/moderation/comments/{comment_id}", key=key)


def decide(api, key, comment_id, if_match, action="approve"):
    headers = {} if if_match is None else {"If-Match": if_match}
    return api.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                    {"action": action, "reason": "checked"}, key=key, headers=headers)


def flagged_back(api, keys) -> int:
    """A comment approved by a moderator, then sent back to the queue by three readers."""
    comment_id = held(api, 99)
    etag = detail(api, keys.moderator, comment_id).headers["ETag"]
    assert decide(api, keys.moderator, comment_id, etag).status_code == 200
    for reader, reason in (("10.9.0.1", "abuse"), ("10.9.0.2", "spam"), ("10.9.0.3", "other")):
        api.post(f"/api/v1/comments/{comment_id}/flags", {"reason": reason},
                 environ_base={"REMOTE_ADDR": reader})
    return comment_id


# If-Match (RFC 9110 13.1.1): strong comparison, `*`, lists; 412 unless a tag matches.

@pytest.mark.parametrize("if_match", [
    '"{v}"',
    "*",
    '"zzz", "{v}"',
    '"zzz",  ,"{v}"',
    'W/"zzz", "{v}"',
])
def test_if_match_that_names_the_current_etag_applies_the_decision(api, keys, if_match):
    comment_id = held(api)
    version = detail(api, keys.moderator, comment_id).get_json()["version"]
    response = decide(api, keys.moderator, comment_id, if_match.format(v=version))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "approved"
    assert response.headers["ETag"] == f'"{version + 1}"'


@pytest.mark.parametrize("if_match", [
    'W/"{v}"',  # a weak tag never matches under strong comparison
    'W/"{v}", "zzz"',
    '"zzz"',
    '"{next}"',
    "{v}",  # not an entity-tag: those are quoted
    "not an etag",
    '"{v}',
    '*, "{v}"',  # `*` stands alone or not at all
    'w/"{v}"',
])
def test_if_match_that_names_no_current_etag_is_412_and_changes_nothing(api, keys, if_match):
    comment_id = held(api)
    before = detail(api, keys.moderator, comment_id).get_json()
    header = if_match.format(v=before["version"], next=before["version"] + 1)
    response = decide(api, keys.moderator, comment_id, header)
    assert response.status_code == 412, response.get_json()
    assert response.get_json()["code"] == 412
    assert detail(api, keys.moderator, comment_id).get_json() == before


@pytest.mark.parametrize("if_match", [None, "", "   "])
def test_if_match_missing_or_empty_is_428(api, keys, if_match):
    comment_id = held(api)
    response = decide(api, keys.moderator, comment_id, if_match)
    assert response.status_code == 428, response.get_json()
    assert detail(api, keys.moderator, comment_id).get_json()["status"] == "pending"


def test_if_match_star_on_a_missing_comment_is_404(api, keys):
    assert decide(api, keys.moderator, 999_999, "*").status_code == 404


def test_openapi_describes_the_if_match_semantics(api):
    operation = api.get("/openapi.json").get_json()["paths"][
        "/api/v1/moderation/comments/{comment_id}/decision"]["post"]
    [if_match] = [p for p in operation["parameters"] if p["name"] == "If-Match"]
    assert "*" in if_match["description"] and "weak" in if_match["description"].lower()
    assert set(operation["responses"]) >= {"200", "412", "428"}
# Reader flags: a moderator's approval overrules the flags that came before it.

def flag(api, comment_id: int, reader: str):
    return api.post(f"/api/v1/comments/{comment_id}/flags", {"reason": "spam"},
                    environ_base={"REMOTE_ADDR": reader})


def test_approving_a_flagged_comment_needs_as_many_new_flags_to_return_it(api, keys):
    comment_id = flagged_back(api, keys)
    etag = detail(api, keys.moderator, comment_id).headers["ETag"]
    assert decide(api, keys.moderator, comment_id, etag).status_code == 200
    for reader in ("10.9.1.1", "10.9.1.2"):
        assert flag(api, comment_id, reader).status_code == 202
        assert detail(api, keys.moderator, comment_id).get_json()["status"] == "approved"
    assert flag(api, comment_id, "10.9.1.3").status_code == 202
    body = detail(api, keys.moderator, comment_id).get_json()
    assert (body["status"], body["status_reason"], body["flag_count"]) == (
        "pending", "flagged", 6)


# Queue items are full comment details, with flags and history fetched per page.

def test_queue_items_are_the_same_as_the_comment_details(api, keys):
    plain = held(api, 1)
    returned = flagged_back(api, keys)
    page = api.get(QUEUE, key=keys.moderator).get_json()
    assert [item["id"] for item in page["items"]] == [plain, returned]
    assert page["items"] == [detail(api, keys.moderator, plain).get_json(),
                             detail(api, keys.moderator, returned).get_json()]
    item = page["items"][1]
    assert [flag["reason"] for flag in item["flags"]] == ["abuse", "spam", "other"]
    assert [(d["actor"], d["action"]) for d in item["history"]] == [
        ("mod", "approve"), ("readers", "flag")]
    assert page["items"][0]["flags"] == [] and page["items"][0]["history"] == []


def queue_item_schema(api) -> dict:
    spec = api.get("/openapi.json").get_json()
    page = spec["paths"]["/api/v1/moderation/queue"]["get"]["responses"]["200"]
    schemas = spec["components"]["schemas"]
    page_schema = schemas[page["content"]["application/json"]["schema"]["$ref"].split("/")[-1]]
    return schemas[page_schema["properties"]["items"]["items"]["$ref"].split("/")[-1]]


def test_queue_spec_describes_flags_and_history_in_each_item(api):
    item = queue_item_schema(api)
    assert item["properties"]["flags"]["items"]["$ref"].endswith("/FlagDetail")
    assert item["properties"]["history"]["items"]["$ref"].endswith("/Decision")


def test_queue_reads_flags_and_history_for_the_whole_page_at_once(app, api, keys):
    flagged_back(api, keys)
    for n in range(3):
        held(api, n)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    def statements_for(limit: int) -> int:
        statements.clear()
        response = api.get(f"{QUEUE}?status=pending&limit={limit}", key=keys.admin)
        assert response.status_code == 200 and len(response.get_json()["items"]) == limit
        return len(statements)

    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            statements_for(4)  # the key's first use reads more than the queue
            one, four = statements_for(1), statements_for(4)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
    assert one == four, statements
    assert sum("FROM flags" in s for s in statements) == 1
    assert sum("FROM decisions" in s for s in statements) == 1


# Routes without query arguments refuse unknown ones, as the others do.

def test_unknown_query_arguments_are_refused_on_every_moderation_route(api, keys):
    comment_id = held(api)
    etag = detail(api, keys.moderator, comment_id).headers["ETag"]
    answers = {
        "detail": detail(api, keys.moderator, f"{comment_id}?foo=1"),
        "decision": api.post(f"/api/v1/moderation/comments/{comment_id}/decision?foo=1",
                             {"action": "approve"}, key=keys.moderator,
                             headers={"If-Match": etag}),
        "bulk": api.post("/api/v1/moderation/bulk?foo=1", {"ids": [comment_id], "action": "spam"},
                         key=keys.moderator),
        "threads": api.put("/api/v1/moderation/threads?foo=1",
                           {"thread": "/a", "closed": True}, key=keys.moderator),
    }
    for route, response in answers.items():
        assert response.status_code == 422, (route, response.get_json())
        assert "foo" in response.get_json()["errors"], route
    assert detail(api, keys.moderator, comment_id).get_json()["status"] == "pending"


# A decision repeated (a double click, a retried request) changes nothing the second time.

def audit_count(api, keys) -> int:
    return len(api.get("/api/v1/moderation/audit", key=keys.admin).get_json()["items"])


@pytest.mark.parametrize("action", ["approve", "spam", "reject", "delete"])
def test_repeating_a_decision_answers_as_the_first_and_changes_nothing(api, keys, action):
    comment_id = held(api)
    first = decide(api, keys.moderator, comment_id, detail(api, keys.moderator, comment_id)
                   .headers["ETag"], action)
    assert first.status_code == 200, first.get_json()
    audited = audit_count(api, keys)
    for if_match in (first.headers["ETag"], "*"):
        again = decide(api, keys.moderator, comment_id, if_match, action)
        assert again.status_code == 200, again.get_json()
        assert again.headers["ETag"] == first.headers["ETag"]
        assert again.get_json() == first.get_json()
    assert audit_count(api, keys) == audited
    assert detail(api, keys.moderator, comment_id).get_json() == first.get_json()


def test_a_retry_with_the_etag_it_first_sent_is_answered_as_the_first(api, keys):
    comment_id = held(api)
    etag = detail(api, keys.moderator, comment_id).headers["ETag"]
    first = decide(api, keys.moderator, comment_id, etag, "spam")
    retried = decide(api, keys.moderator, comment_id, etag, "spam")
    assert retried.status_code == 200, retried.get_json()
    assert retried.headers["ETag"] == first.headers["ETag"]
    assert retried.get_json() == first.get_json()


@pytest.mark.parametrize("who, action", [("other", "spam"), ("same", "approve")])
def test_a_stale_etag_is_412_unless_the_change_since_is_the_callers_same_decision(
    api, keys, who, action
):
    comment_id = held(api)
    etag = detail(api, keys.moderator, comment_id).headers["ETag"]
    assert decide(api, keys.moderator, comment_id, etag, "spam").status_code == 200
    before = detail(api, keys.moderator, comment_id).get_json()
    key = keys.admin if who == "other" else keys.moderator
    response = decide(api, key, comment_id, etag, action)
    assert response.status_code == 412, response.get_json()
    assert detail(api, keys.moderator, comment_id).get_json() == before


def test_a_retry_is_412_from_a_new_key_given_the_deciding_keys_name(api, keys):
    """The audit log names keys, and a revoked key's name can be reused: the new key did
    not make the decision, so for it the old ETag is stale."""
    made = api.post("/api/v1/admin/keys", {"name": "carol", "role": "moderator",
                                           "sites": ["default"]}, key=keys.admin).get_json()
    comment_id = held(api)
    etag = detail(api, keys.moderator, comment_id).headers["ETag"]
    assert decide(api, made["secret"], comment_id, etag, "approve").status_code == 200
    assert api.delete(f"/api/v1/admin/keys/{made['id']}", key=keys.admin).status_code == 204
    successor = api.post("/api/v1/admin/keys", {"name": "carol", "role": "moderator",
                                                "sites": ["default"]}, key=keys.admin)
    assert successor.status_code == 201
    response = decide(api, successor.get_json()["secret"], comment_id, etag, "approve")
    assert response.status_code == 412, response.get_json()


def test_a_retry_is_412_once_anything_else_changed_the_comment(api, keys):
    comment_id = held(api)
    etag = detail(api, keys.moderator, comment_id).headers["ETag"]
    assert decide(api, keys.moderator, comment_id, etag, "spam").status_code == 200
    assert decide(api, keys.admin, comment_id, "*", "approve").status_code == 200
    assert decide(api, keys.admin, comment_id, "*", "spam").status_code == 200
    assert decide(api, keys.moderator, comment_id, etag, "spam").status_code == 412


def test_confirming_the_rules_status_is_a_decision(api, keys):
    """Spam the rules caught, confirmed by a moderator: audited and learned from."""
    response = api.post("/api/v1/comments", comment(content="spammyword offer"))
    comment_id = response.get_json()["id"]
    before = detail(api, keys.moderator, comment_id)
    assert before.get_json()["status"] == "spam"
    confirmed = decide(api, keys.moderator, comment_id, before.headers["ETag"], "spam")
    assert confirmed.status_code == 200, confirmed.get_json()
    body = confirmed.get_json()
    assert body["version"] == before.get_json()["version"] + 1
    assert [(h["old_status"], h["new_status"]) for h in body["history"]] == [("spam", "spam")]


def test_a_bulk_decision_repeated_changes_nothing(api, keys):
    ids = [held(api, 1), held(api, 2)]
    bulk = {"ids": ids, "action": "reject", "reason": "wave"}
    first = api.post("/api/v1/moderation/bulk", bulk, key=keys.moderator).get_json()
    details = [detail(api, keys.moderator, i).get_json() for i in ids]
    audited = audit_count(api, keys)
    again = api.post("/api/v1/moderation/bulk", bulk, key=keys.moderator).get_json()
    assert again == first == {"results": [{"id": i, "status": "rejected"} for i in ids]}
    assert [detail(api, keys.moderator, i).get_json() for i in ids] == details
    assert audit_count(api, keys) == audited


def test_approving_a_reported_comment_a_moderator_approved_overrules_the_reports(api, keys):
    """Approved by a moderator, the approval was taken for a repeat and left alone: the
    reports stood, and the next one sent the comment back as if no moderator had looked."""
    comment_id = flagged_back(api, keys)
    assert decide(api, keys.moderator, comment_id, "*").status_code == 200
    for reader in ("10.9.1.1", "10.9.1.2"):
        assert flag(api, comment_id, reader).status_code == 202
    assert decide(api, keys.moderator, comment_id, "*").status_code == 200
    history = detail(api, keys.moderator, comment_id).get_json()["history"]
    assert [d["action"] for d in history] == ["approve", "flag", "approve", "approve"]
    assert flag(api, comment_id, "10.9.1.3").status_code == 202
    assert detail(api, keys.moderator, comment_id).get_json()["status"] == "approved"
    # With nothing reported since, approving again is the repeat it was.
    assert decide(api, keys.moderator, comment_id, "*").status_code == 200  # overrules it
    assert decide(api, keys.moderator, comment_id, "*").status_code == 200
    assert len(detail(api, keys.moderator, comment_id).get_json()["history"]) == 5


def test_a_return_to_the_queue_counts_the_readers_who_sent_it_back(api, keys):
    comment_id = flagged_back(api, keys)
    assert decide(api, keys.moderator, comment_id, "*").status_code == 200
    for reader in ("10.9.1.1", "10.9.1.2", "10.9.1.3"):
        assert flag(api, comment_id, reader).status_code == 202
    history = detail(api, keys.moderator, comment_id).get_json()["history"]
    assert [(d["action"], d["reason"]) for d in history if d["action"] == "flag"] == [
        ("flag", "flagged by 3 readers"), ("flag", "flagged by 3 readers")]
