"""Started without `moderation init` (a plain gunicorn or systemd start): the probe and the
API say not ready and what to do, instead of 200 and a 500 on every request."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from moderation.errors import DATABASE_RETRY_AFTER
from moderation.extensions import db
from tests.conftest import close_app, comment, make_app

THREAD = "/api/v1/comments?thread=/2026/11/27/a-story"


@pytest.fixture
def fresh_app(empty_database_url: str) -> Iterator[Flask]:
    app = make_app(empty_database_url)
    yield app
    close_app(app)


@contextmanager
def _app_log(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """The app's log records (its logger does not propagate to pytest's)."""
    logger = logging.getLogger("moderation")
    logger.addHandler(caplog.handler)
    try:
        yield caplog.records
    finally:
        logger.removeHandler(caplog.handler)


def _assert_not_migrated(response, advice: str = "run `moderation init`") -> None:
    assert response.status_code == 503, response.get_json()
    assert response.headers["Retry-After"] == str(DATABASE_RETRY_AFTER)
    body = response.get_json()
    assert {"code": 503, "status": "Service Unavailable"}.items() <= body.items()
    assert advice in body["message"]


def test_a_database_never_migrated_is_not_ready_until_init(fresh_app, caplog):
    client = fresh_app.test_client()
    ready = client.get("/readyz")
    _assert_not_migrated(ready)
    assert ready.get_json()["checks"] == {
        "database": "ok", "schema": "not migrated", "rules": "ok"}
    assert ready.get_json()["message"].startswith("Not ready: schema not migrated.")
    with _app_log(caplog) as records:
        for response in (
            client.post("/api/v1/comments", json=comment()),
            client.get(THREAD),
            # The key is looked up before the view: its table is missing too.
            client.get("/api/v1/moderation/queue",
                       headers={"Authorization": "Bearer mk_0123456789ab_secret"}),
        ):
            _assert_not_migrated(response)
    # The log tells the operator too, without a traceback that reads as a bug.
    assert any("run `moderation init`" in record.getMessage() and not record.exc_info
               for record in records)
    assert not any(record.getMessage() == "unhandled error" for record in records)
    assert client.get("/metrics").status_code == 200

    result = fresh_app.test_cli_runner().invoke(args=["init"])
    assert result.exit_code == 0, result.output
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "schema": "ok", "rules": "ok"}
    assert client.post("/api/v1/comments", json=comment()).status_code == 201
    assert client.get(THREAD).status_code == 200


def test_a_schema_behind_the_code_is_not_ready(fresh_app):
    with fresh_app.app_context():
        upgrade(revision="0006")  # the comments' thread_title and thread_url come in 0007
    client = fresh_app.test_client()
    ready = client.get("/readyz")
    _assert_not_migrated(ready)
    assert ready.get_json()["checks"]["schema"] == "behind the code"
    _assert_not_migrated(client.post("/api/v1/comments", json=comment()))


def test_a_schema_ahead_of_the_code_stays_ready(fresh_app):
    """A newer release migrated the database while this one still serves (a rolling
    deploy): its migrations only add, so this code still works and stays in rotation."""
    with fresh_app.app_context():
        upgrade()
        db.session.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
        db.session.commit()
    client = fresh_app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"]["schema"] == "ahead of the code"
    assert client.post("/api/v1/comments", json=comment()).status_code == 201


def test_a_table_missing_from_a_schema_at_head_stays_a_logged_500(fresh_app, caplog):
    """At head every table the code names exists: one missing is a bug (or a hand-made
    change) to be seen, not an operator's step to suggest."""
    with fresh_app.app_context():
        upgrade()
        db.session.execute(sa.text("DROP TABLE idempotency_records"))
        db.session.commit()
    client = fresh_app.test_client()
    with _app_log(caplog) as records:
        response = client.post("/api/v1/comments", json=comment(),
                               headers={"Idempotency-Key": "retry-1"})
    assert response.status_code == 500
    assert "moderation init" not in response.get_json()["message"]
    assert any(record.getMessage() == "unhandled error" and record.exc_info
               for record in records)
