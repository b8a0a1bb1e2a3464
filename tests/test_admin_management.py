"""Managing sites and keys: unambiguous key names, editable sites, strict queries, dry runs."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from moderation.extensions import db


def test_a_name_in_use_by_an_active_key_is_refused(api, keys):
    body = {"name": "night-shift", "role": "moderator", "sites": ["default"]}
    first = api.post("/api/v1/admin/keys", body, key=keys.admin)
    assert first.status_code == 201
    again = api.post("/api/v1/admin/keys", {"name": "night-shift", "role": "admin"},
                     key=keys.admin)
    assert again.status_code == 409
    assert again.get_json()["code"] == 409 and "night-shift" in again.get_json()["message"]
    names = [item["name"] for item in api.get("/api/v1/admin/keys", key=keys.admin)
             .get_json()["items"]]
    assert names.count("night-shift") == 1
    # Once revoked, the name is free: the audit log then names one key that can still act.
    api.delete(f"/api/v1/admin/keys/{first.get_json()['id']}", key=keys.admin)
    assert api.post("/api/v1/admin/keys", body, key=keys.admin).status_code == 201


@pytest.mark.parametrize("name", ["readers", "Readers", "command line", "COMMAND LINE"])
def test_the_audit_logs_own_actors_are_no_key_names(api, keys, runner, name):
    """A key named "readers" would have its decisions listed as reader flags (and left out
    of backtests); one named "command line" would pass for the shell."""
    response = api.post("/api/v1/admin/keys",
                        {"name": name, "role": "moderator", "sites": ["default"]},
                        key=keys.admin)
    assert response.status_code == 422, response.get_json()
    assert "name" in response.get_json()["errors"]
    result = runner.invoke(args=["keys", "create", "--role", "admin", "--name", name])
    assert result.exit_code != 0 and "mk_" not in result.output


def test_the_cli_refuses_a_name_in_use(runner, keys):
    result = runner.invoke(args=["keys", "create", "--role", "admin", "--name", "ops"])
    assert result.exit_code != 0
    assert "ops" in result.output and "mk_" not in result.output


def test_a_site_name_and_origins_can_be_changed(api, keys):
    renamed = api.client.patch("/api/v1/admin/sites/other", json={"name": " Other news "},
                               headers={"Authorization": f"Bearer {keys.admin}"})
    assert renamed.status_code == 200
    assert renamed.get_json()["name"] == "Other news"
    assert renamed.get_json()["allowed_origins"] == ["https://other.example"]
    moved = api.client.patch(
        "/api/v1/admin/sites/other",
        json={"allowed_origins": ["https://news.example/", "http://localhost:8080"]},
        headers={"Authorization": f"Bearer {keys.admin}"},
    )
    assert moved.status_code == 200
    site = api.get("/api/v1/admin/sites/other", key=keys.admin).get_json()
    assert site["slug"] == "other" and site["name"] == "Other news"
    assert site["allowed_origins"] == ["https://news.example", "http://localhost:8080"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"allowed_origins": ["ftp://x"]}, "allowed_origins"),
        ({"name": "x" * 201}, "name"),
        ({"name": "News\nInjected\tline"}, "name"),
        ({"name": "News\u2028Injected line"}, "name"),
        ({"name": "News\u0085Injected\u009bline"}, "name"),
        ({"slug": "renamed"}, "slug"),
    ],
)
def test_a_site_change_is_validated_as_creation_is(api, keys, body, field):
    response = api.client.patch("/api/v1/admin/sites/other", json=body,
                                headers={"Authorization": f"Bearer {keys.admin}"})
    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    assert api.get("/api/v1/admin/sites/other", key=keys.admin).get_json()["name"] == "Other site"


@pytest.mark.parametrize("origin", ["https://news.example:0", "https://news.example:99999",
                                    "https://news..example", "https://-news.example",
                                    "http://news.example:"])
def test_an_origin_no_browser_can_send_is_refused(api, keys, origin):
    response = api.post("/api/v1/admin/sites", {"slug": "odd", "allowed_origins": [origin]},
                        key=keys.admin)
    assert response.status_code == 422, response.get_json()
    assert "allowed_origins" in response.get_json()["errors"]


def test_an_origin_given_twice_is_kept_once(api, keys):
    origins = ["https://news.example", "HTTPS://News.Example/", "http://localhost:8080",
               "https://news.example:443"]
    created = api.post("/api/v1/admin/sites", {"slug": "twice", "allowed_origins": origins},
                       key=keys.admin).get_json()
    assert created["allowed_origins"] == ["https://news.example", "http://localhost:8080"]
    changed = api.client.patch("/api/v1/admin/sites/twice", json={"allowed_origins": origins[:2]},
                               headers={"Authorization": f"Bearer {keys.admin}"}).get_json()
    assert changed["allowed_origins"] == ["https://news.example"]


def test_a_site_change_changes_something(api, keys):
    for body in ({}, None):
        response = api.client.patch("/api/v1/admin/sites/other", json=body,
                                    headers={"Authorization": f"Bearer {keys.admin}"})
        assert response.status_code == 422, body
        assert "name" in response.get_json()["message"]


def test_changing_a_site_needs_an_existing_site_and_an_admin(api, keys):
    def patch(slug, key):
        return api.client.patch(f"/api/v1/admin/sites/{slug}", json={"name": "X"},
                                headers={"Authorization": f"Bearer {key}"})

    assert patch("nosuch", keys.admin).status_code == 404
    assert patch("other", keys.other_moderator).status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/admin/sites?foo=1",
        "/api/v1/admin/sites/default?foo=1",
        "/api/v1/admin/keys?role=admin",
        "/api/v1/admin/rules?foo=1",
    ],
)
def test_admin_reads_refuse_unknown_query_arguments(api, keys, path):
    response = api.get(path, key=keys.admin)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {path.rsplit("?")[1].split("=")[0]}
    assert api.get(path.split("?")[0], key=keys.admin).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/admin/sites?dry_run=1", {"slug": "news"}),
        ("patch", "/api/v1/admin/sites/other?dry_run=1", {"name": "Renamed"}),
        ("delete", "/api/v1/admin/sites/other?dry_run=1", None),
        ("post", "/api/v1/admin/keys?dry_run=1", {"name": "n", "role": "admin"}),
        ("delete", "/api/v1/admin/keys/2?dry_run=1", None),
        ("post", "/api/v1/admin/privacy/erase?dry_run=1", {"email": "ada@example.org"}),
        ("post", "/api/v1/admin/rules/test?dry_run=1", {"comment": {"content": "hi"}}),
        ("post", "/api/v1/admin/rules/backtest?limit=1000", {"rules": "version: 1\n"}),
    ],
)
def test_admin_writes_refuse_query_arguments(client, keys, method, path, body):
    # A query argument the route does not read must not look as if it had been applied:
    # the backtest would quietly replay its default 500 comments, not the 1,000 asked for.
    headers = {"Authorization": f"Bearer {keys.admin}"}
    response = getattr(client, method)(path, json=body, headers=headers)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {path.rsplit("?")[1].split("=")[0]}
    answer = getattr(client, method)(path.split("?")[0], json=body, headers=headers)
    assert answer.status_code in (200, 201, 204)


def test_one_key_is_read_by_its_id_as_it_is_revoked(api, keys):
    # DELETE /keys/<id> revoked a key that GET /keys/<id> could not show (405): an admin
    # had to page through the whole list to check one key's sites or whether it was revoked.
    listed = api.get("/api/v1/admin/keys", key=keys.admin).get_json()["items"]
    moderator = next(key for key in listed if key["name"] == "mod")
    path = f"/api/v1/admin/keys/{moderator['id']}"
    answer = api.get(path, key=keys.admin)
    assert answer.status_code == 200
    assert answer.get_json() == moderator and "secret" not in answer.get_json()
    assert api.delete(path, key=keys.admin).status_code == 204
    assert api.get(path, key=keys.admin).get_json()["revoked_at"] is not None
    missing = api.get("/api/v1/admin/keys/999", key=keys.admin)
    assert missing.status_code == 404 and missing.get_json()["message"] == "There is no key 999."
    assert api.get(path, key=keys.other_moderator).status_code == 403
    assert api.get(f"/api/v1/admin/keys/{moderator['id']}?x=1", key=keys.admin).status_code == 422


def test_a_dry_run_refuses_an_unknown_site(api, keys):
    def dry_run(site):
        return api.post("/api/v1/admin/rules/test",
                        {"comment": {"site": site, "content": "hello"}}, key=keys.admin)

    assert dry_run("other").status_code == 200
    response = dry_run("nosuch")
    assert response.status_code == 404 and "nosuch" in response.get_json()["message"]


@pytest.mark.parametrize(("field", "value"), [
    ("author_email", "bad"), ("ip", "bad"), ("author_url", "javascript:alert(1)"),
    ("author_url", 'https://a.example/"onmouseover="x'),
])
def test_a_dry_run_refuses_what_intake_refuses(api, keys, field, value):
    response = api.post("/api/v1/admin/rules/test",
                        {"comment": {"content": "hello", field: value}}, key=keys.admin)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]["comment"]


@pytest.mark.parametrize("url", ["", "https://news.example/a"])
def test_a_dry_run_takes_a_website_intake_takes_or_none(api, keys, url):
    response = api.post("/api/v1/admin/rules/test",
                        {"comment": {"content": "hello", "author_url": url}}, key=keys.admin)
    assert response.status_code == 200


def test_deleting_a_site_revokes_the_keys_left_without_a_site(api, keys):
    both = api.post("/api/v1/admin/keys",
                    {"name": "both", "role": "moderator", "sites": ["default", "other"]},
                    key=keys.admin).get_json()
    assert api.delete("/api/v1/admin/sites/other", key=keys.admin).status_code == 204
    assert api.get("/api/v1/moderation/queue", key=keys.other_moderator).status_code == 401
    # A live site key is a 403 here (wrong role); a revoked one is not a key at all.
    assert api.get("/api/v1/moderation/queue", key=keys.other_site).status_code == 401
    listed = {item["name"]: item for item in api.get("/api/v1/admin/keys", key=keys.admin)
              .get_json()["items"]}
    assert listed["other-mod"]["revoked_at"] and listed["other-backend"]["revoked_at"]
    assert listed["both"]["revoked_at"] is None and listed["both"]["sites"] == ["default"]
    assert api.get("/api/v1/moderation/queue", key=both["secret"]).status_code == 200
    assert api.get("/api/v1/moderation/queue", key=keys.moderator).status_code == 200


def test_the_database_refuses_a_second_active_key_of_a_name(app):
    """Two requests can both pass the service's check before either commits; the partial
    unique index (migration 0004) refuses the second insert, and a revoked key's name is
    still free to reuse."""
    from moderation.auth import new_key
    from moderation.models import ApiKey, Role

    with app.app_context():
        new_key("twin", Role.ADMIN, [])
        db.session.commit()
        new_key("twin", Role.ADMIN, [])
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()
        db.session.rollback()
        db.session.execute(sa.update(ApiKey).where(ApiKey.name == "twin")
                           .values(revoked_at=sa.func.now()))
        new_key("twin", Role.ADMIN, [])
        db.session.commit()


def test_a_key_name_with_invisible_characters_is_refused(api, keys):
    """"mod" and "mod\u200b" would read the same in the audit log."""
    answer = api.post("/api/v1/admin/keys", {"name": "mod\u200b", "role": "moderator",
                                             "sites": ["default"]}, key=keys.admin)
    assert answer.status_code == 422 and "name" in answer.get_json()["errors"]


def test_a_dry_run_refuses_an_email_that_intake_would_refuse(api, keys):
    answer = api.post("/api/v1/admin/rules/test",
                      {"comment": {"author_email": "not an address", "content": "hi"}},
                      key=keys.admin)
    assert answer.status_code == 422
    assert "comment" in answer.get_json()["errors"]
