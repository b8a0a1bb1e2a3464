"""Moderation semantics a client relies on: If-Match per RFC 9110, queue items as full
details, and no silently ignored query arguments."""

from __future__ import annotations

import pytest

from tests.conftest import comment


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
