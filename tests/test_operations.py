"""Probes, the OpenAPI spec, docs, and the request log's privacy."""

from __future__ import annotations

import json
import logging
import os
import re
import stat

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from moderation import create_app
from moderation.extensions import db
from moderation.logs import JsonFormatter
from tests.conftest import close_app, comment


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "schema": "ok", "rules": "ok"}


def test_openapi_lists_every_route_with_the_bearer_scheme(app, client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    paths = spec["paths"]
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            documented = rule.rule.replace("<id:", "{").replace("<string:", "{").replace(">", "}")
            assert documented in paths, rule.rule
    queue = paths["/api/v1/moderation/queue"]["get"]
    assert queue["security"] == [{"bearerAuth": []}]
    assert {"200", "401", "403", "422", "503"} <= set(queue["responses"])
    submit = paths["/api/v1/comments"]["post"]["responses"]
    assert {"201", "303", "400", "403", "409", "413", "415", "422", "429"} <= set(submit)


def test_docs_page_is_served_with_nothing_from_another_host(client):
    """The page loaded ReDoc from a CDN: blank offline, and the CDN saw each reader."""
    response = client.get("/docs")
    assert response.status_code == 200
    assert b"openapi.json" in response.data
    page = response.get_data(as_text=True)
    assert not re.search(r'(src|href)="(https?:)?//', page), page
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert scripts == ["/static/redoc/redoc.standalone.js"]
    bundle = client.get(scripts[0])
    assert bundle.status_code == 200 and bundle.mimetype in ("text/javascript",
                                                             "application/javascript")
    assert b"Redoc" in bundle.data[:2000]
    bundle.close()


def test_unknown_route_and_method_are_json(client):
    missing = client.get("/api/v1/nothing")
    assert missing.status_code == 404 and missing.get_json()["code"] == 404
    wrong = client.delete("/api/v1/comments")
    assert wrong.status_code == 405 and "Allow" in wrong.headers


def test_request_log_is_json_without_email_content_or_query(api, caplog):
    access = logging.getLogger("moderation.access")
    access.addHandler(caplog.handler)
    try:
        api.post("/api/v1/comments", comment(author_email="secret.person@example.org",
                                             content="very private words"))
        api.get("/api/v1/comments?thread=/2026/11/27/a-story&site=default")
    finally:
        access.removeHandler(caplog.handler)
    records = [r for r in caplog.records if r.name == "moderation.access"]
    assert len(records) == 2
    lines = [json.loads(JsonFormatter().format(record)) for record in records]
    assert {"request_id", "method", "path", "status", "duration_ms"} <= set(lines[0])
    assert lines[0]["status"] == 201 and lines[0]["method"] == "POST"
    assert lines[1]["path"] == "/api/v1/comments"
    everything = json.dumps(lines)
    assert "secret.person" not in everything and "private words" not in everything
    assert "thread=" not in everything


@pytest.mark.parametrize(("given", "kept"), [
    ("req-7f3a.9:b/c+d=", True),
    ("\xff<script>", False),  # echoed back as `ÿ<script>` (found by an audit)
    ("two words", False),
    ("x" * 65, False),
])
def test_an_x_request_id_is_kept_only_when_it_is_a_plain_token(client, given, kept):
    answer = client.get("/healthz", headers={"X-Request-ID": given})
    echoed = answer.headers["X-Request-ID"]
    assert (echoed == given) is kept
    assert kept or len(echoed) == 32 and echoed.isalnum()


def test_the_development_server_logs_no_client_address_nor_request_line():
    """`moderation run` (Werkzeug's server) logged `<IP> - - [time] "GET /...?email=..."`
    for each request; the app's own access line stays (found by an audit)."""
    werkzeug = logging.getLogger("werkzeug")
    request_line = logging.LogRecord("werkzeug", logging.INFO, "", 0,
                                     '127.0.0.1 - - [29/Nov/2026 16:00:00] "%s" %s -',
                                     ("GET /api/v1/admin/privacy/export?email=a@b.c", 200),
                                     None)
    banner = logging.LogRecord("werkzeug", logging.INFO, "", 0,
                               " * Running on http://127.0.0.1:5000", (), None)
    assert not werkzeug.filter(request_line)
    assert werkzeug.filter(banner)


def test_proxy_hops_take_the_client_ip_from_x_forwarded_for(database_url, app):
    from moderation.models import Comment
    from tests.conftest import close_app, make_app

    headers = {"X-Forwarded-For": "198.51.100.23"}
    direct = app.test_client().post("/api/v1/comments", json=comment(), headers=headers)
    proxied_app = make_app(database_url, PROXY_HOPS=1)
    try:
        proxied = proxied_app.test_client().post(
            "/api/v1/comments", json=comment(thread="/behind-proxy"), headers=headers
        )
        with proxied_app.app_context():
            ips = {
                response_id: db.session.get(Comment, response_id).ip
                for response_id in (direct.get_json()["id"], proxied.get_json()["id"])
            }
    finally:
        close_app(proxied_app)
    assert ips[direct.get_json()["id"]] == "127.0.0.1"
    assert ips[proxied.get_json()["id"]] == "198.51.100.23"


@pytest.mark.parametrize(("forwarded", "stored"), [
    ("203.0.113.7" + "0" * 40, None),        # past the IP column's 45 characters
    ("not-an-address", None),
    ("198.51.100.23\x00", None),             # NUL: PostgreSQL stores no such text
    ("fe80::1%" + "e" * 60, "fe80::1"),      # an IPv6 zone says nothing of the commenter
])
def test_a_forwarded_for_that_is_no_address_does_not_cost_the_comment(
        database_url, app, forwarded, stored):
    """Behind a proxy that passes the client's own X-Forwarded-For on, remote_addr is what
    the client wrote: stored as it was, PostgreSQL refused the valid comment (422)."""
    from moderation.models import Comment
    from tests.conftest import close_app, make_app

    proxied_app = make_app(database_url, PROXY_HOPS=1)
    try:
        answer = proxied_app.test_client().post(
            "/api/v1/comments", json=comment(), headers={"X-Forwarded-For": forwarded})
        assert answer.status_code == 201
        with proxied_app.app_context():
            assert db.session.get(Comment, answer.get_json()["id"]).ip == stored
    finally:
        close_app(proxied_app)


def test_control_characters_in_the_browsers_headers_do_not_cost_the_comment(app, api):
    """The User-Agent and Referer are the browser's, kept with the comment; a NUL in one
    made PostgreSQL refuse the comment (422) and SQLite store it. Bytes 0x80-0x9F arrive
    as C1 controls (headers are Latin-1), which the moderator's page showed as garbage."""
    from moderation.models import Comment

    answer = api.post("/api/v1/comments", comment(), headers={
        "User-Agent": "Mozilla/5.0\x00\x85", "Referer": "https://news.example/\x00a-\x9bstory"})
    assert answer.status_code == 201
    with app.app_context():
        stored = db.session.get(Comment, answer.get_json()["id"])
        assert (stored.user_agent, stored.referrer) == (
            "Mozilla/5.0", "https://news.example/a-story")


def test_utf8_in_the_browsers_headers_is_stored_as_sent(app, api):
    """Headers reach the app read as Latin-1: a User-Agent naming "Café" in UTF-8 was
    stored as "CafÃ©". Bytes that are not UTF-8 stay as Latin-1 read them."""
    from moderation.models import Comment

    utf8 = "CaféApp/2.1 (Zürich)".encode().decode("latin-1")  # as the server hands it on
    latin = "Agent/\xe9t\xe9"  # "été" sent as Latin-1 bytes: not UTF-8
    answer = api.post("/api/v1/comments", comment(), headers={
        "User-Agent": utf8, "Referer": latin})
    assert answer.status_code == 201
    with app.app_context():
        stored = db.session.get(Comment, answer.get_json()["id"])
        assert (stored.user_agent, stored.referrer) == ("CaféApp/2.1 (Zürich)", "Agent/été")


def test_a_database_error_in_the_log_carries_no_values(app):
    """SQLAlchemy puts a failed statement's parameters in its message, and errors are
    logged with it: the values (an email, a comment) must not reach the log."""
    from sqlalchemy.exc import IntegrityError

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


def test_the_default_sqlite_database_is_readable_by_its_owner_alone(tmp_path, monkeypatch):
    """It holds commenters' emails and IPs, and was made 0644 in a 0755 folder (audit);
    the backup of it was already 0600."""
    instance = tmp_path / "instance"
    monkeypatch.setenv("MODERATION_INSTANCE_PATH", str(instance))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    old_umask = os.umask(0o022)
    try:
        app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": None})
        with app.app_context():
            upgrade()
            # Written in WAL mode: the -wal and -shm files exist while a connection is open.
            db.session.execute(sa.text("CREATE TABLE t (x)"))
            db.session.commit()
            modes = {path.name: stat.S_IMODE(path.stat().st_mode)
                     for path in instance.iterdir()}
        close_app(app)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    assert modes["moderation.sqlite3"] == 0o600
    assert modes["moderation.sqlite3-wal"] == modes["moderation.sqlite3-shm"] == 0o600


def test_a_sqlite_database_named_by_database_url_is_made_private_too(tmp_path, monkeypatch):
    """Only the default file was made 0600; one named by DATABASE_URL, and its -wal
    holding every new comment, were 0644 (operations audit)."""
    monkeypatch.setenv("MODERATION_INSTANCE_PATH", str(tmp_path / "instance"))
    database = tmp_path / "elsewhere" / "comments.sqlite3"
    database.parent.mkdir()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    old_umask = os.umask(0o022)
    try:
        app = create_app({"TESTING": True})
        with app.app_context():
            upgrade()
            db.session.execute(sa.text("CREATE TABLE t (x)"))
            db.session.commit()
            modes = {path.name: stat.S_IMODE(path.stat().st_mode)
                     for path in database.parent.iterdir()}
        close_app(app)
    finally:
        os.umask(old_umask)
    assert {"comments.sqlite3", "comments.sqlite3-wal", "comments.sqlite3-shm"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes
    assert stat.S_IMODE(database.parent.stat().st_mode) == 0o755  # the operator's folder


def test_the_limit_log_line_keeps_no_commenter_hash():
    from moderation.logs import _limit_without_commenter

    record = logging.LogRecord("flask-limiter", logging.INFO, __file__, 1,
                               "ratelimit %s (%s) exceeded at endpoint: %s",
                               ("5 per 1 minute", "LIMITER/email:default:abcdef0123456789",
                                "public.submit"), None)
    assert _limit_without_commenter(record)
    assert "abcdef0123456789" not in record.getMessage()
    assert "LIMITER/email:default" in record.getMessage()


def test_flask_limiters_log_is_written_as_json(app):
    limiter_log = logging.getLogger("flask-limiter")
    assert any(isinstance(h.formatter, JsonFormatter) for h in limiter_log.handlers)
