"""Admin routes for sites and keys; keys are stored hashed and shown once."""

from __future__ import annotations

import sqlalchemy as sa

from moderation.extensions import db
from moderation.models import ApiKey, Comment, Decision
from tests.conftest import comment


def test_sites_can_be_created_listed_read_and_deleted(api, keys):
    created = api.post(
        "/api/v1/admin/sites",
        {"slug": "news", "name": "News", "allowed_origins": ["https://news.example"]},
        key=keys.admin,
    )
    assert created.status_code == 201
    assert created.get_json()["slug"] == "news"
    listed = api.get("/api/v1/admin/sites", key=keys.admin).get_json()["items"]
    assert {"default", "news", "other"} <= {site["slug"] for site in listed}
    assert api.get("/api/v1/admin/sites/news", key=keys.admin).status_code == 200
    assert api.post("/api/v1/admin/sites", {"slug": "news"}, key=keys.admin).status_code == 409
    assert api.delete("/api/v1/admin/sites/news", key=keys.admin).status_code == 204
    assert api.get("/api/v1/admin/sites/news", key=keys.admin).status_code == 404


def test_site_fields_are_validated(api, keys):
    response = api.post(
        "/api/v1/admin/sites",
        {"slug": "Not A Slug", "allowed_origins": ["ftp://x"]},
        key=keys.admin,
    )
    assert response.status_code == 422
    assert {"slug", "allowed_origins"} <= set(response.get_json()["errors"])


def test_a_site_with_comments_is_deleted_only_with_them_when_asked(api, app, keys, runner):
    """Erasing or purging never emptied a site (neither removes an approved comment), so
    the 409's advice led nowhere and a test site that got one comment stayed for good."""
    made = api.post("/api/v1/comments", comment(site="other")).get_json()
    assert api.post(f"/api/v1/moderation/comments/{made['id']}/decision", {"action": "approve"},
                    key=keys.admin, headers={"If-Match": "*"}).status_code == 200
    refused = api.delete("/api/v1/admin/sites/other", key=keys.admin)
    assert refused.status_code == 409 and "delete_comments=true" in refused.get_json()["message"]
    assert api.delete("/api/v1/admin/sites/default?delete_comments=true",
                      key=keys.admin).status_code == 409
    assert api.delete("/api/v1/admin/sites/other?delete_comments=maybe",
                      key=keys.admin).status_code == 422
    assert api.delete("/api/v1/admin/sites/other?delete_comments=true",
                      key=keys.admin).status_code == 204
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Comment)) == 0
        # The audit log keeps the decision, linked to no comment or site any more.
        decision = db.session.scalars(sa.select(Decision)).one()
        assert (decision.action, decision.comment_id, decision.site_id) == ("approve", None, None)
    assert api.get(f"/api/v1/moderation/comments/{made['id']}", key=keys.admin).status_code == 404


def test_sites_delete_on_the_command_line(api, runner):
    assert runner.invoke(args=["sites", "create", "trial"]).exit_code == 0
    api.post("/api/v1/comments", comment(site="trial"))
    kept = runner.invoke(args=["sites", "delete", "trial"])
    assert kept.exit_code == 1 and "has comments" in kept.output
    asked = runner.invoke(args=["sites", "delete", "trial", "--delete-comments"], input="n\n")
    assert asked.exit_code == 1 and "trial" in runner.invoke(args=["sites", "list"]).output
    deleted = runner.invoke(args=["sites", "delete", "trial", "--delete-comments", "--yes"])
    assert deleted.exit_code == 0, deleted.output
    assert "trial" not in runner.invoke(args=["sites", "list"]).output


def test_created_sites_and_keys_say_where_they_are(api, keys):
    site = api.post("/api/v1/admin/sites", {"slug": "placed"}, key=keys.admin)
    assert site.status_code == 201
    assert api.get(site.headers["Location"], key=keys.admin).get_json()["slug"] == "placed"
    key = api.post("/api/v1/admin/keys", {"name": "placed-mod", "role": "moderator",
                                          "sites": ["placed"]}, key=keys.admin)
    assert key.status_code == 201
    shown = api.get(key.headers["Location"], key=keys.admin).get_json()
    assert shown["id"] == key.get_json()["id"] and "secret" not in shown


def test_keys_are_shown_once_and_stored_as_hashes(api, app, keys):
    created = api.post(
        "/api/v1/admin/keys",
        {"name": "night-shift", "role": "moderator", "sites": ["default"]},
        key=keys.admin,
    )
    assert created.status_code == 201
    secret = created.get_json()["secret"]
    listed = api.get("/api/v1/admin/keys", key=keys.admin).get_json()["items"]
    assert secret not in str(listed)
    assert all("secret" not in item for item in listed)
    with app.app_context():
        stored = [row.secret_hash for row in db.session.scalars(sa.select(ApiKey))]
        assert secret not in stored and all(len(h) == 64 for h in stored)
    assert api.get("/api/v1/moderation/queue", key=secret).status_code == 200


def test_key_requests_are_validated(api, keys):
    for body in (
        {"name": "x", "role": "site", "sites": []},
        {"name": "x", "role": "site", "sites": ["default", "other"]},  # one site, one key
        {"name": "x", "role": "moderator", "sites": []},
        {"name": "x", "role": "admin", "sites": ["default"]},
        {"name": "x", "role": "owner"},
    ):
        assert api.post("/api/v1/admin/keys", body, key=keys.admin).status_code == 422, body
    unknown_site = {"name": "x", "role": "moderator", "sites": ["nowhere"]}
    assert api.post("/api/v1/admin/keys", unknown_site, key=keys.admin).status_code == 404


def test_a_revoked_key_stops_working(api, keys):
    created = api.post(
        "/api/v1/admin/keys", {"name": "temp", "role": "admin"}, key=keys.admin
    ).get_json()
    assert api.get("/api/v1/admin/keys", key=created["secret"]).status_code == 200
    assert api.delete(f"/api/v1/admin/keys/{created['id']}", key=keys.admin).status_code == 204
    assert api.get("/api/v1/admin/keys", key=created["secret"]).status_code == 401
    assert api.delete("/api/v1/admin/keys/999999", key=keys.admin).status_code == 404


def test_the_last_active_admin_key_cannot_be_revoked(api, keys):
    listed = api.get("/api/v1/admin/keys", key=keys.admin).get_json()["items"]
    first = next(key["id"] for key in listed if key["role"] == "admin" and not key["revoked_at"])
    refused = api.delete(f"/api/v1/admin/keys/{first}", key=keys.admin)
    assert refused.status_code == 409
    assert "last active admin key" in refused.get_json()["message"]
    assert api.get("/api/v1/admin/keys", key=keys.admin).status_code == 200

    # With a second admin key, either may go, but not both.
    second = api.post("/api/v1/admin/keys", {"name": "ops-2", "role": "admin"},
                      key=keys.admin).get_json()
    assert api.delete(f"/api/v1/admin/keys/{first}", key=second["secret"]).status_code == 204
    assert api.delete(f"/api/v1/admin/keys/{second['id']}",
                      key=second["secret"]).status_code == 409
    assert api.get("/api/v1/admin/keys", key=second["secret"]).status_code == 200


def test_revoking_a_revoked_key_again_keeps_when_it_was_revoked(api, keys):
    """The revocation time, in the audit trail, does not move on a second DELETE."""
    listed = api.get("/api/v1/admin/keys", key=keys.admin).get_json()["items"]
    moderator = next(key for key in listed if key["name"] == "mod")
    path = f"/api/v1/admin/keys/{moderator['id']}"
    assert api.delete(path, key=keys.admin).status_code == 204
    first = api.get(path, key=keys.admin).get_json()["revoked_at"]
    assert first is not None
    assert api.delete(path, key=keys.admin).status_code == 204
    assert api.get(path, key=keys.admin).get_json()["revoked_at"] == first
