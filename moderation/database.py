"""Engine set-up that differs by backend: SQLite pragmas and write locking."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any

import sqlalchemy as sa
from flask import Flask, has_request_context, request

from moderation.errors import ConfigError
from moderation.extensions import db

READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# What PRAGMA synchronous may be set to (config SQLITE_SYNCHRONOUS).
SQLITE_SYNCHRONOUS = ("FULL", "EXTRA", "NORMAL")
# Seconds a SQLite writer waits for another's transaction before "database is locked".
BUSY_TIMEOUT = 15.0
# Set while a writing request reads: its transactions then begin without the write lock.
_reading: ContextVar[bool] = ContextVar("reading", default=False)


@contextmanager
def _transaction(read_only: bool, end: Callable[[], None] | None = None) -> Iterator[None]:
    """Run the block in one transaction of that kind, committed (or rolled back) on the way out.

    ``end``, if given, ends it instead of the commit.
    """
    token = _reading.set(read_only)
    try:
        yield
        (end or db.session.commit)()
    except BaseException:
        db.session.rollback()
        raise
    finally:
        _reading.reset(token)


@contextmanager
def read_only() -> Iterator[None]:
    """Run a lookup as a read, its transaction ended on the way out (on SQLite: no lock).

    For a writing request's lookups before intake's own phases (the API key, the site):
    on SQLite a POST's first query would otherwise begin the write transaction and hold its
    lock while the comment is judged. Inside a transaction already begun, the block simply
    joins it, so that nothing already written is committed early.

    A GET's queries are all reads, so it has no lock to avoid: there the block joins the
    request's one transaction. Ending it handed the connection back to the pool and the
    next query checked it out again: on PostgreSQL a COMMIT, a pre-ping and a BEGIN more,
    3 of a queue page's 12 round trips.
    """
    if db.session().in_transaction() or _read_only_request():
        yield
        return
    with _transaction(read_only=True):
        yield


def _read_only_request() -> bool:
    return has_request_context() and request.method in READ_ONLY_METHODS


@contextmanager
def reading() -> Iterator[None]:
    """Run the block's queries as reads; what the session runs after it is a write transaction.

    On SQLite a writing request otherwise takes the write lock at its first query and
    holds it while it judges the comment, so workers would queue behind each other.
    Reading first (in autocommit, without the lock) and writing in a short transaction
    after keeps the lock brief. On PostgreSQL this changes nothing but where the
    transaction ends.

    On SQLite the reads ran in autocommit, so there is nothing to end: the write
    transaction begins on the connection that read. Ending the session's transaction
    instead, and checking the connection out of the pool again for the writes, cost a
    twentieth of intake. A request that queried before the block (other than through
    read_only()) is in a write transaction already; that one is committed.
    """
    with _transaction(read_only=True, end=_begin_writing):
        yield


def _begin_writing() -> None:
    """How reading() ends: the write transaction begun (SQLite), or the reads committed."""
    connection = db.session.connection()
    sqlite_autocommit = (connection.dialect.name == "sqlite"
                         and not connection.connection.dbapi_connection.in_transaction)
    if sqlite_autocommit:
        begin_immediate(connection)
    else:
        db.session.commit()


@contextmanager
def writing() -> Iterator[None]:
    """Inside reading(): run the block in its own write transaction, committed on the way out."""
    db.session.commit()  # end the read transaction: SQLite cannot upgrade it safely
    with _transaction(read_only=False):
        yield


class WriteLockedConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions queue on a file lock, not on sleeps.

    When several gunicorn workers write, SQLite makes each waiting writer sleep and retry
    with a back-off that reaches 100 ms, so an unlucky comment waits long after the lock
    was free. Writers first take an flock on a file next to the database, polled every
    0.1-2 ms, and only then BEGIN IMMEDIATE, which then finds the database free. Measured
    with 4 workers: the same throughput, intake p99 44-123 ms instead of 144-281 ms.
    """

    _lock_fd: int | None = None
    _holding = False

    def acquire_write_lock(self, path: str, timeout: float) -> float:
        """Wait for the database's write lock; after ``timeout`` s leave it to SQLite's own.
        The seconds it waited."""
        if self._lock_fd is None:
            self._lock_fd = os.open(path + "-writelock", os.O_RDWR | os.O_CREAT, 0o600)
        started = time.monotonic()
        pause = 0.0001
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                # Polled rather than blocking: a thread that holds a write transaction and
                # then opens another (a bug, or a test driving two apps) gets SQLite's
                # "database is locked" after the timeout instead of a hang.
                if time.monotonic() - started > timeout:
                    return time.monotonic() - started
                time.sleep(pause)
                pause = min(pause * 2, 0.002)
            else:
                self._holding = True
                return time.monotonic() - started

    @property
    def holding_write_lock(self) -> bool:
        return self._holding

    def _release(self) -> None:
        if self._holding and self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            self._holding = False

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


def configure_engine(app: Flask) -> None:
    """Tune the engine once per app, as its backend needs."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        synchronous = str(app.config["SQLITE_SYNCHRONOUS"]).upper()
        if synchronous not in SQLITE_SYNCHRONOUS:
            raise ConfigError(
                f"MODERATION_SQLITE_SYNCHRONOUS must be one of {', '.join(SQLITE_SYNCHRONOUS)}")
        _configure_sqlite(engine, synchronous)
    elif engine.dialect.name == "postgresql":
        _configure_postgresql(engine)


def _configure_postgresql(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # A GET's reads run in autocommit, as on SQLite. Under READ COMMITTED (PostgreSQL's
        # default) each statement has its own snapshot inside a transaction too, so the
        # answers are the same; the BEGIN and the ROLLBACK after were 2 of a thread page's
        # 6 round trips. A connection already in a transaction could not switch.
        dbapi_connection = connection.connection.dbapi_connection
        idle = dbapi_connection.info.transaction_status.name == "IDLE"
        if _read_only_request() and idle:
            dbapi_connection.autocommit = True

    @sa.event.listens_for(engine, "reset")
    def _on_reset(dbapi_connection: Any, connection_record: Any, reset_state: Any) -> None:
        # Back in the pool the connection is transactional again, for whatever request is next.
        if dbapi_connection.autocommit and not dbapi_connection.closed:
            dbapi_connection.autocommit = False


# SQLite's primary result codes after which a connection is not to be used again:
# READONLY (the file was opened read-only: SQLite falls back to that when it cannot open it
# for writing, and the connection stays so after the file is writable again), IOERR and
# CORRUPT / NOTADB (the file or its -wal was replaced or removed under the connection).
_STALE_CONNECTION_CODES = frozenset({8, 10, 11, 26})


def _configure_sqlite(engine: sa.Engine, synchronous: str) -> None:
    @sa.event.listens_for(engine, "handle_error")
    def _on_error(context: sa.engine.ExceptionContext) -> None:
        # Found by a fault-injection audit: a worker whose pooled connection was opened
        # while the file could not be written answered 503 to writes long after it could,
        # until gunicorn recycled it (10,000 requests). Taken for a lost connection, it is
        # closed, the request answers 503, and the next one opens the file again.
        code = getattr(context.original_exception, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in _STALE_CONNECTION_CODES:
            context.is_disconnect = True

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN, instead of the driver's own guesswork.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the one writer; busy_timeout queues writers instead of
        # failing with "database is locked" when several gunicorn workers write at once.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
        # FULL syncs the WAL at every commit, so an acknowledged comment survives a power
        # cut, not only a crash of the process (NORMAL's promise); it costs a disk flush.
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Deleted and overwritten rows are zeroed in the file, not left in free space: an
        # erasure or a purge must not leave the address and the words readable on disk.
        # Upstream SQLite leaves it off (Debian's build turns it on: an audit found the
        # erased data in the file with it off, gone with it on).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()
        # SQLite's lower() folds ASCII only, so ILIKE (lower(x) LIKE lower(y)) missed "Ärger"
        # for "ärger"; Python's folds all of Unicode, as PostgreSQL's does.
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # A deferred transaction that reads and then writes cannot wait for the lock in WAL
        # mode (SQLITE_BUSY at once), so requests that may write take the lock up front.
        if _read_only_request() or _reading.get():
            # Reads (a GET, intake's judging) run in autocommit, each statement its own
            # snapshot: BEGIN and the ROLLBACK or COMMIT after were a fifth of a thread
            # page's SQL time, and nothing here needs the reads to agree to the instant.
            return
        begin_immediate(connection)


def _lower(text: Any) -> Any:
    return text.lower() if isinstance(text, str) else text


def begin_immediate(connection: sa.Connection) -> None:
    """Begin a SQLite write transaction, queued on the file lock first (if the database is one)."""
    database = connection.engine.url.database
    if database not in (None, "", ":memory:"):
        dbapi_connection = connection.connection.dbapi_connection
        if isinstance(dbapi_connection, WriteLockedConnection):
            waited = dbapi_connection.acquire_write_lock(database, BUSY_TIMEOUT)
            if waited > 0.1:
                # SQLite's own wait (another process holding the database: a backup, the
                # sqlite3 shell) gets what is left of the 15 s: the two waits added up to
                # 30 s, gunicorn's timeout, so a writer queued behind another that was
                # waiting was killed with the worker instead of answered 503 (found by
                # fault injection).
                with busy_timeout(dbapi_connection, max(0.0, BUSY_TIMEOUT - waited)):
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                return
    connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def busy_timeout(dbapi_connection: Any, seconds: float) -> Iterator[None]:
    """SQLite waits at most ``seconds`` for a lock within the block, then BUSY_TIMEOUT again.

    Not put back on a connection that the block's failure closed (_on_error invalidates
    it): that raised "Cannot operate on a closed database" over the error being answered,
    a 500 for a 503.
    """
    dbapi_connection.execute(f"PRAGMA busy_timeout={int(seconds * 1000)}")
    try:
        yield
    finally:
        with suppress(sqlite3.ProgrammingError):
            dbapi_connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
