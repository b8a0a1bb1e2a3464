"""Migrations run on a database that already holds data, as an upgrade in the field does."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from moderation.extensions import db
from moderation.services.identity import email_hash
from tests.conftest import close_app, make_app


@pytest.fixture
def sqlite_app(tmp_path):
    """An app on a SQLite file of its own, in its app context: each test migrates it to
    the revision it starts from, puts in data as stored then, and upgrades."""
    app = make_app(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    try:
        with app.app_context():
            yield app
    finally:
        close_app(app)


def test_0004_tells_apart_active_keys_that_share_a_name(sqlite_app):
    """Before 0004 two unrevoked keys could share a name; the unique index would fail on
    them, so the migration renames every one after the first."""
    upgrade(revision="0003")
    insert = sa.text("INSERT INTO api_keys (name, role, prefix, secret_hash, created_at, "
                     "revoked_at) VALUES (:name, 'admin', :prefix, 'x', "
                     "CURRENT_TIMESTAMP, :revoked)")
    for n, (name, revoked) in enumerate([("ops", None), ("ops", None),
                                         ("ops", "2026-01-01"), ("eve", None)]):
        db.session.execute(insert, {"name": name, "prefix": f"p{n}", "revoked": revoked})
    db.session.commit()
    upgrade()
    names = db.session.execute(sa.text(
        "SELECT id, name FROM api_keys ORDER BY id")).all()
    assert [name for _, name in names] == ["ops", "ops (key 2)", "ops", "eve"]


def test_0004_renames_to_a_name_no_active_key_has(sqlite_app):
    """Keys "ops", "ops" (id 2) and "ops (key 2)": the second was renamed to the third's
    name, and the unique index failed the upgrade."""
    upgrade(revision="0003")
    insert = sa.text("INSERT INTO api_keys (name, role, prefix, secret_hash, created_at) "
                     "VALUES (:name, 'admin', :prefix, 'x', CURRENT_TIMESTAMP)")
    for n, name in enumerate(["ops", "ops", "ops (key 2)"]):
        db.session.execute(insert, {"name": name, "prefix": f"p{n}"})
    db.session.commit()
    upgrade()
    names = db.session.scalars(sa.text("SELECT name FROM api_keys ORDER BY id")).all()
    assert names == ["ops", "ops (key 2, 2)", "ops (key 2)"]


def test_the_migrations_build_the_schema_the_models_describe(sqlite_app):
    """A column or index added to a model without its migration would exist in the tests'
    tables and be missing from every upgraded database in the field."""
    upgrade()
    with db.engine.connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert drift == []


def _comments_with_hashes(rows: list[tuple[str, str]]) -> None:
    """A thread and a comment per (address, email hash), stored as an older schema did."""
    db.session.execute(sa.text(
        "INSERT INTO threads (site_id, key, closed, created_at) "
        "VALUES (1, '/a', false, CURRENT_TIMESTAMP)"))
    insert = sa.text(
        "INSERT INTO comments (site_id, thread_id, status, status_reason, author_name, "
        "author_email, email_hash, content, content_hash, score, hits, rules_version, "
        "flag_count, version, created_at, updated_at) VALUES (1, 1, 'pending', 'rules', "
        "'Zoe', :address, :hash, 'hi', 'x', 0, '[]', '', 0, 1, CURRENT_TIMESTAMP, "
        "CURRENT_TIMESTAMP)")
    for address, old_hash in rows:
        db.session.execute(insert, {"address": address, "hash": old_hash})
    db.session.commit()


def test_0006_hashes_idn_addresses_again_so_an_erasure_finds_them(sqlite_app):
    upgrade(revision="0005")
    _comments_with_hashes([("Zoe@Bücher.example", "old-unicode"),
                           ("zoe@xn--bcher-kva.example", "old-punycode"),
                           ("ada@example.org", "kept"), ("", "")])
    upgrade()
    hashes = db.session.scalars(sa.text("SELECT email_hash FROM comments ORDER BY id"))
    assert list(hashes) == [email_hash("zoe@bücher.example")] * 2 + ["kept", ""]


def test_0011_hashes_again_the_addresses_whose_domain_browsers_map_otherwise(sqlite_app):
    """faß.example was hashed as fass.example (IDNA 2003); mail and browsers go to
    xn--fa-hia.example, as hosts are now mapped: the old hash would no longer find the
    commenter's comments (erasure, export, trust)."""
    upgrade(revision="0010")
    _comments_with_hashes([("zoe@faß.example", "as fass.example"),
                           ("ada@example.org", "kept"), ("", "")])
    upgrade()
    hashes = db.session.scalars(sa.text("SELECT email_hash FROM comments ORDER BY id"))
    assert list(hashes) == [email_hash("zoe@xn--fa-hia.example"), "kept", ""]


def test_0008_rebuilds_comments_keeping_every_row_that_refers_to_them(sqlite_app):
    """SQLite rebuilds the table to add AUTOINCREMENT; with foreign keys enforced, dropping
    the old one would have deleted the flags and hits and unlinked the audit log."""
    upgrade(revision="0007")
    for statement in (
        "INSERT INTO threads (site_id, key, closed, created_at) "
        "VALUES (1, '/a', false, CURRENT_TIMESTAMP)",
        *["INSERT INTO comments (site_id, thread_id, parent_id, status, status_reason, "
          "author_name, author_email, email_hash, content, content_hash, score, hits, "
          "rules_version, flag_count, version, created_at, updated_at) VALUES "
          f"(1, 1, {parent}, 'spam', 'rules', 'Zoe', 'z@example.org', 'h', 'hi', 'x', "
          "0, '[]', '', 1, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
          for parent in ("NULL", "1", "NULL")],
        "INSERT INTO flags (comment_id, reporter_hash, reason, created_at) "
        "VALUES (2, 'r', 'spam', CURRENT_TIMESTAMP)",
        "INSERT INTO comment_hits (comment_id, rule) VALUES (3, 'X')",
        "INSERT INTO decisions (site_id, comment_id, actor, action, reason, created_at) "
        "VALUES (1, 3, 'mod', 'spam', '', CURRENT_TIMESTAMP)",
    ):
        db.session.execute(sa.text(statement))
    db.session.commit()
    upgrade()
    count = lambda sql: db.session.execute(sa.text(sql)).scalar()  # noqa: E731
    assert count("SELECT count(*) FROM comments") == 3
    assert count("SELECT parent_id FROM comments WHERE id = 2") == 1
    assert count("SELECT comment_id FROM flags") == 2
    assert count("SELECT comment_id FROM comment_hits") == 3
    assert count("SELECT comment_id FROM decisions") == 3
    assert count("PRAGMA foreign_keys") == 1  # back on for the pooled connection
    db.session.execute(sa.text("DELETE FROM comments WHERE id = 3"))
    db.session.execute(sa.text(
        "INSERT INTO comments (site_id, thread_id, status, status_reason, author_name, "
        "author_email, email_hash, content, content_hash, score, hits, rules_version, "
        "flag_count, version, created_at, updated_at) VALUES (1, 1, 'pending', "
        "'rules', 'Ada', 'a@example.org', 'h', 'hi', 'y', 0, '[]', '', 0, 1, "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    db.session.commit()
    assert count("SELECT max(id) FROM comments") == 4


def test_0010_links_each_idempotency_record_to_the_comment_its_answer_names(sqlite_app):
    upgrade(revision="0009")
    db.session.execute(sa.text(
        "INSERT INTO threads (site_id, key, closed, created_at) "
        "VALUES (1, '/a', false, CURRENT_TIMESTAMP)"))
    db.session.execute(sa.text(
        "INSERT INTO comments (site_id, thread_id, status, status_reason, author_name, "
        "author_email, email_hash, content, content_hash, score, hits, rules_version, "
        "flag_count, version, created_at, updated_at) VALUES (1, 1, 'pending', "
        "'rules', 'Zoe', 'z@example.org', 'h', 'hi', 'x', 0, '[]', '', 0, 1, "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    for key, body in [("kept", '{"id": 1, "status": "pending"}'),
                      ("purged", '{"id": 7, "status": "pending"}'),
                      ("blocked", '{"code": 403, "message": "x"}')]:
        db.session.execute(sa.text(
            "INSERT INTO idempotency_records (site_id, key, request_hash, "
            "response_status, response_body, created_at) "
            "VALUES (1, :key, 'h', 201, :body, CURRENT_TIMESTAMP)"),
            {"key": key, "body": body})
    db.session.commit()
    upgrade()
    links = dict(db.session.execute(sa.text(
        "SELECT key, comment_id FROM idempotency_records")).all())
    assert links == {"kept": 1, "purged": None, "blocked": None}
    db.session.execute(sa.text("DELETE FROM comments"))
    db.session.commit()
    assert db.session.scalars(sa.text(
        "SELECT key FROM idempotency_records ORDER BY key")).all() == [
            "blocked", "purged"]
