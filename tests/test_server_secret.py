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


def test_init_checks_the_secret_before_migrations_hash_addresses_again(tmp_path):
    """Migrations 0006 and 0011 hash some addresses again under the secret of whoever runs
    them: init from another instance migrated first, then took those hashes (its own by
    then) for proof, or, refused, left them matching no instance."""
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from moderation.extensions import db
    from moderation.services.identity import email_hash

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    old = make_app(url, SECRET_KEY="the secret that made them")
    try:
        with old.app_context():
            upgrade(revision="0010")
            db.session.execute(sa.text(
                "INSERT INTO threads (site_id, key, closed, created_at) "
                "SELECT id, '/t', false, CURRENT_TIMESTAMP FROM sites"))
            for n, email in enumerate(["zoe@bücher.example", "ada@example.org"]):
                db.session.execute(sa.text(
                    "INSERT INTO comments (site_id, thread_id, status, status_reason, "
                    "author_name, author_email, email_hash, content, content_hash, score, "
                    "hits, rules_version, flag_count, version, created_at, updated_at) "
                    "SELECT site_id, id, 'approved', 'rules', 'N', :email, :hash, :text, "
                    ":text, 0, '[]', '', 0, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP "
                    "FROM threads"), {"email": email, "hash": email_hash(email),
                                      "text": f"comment {n}"})
            db.session.commit()
            before = db.session.execute(sa.text(
                "SELECT author_email, email_hash FROM comments ORDER BY id")).all()
    finally:
        close_app(old)
    other = make_app(url, SECRET_KEY="another instance's own secret")
    try:
        refused = CliRunner().invoke(_moderation(other), ["init"])
        with other.app_context():
            version = db.session.scalar(sa.text("SELECT version_num FROM alembic_version"))
            after = db.session.execute(sa.text(
                "SELECT author_email, email_hash FROM comments ORDER BY id")).all()
    finally:
        close_app(other)
    assert refused.exit_code == 1 and "hashed under another server secret" in refused.output
    assert (version, after) == ("0010", before)  # nothing migrated, nothing hashed again
    again = make_app(url, SECRET_KEY="the secret that made them")
    try:
        assert CliRunner().invoke(_moderation(again), ["init"]).exit_code == 0
    finally:
        close_app(again)


def test_after_a_rekey_the_instances_on_the_old_secret_take_no_comment(
        app, database_url, api):
    """They kept storing comments under the old secret, which erasure and export with
    the new one then missed."""
    assert CliRunner().invoke(_moderation(app), ["init"]).exit_code == 0
    assert api.post("/api/v1/comments", comment()).status_code == 201
    new = make_app(database_url, SECRET_KEY="the new secret")
    try:
        assert CliRunner().invoke(_moderation(new), ["rekey", "--yes"]).exit_code == 0
        served = new.test_client().post("/api/v1/comments",
                                        json=comment(content="Under the new secret."))
    finally:
        close_app(new)
    refused = api.post("/api/v1/comments", comment(content="Under the old one."))
    assert refused.status_code == 503 and "MODERATION_SECRET_KEY" in refused.get_json()["message"]
    assert served.status_code == 201


def test_rekey_goes_through_every_batch(app, api):
    from moderation.services import identity

    for n in range(3):
        api.post("/api/v1/comments", comment(author_email=f"r{n}@example.org",
                                             content=f"Comment {n}."))
    app.config["SECRET_KEY"] = "the new secret"
    with app.app_context():
        assert identity.rekey(batch=1) == 3
        assert identity.secret_matches() is True


def test_rekey_hashes_again_what_old_instances_stored_meanwhile(app, api, monkeypatch):
    import sqlalchemy as sa

    from moderation.extensions import db
    from moderation.services import identity

    made = api.post("/api/v1/comments", comment()).get_json()

    waits = []

    def an_old_instance_stores_meanwhile(seconds):
        waits.append(seconds)
        # What an instance still on the old secret writes during the wait.
        db.session.execute(sa.text("UPDATE comments SET email_hash = 'old' WHERE id = :id"),
                           {"id": made["id"]})
        db.session.commit()

    monkeypatch.setattr(identity.time, "sleep", an_old_instance_stores_meanwhile)
    with app.app_context():
        identity.rekey()
        stored = db.session.execute(sa.text("SELECT email_hash FROM comments WHERE id = :id"),
                                    {"id": made["id"]}).scalar()
        assert stored == identity.email_hash("ada@example.org")
        # The second pass waits out the old instances' last look at the fingerprint.
        assert waits and waits[0] > app.config["SECRET_CHECK_INTERVAL"]


def test_rekey_asks_first_and_does_nothing_when_told_no(app, runner, api):
    import sqlalchemy as sa

    from moderation.extensions import db

    made = api.post("/api/v1/comments", comment()).get_json()
    with app.app_context():
        db.session.execute(sa.text("UPDATE comments SET email_hash = 'other' WHERE id = :id"),
                           {"id": made["id"]})
        db.session.commit()
    result = runner.invoke(args=["rekey"], input="n\n")
    assert result.exit_code == 1
    with app.app_context():
        assert db.session.execute(sa.text("SELECT email_hash FROM comments WHERE id = :id"),
                                  {"id": made["id"]}).scalar() == "other"
