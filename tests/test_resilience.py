"""The database away: 503 with Retry-After, never a traceback or a hang."""

from __future__ import annotations

import pytest

from moderation import create_app
from moderation.errors import DATABASE_RETRY_AFTER
from moderation.extensions import limiter
from tests.conftest import PERMISSIVE_RULES, close_app, comment

DEAD = "postgresql+psycopg://postgres@127.0.0.1:1/none"


@pytest.mark.parametrize("limits", [False, True], ids=["limits off", "limits on"])
def test_unreachable_database_answers_503_with_retry_after(limits):
    app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": DEAD,
        "SECRET_KEY": "t",
        "RULES_FILE": str(PERMISSIVE_RULES),
        "RATELIMIT_ENABLED": limits,
    })
    client = app.test_client()
    try:
        for response in (
            client.post("/api/v1/comments", json=comment()),
            # The limits look these up (a retry's key, a site key's site) before the view.
            client.post("/api/v1/comments", json=comment(), headers={"Idempotency-Key": "k"}),
            client.post("/api/v1/comments", json=comment(),
                        headers={"Authorization": "Bearer mk_0123456789ab_secret"}),
            client.get("/api/v1/comments?thread=/t"),
            client.get("/api/v1/moderation/queue",
                       headers={"Authorization": "Bearer mk_0123456789ab_secret"}),
        ):
            assert response.status_code == 503
            # The database's own wait: on a rate-limited route the limiter wrote the reset
            # of its window (60 s) over it, so clients waited twelve times too long.
            assert response.headers["Retry-After"] == str(DATABASE_RETRY_AFTER)
            body = response.get_json()
            assert body["code"] == 503 and "Traceback" not in response.get_data(as_text=True)
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.get_json()["checks"]["database"] == "unreachable"
        # The contract's error shape, as every other 503.
        assert {"code": 503, "status": "Service Unavailable"}.items() <= ready.get_json().items()
        assert "database" in ready.get_json()["message"]
        assert ready.headers["Retry-After"].isdigit()
        assert client.get("/healthz").status_code == 200
        # Those look-ups failing is not the limits' storage failing: flask-limiter took it
        # so, and counted on in a fresh per-process memory store (with Redis: limits no
        # longer shared by the workers) until it checked the storage again.
        assert not limiter._storage_dead
        # The process's own figures still answer: the 503s are what an operator looks for.
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        text = metrics.get_data(as_text=True)
        assert 'route="/api/v1/comments",status="503"' in text
        assert "moderation_queue_depth" not in text
        assert "\nmoderation_database_up 0.0\n" in text  # what to alert on
    finally:
        close_app(app)


def test_every_pooled_connection_busy_answers_503_with_retry_after(database_url):
    """A pool with no connection free within its timeout raised SQLAlchemy's TimeoutError,
    which is not a database error: the answer was a 500 instead of the database's 503."""
    from tests.conftest import make_app

    app = make_app(database_url, SQLALCHEMY_ENGINE_OPTIONS={
        "pool_size": 1, "max_overflow": 0, "pool_timeout": 0.1})
    client = app.test_client()
    try:
        with app.app_context():
            from moderation.extensions import db

            with db.engine.connect():  # the pool's one connection, held
                origin = {"Origin": "https://news.example"}  # the CORS step reads too
                for response in (client.get("/api/v1/comments?thread=/t", headers=origin),
                                 client.post("/api/v1/comments", json=comment())):
                    assert response.status_code == 503, response.get_json()
                    assert response.headers["Retry-After"] == str(DATABASE_RETRY_AFTER)
        assert client.get("/api/v1/comments?thread=/t").status_code == 200
    finally:
        close_app(app)


def test_a_statement_stuck_behind_a_lock_answers_503_not_a_hang(database_url):
    """A table locked by another session (a migration, VACUUM FULL) held every request
    until gunicorn's timeout killed the worker, 30 s later, and the client got a 500 (found
    by an audit). PostgreSQL now cancels a statement after DATABASE_STATEMENT_TIMEOUT."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's writers wait on busy_timeout, and its readers never block")
    import sqlalchemy as sa

    from tests.conftest import make_app

    app = make_app(database_url, DATABASE_STATEMENT_TIMEOUT=0.5)
    client = app.test_client()
    other = sa.create_engine(database_url)
    try:
        assert client.post("/api/v1/comments", json=comment()).status_code == 201
        with other.connect() as session, session.begin():
            # Let go after 5 s idle, so that without the timeout this fails, not hangs.
            session.exec_driver_sql("SET LOCAL idle_in_transaction_session_timeout = 5000")
            session.exec_driver_sql("LOCK TABLE comments IN ACCESS EXCLUSIVE MODE")
            for response in (client.get("/api/v1/comments?thread=/2026/11/27/a-story"),
                             client.post("/api/v1/comments", json=comment(content="Again."))):
                assert response.status_code == 503, response.get_json()
                assert response.headers["Retry-After"] == str(DATABASE_RETRY_AFTER)
        assert client.get("/api/v1/comments?thread=/2026/11/27/a-story").status_code == 200
    finally:
        other.dispose()
        close_app(app)


@pytest.mark.parametrize("value", ["soon", -1, True])
def test_a_statement_timeout_that_is_not_seconds_is_refused_at_start(database_url, value):
    from moderation.errors import ConfigError
    from tests.conftest import make_app

    with pytest.raises(ConfigError, match="STATEMENT_TIMEOUT"):
        make_app(database_url, DATABASE_STATEMENT_TIMEOUT=value)
