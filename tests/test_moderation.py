"""The moderation queue, comment detail, decisions with If-Match, bulk and audit."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from moderation.extensions import db
from moderation.models import Comment
from tests.conftest import comment

QUEUE = "/api/v1/moderation/queue"


def post(api, **fields):
    response = api.post("/api/v1/comments", comment(**fields))
    assert response.status_code in (201, 403), response.get_json()
    return response.get_json().get("id")


def detail(api, key, comment_id):
    return api.get(f"/api/v1/moderation/comments/{comment_id}", key=key)


def decide(api, key, comment_id, action, etag=None, reason="checked"):
    if etag is None:
        etag = detail(api, key, comment_id).headers["ETag"]
    return api.post(
        f"/api/v1/moderation/comments/{comment_id}/decision",
        {"action": action, "reason": reason},
        key=key,
        headers={"If-Match": etag},
    )


def test_pending_comment_shows_in_the_queue_with_private_fields(api, keys):
    comment_id = post(api, content="a holdword to hold")
    page = api.get(QUEUE, key=keys.moderator).get_json()
    assert [item["id"] for item in page["items"]] == [comment_id]
    item = page["items"][0]
    assert item["author_email"] == "ada@example.org"
    assert item["status"] == "pending"
    assert item["hits"][0]["rule"] == "HOLD_WORD"
    assert page["next_cursor"] is None


def test_queue_filters_by_status_thread_rule_and_text(api, keys):
    held = post(api, content="a holdword to hold")
    spam = post(api, content="a spammyword offer", author_email="s@example.org")
    other = post(api, thread="/other", content="holdword elsewhere", author_email="o@example.org")

    def ids(query):
        response = api.get(QUEUE + query, key=keys.moderator)
        assert response.status_code == 200, response.get_json()
        return [item["id"] for item in response.get_json()["items"]]

    assert ids("") == [held, other]
    assert ids("?status=spam") == [spam]
    assert ids("?thread=/other") == [other]
    assert ids("?rule=HOLD_WORD") == [held, other]
    assert ids("?status=spam&rule=SPAMMY_WORD") == [spam]
    assert ids("?q=ELSEWHERE") == [other]
    assert ids("?q=100%25") == []
    sure = post(api, content="holdword: I am 100% sure", author_email="p@example.org")
    assert ids("?q=%25") == [sure]  # a percent sign is searched for, not a wildcard
    assert ids("?q=_") == []


def test_queue_text_search_ignores_case_beyond_ascii(api, keys):
    umlaut = post(api, content="holdword: Ärger im Büro")
    greek = post(api, content="holdword ΣΟΦΙΑ", author_email="g@example.org")

    def ids(q):
        return [item["id"] for item in
                api.get(QUEUE, key=keys.moderator, query_string={"q": q}).get_json()["items"]]

    assert ids("ärger") == [umlaut]
    assert ids("BÜRO") == [umlaut]
    assert ids("σοφια") == [greek]


def walk(api, key, query):
    """The ids of every page of the queue asked with ``query``, following next_cursor."""
    seen, cursor = [], None
    while True:
        page = api.get(QUEUE + query + (f"&cursor={cursor}" if cursor else ""), key=key)
        seen += [item["id"] for item in page.get_json()["items"]]
        cursor = page.get_json()["next_cursor"]
        if not cursor:
            return seen


def test_queue_sorts_and_pages_by_key(api, keys):
    made = [post(api, content=f"holdword number {n}", author_email=f"u{n}@example.org")
            for n in range(5)]
    newest = api.get(QUEUE + "?sort=newest", key=keys.moderator).get_json()
    assert [item["id"] for item in newest["items"]] == made[::-1]
    assert walk(api, keys.moderator, "?limit=2") == made
    assert walk(api, keys.moderator, "?sort=newest&limit=2") == made[::-1]
    by_score = walk(api, keys.moderator, "?sort=score&limit=2")
    assert sorted(by_score) == made and len(by_score) == len(set(by_score))


def test_queue_rejects_bad_arguments(api, keys):
    for query in ("?status=lost", "?sort=random", "?limit=201", "?limit=0", "?cursor=zzz",
                  "?rule=lower"):
        assert api.get(QUEUE + query, key=keys.moderator).status_code == 422, query


def test_moderator_sees_only_their_sites(api, keys):
    post(api, content="holdword on default")
    assert api.get(QUEUE, key=keys.other_moderator).get_json()["items"] == []
    assert api.get(QUEUE + "?site=default", key=keys.other_moderator).status_code == 403
    assert len(api.get(QUEUE, key=keys.admin).get_json()["items"]) == 1


def test_detail_carries_everything_and_an_etag(api, keys):
    comment_id = post(api, content="holdword detail", ip="198.51.100.1")
    response = detail(api, keys.moderator, comment_id)
    assert response.status_code == 200
    body = response.get_json()
    assert response.headers["ETag"] == f'"{body["version"]}"'
    for field in ("author_email", "ip", "user_agent", "referrer", "score", "hits",
                  "rules_version", "flags", "history", "version", "content_html"):
        assert field in body, field
    assert body["hits"][0].keys() >= {"rule", "target", "match", "score", "outcome",
                                      "explanation"}
    assert detail(api, keys.other_moderator, comment_id).status_code == 403
    assert detail(api, keys.moderator, 999_999).status_code == 404


def test_approving_publishes_and_writes_the_audit_log(api, keys):
    comment_id = post(api, content="holdword then approved")
    response = decide(api, keys.moderator, comment_id, "approve", reason="fine")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "approved"
    assert response.headers["ETag"] == f'"{body["version"]}"'
    assert body["history"][0] | {"created_at": None} == {
        "id": body["history"][0]["id"], "comment_id": comment_id, "site": "default", "thread": None,
        "actor": "mod", "action": "approve", "old_status": "pending",
        "new_status": "approved", "reason": "fine", "created_at": None,
    }
    thread = api.get("/api/v1/comments?thread=/2026/11/27/a-story").get_json()
    assert [item["id"] for item in thread["items"]] == [comment_id]
    audit = api.get("/api/v1/moderation/audit", key=keys.moderator).get_json()
    assert audit["items"][0]["comment_id"] == comment_id


def test_every_action_sets_its_status(api, keys):
    expected = {"approve": "approved", "spam": "spam", "reject": "rejected", "delete": "deleted"}
    for n, (action, status) in enumerate(expected.items()):
        comment_id = post(api, content=f"holdword {n}", author_email=f"a{n}@example.org")
        assert decide(api, keys.admin, comment_id, action).get_json()["status"] == status


def test_decision_needs_if_match_and_refuses_a_stale_one(api, keys):
    comment_id = post(api, content="holdword contested")
    url = f"/api/v1/moderation/comments/{comment_id}/decision"
    missing = api.post(url, {"action": "approve"}, key=keys.moderator)
    assert missing.status_code == 428
    etag = detail(api, keys.moderator, comment_id).headers["ETag"]
    assert decide(api, keys.moderator, comment_id, "approve", etag).status_code == 200
    stale = decide(api, keys.moderator, comment_id, "spam", etag)
    assert stale.status_code == 412
    assert stale.get_json()["code"] == 412


def test_decision_body_is_validated(api, keys):
    comment_id = post(api, content="holdword body")
    etag = detail(api, keys.moderator, comment_id).headers["ETag"]
    url = f"/api/v1/moderation/comments/{comment_id}/decision"
    bad = api.post(url, {"action": "bless"}, key=keys.moderator, headers={"If-Match": etag})
    assert bad.status_code == 422 and "action" in bad.get_json()["errors"]


def test_bulk_reports_each_id(api, keys):
    first = post(api, content="holdword one")
    second = post(api, content="holdword two", author_email="b@example.org")
    response = api.post(
        "/api/v1/moderation/bulk",
        {"ids": [first, second, 999_999], "action": "spam", "reason": "wave"},
        key=keys.moderator,
    )
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert results[:2] == [{"id": first, "status": "spam"}, {"id": second, "status": "spam"}]
    # Beside the words, the status the single decision would answer, for clients to act on.
    assert results[2]["id"] == 999_999 and "error" in results[2] and results[2]["code"] == 404


def test_bulk_does_not_touch_another_sites_comments(api, keys):
    comment_id = post(api, content="holdword default only")
    response = api.post(
        "/api/v1/moderation/bulk",
        {"ids": [comment_id], "action": "delete"},
        key=keys.other_moderator,
    )
    assert "error" in response.get_json()["results"][0]
    assert response.get_json()["results"][0]["code"] == 403
    assert detail(api, keys.moderator, comment_id).get_json()["status"] == "pending"


def test_audit_filters_and_pages(api, keys):
    ids = [post(api, content=f"holdword {n}", author_email=f"a{n}@example.org")
           for n in range(3)]
    for comment_id in ids:
        decide(api, keys.moderator, comment_id, "approve")
    decide(api, keys.admin, ids[0], "delete")
    everything = api.get("/api/v1/moderation/audit?limit=2", key=keys.admin).get_json()
    assert len(everything["items"]) == 2 and everything["next_cursor"]
    rest = api.get(
        f"/api/v1/moderation/audit?limit=2&cursor={everything['next_cursor']}", key=keys.admin
    ).get_json()
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    by_actor = api.get("/api/v1/moderation/audit?actor=ops", key=keys.admin).get_json()
    assert [d["action"] for d in by_actor["items"]] == ["delete"]
    by_comment = api.get(
        f"/api/v1/moderation/audit?comment_id={ids[0]}", key=keys.admin
    ).get_json()
    assert [d["action"] for d in by_comment["items"]] == ["delete", "approve"]


def test_closing_a_thread_names_it_as_intake_stores_it(api, keys):
    url = "/api/v1/moderation/threads"
    closed = api.put(url, {"thread": " /padded ", "closed": True}, key=keys.moderator)
    assert closed.status_code == 200 and closed.get_json()["thread"] == "/padded"
    assert api.post("/api/v1/comments", comment(thread="/padded")).status_code == 403
    for thread in ("   ", "/two\nlines"):
        refused = api.put(url, {"thread": thread, "closed": True}, key=keys.moderator)
        assert refused.status_code == 422 and "thread" in refused.get_json()["errors"], thread


def test_a_moderator_of_one_site_closes_its_threads_without_naming_it(api, keys):
    """As a site key's submission is for its site: `default` would only be a 403 here."""
    url = "/api/v1/moderation/threads"
    closed = api.put(url, {"thread": "/mine", "closed": True}, key=keys.other_moderator)
    assert closed.status_code == 200 and closed.get_json()["site"] == "other"
    posted = api.post("/api/v1/comments", comment(site="other", thread="/mine"))
    assert posted.status_code == 403
    # An admin key serves every site: without one named, the contract's `default`.
    assert api.put(url, {"thread": "/mine", "closed": True},
                   key=keys.admin).get_json()["site"] == "default"


def test_closing_and_opening_a_thread_is_in_the_audit_log(api, keys):
    """Who closed a page, and when, could not be found out: the log held decisions only."""
    url = "/api/v1/moderation/threads"
    for closed in (True, True, False):  # the repeat changes nothing, so it logs nothing
        assert api.put(url, {"thread": "/talk", "closed": closed},
                       key=keys.moderator).status_code == 200
    assert api.put(url, {"site": "other", "thread": "/there", "closed": True},
                   key=keys.other_moderator).status_code == 200
    logged = api.get("/api/v1/moderation/audit", key=keys.moderator).get_json()["items"]
    assert [(d["action"], d["thread"], d["site"], d["actor"], d["comment_id"])
            for d in logged] == [("open", "/talk", "default", "mod", None),
                                 ("close", "/talk", "default", "mod", None)]
    mine = api.get("/api/v1/moderation/audit?actor=%20other-mod%20", key=keys.admin).get_json()
    assert [(d["action"], d["thread"], d["site"]) for d in mine["items"]] == [
        ("close", "/there", "other")]


def test_score_paging_carries_any_score_the_rules_can_give(app, api, keys):
    made = [post(api, content=f"holdword big {n}", author_email=f"big{n}@example.org")
            for n in range(3)]
    with app.app_context():
        # A rule's score is any finite number; summed, a page's last score can be huge.
        for comment_id, score in zip(made, (-1e15, 1e15, 1.5e300), strict=True):
            db.session.execute(sa.update(Comment).where(Comment.id == comment_id)
                               .values(score=score))
        db.session.commit()
    seen, cursor = [], None
    while True:
        query = "?sort=score&limit=1" + (f"&cursor={cursor}" if cursor else "")
        response = api.get(QUEUE + query, key=keys.moderator)
        assert response.status_code == 200, response.get_json()
        seen += [item["id"] for item in response.get_json()["items"]]
        cursor = response.get_json()["next_cursor"]
        if not cursor:
            break
    assert seen == made[::-1]


@pytest.mark.parametrize("path", [
    "/api/v1/moderation/queue?site=default&site=other",
    "/api/v1/moderation/queue?status=pending&status=spam",
    "/api/v1/admin/privacy/export?email=a@example.org&email=b@example.org",
    "/api/v1/comments?thread=/a&thread=/b",
])
def test_a_query_argument_given_twice_is_refused_not_half_read(api, keys, path):
    """Read as the first, `?site=a&site=b` showed one site to a moderator who asked for two."""
    response = api.get(path, key=keys.admin)
    assert response.status_code == 422
    name = path.split("?")[1].split("=")[0]
    assert response.get_json()["errors"] == {name: ["Give it once."]}


def test_an_empty_filter_or_cursor_in_the_queue_and_audit_is_not_given(api, keys):
    """`?site=&cursor=` from a URL template was a 422; absent, the site filter covers every
    site the key may see, and the page is the first. So for every optional filter."""
    held = post(api, content="a holdword to hold")
    decide(api, keys.admin, post(api, content="holdword two", author_email="b@example.org"),
           "approve")
    for query in ("?cursor=", "?site=", "?site=&cursor="):
        queue = api.get(QUEUE + query, key=keys.moderator)
        audit = api.get("/api/v1/moderation/audit" + query, key=keys.moderator)
        assert (queue.status_code, audit.status_code) == (200, 200), query
        assert [item["id"] for item in queue.get_json()["items"]] == [held]
        assert len(audit.get_json()["items"]) == 1
    # A moderator's search box or filter left empty sends the others so: no filter either.
    for query in ("?q=", "?q=%20", "?thread=", "?rule=", "?q=&thread=&rule=&site=&cursor="):
        queue = api.get(QUEUE + query, key=keys.moderator)
        assert queue.status_code == 200, (query, queue.get_json())
        assert [item["id"] for item in queue.get_json()["items"]] == [held]
    audit = api.get("/api/v1/moderation/audit?actor=", key=keys.moderator)
    assert audit.status_code == 200 and len(audit.get_json()["items"]) == 1


def test_a_cursor_pages_only_the_listing_it_was_made_for(api, keys):
    """A cursor of one sort or filter paged another from its position (a score read as an
    id, an id of the newest-first walk read oldest-first), giving wrong pages: now 422."""
    for n in range(4):
        post(api, content=f"holdword number {n}", author_email=f"u{n}@example.org")
    decide(api, keys.admin, 1, "approve")
    decide(api, keys.admin, 2, "approve")
    queue = api.get(QUEUE + "?limit=1", key=keys.moderator).get_json()["next_cursor"]
    others = ("?sort=newest", "?sort=score", "?status=spam", "?site=default", "?thread=/t",
              "?rule=HOLD_WORD", "?q=number")
    for query in others:
        answer = api.get(f"{QUEUE}{query}&cursor={queue}", key=keys.moderator)
        assert answer.status_code == 422, query
        assert list(answer.get_json()["errors"]) == ["cursor"]
    same = api.get(f"{QUEUE}?limit=2&status=pending&cursor={queue}", key=keys.moderator)
    assert same.status_code == 200  # the page size and an explicit default are the same listing
    searched = api.get(QUEUE + "?limit=1&q=NUMBER", key=keys.moderator).get_json()
    # The search ignores case, and so does the listing its cursor is held to.
    again = api.get(f"{QUEUE}?q=number&cursor={searched['next_cursor']}", key=keys.moderator)
    assert again.status_code == 200, again.get_json()

    audit = api.get("/api/v1/moderation/audit?limit=1", key=keys.admin).get_json()["next_cursor"]
    for query in ("?actor=ops", "?comment_id=1", "?site=default"):
        answer = api.get(f"/api/v1/moderation/audit{query}&cursor={audit}", key=keys.admin)
        assert answer.status_code == 422 and list(answer.get_json()["errors"]) == ["cursor"]
    thread = api.get("/api/v1/comments?thread=/2026/11/27/a-story&limit=1").get_json()
    assert api.get(f"/api/v1/moderation/audit?cursor={thread['next_cursor']}",
                   key=keys.admin).status_code == 422


def test_a_decisions_reason_holds_no_control_characters(api, keys):
    """The reason goes to the audit log: an escape sequence (or a C1 control) there
    rewrote what a moderator's terminal or page showed. Lines and tabs are text."""
    held = post(api, content="a holdword to hold")
    for reason in ("ok\x1b[2Jgone", "ok\x85", "bell\x07"):
        answer = decide(api, keys.moderator, held, "approve", reason=reason)
        assert answer.status_code == 422, reason
        assert list(answer.get_json()["errors"]) == ["reason"]
    answer = decide(api, keys.moderator, held, "approve", reason="checked\n\tthe source")
    assert answer.status_code == 200
    bulk = api.post("/api/v1/moderation/bulk",
                    {"action": "spam", "ids": [held], "reason": "x\x1b"}, key=keys.moderator)
    assert bulk.status_code == 422 and list(bulk.get_json()["errors"]) == ["reason"]


def test_the_flagged_queue_holds_only_what_readers_sent_back(api, keys):
    held = post(api, content="a holdword to hold")
    flagged = post(api, content="Published, then reported", author_email="f@example.org")
    for ip in ("10.1.0.1", "10.1.0.2", "10.1.0.3"):
        api.post(f"/api/v1/comments/{flagged}/flags", {"reason": "abuse"},
                 environ_base={"REMOTE_ADDR": ip})
    pending = api.get(QUEUE, key=keys.moderator).get_json()["items"]
    assert [item["id"] for item in pending] == [held, flagged]
    only_flagged = api.get(QUEUE + "?status=flagged", key=keys.moderator).get_json()["items"]
    assert [item["id"] for item in only_flagged] == [flagged]


def test_a_moderator_cannot_close_another_sites_thread(api, keys):
    url = "/api/v1/moderation/threads"
    refused = api.put(url, {"site": "default", "thread": "/x", "closed": True},
                      key=keys.other_moderator)
    assert refused.status_code == 403
    assert api.post("/api/v1/comments", comment(thread="/x")).status_code == 201


def test_a_decision_reason_over_500_characters_is_refused(api, keys):
    created = api.post("/api/v1/comments", comment())
    comment_id = created.get_json()["id"]
    detail = api.get(f"/api/v1/moderation/comments/{comment_id}", key=keys.moderator)
    etag = detail.headers["ETag"]
    answer = api.post(f"/api/v1/moderation/comments/{comment_id}/decision",
                      {"action": "approve", "reason": "x" * 501}, key=keys.moderator,
                      headers={"If-Match": etag})
    assert answer.status_code == 422
    assert "reason" in answer.get_json()["errors"]


def test_a_bulk_decision_on_no_ids_is_refused(api, keys):
    answer = api.post("/api/v1/moderation/bulk", {"ids": [], "action": "approve"},
                      key=keys.moderator)
    assert answer.status_code == 422
    assert "ids" in answer.get_json()["errors"]


@pytest.mark.parametrize("closed", [1, "yes", "true", 0])
def test_closing_a_thread_takes_only_json_booleans(api, keys, closed):
    answer = api.put("/api/v1/moderation/threads", {"thread": "/story", "closed": closed},
                     key=keys.moderator)
    assert answer.status_code == 422
    assert "closed" in answer.get_json()["errors"]


def test_a_moderator_of_two_sites_closes_a_thread_of_the_default_site(api, keys):
    made = api.post("/api/v1/admin/keys",
                    {"name": "two-sites", "role": "moderator", "sites": ["default", "other"]},
                    key=keys.admin)
    assert made.status_code == 201, made.get_json()
    assert api.post("/api/v1/comments", comment(thread="/story")).status_code == 201
    answer = api.put("/api/v1/moderation/threads", {"thread": "/story", "closed": True},
                     key=made.get_json()["secret"])
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["site"] == "default"


@pytest.mark.parametrize(("method", "path"), [
    ("delete", "/api/v1/admin/keys/2147483648"),
    ("get", "/api/v1/admin/keys/2147483648"),
    ("get", "/api/v1/moderation/comments/2147483648"),
    ("post", "/api/v1/moderation/comments/99999999999/decision"),
])
def test_an_id_past_the_32_bit_columns_is_a_404_on_every_method(api, keys, method, path):
    answer = getattr(api, method)(path, key=keys.admin)
    assert answer.status_code == 404
