"""CORS on errors: a site's page reads why its request failed, and no other site's page does."""

from __future__ import annotations

import pytest

from tests.conftest import BLOG, NEWS, comment
from tests.test_cors import _allowed

# The permissive rules with tight limits, so that each error status can be reached.
RULES = """
version: 1
trust: {hold_new_commenters: false}
limits: {per_ip: "3/day", per_email: null, flag_per_reporter: "2/day"}
rules: []
"""


@pytest.fixture
def app_config(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    return {"RULES_FILE": str(rules), "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": "memory://"}


def _error_answers(api, keys, origin: str) -> dict[str, tuple[int, bool]]:
    """Each error a public route gives, asked from `origin`: (status, whether that origin
    may read it), named by what was asked. The site `news` concerns those that name it."""

    def submit(body, n, **kwargs):
        # One address a request, so that only the 429 case reaches the per-IP limit.
        return api.post("/api/v1/comments", body, environ_base={"REMOTE_ADDR": f"10.9.0.{n}"},
                        headers={"Origin": origin, **kwargs.pop("headers", {})}, **kwargs)

    def flag(comment_id, body, n, **kwargs):
        return api.post(f"/api/v1/comments/{comment_id}/flags", body,
                        environ_base={"REMOTE_ADDR": f"10.8.0.{n}"},
                        headers={"Origin": origin}, **kwargs)

    def read(path):
        return api.get(path, headers={"Origin": origin})

    approved = api.post("/api/v1/comments", comment(site="news", content="Public."),
                        environ_base={"REMOTE_ADDR": "10.7.0.1"}).get_json()["id"]
    held = api.post("/api/v1/comments", comment(site="news", content="Held.",
                                                author_email="held@example.org"),
                    environ_base={"REMOTE_ADDR": "10.7.0.2"}).get_json()["id"]
    api.post(f"/api/v1/moderation/comments/{held}/decision", {"action": "spam"},
             key=keys.admin, headers={"If-Match": "*"})
    api.put("/api/v1/moderation/threads", {"site": "news", "thread": "/closed", "closed": True},
            key=keys.admin)
    answers = {
        "submit: malformed JSON": submit(None, 1, data="{", content_type="application/json"),
        "submit: thread closed": submit(comment(site="news", thread="/closed"), 2),
        "submit: unknown site": submit(comment(site="ghost"), 3),
        "submit: the same comment twice": submit(comment(site="news", content="Public."), 4),
        "submit: body too large": submit(None, 5, data="x" * 300_000,
                                         content_type="application/json"),
        "submit: unsupported type": submit(None, 6, data="hi", content_type="text/plain"),
        "submit: invalid field": submit(comment(site="news", author_email="nope"), 7),
        "read: unknown site": read("/api/v1/comments?site=ghost&thread=/a"),
        "read: invalid limit": read("/api/v1/comments?site=news&thread=/a&limit=0"),
        "read: invalid site": read("/api/v1/comments?site=NEWS!&thread=/a"),
        "flag: comment not public": flag(held, {"reason": "spam"}, 1),
        "flag: no such comment": flag(999_999, {"reason": "spam"}, 2),
        "flag: unsupported type": flag(approved, None, 3, data="x", content_type="text/plain"),
        "flag: invalid reason": flag(approved, {"reason": "boring"}, 4),
        "form token: unknown site": read("/api/v1/form-token?site=ghost&thread=/a"),
        "form token: no thread": read("/api/v1/form-token?site=news"),
    }
    for n in range(4):
        answers["submit: too many"] = submit(
            comment(site="news", author_email=f"n{n}@example.org", content=f"Note {n}."), 10)
    for _ in range(3):
        answers["flag: too many"] = flag(approved, {"reason": "spam"}, 10)
    return {asked: (answer.status_code, _allowed(answer) == origin)
            for asked, answer in answers.items()}


# Errors that cannot tell which site they concern: an unreadable body, a site or comment
# the service does not show. They are answered for every site's origins, as a preflight is.
CONCERN_NO_SITE = {
    "submit: malformed JSON", "submit: unknown site", "submit: body too large",
    "submit: unsupported type", "read: unknown site", "read: invalid site",
    "flag: comment not public", "flag: no such comment", "form token: unknown site",
}
ERROR_STATUSES = {
    "submit: malformed JSON": 400, "submit: thread closed": 403, "submit: unknown site": 404,
    "submit: the same comment twice": 409, "submit: body too large": 413,
    "submit: unsupported type": 415, "submit: invalid field": 422, "submit: too many": 429,
    "read: unknown site": 404, "read: invalid limit": 422, "read: invalid site": 422,
    "flag: comment not public": 404, "flag: no such comment": 404,
    "flag: unsupported type": 415, "flag: invalid reason": 422, "flag: too many": 429,
    "form token: unknown site": 404, "form token: no thread": 422,
}


def test_a_sites_page_can_read_the_errors_of_the_public_routes(api, keys, two_sites):
    """A reader flagging a comment that is no longer public got a 404 the page's script
    could not read (no CORS headers), so the page could not say why."""
    answers = _error_answers(api, keys, NEWS)
    assert answers == {asked: (status, True) for asked, status in ERROR_STATUSES.items()}


# From a page of another origin, a post to `news` is refused before its comment is looked
# at (a 403, as isso refuses one): the rest is answered as from the site's own pages.
FOREIGN_ERROR_STATUSES = {**ERROR_STATUSES, "submit: the same comment twice": 403}


def test_another_sites_page_reads_only_the_errors_that_concern_no_site(api, keys, two_sites):
    answers = _error_answers(api, keys, BLOG)
    assert answers == {asked: (status, asked in CONCERN_NO_SITE)
                       for asked, status in FOREIGN_ERROR_STATUSES.items()}


def test_a_stranger_reads_no_error(api, keys, two_sites):
    answers = _error_answers(api, keys, "https://evil.example")
    assert answers == {asked: (status, False)
                       for asked, status in FOREIGN_ERROR_STATUSES.items()}


def test_the_flag_that_returns_a_comment_to_the_queue_is_answered_for_its_site_alone(
        api, two_sites):
    """The last flag's 202 looked up the comment's site among public comments after the
    flag had taken it out of them, found none, and so was readable by every site's page."""
    approved = api.post("/api/v1/comments", comment(site="news", content="Public."),
                        environ_base={"REMOTE_ADDR": "10.7.0.1"}).get_json()["id"]
    answers = [
        api.post(f"/api/v1/comments/{approved}/flags", {"reason": "spam"},
                 environ_base={"REMOTE_ADDR": f"10.6.0.{n}"}, headers={"Origin": origin})
        for n, origin in enumerate((NEWS, NEWS, BLOG, NEWS), start=1)
    ]
    # Another site's page may not flag news's comments at all (see test_cors).
    assert [(answer.status_code, _allowed(answer)) for answer in answers] == [
        (202, NEWS), (202, NEWS), (403, None), (202, NEWS)]
