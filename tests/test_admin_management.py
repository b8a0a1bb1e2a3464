"""Managing sites and keys: unambiguous key names, editable sites, strict queries, dry runs."""

from __future__ import annotations


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


def test_the_cli_refuses_a_name_in_use(runner, keys):
    result = runner.invoke(args=["keys", "create", "--role", "admin", "--name", "ops"])
    assert result.exit_code != 0
    assert "ops" in result.output and "mk_" not in result.output
