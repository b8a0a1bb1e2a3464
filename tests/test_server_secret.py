"""The server secret: every instance on one database must hash addresses alike.

Each instance generates a secret into its own folder unless MODERATION_SECRET_KEY is
set; two with different secrets on one database hashed each address differently, and
an erasure from one reported "Erased 0 comments." while the other's stayed.
"""

from __future__ import annotations

from click.testing import CliRunner

from moderation.cli import ModerationGroup
from tests.conftest import close_app, comment, make_app


def _moderation(app):
    """The `moderation` command on ``app``, as the shell runs it."""
    return ModerationGroup(create_app=lambda: app)


def test_init_records_the_secret_and_an_instance_with_another_is_refused(
        app, database_url, api, keys):
    assert CliRunner().invoke(_moderation(app), ["init"]).exit_code == 0
    api.post("/api/v1/comments", comment(author_email="zoe@example.org"))
    other = make_app(database_url, SECRET_KEY="another instance's own secret")
    try:
        runs = {args[0]: CliRunner().invoke(_moderation(other), args) for args in (
            ["init"], ["export", "zoe@example.org"], ["erase", "zoe@example.org", "--yes"])}
        ready = other.test_client().get("/readyz")
        exported = other.test_client().get(
            "/api/v1/admin/privacy/export?email=zoe@example.org",
            headers={"Authorization": f"Bearer {keys.admin}"})
    finally:
        close_app(other)
    for name, run in runs.items():
        assert run.exit_code == 1, (name, run.output)
        assert "MODERATION_SECRET_KEY" in run.output, name
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["secret"] == "not the database's"
    assert exported.status_code == 503 and "Retry-After" in exported.headers
    # The instance that recorded it is ready, and finds the commenter.
    assert CliRunner().invoke(_moderation(app), ["init"]).exit_code == 0
    assert app.test_client().get("/readyz").status_code == 200
    found = api.get("/api/v1/admin/privacy/export?email=zoe@example.org", key=keys.admin)
    assert len(found.get_json()["comments"]) == 1


def test_a_database_without_a_recorded_secret_is_served(app, api, keys):
    """Upgraded to 0012 and not yet through `moderation init`: nothing to compare with."""
    assert app.test_client().get("/readyz").status_code == 200
    found = api.get("/api/v1/admin/privacy/export?email=zoe@example.org", key=keys.admin)
    assert found.status_code == 200


def test_the_first_init_on_an_upgraded_database_checks_the_secret_against_the_comments(
        app, database_url, api):
    """No fingerprint yet (a database from before 0012): a shell with another instance
    folder ran init first, recorded its own secret, and the instances whose secret made
    every hash were refused from then on."""
    api.post("/api/v1/comments", comment(author_email="zoe@example.org"))
    other = make_app(database_url, SECRET_KEY="another instance's own secret")
    try:
        refused = CliRunner().invoke(_moderation(other), ["init"])
    finally:
        close_app(other)
    assert refused.exit_code == 1
    assert "hashed under another server secret" in refused.output
    assert "moderation rekey" in refused.output
    assert CliRunner().invoke(_moderation(app), ["init"]).exit_code == 0


def test_rekey_hashes_every_address_under_the_new_secret(app, database_url, api, keys):
    """The secret that made the hashes is lost: rekey makes this instance's the database's,
    and erasure and export find the commenters again."""
    api.post("/api/v1/comments", comment(author_email="Zoe@Example.org"))
    assert CliRunner().invoke(_moderation(app), ["init"]).exit_code == 0
    other = make_app(database_url, SECRET_KEY="the new secret")
    try:
        rekeyed = CliRunner().invoke(_moderation(other), ["rekey", "--yes"])
        exported = CliRunner().invoke(_moderation(other), ["export", "zoe@example.org"])
        ready = other.test_client().get("/readyz")
    finally:
        close_app(other)
    assert rekeyed.exit_code == 0 and "1 comments hashed again" in rekeyed.output
    assert exported.exit_code == 0 and '"author_email": "Zoe@Example.org"' in exported.output
    assert ready.status_code == 200
    assert app.test_client().get("/readyz").status_code == 503  # the old secret now
