"""Fixtures: a fresh app per test on SQLite (default) or on TEST_DATABASE_URL's PostgreSQL."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade

from moderation import create_app
from moderation.extensions import db

RULES_DIR = Path(__file__).parent / "data"
PERMISSIVE_RULES = RULES_DIR / "permissive_rules.yaml"


def _database_url(tmp_root: Path) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    return url or f"sqlite:///{tmp_root / 'moderation-test.sqlite3'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database for the session; an unreachable PostgreSQL fails the run."""
    url = _database_url(tmp_path_factory.mktemp("db"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True, "SECRET_KEY": "t"})
    with app.app_context():
        try:
            db.session.execute(sa.text("SELECT 1"))
        except sa.exc.OperationalError as error:
            pytest.exit(f"TEST_DATABASE_URL is set but unreachable: {error}", returncode=3)
        db.session.remove()
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as connection:
                connection.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        upgrade()
        db.engine.dispose()
    return url


@pytest.fixture
def empty_database_url(database_url: str, tmp_path) -> Iterator[str]:
    """A database no migration ever ran on, of the suite's kind (SQLite or PostgreSQL)."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'never-migrated.sqlite3'}"
        return
    url = sa.make_url(database_url)
    name = f"{url.database}_never_migrated"
    server = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.dispose()


def _empty_tables() -> None:
    """Remove every row (keeping the schema), then put back the `default` site."""
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        else:
            for table in tables:
                connection.exec_driver_sql(f"DELETE FROM {table}")
            # AUTOINCREMENT's counters (comments: migration 0008), as RESTART IDENTITY does.
            connection.exec_driver_sql("DELETE FROM sqlite_sequence")
        connection.exec_driver_sql(
            "INSERT INTO sites (slug, name, allowed_origins, created_at) "
            "VALUES ('default', 'Default site', '[]', CURRENT_TIMESTAMP)"
        )


def make_app(database_url: str, **config: Any) -> Flask:
    settings = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-secret",
        "RULES_FILE": str(PERMISSIVE_RULES),
        "RULES_RELOAD_INTERVAL": 0.2,
        "RATELIMIT_ENABLED": False,
        "METRICS_DATABASE_MAX_AGE": 0,  # each scrape reads the figures as they are now
        "SECRET_CHECK_INTERVAL": 0,  # each intake reads the secret's fingerprint
    }
    settings.update(config)
    return create_app(settings)


def close_app(app: Flask) -> None:
    """Release what an app holds: pooled connections and the rules watcher thread."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    watcher = app.extensions["moderation.rules"]
    if hasattr(watcher, "stop"):  # not when the rules did not load (RULES_REQUIRED off)
        watcher.stop()


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Per-test configuration overrides; a test module may override this fixture."""
    return {}


@pytest.fixture
def app(database_url: str, app_config: dict[str, Any]) -> Iterator[Flask]:
    app = make_app(database_url, **app_config)
    with app.app_context():
        _empty_tables()
    yield app
    close_app(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@dataclass
class Keys:
    admin: str
    moderator: str
    site: str
    other_moderator: str
    other_site: str


@pytest.fixture
def keys(app: Flask) -> Keys:
    """One key of each role: moderator and site keys for `default`, others for `other`."""
    from moderation.services import keys as key_service
    from moderation.services import sites

    with app.app_context():
        sites.create_site("other", "Other site", ["https://other.example"])
        return Keys(
            admin=key_service.create_key("ops", "admin", [])[1],
            moderator=key_service.create_key("mod", "moderator", ["default"])[1],
            site=key_service.create_key("backend", "site", ["default"])[1],
            other_moderator=key_service.create_key("other-mod", "moderator", ["other"])[1],
            other_site=key_service.create_key("other-backend", "site", ["other"])[1],
        )


class Api:
    """The test client with a key: api.get(path, key=keys.admin)."""

    def __init__(self, client: FlaskClient):
        self.client = client

    def _headers(self, key: str | None, headers: dict[str, str] | None) -> dict[str, str]:
        merged = dict(headers or {})
        if key:
            merged["Authorization"] = f"Bearer {key}"
        return merged

    def get(self, path: str, key: str | None = None, **kwargs: Any):
        return self.client.get(path, headers=self._headers(key, kwargs.pop("headers", None)),
                               **kwargs)

    def post(self, path: str, json: Any = None, key: str | None = None, **kwargs: Any):
        return self.client.post(path, json=json,
                                headers=self._headers(key, kwargs.pop("headers", None)), **kwargs)

    def put(self, path: str, json: Any = None, key: str | None = None, **kwargs: Any):
        return self.client.put(path, json=json,
                               headers=self._headers(key, kwargs.pop("headers", None)), **kwargs)

    def delete(self, path: str, key: str | None = None, **kwargs: Any):
        return self.client.delete(path, headers=self._headers(key, kwargs.pop("headers", None)),
                                  **kwargs)


@pytest.fixture
def api(client: FlaskClient) -> Api:
    return Api(client)


def wait_for(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def comment(**fields: Any) -> dict[str, Any]:
    """A valid submission, with any field replaced."""
    body = {
        "thread": "/2026/11/27/a-story",
        "thread_title": "A story",
        "author_name": "Ada Reader",
        "author_email": "ada@example.org",
        "content": "A thoughtful reply about the article.",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


# Two sites with an allowed origin each, for the CORS tests.
NEWS = "https://news.example"
BLOG = "https://blog.example"


@pytest.fixture
def two_sites(app: Flask) -> None:
    from moderation.services import sites

    with app.app_context():
        sites.create_site("news", "News", [NEWS])
        sites.create_site("blog", "Blog", [BLOG])


def pool_one_read_only_connection(app: Flask) -> None:
    """Leave the app's SQLite pool holding one connection that cannot write, as one SQLite
    opened read-only (a file it could not open for writing): `query_only` fails a write the
    same way (SQLITE_READONLY)."""
    with app.app_context():
        db.engine.dispose()
        connection = db.engine.raw_connection()  # the pool's one connection from now on
        connection.cursor().execute("PRAGMA query_only=ON")
        connection.close()
