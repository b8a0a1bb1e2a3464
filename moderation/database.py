"""Engine set-up that differs by backend: SQLite pragmas and write locking."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask, has_request_context, request

from moderation.extensions import db

READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
        writes = not (has_request_context() and request.method in READ_ONLY_METHODS)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")
