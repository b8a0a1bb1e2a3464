"""The floor: the least an intake can do and still keep what it acknowledges.

Served by the same gunicorn.conf.py as the service (`gunicorn -c gunicorn.conf.py
floor_app:app`, bench/ on the path), it reads the JSON body and stores it as one row in
SQLite with the service's own durability settings (WAL, synchronous=FULL: every commit
flushed to disk), one transaction per request, and answers 201. No validation, no rules,
no duplicate check, no history: any real intake on this database costs at least this.

http_bench.py runs it beside bare Flask, so the run shows how much of the gap between our
intake and bare Flask no intake that keeps each comment can close on this machine.
"""

import datetime as dt
import os
import sqlite3

from flask import Flask, jsonify, request

app = Flask(__name__)
DATABASE = os.environ.get("FLOOR_DATABASE", "floor.sqlite")
SYNCHRONOUS = os.environ.get("FLOOR_SYNCHRONOUS", "FULL")
_connection: sqlite3.Connection | None = None


def connection() -> sqlite3.Connection:
    """One connection per worker, opened on first use (after gunicorn forked the worker)."""
    global _connection
    if _connection is None:
        _connection = sqlite3.connect(DATABASE, isolation_level=None, timeout=15)
        _connection.execute("PRAGMA journal_mode=WAL")
        _connection.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        _connection.execute(
            "CREATE TABLE IF NOT EXISTS comments (id INTEGER PRIMARY KEY, thread TEXT, "
            "author_name TEXT, author_email TEXT, content TEXT, created_at TEXT)"
        )
    return _connection


@app.route("/api/v1/comments", methods=["GET", "POST"])
def comments():
    if request.method == "GET":  # readiness, and the count at the end of a run
        (count,) = connection().execute("SELECT count(*) FROM comments").fetchone()
        return jsonify({"comments": count})
    body = request.get_json(silent=True) or {}
    database = connection()
    database.execute("BEGIN IMMEDIATE")  # as the service's writes: take the lock up front
    try:
        stored = database.execute(
            "INSERT INTO comments (thread, author_name, author_email, content, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (body.get("thread"), body.get("author_name"), body.get("author_email"),
             body.get("content"), dt.datetime.now(dt.UTC).isoformat()),
        )
        database.execute("COMMIT")
    except BaseException:
        database.execute("ROLLBACK")
        raise
    response = jsonify({"id": stored.lastrowid, "status": "pending"})
    response.status_code = 201
    return response
