"""Headers that HTTP clients and tools rely on: the 401 challenge, the metrics type."""

from __future__ import annotations


def test_a_401_names_the_bearer_scheme(api):
    missing = api.get("/api/v1/moderation/queue")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    wrong = api.get("/api/v1/moderation/queue", key="mk_0123456789ab_nosuchsecret")
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert wrong.get_json()["code"] == 401


def test_metrics_say_their_type_once(api):
    answer = api.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].count("charset") == 1
    assert answer.headers["Content-Type"].startswith("text/plain; version=")


def test_a_database_error_in_the_log_carries_no_values(app):
    """SQLAlchemy puts a failed statement's parameters in its message, and errors are
    logged with it: the values (an email, a comment) must not reach the log."""
    import sqlalchemy as sa
    from sqlalchemy.exc import IntegrityError

    from moderation.extensions import db

    with app.app_context():
        try:
            db.session.execute(sa.text("INSERT INTO sites (id, slug, name, allowed_origins, "
                                       "created_at) VALUES (:id, :slug, :name, '[]', "
                                       "CURRENT_TIMESTAMP)"),
                               {"id": 1, "slug": "default", "name": "secret@example.org"})
        except IntegrityError as error:
            message = str(error)
        finally:
            db.session.rollback()
    assert "secret@example.org" not in message
    assert "hidden due to hide_parameters" in message
