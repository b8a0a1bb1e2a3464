"""Engine set-up that differs by backend: SQLite pragmas and write locking."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import sqlalchemy as sa
from flask import Flask, has_request_context, request

from moderation.extensions import db

READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Set while a writing request reads: its transactions then begin without the write lock.
_reading: ContextVar[bool] = ContextVar("reading", default=False)


@contextmanager
def _transaction(read_only: bool) -> Iterator[None]:
    """Run the block in one transaction of that kind, committed (or rolled back) on the way out."""
    token = _reading.set(read_only)
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    finally:
        _reading.reset(token)


@contextmanager
def reading() -> Iterator[None]:
    """Run the block's queries in a read transaction, ended (committed) on the way out.

    On SQLite a writing request otherwise takes the write lock at its first query and
    holds it while it judges the comment, so workers would queue behind each other.
    Reading first and writing in a short transaction after keeps the lock brief. On
    PostgreSQL this changes nothing but where the transaction ends.
    """
    with _transaction(read_only=True):
        yield


@contextmanager
def writing() -> Iterator[None]:
    """Inside reading(): run the block in its own write transaction, committed on the way out."""
    db.session.commit()  # end the read transaction: SQLite cannot upgrade it safely
    with _transaction(read_only=False):
        yield


def configure_engine(app: Flask) -> None:
    """Tune the engine once per app; only SQLite needs anything."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)


def _configure_sqlite(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN, instead of the driver's own guesswork.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the one writer; busy_timeout queues writers instead of
        # failing with "database is locked" when several gunicorn workers write at once.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # A deferred transaction that reads and then writes cannot wait for the lock in WAL
        # mode (SQLITE_BUSY at once), so requests that may write take the lock up front.
        read_only_request = has_request_context() and request.method in READ_ONLY_METHODS
        writes = not (_reading.get() or read_only_request)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")
