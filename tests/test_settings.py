"""Settings: each is read as the environment or the instance config spells it, and one the
service cannot start with stops it with one line naming it, never a traceback or a secret."""

from __future__ import annotations

import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from moderation import create_app
from moderation.errors import ConfigError
from tests.conftest import PERMISSIVE_RULES, close_app, make_app

ROOT = Path(__file__).parent.parent
BIN = ROOT / ".venv" / "bin"


@pytest.fixture
def instance(tmp_path, monkeypatch) -> Path:
    """An instance folder of the test's own, and no setting from the caller's environment."""
    for name in [name for name in os.environ if name.startswith("MODERATION_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    folder = tmp_path / "instance"
    monkeypatch.setenv("MODERATION_INSTANCE_PATH", str(folder))
    monkeypatch.setenv("MODERATION_RULES_FILE", str(PERMISSIVE_RULES))
    return folder


@pytest.mark.parametrize(("name", "value"), [
    ("MODERATION_CLASSIFIER_MIN_DECISIONS", "x"),  # started, then every comment was a 500
    ("MODERATION_CLASSIFIER_MIN_DECISIONS", "-1"),
    ("MODERATION_CLASSIFIER_MIN_DECISIONS", "2.5"),
    ("MODERATION_MAX_CONTENT_LENGTH", "big"),
    ("MODERATION_MAX_CONTENT_LENGTH", "0"),
    ("MODERATION_PROXY_HOPS", "abc"),
    ("MODERATION_RULES_RELOAD_INTERVAL", "nan"),
    ("MODERATION_RULES_RELOAD_INTERVAL", "0"),
])
def test_a_number_that_is_not_one_stops_start_up_naming_it(instance, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        create_app()


def test_numbers_from_the_environment_are_numbers(instance, monkeypatch):
    monkeypatch.setenv("MODERATION_CLASSIFIER_MIN_DECISIONS", "3")
    monkeypatch.setenv("MODERATION_RULES_RELOAD_INTERVAL", "2")
    config = create_app().config
    assert (config["CLASSIFIER_MIN_DECISIONS"], config["RULES_RELOAD_INTERVAL"]) == (3, 2.0)


@pytest.mark.parametrize(("name", "value"), [
    ("MODERATION_RATELIMIT_STORAGE_URI", "rediss+typo://:hunter2@127.0.0.1:6379/9"),
    ("DATABASE_URL", "not a url hunter2"),
    ("DATABASE_URL", "mysql://user:hunter2@127.0.0.1/db"),  # no MySQL driver ships
    ("DATABASE_URL", "postgresql://user:hunter2@127.0.0.1:notaport/db"),  # a ValueError
    ("DATABASE_URL", "postgresql://user:hunter2@[::1/db"),
])
def test_a_url_the_service_cannot_use_is_named_without_its_password(
    instance, monkeypatch, name, value
):
    """The libraries' own errors quoted the URL, password and all, in a traceback."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name) as refused:
        create_app()
    assert "hunter2" not in str(refused.value)


def test_an_instance_folder_that_cannot_be_made_is_named(instance, monkeypatch, tmp_path):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("MODERATION_INSTANCE_PATH", str(tmp_path / "a-file" / "instance"))
    with pytest.raises(ConfigError, match="instance folder"):
        create_app()


def test_the_instance_config_takes_the_environments_names(instance, tmp_path):
    """The contract's settings table names DATABASE_URL and MODERATION_RULES_FILE, and says
    they may be set in the instance config too; there they were silently ignored."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules: []\n")
    database = tmp_path / "elsewhere.sqlite3"
    instance.mkdir()
    (instance / "config.py").write_text(
        f"DATABASE_URL = 'sqlite:///{database}'\n"
        f"MODERATION_RULES_FILE = {str(rules)!r}\n"
        "MODERATION_CLASSIFIER_MIN_DECISIONS = 7\n"
    )
    os.environ.pop("MODERATION_RULES_FILE")  # the fixture's; the environment would win
    config = create_app().config
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{database}"
    assert config["RULES_FILE"] == str(rules)
    assert config["CLASSIFIER_MIN_DECISIONS"] == 7


def test_the_command_and_gunicorn_refuse_a_bad_setting_in_one_line(tmp_path):
    env = {**{k: v for k, v in os.environ.items()
              if not k.startswith("MODERATION_") and k != "DATABASE_URL"},
           "MODERATION_INSTANCE_PATH": str(tmp_path / "instance"),
           "MODERATION_RATELIMIT_STORAGE_URI": "rediss+typo://:hunter2@127.0.0.1:6379/9",
           "GUNICORN_BIND": "127.0.0.1:0", "TMPDIR": str(tmp_path)}
    for command in ([BIN / "moderation", "keys", "list"],
                    [BIN / "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]):
        run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=60)
        assert run.returncode == 1, run.stderr
        said = run.stderr.strip().splitlines()
        assert "MODERATION_RATELIMIT_STORAGE_URI" in said[-1]
        assert "Traceback" not in run.stderr and "hunter2" not in run.stderr
    # gunicorn never got going, so on_exit did not run: its metrics folder went all the same.
    assert not list(tmp_path.glob("moderation-metrics-*"))


@pytest.mark.parametrize("value", ["abc", "0"])
def test_gunicorn_refuses_a_worker_count_that_is_not_one(tmp_path, value):
    """0 served a socket that no worker ever answered; abc was a traceback."""
    env = {**os.environ, "MODERATION_INSTANCE_PATH": str(tmp_path / "instance"),
           "GUNICORN_WORKERS": value, "GUNICORN_BIND": "127.0.0.1:0"}
    run = subprocess.run([BIN / "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "GUNICORN_WORKERS must be a whole number from 1 up" in run.stderr
    assert "Traceback" not in run.stderr


def test_workers_starting_at_once_share_one_whole_secret(instance):
    """The file was made empty and then written: a worker that read it in between keyed
    every email hash and form token with an empty secret."""
    from moderation.config import _instance_secret

    start = threading.Barrier(16)

    def read(_: int) -> str:
        start.wait()
        return _instance_secret(instance)

    with ThreadPoolExecutor(max_workers=16) as pool:
        read_by_each = set(pool.map(read, range(16)))
    assert len(read_by_each) == 1 and len(read_by_each.pop()) == 64
    assert [path.name for path in instance.iterdir()] == ["secret_key"]
    assert (instance / "secret_key").stat().st_mode & 0o777 == 0o600


def test_an_empty_secret_file_stops_start_up(instance):
    instance.mkdir()
    (instance / "secret_key").write_text("\n")
    with pytest.raises(ConfigError, match="secret_key is empty"):
        create_app()


def test_a_file_system_without_hard_links_still_gets_a_secret(instance, monkeypatch):
    from moderation.config import _instance_secret

    def no_links(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    secret = _instance_secret(instance)
    assert len(secret) == 64 and (instance / "secret_key").read_text() == secret
    assert [path.name for path in instance.iterdir()] == ["secret_key"]


def test_redis_storage_gets_timeouts_by_default(database_url):
    app = make_app(database_url, RATELIMIT_STORAGE_URI="redis://127.0.0.1:1")
    try:
        options = app.config["RATELIMIT_STORAGE_OPTIONS"]
        assert options["socket_timeout"] == 1.0 and options["socket_connect_timeout"] == 1.0
    finally:
        close_app(app)
