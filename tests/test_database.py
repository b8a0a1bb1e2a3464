"""SQLite writers queue on a file lock (taken before BEGIN IMMEDIATE, released at the end);
PostgreSQL reads GETs in autocommit."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import request

from moderation.database import WriteLockedConnection
from moderation.extensions import db
from tests.conftest import comment, pool_one_read_only_connection


def _connect(path: Path) -> WriteLockedConnection:
    connection = sqlite3.connect(path, factory=WriteLockedConnection, isolation_level=None,
                                 check_same_thread=False)
    assert isinstance(connection, WriteLockedConnection)
    return connection


@pytest.fixture
def database(tmp_path: Path) -> str:
    path = tmp_path / "lock.sqlite3"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (x INTEGER)")
    return str(path)


@pytest.mark.parametrize("end", ["commit", "rollback"])
def test_a_waiting_writer_gets_the_lock_when_the_holder_ends(database: str, end: str) -> None:
    first, second = _connect(database), _connect(database)
    first.acquire_write_lock(database, timeout=5)
    assert first.holding_write_lock
    first.execute("BEGIN IMMEDIATE")
    first.execute("INSERT INTO t VALUES (1)")
    acquired_after: list[float] = []
    holding: list[bool] = []
    start = time.monotonic()

    def wait_and_write() -> None:
        # A timeout no pause of a loaded machine reaches: the waiter must get the lock
        # because the holder ended, not go on without it because its wait ran out.
        second.acquire_write_lock(database, timeout=30)
        acquired_after.append(time.monotonic() - start)
        holding.append(second.holding_write_lock)
        second.execute("BEGIN IMMEDIATE")
        second.execute("INSERT INTO t VALUES (2)")
        second.commit()

    waiter = threading.Thread(target=wait_and_write)
    waiter.start()
    time.sleep(0.3)
    assert not acquired_after  # still queued behind the first writer
    getattr(first, end)()
    assert not first.holding_write_lock
    waiter.join(timeout=60)
    assert not waiter.is_alive()
    # Taken once the holder ended (not before it) and by the lock, not by giving up.
    assert acquired_after and acquired_after[0] >= 0.3 and holding == [True]
    rows = sorted(x for (x,) in second.execute("SELECT x FROM t"))
    assert rows == ([1, 2] if end == "commit" else [2])
    first.close()
    second.close()


def test_after_the_timeout_the_writer_is_left_to_sqlite_without_the_lock(database: str) -> None:
    first, second = _connect(database), _connect(database)
    first.acquire_write_lock(database, timeout=5)
    start = time.monotonic()
    second.acquire_write_lock(database, timeout=0.1)
    # It waited its timeout, then gave up instead of hanging: the upper bound only tells
    # a hang from a slow machine's pause, so it is far above the 0.1 s asked.
    assert 0.1 <= time.monotonic() - start < 30
    assert not second.holding_write_lock
    second.commit()  # ending without the lock releases nothing
    assert first.holding_write_lock
    first.commit()
    third = _connect(database)
    third.acquire_write_lock(database, timeout=0.1)  # free again at once
    assert third.holding_write_lock
    third.commit()
    for connection in (first, second, third):
        connection.close()


def test_postgresql_gets_read_in_autocommit_and_writes_stay_transactions(app, api, keys):
    """A GET's reads skip BEGIN and ROLLBACK; the pooled connection that the next write
    request gets is transactional again, so a decision is still all or nothing."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's reads run in autocommit by their own hook")
    comment_id = api.post("/api/v1/comments", comment()).get_json()["id"]
    seen: list[tuple[str, bool]] = []

    def record(connection: sa.Connection, *args: object) -> None:
        seen.append((request.method, connection.connection.dbapi_connection.autocommit))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        for _ in range(2):
            assert api.get("/api/v1/moderation/queue?status=approved",
                           key=keys.moderator).status_code == 200
            decided = api.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                               {"action": "approve"}, key=keys.moderator,
                               headers={"If-Match": "*"})
            assert decided.status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert {autocommit for method, autocommit in seen if method == "GET"} == {True}
    assert {autocommit for method, autocommit in seen if method == "POST"} == {False}


def test_timestamps_read_back_in_utc_whatever_the_databases_time_zone(app, api, keys):
    """PostgreSQL answers in the session's TimeZone: with the database's set to local time,
    the moderator detail and the export said +05:30 where intake had said +00:00."""
    import datetime as dt

    from moderation.models import Comment

    made = api.post("/api/v1/comments", comment()).get_json()
    with app.app_context():
        connection = db.session.connection()
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL TIME ZONE 'Asia/Kolkata'")
        created = connection.scalar(sa.select(Comment.__table__.c.created_at)
                                    .where(Comment.__table__.c.id == made["id"]))
        db.session.rollback()
    assert created.utcoffset() == dt.timedelta(0)
    assert created.isoformat() == made["created_at"]


def test_a_connection_sqlite_opened_read_only_is_not_used_again(app, api, caplog):
    """SQLite opens a file it cannot write read-only, and the connection stays so after the
    file is writable again: a worker whose pooled connection was opened then answered 503
    to writes until gunicorn recycled it (a fault-injection audit). `query_only` stands in
    for the read-only open here: the write fails the same way (SQLITE_READONLY)."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite's own fault")
    pool_one_read_only_connection(app)
    errors = logging.getLogger("moderation")
    errors.addHandler(caplog.handler)
    try:
        refused = api.post("/api/v1/comments", comment(content="while read-only"))
    finally:
        errors.removeHandler(caplog.handler)
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    # The log says why: the driver's words, where the class alone did not tell a lock
    # from a full disk or a read-only file.
    assert "attempt to write a readonly database" in caplog.text
    again = api.post("/api/v1/comments", comment(content="once writable"))
    assert again.status_code == 201


def test_a_writer_queued_behind_another_waits_one_timeout_in_all_not_two(app, monkeypatch):
    """The flock's wait and SQLite's own busy wait added up: with another process holding
    the database (a backup, the sqlite3 shell), a writer queued behind one that was waiting
    waited 30 s, gunicorn's timeout, and was killed with its worker instead of answered
    503 (found by fault injection). Here the timeout is 2 s: the second writer is answered
    within it, counted from when it began to wait (two waits: nearly 4 s)."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite's write lock")
    monkeypatch.setattr("moderation.database.BUSY_TIMEOUT", 2.0)
    with app.app_context():
        db.engine.dispose()  # connections made from here on wait 2 s
        path = db.engine.url.database
    outside = sqlite3.connect(path, isolation_level=None)
    outside.execute("BEGIN IMMEDIATE")  # another process holding the database
    answers: dict[str, tuple[int, float]] = {}

    def post(name: str) -> None:
        started = time.monotonic()
        status = app.test_client().post("/api/v1/comments", json=comment(
            content=f"queued {name}", author_email=f"{name}@example.org")).status_code
        answers[name] = (status, time.monotonic() - started)

    try:
        first = threading.Thread(target=post, args=("first",))
        first.start()
        time.sleep(0.1)  # the first holds the flock, waiting on SQLite
        second = threading.Thread(target=post, args=("second",))
        second.start()
        first.join(timeout=30)
        second.join(timeout=30)
    finally:
        outside.rollback()
        outside.close()
    assert answers["first"][0] == answers["second"][0] == 503
    # One wait is 2 s; the bound tells it from two on a slow machine.
    assert answers["second"][1] < 3.0, answers


def test_sqlite_connections_enforce_foreign_keys(app, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite pragma")
    with app.app_context():
        assert db.session.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1


def test_deleting_a_site_with_its_comments_leaves_no_orphan(app, api, keys):
    made = api.post("/api/v1/comments", comment(site="other")).get_json()
    answer = api.delete("/api/v1/admin/sites/other?delete_comments=true", key=keys.admin)
    assert answer.status_code == 204
    with app.app_context():
        left = db.session.execute(sa.text("SELECT count(*) FROM comments WHERE id = :id"),
                                  {"id": made["id"]}).scalar()
    assert left == 0


def test_a_head_of_the_thread_page_takes_no_write_lock(app, api, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock")
    api.post("/api/v1/comments", comment())
    statements = []
    with app.app_context():
        engine = db.engine

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        assert api.client.head("/api/v1/comments?thread=/2026/11/27/a-story").status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert statements and not any("BEGIN IMMEDIATE" in s for s in statements)


def test_an_insert_naming_a_missing_column_reads_as_the_schema():
    from sqlalchemy.exc import OperationalError

    from moderation.errors import _names_what_is_not_there

    error = OperationalError("INSERT ...", {}, sqlite3.OperationalError(
        "table comments has no column named thread_url"))
    assert _names_what_is_not_there(error)
