"""CORS: a site's pages may read the public answers that concern that site, no others."""

from __future__ import annotations

from moderation.services import sites
from tests.conftest import BLOG, NEWS, comment


def _allowed(answer) -> str | None:
    return answer.headers.get("Access-Control-Allow-Origin")


def test_a_preflight_admits_any_sites_origin(api, two_sites):
    for origin in (NEWS, BLOG):
        answer = api.client.options("/api/v1/comments", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"})
        assert _allowed(answer) == origin
        # Empty, and said so: not Flask's empty 200 typed text/html.
        assert answer.status_code == 204
        assert answer.data == b"" and "Content-Type" not in answer.headers
    stranger = api.client.options("/api/v1/comments", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert _allowed(stranger) is None


def test_a_thread_is_readable_only_by_its_own_sites_origins(api, two_sites):
    own = api.get("/api/v1/comments?site=news&thread=/a", headers={"Origin": NEWS})
    other = api.get("/api/v1/comments?site=news&thread=/a", headers={"Origin": BLOG})
    assert own.status_code == other.status_code == 200
    assert _allowed(own) == NEWS
    assert _allowed(other) is None
    assert "Origin" in other.headers.get("Vary", "")


def test_a_submission_answer_is_readable_only_by_its_sites_origins(api, two_sites):
    own = api.post("/api/v1/comments", comment(site="news"), headers={"Origin": NEWS})
    assert own.status_code == 201
    assert _allowed(own) == NEWS


def test_pages_of_other_origins_may_not_post_or_flag(api, keys, two_sites):
    """CORS kept another page from reading the answer, but the post was carried out: any
    page could have its visitors post comments, or flag another site's comments from as
    many IPs as it had visitors (a blog's page, whose origin passes the preflight)."""
    own = api.post("/api/v1/comments", comment(site="news"), headers={"Origin": NEWS})
    for origin in (BLOG, "https://evil.example"):
        posted = api.post("/api/v1/comments", comment(site="news", content="From elsewhere."),
                          headers={"Origin": origin})
        flagged = api.post(f"/api/v1/comments/{own.get_json()['id']}/flags",
                           {"reason": "spam"}, headers={"Origin": origin})
        assert (posted.status_code, flagged.status_code) == (403, 403), origin
        assert _allowed(posted) is _allowed(flagged) is None
    # `Origin: null` names no page: a form posted from one with `Referrer-Policy:
    # no-referrer` sends it. A flag, a page script's JSON, never comes so.
    hardened = api.client.post("/api/v1/comments", data={
        "site": "news", "thread": "/a", "author_name": "Ada", "author_email": "ada@example.org",
        "content": "From a page that sends no referrer.", "thread_url": f"{NEWS}/a"},
        headers={"Origin": "null", "Sec-Fetch-Mode": "navigate"})
    assert hardened.status_code == 303, hardened.get_json()
    flagged = api.post(f"/api/v1/comments/{own.get_json()['id']}/flags", {"reason": "spam"},
                       headers={"Origin": "null"})
    assert flagged.status_code == 403
    detail = api.get(f"/api/v1/moderation/comments/{own.get_json()['id']}", key=keys.admin)
    assert detail.get_json()["flag_count"] == 0
    # A site's backend (its key) and a request with no Origin (curl, a server) are no page.
    news_key = api.post("/api/v1/admin/keys", {"name": "news-backend", "role": "site",
                                               "sites": ["news"]}, key=keys.admin)
    backend = api.post("/api/v1/comments", comment(site="news", content="From the backend."),
                       key=news_key.get_json()["secret"], headers={"Origin": BLOG})
    assert backend.status_code == 201
    assert api.post("/api/v1/comments", comment(site="news", content="By curl.")).status_code \
        == 201


def test_a_page_can_read_retry_after_the_limits_and_the_request_id(api, two_sites):
    answer = api.post("/api/v1/comments", comment(site="news"), headers={"Origin": NEWS})
    exposed = {h.strip() for h in answer.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Retry-After", "X-Request-ID", "X-RateLimit-Limit", "X-RateLimit-Remaining",
            "X-RateLimit-Reset"} <= exposed


def test_the_form_token_is_readable_by_the_sites_pages(api, two_sites, app):
    answer = api.get("/api/v1/form-token?site=blog&thread=/a", headers={"Origin": BLOG})
    assert answer.status_code == 200 and _allowed(answer) == BLOG
    preflight = api.client.options("/api/v1/form-token?site=blog&thread=/a", headers={
        "Origin": BLOG, "Access-Control-Request-Method": "GET"})
    assert _allowed(preflight) == BLOG
    assert _allowed(api.get("/api/v1/form-token?site=blog&thread=/a",
                            headers={"Origin": NEWS})) is None


def test_a_flag_is_answered_for_the_commented_sites_origins(api, keys, two_sites):
    posted = api.post("/api/v1/comments", comment(site="news"), key=None)
    comment_id = posted.get_json()["id"]
    with api.client.application.app_context():
        from moderation.extensions import db
        from moderation.models import Comment, Status

        db.session.get(Comment, comment_id).status = Status.APPROVED
        db.session.commit()
    own = api.post(f"/api/v1/comments/{comment_id}/flags", {"reason": "spam"},
                   headers={"Origin": NEWS})
    other = api.post(f"/api/v1/comments/{comment_id}/flags", {"reason": "spam"},
                     headers={"Origin": BLOG})
    assert own.status_code == 202 and _allowed(own) == NEWS
    assert _allowed(other) is None


def test_a_site_keys_post_is_answered_for_its_own_sites_origins(api, keys, app):
    with app.app_context():
        sites.change_site("other", allowed_origins=["https://other.example"])
    answer = api.post("/api/v1/comments", comment(ip="198.51.100.9"), key=keys.other_site,
                      headers={"Origin": "https://other.example"})
    assert answer.status_code == 201 and answer.get_json()["site"] == "other"
    assert _allowed(answer) == "https://other.example"


def test_origins_are_compared_as_browsers_send_them(api, app):
    """Stored as typed, "https://News.Example:443/" never matched the browser's
    "https://news.example"."""
    with app.app_context():
        site = sites.create_site("cased", "Cased", ["https://News.Example:443/"])
        assert site.allowed_origins == ["https://news.example"]
    answer = api.get("/api/v1/comments?site=cased&thread=/a",
                     headers={"Origin": "https://news.example"})
    assert _allowed(answer) == "https://news.example"


def test_a_public_answer_says_it_varies_by_origin_even_to_a_request_without_one(api, two_sites):
    """A cache that kept the answer to a request without Origin (a server, a crawler) must
    not hand it to a page whose request has one: the Fetch standard asks for Vary then too."""
    answer = api.get("/api/v1/comments?site=news&thread=/a")
    assert answer.status_code == 200
    assert "Origin" in answer.headers.get("Vary", "")
    assert _allowed(answer) is None


def test_an_origin_no_browser_sends_is_not_allowed_and_not_a_500(api, two_sites):
    """urlsplit refuses an unclosed IPv6 bracket: the CORS check turned such an Origin into
    a 500, on a submission after its comment was stored."""
    bad = "http://[::1"
    preflight = api.client.options("/api/v1/comments", headers={
        "Origin": bad, "Access-Control-Request-Method": "POST"})
    posted = api.post("/api/v1/comments", comment(site="news"), headers={"Origin": bad})
    read = api.get("/api/v1/comments?site=news&thread=/a", headers={"Origin": bad})
    assert (preflight.status_code, posted.status_code, read.status_code) == (204, 403, 200)
    assert _allowed(preflight) is _allowed(posted) is _allowed(read) is None


def test_a_blank_padded_site_is_readable_only_by_its_own_origins(api, keys, two_sites):
    answer = api.get("/api/v1/comments?site=%20other%20&thread=/story",
                     headers={"Origin": NEWS})
    assert answer.status_code == 200
    assert "Access-Control-Allow-Origin" not in answer.headers
    own = api.get("/api/v1/comments?site=%20other%20&thread=/story",
                  headers={"Origin": "https://other.example"})
    assert own.headers.get("Access-Control-Allow-Origin") == "https://other.example"


def test_the_preflight_allows_the_idempotency_key_header(api, keys):
    answer = api.client.options("/api/v1/comments", headers={
        "Origin": "https://other.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, idempotency-key"})
    allowed = [h.strip().lower()
               for h in answer.headers.get("Access-Control-Allow-Headers", "").split(",")]
    assert "idempotency-key" in allowed
    assert "content-type" in allowed
