"""Every route in app.url_map is public by name, or answers 401 / 403 / allowed by key."""

from __future__ import annotations

import re

import pytest

from tests.conftest import comment

# (method, rule) pairs anyone may call. A new route is protected unless it is added here.
PUBLIC = {
    ("POST", "/api/v1/comments"),
    ("GET", "/api/v1/comments"),
    ("POST", "/api/v1/comments/<id:comment_id>/flags"),
    ("GET", "/api/v1/form-token"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/static/<path:filename>"),
}


# Who may call each protected route, as the contract says: written out here rather than
# read from the views, so that a view whose roles are widened by mistake fails the matrix
# (a mutation audit found a moderator let into privacy erasure passed it).
MODERATORS = {"admin", "moderator"}
ADMINS = {"admin"}
ROLES = {
    ("GET", "/api/v1/moderation/queue"): MODERATORS,
    ("GET", "/api/v1/moderation/comments/<id:comment_id>"): MODERATORS,
    ("POST", "/api/v1/moderation/comments/<id:comment_id>/decision"): MODERATORS,
    ("POST", "/api/v1/moderation/bulk"): MODERATORS,
    ("GET", "/api/v1/moderation/audit"): MODERATORS,
    ("PUT", "/api/v1/moderation/threads"): MODERATORS,
    ("GET", "/api/v1/admin/sites"): ADMINS,
    ("POST", "/api/v1/admin/sites"): ADMINS,
    ("GET", "/api/v1/admin/sites/<string:slug>"): ADMINS,
    ("PATCH", "/api/v1/admin/sites/<string:slug>"): ADMINS,
    ("DELETE", "/api/v1/admin/sites/<string:slug>"): ADMINS,
    ("GET", "/api/v1/admin/keys"): ADMINS,
    ("POST", "/api/v1/admin/keys"): ADMINS,
    ("GET", "/api/v1/admin/keys/<id:key_id>"): ADMINS,
    ("DELETE", "/api/v1/admin/keys/<id:key_id>"): ADMINS,
    ("POST", "/api/v1/admin/privacy/erase"): ADMINS,
    ("GET", "/api/v1/admin/privacy/export"): ADMINS,
    ("GET", "/api/v1/admin/rules"): ADMINS,
    ("POST", "/api/v1/admin/rules/test"): ADMINS,
    ("POST", "/api/v1/admin/rules/backtest"): ADMINS,
}


def routes(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule.rule, rule.endpoint


def test_every_protected_route_declares_its_roles(app):
    for method, rule, endpoint in routes(app):
        view = app.view_functions[endpoint]
        if (method, rule) in PUBLIC:
            continue
        assert getattr(view, "required_roles", None), f"{method} {rule} has no key check"


def _fill(rule: str, comment_id: int, key_id: int) -> str:
    rule = re.sub(r"<id:comment_id>", str(comment_id), rule)
    rule = re.sub(r"<id:key_id>", str(key_id), rule)
    return re.sub(r"<(string:)?slug>", "default-missing", rule)


def test_authorization_matrix(app, api, keys):
    comment_id = api.post("/api/v1/comments", comment()).get_json()["id"]
    key_id = 999_999
    role_keys = {"admin": keys.admin, "moderator": keys.moderator, "site": keys.site}
    checked = 0
    for method, rule, endpoint in routes(app):
        if (method, rule) in PUBLIC:
            continue
        roles = ROLES[(method, rule)]  # a new route is added to ROLES with its roles
        assert {role.value for role in app.view_functions[endpoint].required_roles} == roles
        path = _fill(rule, comment_id, key_id)
        call = getattr(api.client, method.lower())

        def send(key, call=call, path=path):
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            return call(path, json={}, headers=headers)

        assert send(None).status_code == 401, f"{method} {rule} without a key"
        basic = call(path, json={}, headers={"Authorization": "Basic dXNlcjpwYXNz"})
        assert basic.status_code == 401, f"{method} {rule} with Basic credentials"
        assert basic.get_json()["message"] == "Use 'Authorization: Bearer <api key>'."
        assert send("mk_abc_wrong").status_code == 401, f"{method} {rule} with a bad key"
        unknown = "mk_0123456789ab_" + "x" * 43
        assert send(unknown).status_code == 401, f"{method} {rule} with an unknown key"
        for role, key in role_keys.items():
            status = send(key).status_code
            if role in roles:
                assert status not in (401, 403), f"{method} {rule} as {role}: {status}"
            else:
                assert status == 403, f"{method} {rule} as {role}: {status}"
        checked += 1
    assert checked == len(ROLES)


def test_a_known_prefix_with_a_wrong_secret_is_a_401(app, api, keys):
    """The prefix is no secret (the key list shows it): the rest of the key must match."""
    _, prefix, secret = keys.admin.split("_", 2)
    forged = f"mk_{prefix}_" + ("x" if secret[0] != "x" else "y") * len(secret)
    assert api.get("/api/v1/admin/keys", key=forged).status_code == 401
    assert api.get("/api/v1/moderation/queue", key=forged).status_code == 401
    assert api.get("/api/v1/admin/keys", key=keys.admin).status_code == 200


def test_the_public_routes_ignore_another_sites_credentials(api):
    """A browser sends the Basic credentials of a host behind HTTP authentication (staging,
    an intranet) with every request to it: the comment form's post answered 401."""
    basic = {"Authorization": "Basic dXNlcjpwYXNz"}
    posted = api.client.post("/api/v1/comments", json=comment(), headers=basic)
    assert posted.status_code == 201
    assert api.client.get("/api/v1/comments?thread=/2026/11/27/a-story",
                          headers=basic).status_code == 200
    # A key sent wrongly is still a 401: posted as a browser, a site's backend would
    # lose its commenters' IPs and share one allowance among them all.
    for wrong in ("Bearer ", "mk_abc_def", "Token mk_abc_def", "Bearer: mk_abc_def",
                  "Bearer\tmk_abc_def"):
        answer = api.client.post("/api/v1/comments", json=comment(content="Another."),
                                 headers={"Authorization": wrong})
        assert answer.status_code == 401, wrong


def test_a_bad_key_is_a_401_on_every_public_route(api, keys):
    """Only the comment post checked: a thread read, a form token or a flag sent with an
    unknown, revoked or malformed key answered as if it had none, as the README denied."""
    comment_id = api.post("/api/v1/comments", comment()).get_json()["id"]
    revoked = api.post("/api/v1/admin/keys", {"name": "old", "role": "site",
                                              "sites": ["default"]}, key=keys.admin).get_json()
    assert api.delete(f"/api/v1/admin/keys/{revoked['id']}", key=keys.admin).status_code == 204
    routes = [("get", "/api/v1/comments?thread=/2026/11/27/a-story"),
              ("get", "/api/v1/form-token?thread=/2026/11/27/a-story"),
              ("post", f"/api/v1/comments/{comment_id}/flags")]
    for wrong in ("Token mk_abc_def", "Bearer mk_abc_defghijklmnop", f"Bearer {revoked['secret']}"):
        for method, path in routes:
            answer = getattr(api.client, method)(path, json={"reason": "spam"},
                                                 headers={"Authorization": wrong})
            assert answer.status_code == 401, (wrong, path)
    for method, path in routes:  # a good key is no hindrance
        answer = getattr(api.client, method)(path, json={"reason": "spam"},
                                             headers={"Authorization": f"Bearer {keys.site}"})
        assert answer.status_code in (200, 202), (path, answer.get_json())


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/moderation/queue?site=default",
        "/api/v1/moderation/audit?site=default",
        "/api/v1/moderation/comments/{id}",
    ],
)
def test_a_moderator_of_another_site_is_403(api, keys, path):
    comment_id = api.post("/api/v1/comments", comment()).get_json()["id"]
    url = path.format(id=comment_id)
    assert api.get(url, key=keys.other_moderator).status_code == 403
    assert api.get(url, key=keys.moderator).status_code == 200


def test_decision_on_another_sites_comment_is_403(api, keys):
    comment_id = api.post("/api/v1/comments", comment()).get_json()["id"]
    response = api.post(
        f"/api/v1/moderation/comments/{comment_id}/decision",
        {"action": "delete"},
        key=keys.other_moderator,
        headers={"If-Match": '"1"'},
    )
    assert response.status_code == 403


def test_a_moderator_of_two_sites_sees_both_and_no_third(api, keys):
    """The key is read with one row per site it names: every one of them counts."""
    api.post("/api/v1/admin/sites", {"slug": "third", "name": "Third"}, key=keys.admin)
    both = api.post("/api/v1/admin/keys",
                    {"name": "both", "role": "moderator", "sites": ["default", "other"]},
                    key=keys.admin).get_json()["secret"]
    for site in ("default", "other", "third"):
        assert api.post("/api/v1/comments", comment(site=site)).status_code == 201
    queue = api.get("/api/v1/moderation/queue?status=approved", key=both)
    assert queue.status_code == 200
    assert sorted(item["site"] for item in queue.get_json()["items"]) == ["default", "other"]
    for site in ("default", "other"):
        assert api.get(f"/api/v1/moderation/queue?site={site}", key=both).status_code == 200
    assert api.get("/api/v1/moderation/queue?site=third", key=both).status_code == 403
    assert api.get("/api/v1/moderation/queue?site=fourth", key=both).status_code == 404


@pytest.mark.parametrize("scheme", ["bearer", "BEARER"])
def test_the_bearer_scheme_is_case_insensitive(api, keys, scheme):
    answer = api.client.get("/api/v1/moderation/queue",
                            headers={"Authorization": f"{scheme} {keys.moderator}"})
    assert answer.status_code == 200


def test_a_bearer_key_after_two_spaces_is_taken(api, keys):
    answer = api.client.get("/api/v1/moderation/queue",
                            headers={"Authorization": f"Bearer  {keys.moderator}"})
    assert answer.status_code == 200
