"""The `moderation` command: first-run set-up, keys, sites, rules check, privacy, backup."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import sqlalchemy as sa

from moderation.extensions import db
from moderation.models import ApiKey, Site
from moderation.rules import RulesError
from tests.conftest import comment

ROOT = Path(__file__).parent.parent


def test_init_prints_the_first_admin_key_once(runner, app, api):
    first = runner.invoke(args=["init"])
    assert first.exit_code == 0, first.output
    secret = first.output.strip().splitlines()[-1].strip()
    assert secret.startswith("mk_")
    assert api.get("/api/v1/admin/keys", key=secret).status_code == 200
    second = runner.invoke(args=["init"])
    assert second.exit_code == 0
    assert "mk_" not in second.output


def test_keys_create_prints_a_working_secret(runner, app, api):
    result = runner.invoke(args=["keys", "create", "--role", "moderator", "--name", "eve",
                                 "--site", "default"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert api.get("/api/v1/moderation/queue", key=secret).status_code == 200
    with app.app_context():
        key = db.session.scalar(sa.select(ApiKey).where(ApiKey.name == "eve"))
        assert key.secret_hash != secret
    listed = runner.invoke(args=["keys", "list"])
    assert "eve" in listed.output and secret not in listed.output


def test_keys_list_tells_all_sites_from_none(runner, api, keys):
    assert runner.invoke(args=["sites", "create", "gone", "--name", "Gone"]).exit_code == 0
    assert runner.invoke(args=["keys", "create", "--role", "moderator", "--name", "orphan",
                               "--site", "gone"]).exit_code == 0
    assert api.delete("/api/v1/admin/sites/gone", key=keys.admin).status_code == 204
    rows = [line.split("\t") for line in runner.invoke(args=["keys", "list"]).output.splitlines()]
    sites = {name: sites for _, role, name, sites, _ in rows}
    assert sites["orphan"] == "-"
    assert "*" in {sites for _, role, _, sites, _ in rows if role == "admin"}


def test_keys_create_refuses_an_unknown_site(runner):
    result = runner.invoke(args=["keys", "create", "--role", "site", "--name", "x",
                                 "--site", "nowhere"])
    assert result.exit_code != 0
    assert "nowhere" in result.output


def test_sites_create(runner, app):
    result = runner.invoke(args=["sites", "create", "news", "--name", "News",
                                 "--origin", "https://news.example"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        site = db.session.scalar(sa.select(Site).where(Site.slug == "news"))
        assert site.allowed_origins == ["https://news.example"]
    assert runner.invoke(args=["sites", "create", "Bad Slug"]).exit_code != 0


def test_rules_check_passes_the_shipped_file_and_fails_a_broken_one(runner, tmp_path):
    good = runner.invoke(args=["rules", "check", str(ROOT / "moderation/rules/default_rules.yaml")])
    assert good.exit_code == 0, good.output
    assert "OK" in good.output
    broken = tmp_path / "rules.yaml"
    broken.write_text("version: 1\nrules:\n  - {id: BAD, type: regex, pattern: '(a', score: 1}\n")
    result = runner.invoke(args=["rules", "check", str(broken)])
    assert result.exit_code == 1
    assert "rules.yaml" in result.output and "BAD" in result.output
    assert "pattern" in result.output


def test_rules_check_warns_of_overrides_for_a_site_the_database_lacks(runner, tmp_path):
    """A misspelt slug's overrides applied to nothing, and the check said OK."""
    assert runner.invoke(args=["sites", "create", "news"]).exit_code == 0
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules: []\nsites:\n  news: {thresholds: {spam: 9}}\n"
                     "  nwes: {thresholds: {spam: 9}}\n")
    result = runner.invoke(args=["rules", "check", str(rules)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    assert "warning: no site nwes in the database" in result.output
    assert "news," not in result.output


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_keys_create_checks_the_name_as_the_api_does(runner, name):
    """The audit log names actors by key name: a blank or huge one would be unreadable."""
    result = runner.invoke(args=["keys", "create", "--role", "admin", "--name", name])
    assert result.exit_code == 1
    assert "name: Length must be between 1 and 100." in result.output


def test_site_errors_read_as_a_line_not_a_dict(runner):
    result = runner.invoke(args=["sites", "create", "Bad Slug!"])
    assert result.exit_code == 1
    assert "Invalid: slug: Must match" in result.output and "{'" not in result.output


@pytest.mark.parametrize("args", [
    ["keys", "create", "--role", "admin", "--name", "caf\udce9"],
    ["sites", "create", "cafe", "--name", "Caf\udce9"],
], ids=["key-name", "site-name"])
def test_an_argument_that_is_not_utf8_is_refused_not_a_traceback(runner, app, args):
    """A Latin-1 terminal's "Café" reaches Python as a lone surrogate (U+DCE9), which no
    database driver encodes: a UnicodeEncodeError traceback, before."""
    result = runner.invoke(args=args)
    assert result.exit_code == 1, result.exception
    assert "Invalid: name: Must be UTF-8 text." in result.output
    assert runner.invoke(args=["sites", "list"]).output.startswith("default\t")
    assert runner.invoke(args=["keys", "list"]).output == ""


@pytest.mark.parametrize("args", [
    ["keys", "create", "--role", "admin", "--name", "Ada\u2028Injected"],
    ["keys", "create", "--role", "admin", "--name", "Ada\u0085Injected"],
    ["sites", "create", "news", "--name", "News\u2029Injected"],
    ["sites", "create", "news", "--name", "News\u009bInjected"],
], ids=["key-line-separator", "key-c1", "site-paragraph-separator", "site-c1"])
def test_a_name_with_a_line_separator_or_c1_control_is_refused(runner, app, args):
    """`keys list` and `sites list` print one row a line, split by tabs: a name that breaks
    the line (U+2028, NEL) or prints garbage (C1 controls) is refused, as by the API."""
    result = runner.invoke(args=args)
    assert result.exit_code == 1, result.output
    assert "Invalid: name: Must be one line without control characters." in result.output
    assert runner.invoke(args=["sites", "list"]).output.startswith("default\t")
    assert runner.invoke(args=["keys", "list"]).output == ""


def test_purge_refuses_days_past_a_century(runner):
    result = runner.invoke(args=["purge", "--spam-days", "99999999999"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "36500" in result.output


def test_a_database_not_set_up_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    """The `moderation` command itself (the console script), on an empty instance folder
    and on a server that is not there."""
    from click.testing import CliRunner

    from moderation import create_app
    from moderation.cli import ModerationGroup

    monkeypatch.setenv("MODERATION_INSTANCE_PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    command = ModerationGroup(create_app=lambda: create_app())
    empty = CliRunner().invoke(command, ["keys", "list"])
    assert empty.exit_code == 1
    assert "not set up yet: run `moderation init`" in empty.output
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    away = CliRunner().invoke(command, ["sites", "list"])
    assert away.exit_code == 1
    assert "Cannot use the database (OperationalError)" in away.output


def test_a_database_or_role_that_does_not_exist_is_not_sent_back_to_init(tmp_path, monkeypatch):
    """PostgreSQL says "does not exist" of a database or a role too: `moderation init`
    cannot create those, so answering "run `moderation init` first" sent the admin round
    in a circle, init included."""
    from click.testing import CliRunner

    from moderation import create_app
    from moderation.cli import ModerationGroup

    failure = sa.exc.OperationalError(
        "SELECT 1", {}, Exception('FATAL:  database "nosuch" does not exist'))
    monkeypatch.setattr("moderation.cli.upgrade", mock.Mock(side_effect=failure))
    monkeypatch.setenv("MODERATION_INSTANCE_PATH", str(tmp_path / "instance"))
    command = ModerationGroup(create_app=lambda: create_app({"SECRET_KEY": "t"}))
    result = CliRunner().invoke(command, ["init"])
    assert result.exit_code == 1
    assert "not set up yet" not in result.output
    assert "Cannot use the database" in result.output


def _command_and_broken_rules(tmp_path, monkeypatch):
    """The `moderation` command on an instance of its own, and a rules file that does not
    load (a misspelt key), for the tests of a broken rules file in force."""
    from moderation.cli import ModerationGroup, command_line_app

    broken = tmp_path / "rules.yaml"
    broken.write_text("version: 1\nrules:\n  - {id: X, type: terms, terms: [a], scor: 1}\n")
    monkeypatch.setenv("MODERATION_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return ModerationGroup(create_app=command_line_app), broken


def test_a_broken_rules_file_in_force_stops_only_what_reads_it(tmp_path, monkeypatch):
    """The service keeps its last good rules while the file is broken; the command line
    must keep working too (cron's purge, a backup, `rules check` of the fix). It refused
    every command. What reads the rules in force names the file's errors, no traceback."""
    from click.testing import CliRunner

    from moderation import create_app
    from moderation.cli import command_line_app
    from moderation.services.rules import current_rules

    command, broken = _command_and_broken_rules(tmp_path, monkeypatch)
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text("version: 1\nrules:\n  - {id: X, type: terms, terms: [a], score: 1}\n")
    assert CliRunner().invoke(command, ["init"]).exit_code == 0
    monkeypatch.setenv("MODERATION_RULES_FILE", str(broken))
    for args in (["purge"], ["rules", "check", str(fixed)], ["keys", "list"]):
        result = CliRunner().invoke(command, args)
        assert result.exit_code == 0, (args, result.output)
    app = command_line_app()
    with app.app_context(), pytest.raises(RulesError, match="scor: Unknown field"):
        current_rules()
    # What serves requests still refuses to start on it (wsgi.py says why).
    with pytest.raises(RulesError):
        create_app()


def test_a_command_that_reads_the_broken_rules_names_them_not_a_traceback(tmp_path,
                                                                         monkeypatch):
    from click.testing import CliRunner

    from moderation.cli import command_line_app

    command, broken = _command_and_broken_rules(tmp_path, monkeypatch)
    admin = CliRunner().invoke(command, ["init"]).output.strip().splitlines()[-1].strip()
    client = command_line_app().test_client()
    posted = client.post("/api/v1/comments", json={
        "thread": "/t", "author_name": "Ada", "author_email": "ada@example.org",
        "content": "A thought."})
    assert posted.status_code == 201, posted.get_json()
    # Approved, it taught the classifier: erasing it un-learns it from the text the
    # classifier rule in force reads.
    approved = client.post(f"/api/v1/moderation/comments/{posted.get_json()['id']}/decision",
                           json={"action": "approve"},
                           headers={"Authorization": f"Bearer {admin}", "If-Match": "*"})
    assert approved.status_code == 200, approved.get_json()
    monkeypatch.setenv("MODERATION_RULES_FILE", str(broken))
    result = CliRunner().invoke(command, ["erase", "--yes", "ada@example.org"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{broken}: rule X: scor: Unknown field." in result.output


def test_what_serves_requests_needs_the_rules(tmp_path, monkeypatch):
    """`moderation run` serves, so it stops on a broken rules file as gunicorn does; and a
    request that still reaches the command line's app without rules is a 503, not a 500."""
    from click.testing import CliRunner

    from moderation.cli import command_line_app

    command, broken = _command_and_broken_rules(tmp_path, monkeypatch)
    assert CliRunner().invoke(command, ["init"]).exit_code == 0
    monkeypatch.setenv("MODERATION_RULES_FILE", str(broken))
    served = []  # were the app to load, it would be served here, not on a real port
    monkeypatch.setattr("flask.cli.run_simple", lambda *a, **k: served.append(a))
    result = CliRunner().invoke(command, ["run"])
    assert not served
    assert result.exit_code == 1, result.output
    assert f"{broken}: rule X: scor: Unknown field." in result.output
    posted = command_line_app().test_client().post("/api/v1/comments", json={
        "thread": "/t", "author_name": "Ada", "author_email": "ada@example.org",
        "content": "A thought."})
    assert posted.status_code == 503, posted.get_json()
    assert posted.headers["Retry-After"].isdigit()
    assert "rules file does not load" in posted.get_json()["message"]


@pytest.mark.parametrize(("name", "value"), [
    ("MODERATION_RATELIMIT_ENABLED", "maybe"),
    ("MODERATION_SQLITE_SYNCHRONOUS", "sometimes"),
    # The command runs without a statement timeout, but one gunicorn would refuse must not
    # pass every command unnoticed until the service's next restart (README audit).
    ("MODERATION_DATABASE_STATEMENT_TIMEOUT", "x"),
])
def test_a_setting_the_service_cannot_take_is_one_line_not_a_traceback(
        tmp_path, monkeypatch, name, value):
    from click.testing import CliRunner

    from moderation.cli import ModerationGroup, command_line_app

    monkeypatch.setenv("MODERATION_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv(name, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    command = ModerationGroup(create_app=command_line_app)
    result = CliRunner().invoke(command, ["purge"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert name in result.output and "Traceback" not in result.output


def test_export_prints_what_the_api_exports(runner, api, keys):
    made = api.post("/api/v1/comments", comment(author_email="Ada@Example.org"),
                    key=keys.site).get_json()
    api.post("/api/v1/comments", comment(author_email="someone@example.org", content="Not Ada's"))
    api.post(f"/api/v1/moderation/comments/{made['id']}/decision",
             {"action": "approve", "reason": "fine"}, key=keys.moderator,
             headers={"If-Match": "*"})
    result = runner.invoke(args=["export", " ada@example.org "])
    assert result.exit_code == 0, result.output
    exported = json.loads(result.output)
    assert [c["id"] for c in exported["comments"]] == [made["id"]]
    assert exported["comments"][0]["decisions"]
    answer = api.get("/api/v1/admin/privacy/export?email=ada@example.org", key=keys.admin)
    assert exported == answer.get_json()


def test_erase_asks_first_and_is_audited_as_the_command_line(runner, api, keys):
    made = api.post("/api/v1/comments", comment()).get_json()
    refused = runner.invoke(args=["erase", "ada@example.org"], input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    detail = api.get(f"/api/v1/moderation/comments/{made['id']}", key=keys.admin).get_json()
    assert detail["author_email"] == "ada@example.org"

    erased = runner.invoke(args=["erase", "ada@example.org"], input="y\n")
    assert erased.exit_code == 0, erased.output
    assert "Erased 1 comments." in erased.output
    detail = api.get(f"/api/v1/moderation/comments/{made['id']}", key=keys.admin).get_json()
    assert (detail["author_name"], detail["author_email"]) == ("Anonymous", "")
    assert detail["content"] == comment()["content"]
    audit = api.get(f"/api/v1/moderation/audit?comment_id={made['id']}",
                    key=keys.admin).get_json()["items"]
    assert [(row["action"], row["actor"]) for row in audit] == [("erase", "command line")]
    assert "ada" not in json.dumps(audit).lower()


def test_erase_yes_deletes_the_content_without_asking(runner, api, keys):
    made = api.post("/api/v1/comments", comment()).get_json()
    result = runner.invoke(args=["erase", "ada@example.org", "--delete-content", "--yes"])
    assert result.exit_code == 0, result.output
    assert "[y/N]" not in result.output
    detail = api.get(f"/api/v1/moderation/comments/{made['id']}", key=keys.admin).get_json()
    assert (detail["content"], detail["status"]) == ("", "deleted")


@pytest.mark.parametrize("args", [["erase", "not-an-address", "--yes"],
                                  ["export", "not-an-address"]])
def test_erase_and_export_check_the_address_as_the_api_does(runner, args):
    result = runner.invoke(args=args)
    assert result.exit_code == 1
    assert "Invalid: email:" in result.output and "Traceback" not in result.output


def test_backup_copies_the_database_while_it_is_open(runner, app, api, keys, database_url,
                                                     tmp_path):
    """A copy made while the service holds the database open, whole, for the operator only;
    on PostgreSQL the command says to use pg_dump instead."""
    for n in range(3):
        assert api.post("/api/v1/comments", comment(
            author_email=f"b{n}@example.org", content=f"Kept {n}.")).status_code == 201
    # Folders not made yet, as the README's; each is private, not only the last (audit).
    target = tmp_path / "backups" / "2026" / "copy.db"
    result = runner.invoke(args=["backup", str(target)])
    if not database_url.startswith("sqlite"):
        assert result.exit_code == 1 and "pg_dump" in result.output and not target.exists()
        return
    assert result.exit_code == 0, result.output
    assert "3 comments" in result.output
    assert target.stat().st_mode & 0o777 == 0o600
    assert target.parent.stat().st_mode & 0o777 == 0o700
    assert target.parent.parent.stat().st_mode & 0o777 == 0o700
    import sqlite3

    with sqlite3.connect(target) as copy:
        assert copy.execute("SELECT content FROM comments ORDER BY id").fetchall() == [
            ("Kept 0.",), ("Kept 1.",), ("Kept 2.",)]
        assert copy.execute("SELECT count(*) FROM api_keys").fetchone()[0] > 0
    copy.close()
    again = runner.invoke(args=["backup", str(target)])
    assert again.exit_code == 1 and "exists" in again.output


def test_init_makes_an_existing_default_database_private(tmp_path):
    """An install made before the database was private keeps its 0644 file: init, which
    `make run` runs at each start, makes it and its folder its owner's alone."""
    env = {**os.environ, "MODERATION_INSTANCE_PATH": str(tmp_path / "instance")}
    env.pop("DATABASE_URL", None)

    def init() -> str:
        done = subprocess.run([Path(sys.executable).parent / "moderation", "init"], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    init()
    database = tmp_path / "instance" / "moderation.sqlite3"
    database.chmod(0o644)
    database.parent.chmod(0o755)
    said = init()
    assert f"{database}: now readable by its owner alone" in said
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE(database.parent.stat().st_mode) == 0o700
    assert "now readable" not in init()


def test_init_can_write_the_first_key_to_a_private_file_instead(runner, app, api, tmp_path):
    """A container's output goes to its log (`docker logs`, a log shipper): the image's
    `init` printed the admin key there. With --key-file it goes to a new 0600 file."""
    key_file = tmp_path / "first-admin-key"
    key_file.write_text("someone else's")
    taken = runner.invoke(args=["init", "--key-file", str(key_file)])
    assert taken.exit_code == 1 and "Cannot create" in taken.output
    key_file.unlink()
    first = runner.invoke(args=["init", "--key-file", str(key_file)])
    assert first.exit_code == 0, first.output
    assert "mk_" not in first.output and str(key_file) in first.output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    secret = key_file.read_text().strip()
    assert api.get("/api/v1/admin/keys", key=secret).status_code == 200
    assert "mk_" not in runner.invoke(args=["init", "--key-file", str(tmp_path / "x")]).output
    assert not (tmp_path / "x").exists()  # no key made: no file either


def test_replicas_starting_together_each_init_once(empty_database_url, tmp_path):
    """Replicas of the image started at once ran `moderation init` together on an empty
    PostgreSQL database: all but one failed with a traceback (two migrations writing
    alembic_version). They now take turns: one makes the admin key, the others find it."""
    if not empty_database_url.startswith("postgresql"):
        pytest.skip("SQLite is one file per instance; replicas share a PostgreSQL database")
    env = {**os.environ, "DATABASE_URL": empty_database_url, "MODERATION_SECRET_KEY": "t",
           "MODERATION_INSTANCE_PATH": str(tmp_path / "instance")}
    started = [subprocess.Popen([Path(sys.executable).parent / "moderation", "init"],
                                env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(3)]
    finished = [process.communicate(timeout=120) for process in started]
    assert [process.returncode for process in started] == [0, 0, 0], finished
    outputs = [out for out, _ in finished]
    assert sum("mk_" in out for out in outputs) == 1, outputs


def test_the_version_is_the_services():
    """Flask's --version printed Python's, Flask's and Werkzeug's versions."""
    from importlib.metadata import version

    answer = subprocess.run([Path(sys.executable).parent / "moderation", "--version"],
                            capture_output=True, text=True, timeout=60)
    assert answer.returncode == 0
    assert answer.stdout.strip() == f"moderation {version('moderation')}"


def test_a_backup_that_fails_its_check_is_removed_and_refused(runner, api, database_url,
                                                              tmp_path, monkeypatch):
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite backup")
    import sqlite3
    import types

    from moderation import cli

    class Damaged(sqlite3.Connection):
        def execute(self, sql, *args):
            if sql.startswith("PRAGMA quick_check"):
                return types.SimpleNamespace(fetchone=lambda: ("*** page 3 is never used",))
            return super().execute(sql, *args)

    monkeypatch.setattr(cli, "sqlite3", types.SimpleNamespace(
        connect=lambda target: sqlite3.connect(target, factory=Damaged), Error=sqlite3.Error))
    target = tmp_path / "copy.db"
    result = runner.invoke(args=["backup", str(target)])
    assert result.exit_code == 1 and "Backup failed" in result.output
    assert not target.exists()
