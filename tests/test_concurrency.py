"""Races that real traffic produces: retried submissions and two moderators at once."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from moderation.auth import Caller
from moderation.errors import NotFound
from moderation.extensions import db
from moderation.models import (
    ApiKey,
    ClassifierToken,
    ClassifierTotal,
    Comment,
    Decision,
    Role,
    Status,
    utcnow,
)
from moderation.services import comments, flags, learning, moderation, retention, review
from tests.conftest import comment, wait_for


def test_fifty_concurrent_retries_with_one_key_make_one_comment(app, api):
    start = threading.Barrier(50)
    body = comment(content="Posted over a flaky connection.")

    def send(_: int):
        client = app.test_client()
        start.wait()
        return client.post("/api/v1/comments", json=body, headers={"Idempotency-Key": "flaky-1"})

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(send, range(50)))
    ok = [answer for answer in answers if 200 <= answer.status_code < 300]
    assert len(ok) == 50, {answer.status_code for answer in answers}
    assert len({answer.get_json()["id"] for answer in ok}) == 1
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Comment)) == 1


def test_two_moderators_with_the_same_etag_one_wins(app, api, keys):
    comment_id = api.post("/api/v1/comments", comment(content="holdword race")).get_json()["id"]
    etag = api.get(f"/api/v1/moderation/comments/{comment_id}", key=keys.moderator).headers["ETag"]
    start = threading.Barrier(2)

    def decide(action: str):
        client = app.test_client()
        start.wait()
        return client.post(
            f"/api/v1/moderation/comments/{comment_id}/decision",
            json={"action": action},
            headers={"Authorization": f"Bearer {keys.moderator}", "If-Match": etag},
        ).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = sorted(pool.map(decide, ["approve", "spam"]))
    assert statuses == [200, 412]
    history = api.get(f"/api/v1/moderation/comments/{comment_id}", key=keys.moderator)
    assert len(history.get_json()["history"]) == 1


def test_an_overruling_decision_audits_the_status_it_replaced(app, api, keys):
    """A bulk decision (or If-Match: *) that read the comment before another moderator's
    decision landed still overrules it, and the audit log says what it overruled."""
    comment_id = api.post("/api/v1/comments", comment(content="holdword race")).get_json()["id"]
    with app.app_context():
        seen = db.session.get(Comment, comment_id)
        # The other decision lands after this one read the comment (read committed).
        db.session.execute(
            sa.update(Comment).where(Comment.id == comment_id)
            .values(status=Status.SPAM, version=Comment.version + 1),
            execution_options={"synchronize_session": False},
        )
        caller = Caller(key_id=0, name="second", role=Role.ADMIN, site_ids=frozenset())
        decided = moderation.decide(caller, seen, "approve", "", expected_version=None)
        assert (decided.status, decided.version) == (Status.APPROVED, 3)
        audited = db.session.scalar(sa.select(Decision).where(Decision.comment_id == comment_id))
        assert (audited.old_status, audited.new_status) == ("spam", "approved")


def test_a_double_click_whose_first_decision_landed_after_the_read_is_answered_200(
    app, api, keys
):
    """Both clicks read the comment, then the first landed: the second, with the same ETag,
    finds its own decision there and answers it rather than 412."""
    comment_id = api.post("/api/v1/comments", comment(content="holdword race")).get_json()["id"]
    with app.app_context():
        key = db.session.scalar(sa.select(ApiKey).where(ApiKey.name == "mod"))
        caller = Caller(key_id=key.id, name="mod", role=Role.ADMIN, site_ids=frozenset())
        seen = db.session.get(Comment, comment_id)
        read_version = seen.version
        db.session.execute(
            sa.update(Comment).where(Comment.id == comment_id)
            .values(status=Status.SPAM, status_reason="moderator", version=Comment.version + 1),
            execution_options={"synchronize_session": False},
        )
        db.session.add(Decision(site_id=seen.site_id, comment_id=comment_id, actor="mod",
                                action="spam", old_status="pending", new_status="spam"))
        decided = moderation.decide(caller, seen, "spam", "", expected_version=read_version)
        assert (decided.status, decided.version) == (Status.SPAM, read_version + 1)
        decisions = db.session.scalars(sa.select(Decision).where(Decision.comment_id == comment_id))
        assert len(list(decisions)) == 1


def test_a_flag_does_not_undo_a_decision_made_since_it_read_the_comment(
    app, api, keys, monkeypatch
):
    comment_id = api.post("/api/v1/comments", comment()).get_json()["id"]
    for reader in ("10.7.0.1", "10.7.0.2"):
        api.post(f"/api/v1/comments/{comment_id}/flags", {"reason": "spam"},
                 environ_base={"REMOTE_ADDR": reader})
    read = flags.approved_comment

    def read_then_a_moderator_decides(comment_id: int, **lock: bool) -> Comment:
        seen = read(comment_id, **lock)
        if not lock.get("for_update"):
            return seen  # the look-up of its site
        db.session.execute(
            sa.update(Comment).where(Comment.id == comment_id)
            .values(status=Status.SPAM, version=Comment.version + 1),
            execution_options={"synchronize_session": False},
        )
        return seen

    monkeypatch.setattr(flags, "approved_comment", read_then_a_moderator_decides)
    with app.test_request_context():
        assert flags.flag(comment_id, "spam", "10.7.0.3") is False
    body = api.get(f"/api/v1/moderation/comments/{comment_id}", key=keys.moderator).get_json()
    assert (body["status"], body["version"], body["flag_count"]) == ("spam", 2, 3)
    assert body["history"] == []


def test_two_readers_flagging_at_once_are_both_counted(app, api, keys, monkeypatch):
    """The flags that reach the threshold together must both count: each reader's count
    must see the other's flag. Both counts are held at a barrier, as the race would have
    it; a reader kept waiting behind the other's lock just lets the barrier time out."""
    comment_id = api.post("/api/v1/comments", comment()).get_json()["id"]
    api.post(f"/api/v1/comments/{comment_id}/flags", {"reason": "spam"},
             environ_base={"REMOTE_ADDR": "10.8.0.1"})
    together = threading.Barrier(2)
    count = flags.reporters_since_approval

    def counted_together(flagged_id: int) -> int:
        with contextlib.suppress(threading.BrokenBarrierError):
            together.wait(timeout=1.0)
        return count(flagged_id)

    monkeypatch.setattr(flags, "reporters_since_approval", counted_together)

    def report(reader: str) -> bool:
        with app.test_request_context(method="POST"):
            return flags.flag(comment_id, "spam", reader)

    with ThreadPoolExecutor(max_workers=2) as pool:
        returned = list(pool.map(report, ["10.8.0.2", "10.8.0.3"]))
    assert sorted(returned) == [False, True]
    body = api.get(f"/api/v1/moderation/comments/{comment_id}", key=keys.moderator).get_json()
    assert (body["status"], body["flag_count"]) == ("pending", 3)


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True}])
@pytest.mark.parametrize("by", ["form", "site key", "a page's script"])
def test_intake_judges_without_holding_the_sqlite_write_lock(app, api, keys, monkeypatch, by):
    """Judging (history, rules, classifier) is intake's slow part: holding SQLite's one write
    lock through it would queue every other worker's intake behind it. The key lookup
    (and the rate limits' look at the caller) come first and must not take the lock."""
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the write lock is SQLite's")
    held: list[bool] = []
    judge = comments._judge

    def judging(*args, **kwargs):
        held.append(db.session.connection().connection.dbapi_connection.holding_write_lock)
        return judge(*args, **kwargs)

    body = comment(content="Judged while other workers write.")
    key = None
    if by == "site key":
        body, key = {**body, "ip": "198.51.100.7"}, keys.site
    # A browser's post names its page's origin, which is checked against the site's.
    headers = {"Origin": "https://news.example"} if by == "a page's script" else {}
    # The thread exists already, as for most comments (a first one creates it in a
    # transaction of its own, which ends whatever came before).
    first = api.post("/api/v1/comments", {**body, "content": "The first."}, key=key)
    assert first.status_code == 201
    monkeypatch.setattr(comments, "_judge", judging)
    assert api.post("/api/v1/comments", body, key=key, headers=headers).status_code == 201
    assert held == [False]


def _write_lock_held(lock_file: str) -> bool:
    """Whether a worker holds SQLite's write lock, asked from outside as another worker
    would: asking the session would begin a transaction of its own."""
    with open(lock_file, "a") as other:
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(other, fcntl.LOCK_UN)
        return False


def test_a_retried_submission_answers_without_keeping_the_sqlite_write_lock(
    app, api, monkeypatch
):
    """A retry with the same Idempotency-Key writes nothing, so it must not sit on the lock
    (retries come in storms, when a client's connection is flaky)."""
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the write lock is SQLite's")
    body = comment(content="Sent twice.")
    headers = {"Idempotency-Key": "twice-1"}
    first = api.post("/api/v1/comments", body, headers=headers)
    held: list[bool] = []
    submit = comments.submit
    with app.app_context():
        lock_file = db.engine.url.database + "-writelock"

    def submitting(*args, **kwargs):
        answer = submit(*args, **kwargs)
        held.append(_write_lock_held(lock_file))
        return answer

    monkeypatch.setattr(comments, "submit", submitting)
    again = api.post("/api/v1/comments", body, headers=headers)
    assert again.get_json() == first.get_json()
    assert held == [False]


def test_a_lost_idempotency_race_answers_without_keeping_the_sqlite_write_lock(
    app, api, monkeypatch
):
    """Two retries racing in: the loser's insert fails on the key, and it answers with the
    winner's response. Reading that response must not begin a write transaction that
    holds the lock until the request ends."""
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the write lock is SQLite's")
        lock_file = db.engine.url.database + "-writelock"
    body = comment(content="Raced in twice.")
    headers = {"Idempotency-Key": "race-1"}
    first = api.post("/api/v1/comments", body, headers=headers)
    # The loser looked for a stored answer before the winner had committed one.
    replay = comments._replay
    looks: list[int] = []

    def too_early(*args, **kwargs):
        looks.append(1)
        return None if len(looks) == 1 else replay(*args, **kwargs)

    held: list[bool] = []
    submit = comments.submit

    def submitting(*args, **kwargs):
        answer = submit(*args, **kwargs)
        held.append(_write_lock_held(lock_file))
        return answer

    monkeypatch.setattr(comments, "_replay", too_early)
    monkeypatch.setattr(comments, "submit", submitting)
    again = api.post("/api/v1/comments", body, headers=headers)
    assert len(looks) == 2  # the race was taken: the insert failed and the answer was read
    assert again.get_json() == first.get_json()
    assert held == [False]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Comment)) == 1


@pytest.mark.parametrize("route", ["test", "backtest"])
def test_rules_dry_runs_do_not_take_the_sqlite_write_lock(app, api, keys, monkeypatch, route):
    """A backtest replays up to thousands of decided comments and stores nothing: holding
    SQLite's write lock through it would stop every intake for as long."""
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("the write lock is SQLite's")
    from moderation.services import backtest, rules

    held: list[bool] = []
    service, name = (rules, "dry_run") if route == "test" else (backtest, "backtest")
    original = getattr(service, name)

    def watched(*args, **kwargs):
        result = original(*args, **kwargs)
        held.append(db.session.connection().connection.dbapi_connection.holding_write_lock)
        return result

    monkeypatch.setattr(service, name, watched)
    body = ({"comment": comment(thread_title=None)} if route == "test"
            else {"rules": "version: 1\nrules: []\n", "limit": 10})
    answer = api.post(f"/api/v1/admin/rules/{route}", body, key=keys.admin)
    assert answer.status_code == 200, answer.get_json()
    assert held == [False]


def _postgresql_only(app) -> None:
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite has one writer: its write transactions cannot interleave")


def test_two_identical_comments_at_once_store_one(app, api, monkeypatch):
    """The duplicate check runs in the write transaction; on PostgreSQL two of them can
    still interleave, so both checks were made before either insert (both 201). Both
    checks are held at a barrier, as the race would have it; a check kept waiting behind
    the other's lock just lets the barrier time out."""
    body = comment(content="Posted twice by a double click.")
    api.post("/api/v1/comments", comment(content="The thread exists."))
    together = threading.Barrier(2)
    refuse = comments._refuse_duplicate

    def checked_together(*args, **kwargs):
        with contextlib.suppress(threading.BrokenBarrierError):
            together.wait(timeout=1.0)
        return refuse(*args, **kwargs)

    monkeypatch.setattr(comments, "_refuse_duplicate", checked_together)

    def send(_: int) -> int:
        return app.test_client().post("/api/v1/comments", json=body).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = sorted(pool.map(send, range(2)))
    assert statuses == [201, 409]


def _meanwhile(app, action, wait: float = 1.0) -> threading.Thread:
    """Run ``action`` (given a test client) in another thread, as another worker would,
    and wait up to ``wait`` seconds for it: it may be waiting for a lock this one holds."""
    worker = threading.Thread(target=lambda: action(app.test_client()))
    worker.start()
    worker.join(timeout=wait)
    return worker


def _judged_while(app, monkeypatch, request) -> list[int]:
    """Make intake's judging wait for ``request`` (given a test client) sent meanwhile by
    another worker; the statuses it got are in the list returned.

    Judging holds no lock, so the request must end while intake waits: waited for up to
    20 s, not 1 s, which a loaded machine could take to serve it, and then the comment
    was judged before the request had changed anything (a 201, and no status)."""
    judge = comments._judge
    statuses: list[int] = []

    def judging(*args, **kwargs):
        _meanwhile(app, lambda client: statuses.append(request(client).status_code), wait=20)
        return judge(*args, **kwargs)

    monkeypatch.setattr(comments, "_judge", judging)
    return statuses


def test_a_comment_judged_while_its_thread_closes_is_refused(app, api, keys, monkeypatch):
    api.post("/api/v1/comments", comment(content="The thread exists."))
    closed = _judged_while(app, monkeypatch, lambda client: client.put(
        "/api/v1/moderation/threads",
        json={"site": "default", "thread": comment()["thread"], "closed": True},
        headers={"Authorization": f"Bearer {keys.moderator}"}))
    answer = api.post("/api/v1/comments", comment(content="Too late."))
    assert closed == [200]
    assert answer.status_code == 403, answer.get_json()
    assert answer.get_json()["message"] == "Comments are closed on this page."


def test_a_comment_judged_while_its_site_is_deleted_is_a_404(app, api, keys, monkeypatch):
    deleted = _judged_while(app, monkeypatch, lambda client: client.delete(
        "/api/v1/admin/sites/other", headers={"Authorization": f"Bearer {keys.admin}"}))
    answer = api.post("/api/v1/comments", comment(site="other"))
    assert deleted == [204]
    assert answer.status_code == 404, answer.get_json()
    assert answer.get_json()["message"] == "There is no site 'other'."


def test_a_comment_stored_while_its_site_is_deleted_is_not_lost(app, api, keys, monkeypatch):
    """The deletion checked that the site had no comments; a comment stored before the
    deletion commits would go with the site (ON DELETE CASCADE) after its 201."""
    from moderation.services import sites

    api.post("/api/v1/comments", comment(site="other", content="Makes the thread."))
    api.post("/api/v1/admin/privacy/erase", {"email": "ada@example.org", "delete_content": True},
             key=keys.admin)
    with app.app_context():
        db.session.execute(sa.delete(Comment))
        db.session.commit()
    revoke = sites.revoke_keys_only_for
    posted = []

    def checked_then_a_comment_arrives(site):
        worker = _meanwhile(app, lambda client: posted.append(
            client.post("/api/v1/comments", json=comment(site="other"))))
        revoke(site)
        return worker

    monkeypatch.setattr(sites, "revoke_keys_only_for", checked_then_a_comment_arrives)
    deleted = api.delete("/api/v1/admin/sites/other", key=keys.admin)
    assert wait_for(lambda: len(posted) == 1, timeout=20)
    answer = posted[0]
    with app.app_context():
        stored = db.session.scalar(sa.select(sa.func.count()).select_from(Comment))
    if answer.status_code == 201:
        assert (deleted.status_code, stored) == (409, 1)
    else:
        assert (deleted.status_code, answer.status_code, stored) == (204, 404, 0), \
            answer.get_json()


def _old_spam(app, api, **fields) -> int:
    """A spam comment past the purge's 30 days."""
    comment_id = api.post("/api/v1/comments", comment(content="spammyword old", **fields),
                          environ_base={"REMOTE_ADDR": "203.0.113.77"}).get_json()["id"]
    with app.app_context():
        old = utcnow() - dt.timedelta(days=100)
        db.session.execute(sa.update(Comment).where(Comment.id == comment_id)
                           .values(created_at=old))
        db.session.commit()
    return comment_id


@contextlib.contextmanager
def _before(statement_kind: str, action, table: str = "comments"):
    """Run ``action`` once, in the gap the code leaves around its first ``statement_kind``
    on ``table``: just before a "delete" or "update" (after the code read what it would
    change), just after a "select" (before the code acts on what it read)."""
    done: list[bool] = []

    def hook(state):
        kind = {"select": state.is_select, "delete": state.is_delete,
                "update": state.is_update}[statement_kind]
        if kind and not done and table in str(state.statement).split("WHERE")[0]:
            done.append(True)
            if statement_kind != "select":
                return action()
            read = state.invoke_statement().freeze()
            action()
            return read()
        return None

    sa.event.listen(Session, "do_orm_execute", hook)
    try:
        yield done
    finally:
        sa.event.remove(Session, "do_orm_execute", hook)


def test_a_decision_on_a_comment_deleted_since_it_was_read_is_a_404(app, api, keys):
    """The purge (or anything else) deleted the comment after the decision read it."""
    comment_id = api.post("/api/v1/comments", comment(content="spammyword")).get_json()["id"]
    caller = Caller(key_id=0, name="mod", role=Role.ADMIN, site_ids=frozenset())
    with app.app_context():
        seen = db.session.get(Comment, comment_id)
        db.session.execute(sa.delete(Comment).where(Comment.id == comment_id),
                           execution_options={"synchronize_session": False})
        with pytest.raises(NotFound):
            moderation.decide(caller, seen, "approve", "", expected_version=None)


def test_a_decision_whose_site_is_deleted_right_after_is_answered(app, api, keys):
    """The site's deletion waited for the decision, then removed its comments before the
    answer was made from them: a decision that had landed was answered 500 (audit)."""
    comment_id = api.post("/api/v1/comments", comment(site="other", thread="/p"),
                          key=keys.other_site).get_json()["id"]
    caller = Caller(key_id=0, name="mod", role=Role.ADMIN, site_ids=frozenset())
    with app.app_context():
        decided = moderation.decide(caller, db.session.get(Comment, comment_id), "spam", "",
                                    expected_version=None)
        with db.engine.connect() as other:  # the deletion, right after
            other.execute(sa.text("DELETE FROM sites WHERE slug = 'other'"))
            other.commit()
        detail = review.detail_of(decided)
    assert (detail["site"], detail["thread"], detail["status"]) == ("other", "/p", "spam")


def test_the_purge_spares_a_comment_approved_since_it_chose_it(app, api, keys):
    """A moderator rescues an old false positive while the purge runs: the purge chose it
    as spam, the moderator approved it, and the purge's delete must not take it."""
    comment_id = _old_spam(app, api)
    decided: list = []

    def approve() -> None:
        _meanwhile(app, lambda client: decided.append(client.post(
            f"/api/v1/moderation/comments/{comment_id}/decision", json={"action": "approve"},
            headers={"Authorization": f"Bearer {keys.moderator}", "If-Match": "*"})))

    with app.app_context(), _before("delete", approve) as hooked:
        retention.purge()
    assert hooked
    assert wait_for(lambda: len(decided) == 1, timeout=20)
    with app.app_context():
        kept = db.session.get(Comment, comment_id)
        if decided[0].status_code == 200:  # the decision came first (PostgreSQL)
            assert kept is not None and kept.status is Status.APPROVED
        else:  # the purge came first: SQLite's writers take turns
            assert (decided[0].status_code, kept) == (404, None), decided[0].get_json()


def test_the_purge_does_not_undo_an_erasure_made_since_it_read_the_ips(app, api, keys):
    """The purge coarsens old IPs in the comment and in its hits; an erasure that cleared
    them meanwhile must not get them back, nor the erased hits' matches."""
    comment_id = _old_spam(app, api, author_email="erin@example.org")
    # An IP rule's hit quotes the address, as the purge expects.
    with app.app_context():
        db.session.execute(sa.update(Comment).where(Comment.id == comment_id).values(
            status=Status.APPROVED,
            hits=[{"rule": "IP", "match": "203.0.113.77 erin@example.org",
                   "explanation": "203.0.113.77", "score": 1.0}]))
        db.session.commit()
    erased: list = []

    def erase() -> None:
        _meanwhile(app, lambda client: erased.append(client.post(
            "/api/v1/admin/privacy/erase", json={"email": "erin@example.org"},
            headers={"Authorization": f"Bearer {keys.admin}"}).status_code))

    with app.app_context(), _before("update", erase) as hooked:
        retention.purge()
    assert hooked
    assert wait_for(lambda: len(erased) == 1, timeout=20)
    assert erased == [200]
    with app.app_context():
        kept = db.session.get(Comment, comment_id)
        assert kept.ip is None
        assert [hit["match"] for hit in kept.hits] == ["(erased)"]


def _approved(api, keys, **fields) -> int:
    comment_id = api.post("/api/v1/comments", comment(**fields)).get_json()["id"]
    decided = api.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                       {"action": "approve"}, key=keys.moderator, headers={"If-Match": "*"})
    assert decided.status_code == 200, decided.get_json()
    return comment_id


def test_a_reply_to_a_comment_purged_since_it_was_judged_is_a_422(app, api, keys, monkeypatch):
    """The reply was judged while its parent was published; meanwhile a moderator marked
    the parent spam and the purge deleted it. The reply's insert broke the foreign key: 500."""
    parent_id = _approved(api, keys, content="First, and old.")

    def marked_spam_and_purged(client):
        answer = _decide(client, keys.moderator, parent_id, "spam")
        with app.app_context():
            db.session.execute(sa.update(Comment).where(Comment.id == parent_id)
                               .values(created_at=utcnow() - dt.timedelta(days=100)))
            db.session.commit()
            retention.purge()
        return answer

    judge = comments._judge
    purged: list[int] = []

    def judged_then_purged(*args, **kwargs):
        judged = judge(*args, **kwargs)
        _meanwhile(app, lambda client: purged.append(marked_spam_and_purged(client)), wait=20)
        return judged

    monkeypatch.setattr(comments, "_judge", judged_then_purged)
    answer = api.post("/api/v1/comments", comment(content="A late reply.", parent_id=parent_id))
    assert purged == [200]
    assert answer.status_code == 422, answer.get_json()
    assert "parent_id" in answer.get_json()["errors"], answer.get_json()


def test_the_purge_spares_a_comment_replied_to_since_it_chose_it(app, api, keys):
    """A reply stored between the purge's choice and its delete (to a comment approved
    then) keeps its parent; the delete broke the reply's foreign key and the purge failed."""
    comment_id = _old_spam(app, api)
    with app.app_context():
        parent = db.session.get(Comment, comment_id)
        columns = {column.key: getattr(parent, column.key)
                   for column in Comment.__table__.columns if column.key != "id"}
    replied: list = []

    def reply() -> None:
        def store(_client) -> None:
            with app.app_context():
                db.session.add(Comment(**{
                    **columns, "parent_id": comment_id, "root_id": comment_id,
                    "status": Status.APPROVED, "created_at": utcnow()}))
                try:
                    db.session.commit()
                    replied.append("stored")
                except sa.exc.IntegrityError:  # SQLite: the purge, the only writer, came first
                    replied.append("refused")
        _meanwhile(app, store)

    with app.app_context(), _before("select", reply) as hooked:
        report = retention.purge()
    assert hooked
    assert wait_for(lambda: len(replied) == 1, timeout=20)
    with app.app_context():
        kept = db.session.get(Comment, comment_id)
        if replied == ["stored"]:  # PostgreSQL: the reply came first
            assert (report.deleted, kept is not None) == (0, True)
        else:
            assert (report.deleted, kept) == (1, None)


def _decide(client, key: str, comment_id: int, action: str) -> int:
    return client.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                       json={"action": action},
                       headers={"Authorization": f"Bearer {key}", "If-Match": "*"}).status_code


def test_two_reversals_at_once_neither_deadlocks_nor_loses_a_count(app, api, keys, monkeypatch):
    """Approve-then-spam and spam-then-approve on comments with no token in common: each
    un-learns (its tokens, then its old label's total) and learns (its tokens, then the
    other total), so each held the total the other wanted. Both un-learnings are held at
    a barrier, as the race would have it; one kept waiting behind the other's lock just
    lets the barrier time out."""
    _postgresql_only(app)
    first = api.post("/api/v1/comments", comment(content="alpha bravo charlie")).get_json()["id"]
    # No token in common, the length's included (a short comment and a long one).
    long = "delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa"
    second = api.post("/api/v1/comments", comment(content=long, author_email="b@example.org")
                      ).get_json()["id"]
    client = app.test_client()
    assert _decide(client, keys.moderator, first, "approve") == 200
    assert _decide(client, keys.moderator, second, "spam") == 200
    together = threading.Barrier(2)
    unlearn = learning._unlearn

    def unlearned_together(*args, **kwargs):
        unlearn(*args, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):
            together.wait(timeout=1.0)

    monkeypatch.setattr(learning, "_unlearn", unlearned_together)

    def reverse(decision: tuple[int, str]) -> int:
        return _decide(app.test_client(), keys.moderator, *decision)

    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = list(pool.map(reverse, [(first, "spam"), (second, "approve")]))
    assert statuses == [200, 200]
    with app.app_context():
        totals = dict(db.session.execute(
            sa.select(ClassifierTotal.label, ClassifierTotal.messages)).all())
        learned = dict(db.session.execute(sa.select(Comment.id, Comment.learned_as)).all())
        counts = {token: (spam, ham) for token, spam, ham in db.session.execute(
            sa.select(ClassifierToken.token, ClassifierToken.spam, ClassifierToken.ham))}
    assert totals == {"spam": 1, "ham": 1}
    assert learned == {first: "spam", second: "ham"}
    assert counts["alpha"] == (1, 0) and counts["delta"] == (0, 1)


def test_closing_a_thread_while_its_first_comment_makes_it(app, api, keys):
    """Closing a thread not seen yet creates it closed; the first comment on the page may
    create it at the same moment, and closing must still close it, not answer 500."""
    posted: list = []

    def first_comment() -> None:
        _meanwhile(app, lambda client: posted.append(client.post(
            "/api/v1/comments", json=comment(content="The first word."))))

    with _before("select", first_comment, table="threads") as hooked:
        closing = api.put("/api/v1/moderation/threads",
                          {"site": "default", "thread": comment()["thread"], "closed": True},
                          key=keys.moderator)
    assert hooked
    assert closing.status_code == 200, closing.get_json()
    assert wait_for(lambda: len(posted) == 1, timeout=20)
    assert posted[0].status_code in (201, 403)
    page = api.get("/api/v1/comments", query_string={"thread": comment()["thread"]}).get_json()
    assert page["closed"] is True
    assert api.post("/api/v1/comments", comment(content="Too late.")).status_code == 403


def test_a_retry_after_the_thread_closed_gets_the_first_answer(app, api, keys):
    """The comment was stored, its answer lost on the way, and the page closed before the
    client retried: the retry must say the comment was taken, not that it never can be."""
    headers = {"Idempotency-Key": "before-closing-1"}
    first = api.post("/api/v1/comments", comment(), headers=headers)
    assert first.status_code == 201
    api.put("/api/v1/moderation/threads",
            {"site": "default", "thread": comment()["thread"], "closed": True},
            key=keys.moderator)
    again = api.post("/api/v1/comments", comment(), headers=headers)
    assert (again.status_code, again.get_json()) == (201, first.get_json())
    other = api.post("/api/v1/comments", comment(content="New."), headers={"Idempotency-Key": "2"})
    assert other.status_code == 403


def test_a_site_changed_while_another_admin_deletes_it(app, api, keys, monkeypatch):
    """Renaming a site read it, then another admin deleted it: the rename must answer
    (200 before the deletion, 404 after it), not fail to update a row that is gone."""
    from moderation.services import sites

    read = sites.get_site
    deleted: list[int] = []
    started: list[bool] = []

    def read_then_deleted(slug: str, **lock: bool):
        site = read(slug, **lock)
        if not started:
            started.append(True)
            _meanwhile(app, lambda client: deleted.append(client.delete(
                "/api/v1/admin/sites/other",
                headers={"Authorization": f"Bearer {keys.admin}"}).status_code))
        return site

    monkeypatch.setattr(sites, "get_site", read_then_deleted)
    renamed = api.client.patch("/api/v1/admin/sites/other", json={"name": "Renamed"},
                               headers={"Authorization": f"Bearer {keys.admin}"})
    assert wait_for(lambda: len(deleted) == 1, timeout=20)
    assert deleted == [204]
    assert renamed.status_code in (200, 404), renamed.get_json()


def test_a_key_made_for_a_site_being_deleted(app, api, keys, monkeypatch):
    """A moderator key for a site another admin deletes at that moment: either the key is
    made first and revoked with the site, or the site is gone first (404); never a 409
    that says the key's name is taken."""
    from moderation.services import keys as key_service

    make = key_service.new_key
    deleted: list[int] = []

    def made_while_the_site_goes(*args, **kwargs):
        _meanwhile(app, lambda client: deleted.append(client.delete(
            "/api/v1/admin/sites/other",
            headers={"Authorization": f"Bearer {keys.admin}"}).status_code))
        return make(*args, **kwargs)

    monkeypatch.setattr(key_service, "new_key", made_while_the_site_goes)
    made = api.post("/api/v1/admin/keys", {"name": "late", "role": "moderator",
                                           "sites": ["other"]}, key=keys.admin)
    assert wait_for(lambda: len(deleted) == 1, timeout=20)
    assert deleted == [204]
    if made.status_code == 201:
        listed = api.get("/api/v1/admin/keys", key=keys.admin).get_json()["items"]
        assert [key["revoked_at"] is not None for key in listed if key["name"] == "late"] == [True]
    else:
        assert made.status_code == 404, made.get_json()


def test_a_thread_closed_while_its_site_is_deleted(app, api, keys):
    """The close read the site while another admin's deletion of it was under way; its
    audit row then named a site that was gone: a foreign-key error, answered 500."""
    _postgresql_only(app)
    api.post("/api/v1/comments", comment(site="other", thread="/p"), key=keys.other_site)
    with app.app_context(), db.engine.connect() as other:  # the deletion, not committed yet
        other.execute(sa.text("DELETE FROM sites WHERE slug = 'other'"))
        answers: list[int] = []
        worker = _meanwhile(app, lambda client: answers.append(client.put(
            "/api/v1/moderation/threads", json={"site": "other", "thread": "/p",
                                                "closed": True},
            headers={"Authorization": f"Bearer {keys.admin}"}).status_code))
        other.commit()
    worker.join(timeout=20)
    assert answers == [404]


def test_two_moderators_closing_one_thread_at_once_log_it_once(app, api, keys):
    """The second close compared the state it read before the first committed, so both
    were logged, where a repeat that changes nothing is not."""
    _postgresql_only(app)
    assert api.put("/api/v1/moderation/threads", {"thread": "/q", "closed": False},
                   key=keys.moderator).status_code == 200
    with app.app_context(), db.engine.connect() as other:  # another moderator, mid-close
        other.execute(sa.text("UPDATE threads SET closed = true WHERE key = '/q'"))
        other.execute(sa.text(
            "INSERT INTO decisions (site_id, thread, actor, action, reason, created_at) "
            "SELECT site_id, key, 'ops', 'close', '', now() FROM threads WHERE key = '/q'"))
        answers: list[int] = []
        worker = _meanwhile(app, lambda client: answers.append(client.put(
            "/api/v1/moderation/threads", json={"thread": "/q", "closed": True},
            headers={"Authorization": f"Bearer {keys.moderator}"}).status_code))
        other.commit()
    worker.join(timeout=20)
    assert answers == [200]
    logged = api.get("/api/v1/moderation/audit", key=keys.admin).get_json()["items"]
    assert [(d["actor"], d["action"]) for d in logged] == [("ops", "close")]


@pytest.mark.parametrize("request_", ["decision", "erasure", "flag"])
def test_a_decision_while_its_site_is_deleted_waits_and_answers(app, api, keys, request_):
    """A decision locked its comment, then its audit row wanted the site's key; a site's
    deletion holds the site, then deletes the site's comments: the two deadlocked on
    PostgreSQL (503, and a bulk decision half applied). So did the flag that sends a
    comment back to the queue (an audit). A decision, like an erasure and a flag, holds
    the site first: it waits for the deletion, then finds nothing (404) or nothing to
    erase."""
    _postgresql_only(app)
    comment_id = api.post("/api/v1/comments", comment(site="other", thread="/p"),
                          key=keys.other_site).get_json()["id"]
    for reader in ("10.9.0.1", "10.9.0.2"):  # one flag short of the threshold
        assert api.post(f"/api/v1/comments/{comment_id}/flags", {"reason": "spam"},
                        environ_base={"REMOTE_ADDR": reader}).status_code == 202
    headers = {"Authorization": f"Bearer {keys.admin}"}
    with app.app_context(), db.engine.connect() as other:  # the deletion, under way
        site_id = other.scalar(sa.text("SELECT id FROM sites WHERE slug = 'other' FOR UPDATE"))
        answers: list[int] = []
        if request_ == "decision":
            worker = _meanwhile(app, lambda client: answers.append(client.post(
                f"/api/v1/moderation/comments/{comment_id}/decision", json={"action": "spam"},
                headers={**headers, "If-Match": "*"}).status_code))
        elif request_ == "erasure":
            worker = _meanwhile(app, lambda client: answers.append(client.post(
                "/api/v1/admin/privacy/erase", json={"email": "ada@example.org"},
                headers=headers).status_code))
        else:
            worker = _meanwhile(app, lambda client: answers.append(client.post(
                f"/api/v1/comments/{comment_id}/flags", json={"reason": "spam"},
                environ_base={"REMOTE_ADDR": "10.9.0.3"}).status_code))
        other.execute(sa.text("DELETE FROM sites WHERE id = :site"), {"site": site_id})
        other.commit()
    worker.join(timeout=20)
    assert answers == ([200] if request_ == "erasure" else [404])


def test_a_site_deleted_while_the_purge_holds_its_comments(app, api, keys):
    """The purge locks a batch of comments, then scrubs their decisions' reasons; a site's
    deletion scrubbed the decisions first, then deleted the comments: on PostgreSQL the
    two deadlocked (a 503 for the deletion, found by an audit). Here the purge is another
    connection that holds the site's comment, then scrubs its decision."""
    _postgresql_only(app)
    comment_id = api.post("/api/v1/comments", comment(site="other", thread="/p"),
                          key=keys.other_site).get_json()["id"]
    assert api.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                    {"action": "spam", "reason": "ada@example.org again"}, key=keys.admin,
                    headers={"If-Match": "*"}).status_code == 200
    answers: list[int] = []
    with app.app_context(), db.engine.connect() as purge:
        purge.execute(sa.text("SELECT id FROM comments WHERE id = :id FOR UPDATE"),
                      {"id": comment_id})
        deletion = _meanwhile(app, lambda client: answers.append(client.delete(
            "/api/v1/admin/sites/other?delete_comments=true",
            headers={"Authorization": f"Bearer {keys.admin}"}).status_code))
        purge.execute(sa.text("UPDATE decisions SET reason = '(erased) again' "
                              "WHERE comment_id = :id"), {"id": comment_id})
        purge.commit()
    deletion.join(timeout=20)
    assert answers == [204]
