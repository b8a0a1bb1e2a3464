"""The rules as the service uses them: admin routes, hot reload, trust, the shipped file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import close_app, comment, make_app, wait_for

RULES_TEMPLATE = """
version: 1
trust: {{hold_new_commenters: false}}
rules:
  - {{id: WORDS, type: terms, terms: [{term}], outcome: spam}}
"""


def write_rules(path: Path, term: str) -> None:
    path.write_text(RULES_TEMPLATE.format(term=term))



def test_rules_state_reports_version_source_and_errors(api, keys, app):
    state = api.get("/api/v1/admin/rules", key=keys.admin).get_json()
    assert set(state) == {"version", "loaded_at", "source", "last_error"}
    assert state["source"].endswith("permissive_rules.yaml")
    assert state["last_error"] is None and len(state["version"]) == 64


def test_dry_run_under_the_rules_in_force_stores_nothing(api, keys):
    response = api.post(
        "/api/v1/admin/rules/test",
        {"comment": {"author_email": "x@example.org", "content": "buy forbiddenword"}},
        key=keys.admin,
    )
    assert response.status_code == 200
    verdict = response.get_json()
    assert verdict["outcome"] == "rejected"
    assert verdict["hits"][0]["rule"] == "BLOCKED_WORD"
    assert verdict["hits"][0]["match"] == "forbiddenword"
    queue = api.get("/api/v1/moderation/queue?status=rejected", key=keys.admin).get_json()
    assert queue["items"] == []


def test_a_dry_run_judges_the_comment_as_intake_would_store_it(api, keys):
    """Intake takes "http://" as no website and a CRLF as one line break; the dry run
    refused the one and counted the other twice (a review)."""
    rules = ("version: 1\ntrust: {hold_new_commenters: false}\nrules:\n"
             "  - {id: LONG, type: length, max: 3, score: 1}\n"
             "  - {id: SITE, type: links, at_least: 1, score: 1}\n")
    response = api.post("/api/v1/admin/rules/test", {
        "comment": {"author_url": "http://", "content": "a\r\nb"}, "rules": rules},
        key=keys.admin)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["hits"] == []  # 3 characters, and no website


def test_dry_run_with_given_yaml_and_its_errors(api, keys):
    rules = ("version: 1\ntrust: {hold_new_commenters: false}\nrules:\n"
             "  - {id: LOTTO, type: terms, terms: [lottery], score: 7}\n")
    verdict = api.post(
        "/api/v1/admin/rules/test",
        {"comment": {"content": "Win the L0TTERY"}, "rules": rules},
        key=keys.admin,
    ).get_json()
    assert verdict["outcome"] == "spam" and verdict["score"] == 7
    assert verdict["hits"][0]["match"] == "L0TTERY"
    broken = api.post(
        "/api/v1/admin/rules/test",
        {"comment": {"content": "x"},
         "rules": "version: 1\nrules:\n  - {id: BAD, type: regex, pattern: '(?<=a)b', score: 1}\n"},
        key=keys.admin,
    )
    assert broken.status_code == 422
    assert "BAD" in broken.get_json()["message"] and "pattern" in broken.get_json()["message"]


def test_queue_filters_by_the_rule_that_hit(api, keys):
    api.post("/api/v1/comments", comment(content="a spammyword"))
    api.post("/api/v1/comments", comment(content="a holdword", author_email="b@example.org"))
    spam = api.get("/api/v1/moderation/queue?status=spam&rule=SPAMMY_WORD", key=keys.admin)
    assert len(spam.get_json()["items"]) == 1
    none = api.get("/api/v1/moderation/queue?status=spam&rule=HOLD_WORD", key=keys.admin)
    assert none.get_json()["items"] == []


def test_two_app_instances_follow_a_rules_file_edit_and_survive_a_broken_one(
    database_url, tmp_path
):
    rules = tmp_path / "rules.yaml"
    write_rules(rules, "alpha")
    apps = [make_app(database_url, RULES_FILE=str(rules), RULES_RELOAD_INTERVAL=0.1)
            for _ in range(2)]
    clients = [app.test_client() for app in apps]

    def outcome(client, text):
        with client.application.app_context():
            from moderation.rules import Submission, evaluate
            from moderation.services.rules import current_rules

            return evaluate(current_rules(), Submission("default", "/t", "A", "a@x.org",
                                                        content=text)).outcome

    try:
        assert [outcome(c, "alpha") for c in clients] == ["spam", "spam"]
        time.sleep(0.05)
        write_rules(rules, "beta")
        # The watchers check every 0.1 s; the waits are long only for a loaded machine,
        # whose threads may not run for seconds (wait_for returns as soon as it holds).
        assert wait_for(lambda: [outcome(c, "beta") for c in clients] == ["spam", "spam"], 30)
        assert [outcome(c, "alpha") for c in clients] == ["approved", "approved"]
        good_version = apps[0].extensions["moderation.rules"].current.version
        rules.write_text("version: 1\nrules:\n  - {id: X, type: nonsense}\n")
        # Waited for this file's error: a check made between write_text's truncation and
        # its write reads an empty file, whose error would end a wait for any error.
        assert wait_for(lambda: all("X" in (a.extensions["moderation.rules"].last_error or "")
                                    for a in apps), 30)
        for app in apps:
            assert app.extensions["moderation.rules"].current.version == good_version
            assert "X" in app.extensions["moderation.rules"].last_error
        assert [outcome(c, "beta") for c in clients] == ["spam", "spam"]
    finally:
        for app in apps:
            close_app(app)


def test_a_refused_file_is_counted_once_however_many_workers_refused_it(tmp_path, monkeypatch):
    """Each worker watches the file and counted the same broken edit: one edit read as 3
    errors under 3 workers (audit). One worker, the one holding the metrics folder's lock,
    counts; the others, gunicorn's master and commands count nothing. Another worker is
    another open file here (flock locks belong to an open file, not to a process)."""
    import fcntl
    import os

    from moderation.metrics import RULES_RELOAD_ERRORS
    from moderation.services import rules as rules_service

    folder = tmp_path / "metrics"
    folder.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    monkeypatch.setattr(rules_service, "_counter_lock", None)
    monkeypatch.setattr(rules_service, "_counts_in_shared_folder", True)
    before = RULES_RELOAD_ERRORS._value.get()

    def counted() -> float:
        return RULES_RELOAD_ERRORS._value.get() - before

    rules_service.count_reload_errors_here(False)  # the master, or a command
    rules_service._reload_failed("rules.yaml: broken")
    assert counted() == 0
    rules_service.count_reload_errors_here()  # a worker, now
    other_worker = os.open(folder / rules_service.RELOAD_ERRORS_LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(other_worker, fcntl.LOCK_EX | fcntl.LOCK_NB)
    rules_service._reload_failed("rules.yaml: broken")
    assert counted() == 0  # the other worker counts it
    os.close(other_worker)  # it was recycled
    for _ in range(2):  # the same list deleted twice is two errors
        rules_service._reload_failed("lists/words.txt: missing")
    assert counted() == 2
    os.close(rules_service._counter_lock)


@pytest.mark.parametrize(("argv", "counts"), [(["run", "--help"], True),
                                              (["rules", "--help"], False)])
def test_of_the_commands_only_moderation_run_counts_refused_rules_files(
        monkeypatch, argv, counts):
    """`moderation run` serves, and its /metrics is read: it counted nothing while the
    Docker image's metrics folder was set (a review). Other commands serve nothing."""
    import sys

    from moderation import cli
    from moderation.services import rules as rules_service

    monkeypatch.setattr(rules_service, "_counts_in_shared_folder", True)
    monkeypatch.setattr(sys, "argv", ["moderation", *argv])
    with pytest.raises(SystemExit):
        cli.main()
    assert rules_service._counts_in_shared_folder is counts


def test_a_request_while_no_rules_file_loaded_is_a_503_with_the_rules_wait(database_url,
                                                                           tmp_path):
    """An app built without its rules (as the `moderation` command builds one while the
    file is broken; gunicorn and `moderation run` refuse to start instead) answers 503:
    its Retry-After is the rules' 30 s, which the limits' hook replaced by the database's 5."""
    from moderation.services.rules import RULES_RETRY_AFTER

    broken = tmp_path / "rules.yaml"
    broken.write_text("version: 1\nrules:\n  - {id: BAD, type: regex, pattern: '(a', score: 1}\n")
    app = make_app(database_url, RULES_FILE=str(broken), RULES_REQUIRED=False,
                   RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")
    try:
        client = app.test_client()
        answer = client.post("/api/v1/comments", json=comment())
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == str(RULES_RETRY_AFTER)
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.get_json()["checks"]["rules"] == "not loaded"
    finally:
        close_app(app)


def test_the_rules_route_reports_a_refused_file_and_keeps_the_version(database_url, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - {id: GOOD, type: terms, terms: [casino], score: 9}\n")
    app = make_app(database_url, RULES_FILE=str(rules), RULES_RELOAD_INTERVAL=60)
    try:
        from moderation.services import keys as key_service
        with app.app_context():
            admin = key_service.create_key("rules-admin", "admin", [])[1]
        client = app.test_client()
        headers = {"Authorization": f"Bearer {admin}"}
        first = client.get("/api/v1/admin/rules", headers=headers).get_json()
        assert first["loaded_at"] is not None and first["last_error"] is None
        rules.write_text("version: 1\nrules:\n  - {id: BROKEN_ONE, type: nonsense}\n")
        app.extensions["moderation.rules"].check_now()
        state = client.get("/api/v1/admin/rules", headers=headers).get_json()
        assert "BROKEN_ONE" in (state["last_error"] or "")
        assert state["version"] == first["version"]
    finally:
        close_app(app)
