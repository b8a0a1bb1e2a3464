"""POST /api/v1/comments: the contract's fields, answers and error codes."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from moderation.extensions import db
from moderation.models import Comment, Thread
from moderation.services.cursors import encode_id
from tests.conftest import PERMISSIVE_RULES, close_app, comment, make_app


def stored(app, comment_id: int) -> Comment:
    with app.app_context():
        row = db.session.get(Comment, comment_id)
        db.session.expunge(row)
        return row


def test_json_submission_is_stored_and_answered(api, app):
    response = api.post("/api/v1/comments", comment(author_url="https://ada.example"))
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "site", "thread", "parent_id", "status", "created_at", "message"}
    assert body["status"] == "approved"
    assert body["site"] == "default"
    row = stored(app, body["id"])
    assert row.author_email == "ada@example.org"
    assert row.content == "A thoughtful reply about the article."
    assert row.ip == "127.0.0.1"


def test_fields_are_trimmed_and_lengths_checked_after_trimming(api):
    response = api.post("/api/v1/comments", comment(author_name="   ", content="  \n "))
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert set(errors) == {"author_name", "content"}


def test_missing_required_fields_name_each_field(api):
    response = api.post("/api/v1/comments", {"thread": "/t"})
    body = response.get_json()
    assert response.status_code == 422
    assert body["code"] == 422 and body["status"] == "Unprocessable Entity"
    assert {"author_name", "author_email", "content"} <= set(body["errors"])


def test_invalid_email_url_and_unknown_field_are_refused(api):
    response = api.post(
        "/api/v1/comments",
        comment(author_email="not-an-email", author_url="javascript:alert(1)", admin=True),
    )
    assert response.status_code == 422
    assert {"author_email", "author_url", "admin"} <= set(response.get_json()["errors"])


def test_a_website_that_could_break_out_of_a_link_or_disguise_its_host_is_refused(api):
    """author_url is shown to every reader: a page that puts it in href="..." must be
    safe, and https://news.example@evil.example/ is a link to evil.example."""
    for url in ('https://a.example/"onmouseover="alert(1)', "https://a.example/<script>",
                "https://a.example/`x`", "https://news.example@evil.example/",
                "https://user:pass@a.example/"):
        answer = api.post("/api/v1/comments", comment(author_url=url))
        assert answer.status_code == 422, url
        assert "author_url" in answer.get_json()["errors"]
    fine = api.post("/api/v1/comments",
                    comment(author_url="https://a.example/p?q=1&r=(2)#top", content="Hi."))
    assert fine.status_code == 201


def test_a_website_or_page_with_a_percent_escaped_host_or_a_backslash_is_refused(api):
    """A browser visits 2no.co for each of these: it decodes the host and reads a
    backslash as a slash. They were taken, and the rules saw no 2no.co in them."""
    for field in ("author_url", "thread_url"):
        for url in ("https://%32no.co/", "https://2no%2Eco/", "https://2no.co:%38%30/",
                    "https://2no.co\\x", "https://a.example/p\\q"):
            answer = api.post("/api/v1/comments", comment(**{field: url}))
            assert answer.status_code == 422, (field, url)
            assert field in answer.get_json()["errors"]
    fine = api.post("/api/v1/comments",
                    comment(author_url="https://a.example/a%20b?q=%2F#%C3%A9", content="Hi."))
    assert fine.status_code == 201


def test_a_url_with_an_unclosed_ipv6_bracket_is_422_not_500(api):
    """urlsplit raises on "http://[::1"; the validator let that through as a 500."""
    for field in ("author_url", "thread_url"):
        answer = api.post("/api/v1/comments", comment(**{field: "http://[::1"}))
        assert answer.status_code == 422, field
        assert field in answer.get_json()["errors"]


def test_content_over_ten_thousand_characters_is_refused(api):
    response = api.post("/api/v1/comments", comment(content="x" * 10_001))
    assert response.status_code == 422
    assert "content" in response.get_json()["errors"]


def test_malformed_json_is_400(client):
    response = client.post(
        "/api/v1/comments", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.get_json()["code"] == 400


def test_json_that_is_not_an_object_is_400(client):
    response = client.post("/api/v1/comments", data="[1, 2]", content_type="application/json")
    assert response.status_code == 400


def test_wrong_content_type_is_415(client):
    response = client.post("/api/v1/comments", data="hello", content_type="text/plain")
    assert response.status_code == 415
    assert response.get_json()["status"] == "Unsupported Media Type"


def test_body_over_the_limit_is_413(client):
    response = client.post(
        "/api/v1/comments", data="x" * (257 * 1024), content_type="application/json"
    )
    assert response.status_code == 413
    assert response.get_json()["code"] == 413


def test_the_public_posts_refuse_query_arguments(api, keys):
    """Every /api/v1 route refuses unknown query arguments; these two took any, so a form
    whose action said `?site=other` posted to `default` without a word."""
    posted = api.post("/api/v1/comments?site=other", comment())
    assert posted.status_code == 422
    assert "site" in posted.get_json()["errors"]
    published = api.post("/api/v1/comments", comment(content="Published.")).get_json()
    assert published["status"] == "approved"
    flagged = api.post(f"/api/v1/comments/{published['id']}/flags?reason=spam",
                       {"reason": "abuse"})
    assert flagged.status_code == 422
    assert "reason" in flagged.get_json()["errors"]
    queue = api.get("/api/v1/moderation/queue?status=approved", key=keys.admin).get_json()
    assert [(item["id"], item["flag_count"]) for item in queue["items"]] == [
        (published["id"], 0)]


def test_unknown_site_is_404(api):
    response = api.post("/api/v1/comments", comment(site="nowhere"))
    assert response.status_code == 404



@pytest.mark.parametrize("parent", ["0", " 0 "])
def test_a_wordpress_forms_comment_parent_of_0_is_no_reply(api, parent):
    """WordPress's "not a reply"; with white space around it (a theme's template), a 422."""
    answer = api.client.post("/api/v1/comments", data={
        "author": "Ada", "email": "ada@example.org", "comment": "Top level.",
        "comment_post_ID": "42", "comment_parent": parent},
        headers={"Accept": "application/json"})
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["parent_id"] is None


def test_wordpress_form_posts_redirect_back_with_the_outcome(api, app, keys):
    with app.app_context():
        from moderation.services import sites

        sites.create_site("news", "News", ["https://news.example"])
    response = api.client.post(
        "/api/v1/comments",
        data={
            "site": "news",
            "author": "Ada",
            "email": "ada@example.org",
            "url": "",
            "comment": "Posted from the WordPress form.",
            "comment_post_ID": "42",
            "comment_parent": "0",
            "thread_url": "https://news.example/2026/11/story/",
            "submit": "Post Comment",
        },
    )
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("https://news.example/2026/11/story/?comment_status=approved")
    comment_id = int(location.split("comment_id=")[1].split("#")[0])
    row = stored(app, comment_id)
    assert row.content == "Posted from the WordPress form."
    assert row.author_url is None


def test_a_form_posted_by_the_pages_script_gets_json_not_the_redirect(api, app):
    """A page that posts its form with fetch(FormData) to show the answer in the page got
    the 303 as well; the browser followed it to the page across origins and the script saw
    "Failed to fetch" (found with Chromium). Only a navigation is sent back to the page."""
    with app.app_context():
        from moderation.services import sites

        sites.create_site("news", "News", ["https://news.example"])
    form = {"site": "news", "author": "Ada", "email": "ada@example.org",
            "comment_post_ID": "42", "thread_url": "https://news.example/story/"}
    cases = [
        ({"Sec-Fetch-Mode": "cors", "Accept": "*/*"}, 201),  # fetch() or XMLHttpRequest
        ({"Sec-Fetch-Mode": "navigate", "Accept": "text/html,*/*;q=0.8"}, 303),  # <form>
        ({"Sec-Fetch-Mode": "nested-navigate"}, 303),  # into a frame, older Chrome
        ({"Accept": "application/json"}, 201),  # a script in a browser without Fetch Metadata
        ({"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, 303),
        ({}, 303),  # no hint at all: as before
    ]
    for number, (headers, expected) in enumerate(cases):
        response = api.client.post("/api/v1/comments", headers=headers, data={
            **form, "comment": f"Posted the {number}th way."})
        assert response.status_code == expected, (headers, response.status_code)
        if expected == 201:
            assert response.get_json()["status"] == "approved"
            assert "Location" not in response.headers


def test_a_forms_website_without_a_scheme_is_taken_as_http(api, app):
    """As WordPress takes it: commenters type "www.example.org" into the Website box."""
    form = {"author": "Ada", "email": "ada@example.org", "comment_post_ID": "42"}
    answer = api.client.post("/api/v1/comments", data={
        **form, "url": "www.ada.example/blog", "comment": "Typed without a scheme."})
    assert answer.status_code == 201, answer.get_json()
    assert stored(app, answer.get_json()["id"]).author_url == "http://www.ada.example/blog"
    # The colon of a port is no scheme's: this was 422 "Must be an http or https URL".
    with_port = api.client.post("/api/v1/comments", data={
        **form, "url": "www.ada.example:8080/blog", "comment": "Typed with a port."})
    assert with_port.status_code == 201, with_port.get_json()
    assert stored(app, with_port.get_json()["id"]).author_url == (
        "http://www.ada.example:8080/blog")
    # A colon after the host is no scheme's either: these were 422 too.
    for url in ("en.wikipedia.org/wiki/Help:Contents", "ada.example/?t=12:30"):
        later_colon = api.client.post("/api/v1/comments", data={
            **form, "url": url, "comment": f"Typed {url}"})
        assert later_colon.status_code == 201, later_colon.get_json()
        assert stored(app, later_colon.get_json()["id"]).author_url == f"http://{url}"
    for url in ("javascript:alert(1)", "ftp://ada.example/", "javascript:1", "data:1,x"):
        refused = api.client.post("/api/v1/comments", data={
            **form, "url": url, "comment": f"Website {url}"})
        assert refused.status_code == 422 and "url" in refused.get_json()["errors"]  # as named
    # A JSON client says what it means: no guessing there.
    assert api.post("/api/v1/comments", comment(author_url="www.ada.example")).status_code == (
        422)


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
@pytest.mark.parametrize("twice", [
    [("author", "First"), ("author", "Second")],
    [("comment_post_ID", "/a"), ("comment_post_ID", "/b")],
    [("author", "First"), ("author_name", "Second")],
])
def test_a_form_field_given_twice_is_a_422_naming_it(api, app, encoding, twice):
    """The first was stored silently, as a JSON member named twice is not: a site's
    backend that checked the other one saw another comment than the one stored (audit)."""
    fields = [("email", "ada@example.org"), ("comment", "Twice."), *twice]
    if not any(name == "comment_post_ID" for name, _ in fields):
        fields.append(("comment_post_ID", "/t"))
    if encoding == "urlencoded":
        answer = api.client.post("/api/v1/comments", data=urlencode(fields),
                                 content_type="application/x-www-form-urlencoded")
    else:
        boundary = "b0undary"
        body = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                       f"{value}\r\n" for name, value in fields) + f"--{boundary}--\r\n"
        answer = api.client.post("/api/v1/comments", data=body.encode(),
                                 content_type=f"multipart/form-data; boundary={boundary}")
    assert answer.status_code == 422, answer.get_json()
    field = twice[-1][0]  # as the form names it, not as intake calls it
    assert answer.get_json()["errors"] == {
        field: ["Given more than once (or under both of its names)."]}
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Comment)) == 0
    # A theme's own fields may repeat (a list of checkboxes): they are ignored.
    fine = [("author", "Ada"), ("email", "ada@example.org"), ("comment", "Once."),
            ("comment_post_ID", "/t"), ("topics[]", "a"), ("topics[]", "b")]
    assert api.client.post("/api/v1/comments", data=urlencode(fine),
                           content_type="application/x-www-form-urlencoded").status_code == 201


def test_a_forms_line_breaks_count_as_the_textarea_counts_them(api, app):
    """A browser sends each line break of a textarea as CRLF, while the textarea's
    maxlength counts it as one character: a 10,000-character comment with line breaks,
    which the form let through, was 422. The comment is kept with plain line feeds."""
    text = "a" * 9980 + "\r\nb" * 10  # 10,000 characters as the textarea counts them
    for encoding in ("urlencoded", "multipart"):
        form = {"author": "Ada", "email": f"ada-{encoding}@example.org",
                "comment_post_ID": "42", "comment": text.replace("a", "c", 1)
                if encoding == "multipart" else text}
        answer = api.client.post("/api/v1/comments", data=form, headers={
            "Accept": "application/json"}, content_type=(
            "multipart/form-data" if encoding == "multipart"
            else "application/x-www-form-urlencoded"))
        assert answer.status_code == 201, (encoding, answer.get_json())
        kept = stored(app, answer.get_json()["id"]).content
        assert len(kept) == 10_000 and "\r" not in kept and kept.count("\n") == 10
    too_long = api.client.post("/api/v1/comments", headers={"Accept": "application/json"},
                               data={"author": "Ada", "email": "ada@example.org",
                                     "comment_post_ID": "42", "comment": "x" + text})
    assert too_long.status_code == 422
    assert "comment" in too_long.get_json()["errors"]  # as the form names it


def test_a_forms_field_errors_use_the_names_the_form_posted(api):
    """A page script marks the inputs by the names it posted: errors came back under
    intake's JSON names (author_name, parent_id), which no input of a WordPress form has."""
    wordpress = api.client.post("/api/v1/comments", data={
        "email": "not-an-address", "comment": "Hello.", "comment_post_ID": "42",
        "comment_parent": "x"})
    assert wordpress.status_code == 422
    assert set(wordpress.get_json()["errors"]) == {"author", "email", "comment_parent"}
    own_names = api.client.post("/api/v1/comments", data={
        "author_email": "not-an-address", "content": "Hello.", "thread": "/t"})
    assert set(own_names.get_json()["errors"]) == {"author_name", "author_email"}


def test_a_form_reply_to_no_published_comment_is_told_of_comment_parent(api):
    """The reply's parent is checked after the fields: that 422 named `parent_id`."""
    answer = api.client.post("/api/v1/comments", data={
        "author": "Ada", "email": "ada@example.org", "comment": "Hello.",
        "comment_post_ID": "42", "comment_parent": "99999"})
    assert answer.status_code == 422
    assert set(answer.get_json()["errors"]) == {"comment_parent"}
    as_json = api.post("/api/v1/comments", comment(parent_id=99999))
    assert set(as_json.get_json()["errors"]) == {"parent_id"}


@pytest.mark.parametrize("stale", [
    "comment_status=pending&comment_id=7",
    # Spelled as a page decodes it: a forged outcome a page's URLSearchParams read first.
    "comment%5Fstatus=approved&comment%5Fid=7",
])
def test_a_second_form_post_from_the_page_reports_its_own_outcome(api, app, stale):
    """Back on the page after a first comment, its URL holds that comment's outcome; the
    Referer of the next post then did too, and the new outcome came second, after the
    stale one that a page reading the query finds first."""
    with app.app_context():
        from moderation.services import sites

        sites.create_site("news", "News", ["https://news.example"])
    response = api.client.post(
        "/api/v1/comments",
        data={"site": "news", "author": "Ada", "email": "ada@example.org",
              "comment": "My second thought.", "comment_post_ID": "42"},
        headers={"Referer": f"https://news.example/story/?page=2&{stale}#comment-7"},
    )
    assert response.status_code == 303
    location = response.headers["Location"]
    query = location.split("?", 1)[1].split("#")[0]
    comment_id = location.rsplit("#comment-", 1)[1]
    assert query == f"page=2&comment_status=approved&comment_id={comment_id}"


@pytest.mark.parametrize("page", ["https://bücher.example/post", "https://BÜCHER.example:443/post"])
def test_a_form_post_from_a_page_named_in_unicode_goes_back_to_it(api, app, page):
    """The site's origins, as browsers' Origin headers, are in punycode; a thread_url with
    the host in Unicode was compared as written, and the reader was left on the JSON."""
    with app.app_context():
        from moderation.services import sites

        sites.create_site("books", "Books", ["https://xn--bcher-kva.example"])
    response = api.client.post("/api/v1/comments", data={
        "site": "books", "author": "Ada", "email": "ada@example.org", "comment": "Danke.",
        "comment_post_ID": "/post", "thread_url": page})
    assert response.status_code == 303
    assert response.headers["Location"].startswith(
        "https://xn--bcher-kva.example") and "/post?comment_status=" in response.headers["Location"]


def test_a_form_post_ignores_the_fields_a_theme_or_plugin_adds(api, app, keys):
    wordpress_form = {
        "author": "Ada",
        "email": "ada@example.org",
        "comment": "Posted from a themed WordPress form.",
        "comment_post_ID": "42",
        "comment_parent": "0",
        "submit": "Post Comment",
        "wp-comment-cookies-consent": "yes",
        "akismet_comment_nonce": "0a1b2c3d4e",
        "ak_js": "1764277200000",
        "comment_mail_notify": "on",
    }
    response = api.client.post("/api/v1/comments", data=wordpress_form)
    assert response.status_code == 201, response.get_json()
    assert stored(app, response.get_json()["id"]).status.value == "approved"
    # A JSON client is still told about a misspelt field.
    assert api.post("/api/v1/comments", comment(ak_js="1")).status_code == 422


def test_form_post_never_redirects_off_site(api):
    response = api.client.post(
        "/api/v1/comments",
        data={
            "author": "Ada",
            "email": "ada@example.org",
            "comment": "Where do I go?",
            "comment_post_ID": "42",
            "thread_url": "https://evil.example/phish",
        },
    )
    assert response.status_code == 201
    assert "Location" not in response.headers


def test_a_form_post_with_a_referer_no_browser_sends_is_answered_not_a_500(api, app):
    """The comment was stored, then working out the redirect raised on the Referer
    "http://[::1": the reader saw a 500, and posting again was a 409."""
    with app.app_context():
        from moderation.services import sites

        sites.change_site("default", allowed_origins=["https://blog.example"])
    response = api.client.post(
        "/api/v1/comments",
        data={"author": "Ada", "email": "ada@example.org", "comment": "Odd referer.",
              "comment_post_ID": "42"},
        headers={"Referer": "http://[::1"},
    )
    assert response.status_code == 201
    assert "Location" not in response.headers


def test_reply_must_be_to_an_approved_comment_of_the_same_thread(api):
    parent = api.post("/api/v1/comments", comment()).get_json()
    reply = api.post(
        "/api/v1/comments", comment(parent_id=parent["id"], content="I agree with this.")
    )
    assert reply.status_code == 201
    assert reply.get_json()["parent_id"] == parent["id"]
    elsewhere = api.post(
        "/api/v1/comments",
        comment(thread="/another", parent_id=parent["id"], content="Wrong thread reply."),
    )
    assert elsewhere.status_code == 422
    assert "parent_id" in elsewhere.get_json()["errors"]
    missing = api.post("/api/v1/comments", comment(parent_id=999_999, content="No parent."))
    assert missing.status_code == 422



@pytest.mark.parametrize("status", ["spam", "pending", "deleted"])
def test_a_reply_to_a_comment_readers_cannot_see_is_422(api, keys, status):
    """A reply would hang under a comment the thread does not show."""
    parent = api.post("/api/v1/comments", comment()).get_json()["id"]
    action = {"spam": "spam", "pending": None, "deleted": "delete"}[status]
    if action is None:
        parent = api.post("/api/v1/comments", comment(content="a holdword here",
                                                      author_email="h@example.org"))
        parent = parent.get_json()["id"]
    else:
        api.post(f"/api/v1/moderation/comments/{parent}/decision", {"action": action},
                 key=keys.moderator, headers={"If-Match": "*"})
    detail = api.get(f"/api/v1/moderation/comments/{parent}", key=keys.moderator).get_json()
    assert detail["status"] == status
    reply = api.post("/api/v1/comments", comment(parent_id=parent, content="I agree.",
                                                 author_email="r@example.org"))
    assert reply.status_code == 422 and "parent_id" in reply.get_json()["errors"]


def test_the_same_comment_twice_is_409(api):
    assert api.post("/api/v1/comments", comment()).status_code == 201
    same = comment(content="  a THOUGHTFUL reply about the article. ")
    again = api.post("/api/v1/comments", same)
    assert again.status_code == 409
    elsewhere = api.post("/api/v1/comments", comment(thread="/other-story"))
    assert elsewhere.status_code == 201


def test_the_same_comment_from_the_same_address_under_another_email_is_409(api):
    """As WordPress checks: the same words from the same IP are the same commenter."""
    here, there = {"REMOTE_ADDR": "198.51.100.7"}, {"REMOTE_ADDR": "198.51.100.8"}
    assert api.post("/api/v1/comments", comment(), environ_base=here).status_code == 201
    other_email = comment(author_email="bea@example.org")
    assert api.post("/api/v1/comments", other_email, environ_base=here).status_code == 409
    assert api.post("/api/v1/comments", other_email, environ_base=there).status_code == 201


def test_a_blocked_comment_sent_again_is_blocked_again(api):
    """The first was a 403 (nothing kept, as far as its sender knows); the same words again,
    from them or another reader at that IP, were a 409 that said it had been kept."""
    blocked = comment(content="forbiddenword here")
    assert api.post("/api/v1/comments", blocked).status_code == 403
    assert api.post("/api/v1/comments", blocked).status_code == 403
    other = comment(content="forbiddenword here", author_email="bea@example.org")
    assert api.post("/api/v1/comments", other).status_code == 403


def test_a_comment_a_moderator_rejected_sent_again_is_a_duplicate(api, keys):
    """Only a rule's block is judged again: a moderator's rejection, skipped too, let the
    same words back in, judged afresh (and published, for a trusted regular)."""
    rejected = api.post("/api/v1/comments", comment(content="You are all wrong here."))
    assert rejected.status_code == 201
    decided = api.post(f"/api/v1/moderation/comments/{rejected.get_json()['id']}/decision",
                       {"action": "reject"}, key=keys.moderator, headers={"If-Match": "*"})
    assert decided.status_code == 200
    again = api.post("/api/v1/comments", comment(content="You are all wrong here."))
    assert again.status_code == 409


def test_the_same_reply_to_two_comments_is_two_comments(api):
    """As WordPress's duplicate check takes the parent: "Thanks!" to two people who
    answered was refused the second time (409). To the same comment it is a duplicate."""
    first, second = (api.post("/api/v1/comments", comment(
        author_email=f"{name}@example.org", content=f"Answer from {name}.")).get_json()["id"]
        for name in ("bo", "cy"))
    thanks = [api.post("/api/v1/comments", comment(content="Thanks!", parent_id=parent))
              .status_code for parent in (first, second, second)]
    assert thanks == [201, 201, 409]
    assert api.post("/api/v1/comments", comment(content="Thanks!")).status_code == 201


def test_comments_of_markup_alone_are_not_all_the_same_comment(api):
    """The rules' normaliser strips tags, so "<grin>" and "<wink>" both folded to empty
    text, and the second from the same reader was refused as a duplicate (409)."""
    assert api.post("/api/v1/comments", comment(content="<grin>")).status_code == 201
    assert api.post("/api/v1/comments", comment(content="<wink>")).status_code == 201
    assert api.post("/api/v1/comments", comment(content=" <WINK> ")).status_code == 409


def test_closed_thread_is_403(api, keys):
    closed = api.put(
        "/api/v1/moderation/threads",
        {"thread": "/closed", "closed": True},
        key=keys.moderator,
    )
    assert closed.status_code == 200
    response = api.post("/api/v1/comments", comment(thread="/closed"))
    assert response.status_code == 403


def test_hard_rejection_is_403_with_a_generic_message_and_is_kept(api, app):
    response = api.post("/api/v1/comments", comment(content="buy forbiddenword now"))
    assert response.status_code == 403
    body = response.get_json()
    assert "forbiddenword" not in str(body) and "BLOCKED_WORD" not in str(body)
    with app.app_context():
        row = db.session.scalar(sa.select(Comment))
        assert row.status.value == "rejected"


def test_spam_is_stored_as_spam_but_answered_as_pending(api, app):
    response = api.post("/api/v1/comments", comment(content="a spammyword offer"))
    assert response.status_code == 201
    assert response.get_json()["status"] == "pending"
    assert stored(app, response.get_json()["id"]).status.value == "spam"


def test_revealed_spam_is_answered_as_the_spec_says(app, database_url, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(PERMISSIVE_RULES.read_text() + "public: {reveal_spam: true}\n")
    revealing = make_app(database_url, RULES_FILE=str(rules))
    try:
        client = revealing.test_client()
        answer = client.post("/api/v1/comments", json=comment(content="a spammyword"))
        spec = client.get("/openapi.json").get_json()
    finally:
        close_app(revealing)
    assert answer.status_code == 201 and answer.get_json()["status"] == "spam"
    status = spec["components"]["schemas"]["SubmissionAnswer"]["properties"]["status"]
    assert "spam" in status["enum"]


def test_score_over_the_pending_threshold_is_pending(api):
    response = api.post("/api/v1/comments", comment(content="a holdword here"))
    assert response.get_json()["status"] == "pending"


def test_network_fields_in_the_body_are_ignored_without_a_site_key(api, app, keys):
    body = comment(ip="198.51.100.7", user_agent="Backend/1.0", referrer="https://x.example/")
    anonymous = api.post("/api/v1/comments", body).get_json()
    assert stored(app, anonymous["id"]).ip == "127.0.0.1"
    from_backend = api.post(
        "/api/v1/comments", {**body, "thread": "/backend"}, key=keys.site
    ).get_json()
    row = stored(app, from_backend["id"])
    assert (row.ip, row.user_agent, row.referrer) == (
        "198.51.100.7", "Backend/1.0", "https://x.example/",
    )
    # Ignored means not judged either: values a site key could not pass were a 422.
    odd = {"ip": "not-an-address", "user_agent": 5, "referrer": "line\nbreak"}
    ignored = api.post("/api/v1/comments", comment(content="Odd extras.", **odd))
    assert ignored.status_code == 201, ignored.get_json()
    assert stored(app, ignored.get_json()["id"]).ip == "127.0.0.1"
    refused = api.post("/api/v1/comments", comment(content="Odd extras.", thread="/backend",
                                                   **odd), key=keys.site)
    assert refused.status_code == 422
    assert set(refused.get_json()["errors"]) == {"ip", "user_agent", "referrer"}


def test_a_site_keys_referrer_is_one_line_as_the_spec_says(api, keys):
    answer = api.post("/api/v1/comments", comment(referrer="https://x.example/\nX-Evil: 1"),
                      key=keys.site)
    assert answer.status_code == 422 and "referrer" in answer.get_json()["errors"]


def test_a_site_keys_ip_must_be_a_plain_address(api, keys):
    """An IPv6 zone ("%eth0") passed Python's check but is no commenter's address, and a
    long one overflowed the 45-character column (a 500 on PostgreSQL)."""
    for ip in ("fe80::1%" + "a" * 60, "fe80::1%eth0"):
        answer = api.post("/api/v1/comments", comment(ip=ip), key=keys.site)
        assert answer.status_code == 422 and "ip" in answer.get_json()["errors"]
    plain = api.post("/api/v1/comments", comment(ip="2001:db8::1"), key=keys.site)
    assert plain.status_code == 201


@pytest.mark.parametrize(("sent", "kept"), [
    ("2001:DB8:0:0:0:0:0:31", "2001:db8::31"),
    ("::ffff:198.51.100.130", "198.51.100.130"),
    ("198.51.100.7", "198.51.100.7"),
])
def test_a_backends_ip_is_kept_in_one_spelling(api, app, keys, sent, kept):
    """Stored as sent, `2001:DB8:0:0:0:0:0:31` stayed in a moderator's reason quoting it
    as `2001:db8::31` after an erasure and the IP purge, which scrub the stored spelling."""
    answer = api.post("/api/v1/comments", comment(ip=sent), key=keys.site)
    assert stored(app, answer.get_json()["id"]).ip == kept


def test_a_site_key_for_another_site_is_403(api, keys):
    response = api.post("/api/v1/comments", comment(site="default", ip="198.51.100.7"),
                        key=keys.other_site)
    assert response.status_code == 403


def test_a_bad_key_is_401_even_on_a_public_route(api):
    response = api.post("/api/v1/comments", comment(), key="mk_nope_nope")
    assert response.status_code == 401


def test_idempotency_key_replays_the_first_answer(api, app):
    headers = {"Idempotency-Key": "retry-1"}
    first = api.post("/api/v1/comments", comment(), headers=headers)
    second = api.post("/api/v1/comments", comment(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Comment)) == 1


def test_an_idempotency_key_is_one_sites_own(api, keys):
    """Two sites' pages may well make the same key; each is the first post of its site."""
    headers = {"Idempotency-Key": "k1"}
    first = api.post("/api/v1/comments", comment(), headers=headers)
    there = api.post("/api/v1/comments", comment(site="other"), headers=headers)
    assert first.status_code == there.status_code == 201
    assert there.get_json()["site"] == "other" and there.get_json()["id"] != first.get_json()["id"]


def test_an_idempotency_key_is_at_most_255_characters(api):
    assert api.post("/api/v1/comments", comment(),
                    headers={"Idempotency-Key": "a" * 255}).status_code == 201
    longer = api.post("/api/v1/comments", comment(content="Another one."),
                      headers={"Idempotency-Key": "a" * 256})
    assert longer.status_code == 422 and list(longer.get_json()["errors"]) == ["Idempotency-Key"]


def test_a_moderators_key_on_intake_is_no_site_key(api, keys):
    """Only a site key speaks for the commenter: with a moderator's, the request's own
    address and browser are the commenter's, and any site may be posted to."""
    posted = api.post("/api/v1/comments", comment(), key=keys.moderator,
                      environ_base={"REMOTE_ADDR": "203.0.113.5"},
                      headers={"User-Agent": "Ada's browser"})
    assert posted.status_code == 201
    detail = api.get(f"/api/v1/moderation/comments/{posted.get_json()['id']}",
                     key=keys.moderator).get_json()
    assert (detail["ip"], detail["user_agent"]) == ("203.0.113.5", "Ada's browser")
    elsewhere = api.post("/api/v1/comments", comment(content="From elsewhere."),
                         key=keys.other_moderator)
    assert elsewhere.status_code == 201


def test_idempotency_key_with_another_body_is_422(api):
    headers = {"Idempotency-Key": "retry-2"}
    assert api.post("/api/v1/comments", comment(), headers=headers).status_code == 201
    other = api.post("/api/v1/comments", comment(content="Something else."), headers=headers)
    assert other.status_code == 422


@pytest.mark.parametrize("key", ["retry\x00one", "retry\x01one", "retry\tone", "retry\x85one"])
def test_an_idempotency_key_with_a_control_character_is_422_naming_it(api, app, key):
    """A NUL in the key made PostgreSQL refuse the comment with a 422 that named nothing
    ("not valid for storage") where SQLite stored it: both now say what is wrong. A header
    byte 0x80-0x9F arrives as a C1 control (headers are read as Latin-1): refused alike."""
    answer = api.post("/api/v1/comments", comment(), headers={"Idempotency-Key": key})
    assert answer.status_code == 422
    assert list(answer.get_json()["errors"]) == ["Idempotency-Key"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Comment)) == 0
    accented = api.post("/api/v1/comments", comment(), headers={"Idempotency-Key": "r\xe9try"})
    assert accented.status_code == 201


def test_cors_allows_only_the_sites_origins(api, app):
    with app.app_context():
        from moderation.services import sites

        sites.create_site("news", "News", ["https://news.example"])
    allowed = api.client.options(
        "/api/v1/comments", headers={"Origin": "https://news.example",
                                     "Access-Control-Request-Method": "POST"}
    )
    assert allowed.headers.get("Access-Control-Allow-Origin") == "https://news.example"
    refused = api.client.options(
        "/api/v1/comments", headers={"Origin": "https://evil.example",
                                     "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_nul_characters_are_refused_not_stored(api, keys):
    response = api.post("/api/v1/comments", comment(content="nul\x00here"))
    assert response.status_code == 422 and "content" in response.get_json()["errors"]
    listing = api.get("/api/v1/comments?thread=a%00b")
    assert listing.status_code == 422 and "thread" in listing.get_json()["errors"]
    assert api.get("/api/v1/admin/sites/a%00b", key=keys.admin).status_code == 404


def test_ids_past_the_database_range_are_refused(api):
    response = api.post("/api/v1/comments", comment(parent_id=2**31))
    assert response.status_code == 422 and "parent_id" in response.get_json()["errors"]
    far = encode_id(999_999_999_999_999_999, ("thread", "default", "/t"))
    assert api.get(f"/api/v1/comments?thread=/t&cursor={far}").status_code == 200


def test_a_spam_comment_does_not_name_a_new_page(api, keys):
    """The first submission's thread_title became the page's public title even when the
    rules filed it as spam or refused it, so a spammer could name a new page for readers."""
    page = {"thread": "/fresh", "thread_url": "https://spam.example/"}
    spam = api.post("/api/v1/comments", comment(
        content="a spammyword offer", thread_title="BUY CHEAP PILLS", **page))
    refused = api.post("/api/v1/comments", comment(
        content="a forbiddenword here", thread_title="BUY CHEAP PILLS", **page))
    assert (spam.status_code, refused.status_code) == (201, 403)
    assert api.get("/api/v1/comments?thread=/fresh").get_json()["title"] is None
    let_through = api.post("/api/v1/comments", comment(
        content="A real reply.", thread_title="The real story", thread="/fresh",
        author_email="reader@example.org"))
    assert let_through.get_json()["status"] == "approved"
    later = api.post("/api/v1/comments", comment(
        content="Another reply.", thread_title="Renamed?", thread="/fresh"))
    assert later.status_code == 201
    assert api.get("/api/v1/comments?thread=/fresh").get_json()["title"] == "The real story"
    # The site's own backend is trusted with its pages' names, whatever the verdict.
    by_site = api.post("/api/v1/comments", comment(
        content="a spammyword from the backend", thread="/named", thread_title="Named"),
        key=keys.site)
    assert by_site.status_code == 201
    assert api.get("/api/v1/comments?thread=/named").get_json()["title"] == "Named"


def _decide(api, key, comment_id, action):
    url = f"/api/v1/moderation/comments/{comment_id}"
    etag = api.get(url, key=key).headers["ETag"]
    return api.post(f"{url}/decision", {"action": action, "reason": "checked"}, key=key,
                    headers={"If-Match": etag})


def test_a_held_comment_names_its_page_only_once_a_moderator_approves_it(api, keys):
    """A stranger's first comment, held for review (as a new commenter's is by default),
    named the page for every reader at once, and the title stayed after the comment was
    marked spam. It now waits with the comment, which the moderator sees, and names the
    page when the moderator approves the comment."""
    page = {"thread": "/held", "thread_url": "https://scam.example/"}
    scam = api.post("/api/v1/comments", comment(
        content="a holdword here", author_email="stranger@example.org",
        thread_title="FREE CRYPTO at scam.example", **page)).get_json()
    assert scam["status"] == "pending"
    assert api.get("/api/v1/comments?thread=/held").get_json()["title"] is None
    seen = api.get(f"/api/v1/moderation/comments/{scam['id']}", key=keys.moderator).get_json()
    assert (seen["thread_title"], seen["sent_thread_title"], seen["sent_thread_url"]) == (
        None, "FREE CRYPTO at scam.example", "https://scam.example/")
    assert _decide(api, keys.moderator, scam["id"], "spam").status_code == 200
    assert api.get("/api/v1/comments?thread=/held").get_json()["title"] is None

    honest = api.post("/api/v1/comments", comment(
        content="a holdword, honestly", author_email="newcomer@example.org",
        thread="/held", thread_title="The real story",
        thread_url="https://news.example/held")).get_json()
    assert honest["status"] == "pending"
    assert api.get("/api/v1/comments?thread=/held").get_json()["title"] is None
    assert _decide(api, keys.moderator, honest["id"], "approve").status_code == 200
    assert api.get("/api/v1/comments?thread=/held").get_json()["title"] == "The real story"
    # Kept when first seen: approving the spam after all does not rename the page.
    assert _decide(api, keys.moderator, scam["id"], "approve").status_code == 200
    assert api.get("/api/v1/comments?thread=/held").get_json()["title"] == "The real story"
    queue = api.get("/api/v1/moderation/queue?status=approved", key=keys.moderator).get_json()
    assert {item["thread_title"] for item in queue["items"]} == {"The real story"}
    # What a comment was sent with is the commenter's: exported, and gone with the content.
    exported = api.get("/api/v1/admin/privacy/export?email=stranger@example.org",
                       key=keys.admin).get_json()["comments"]
    assert [c["sent_thread_title"] for c in exported] == ["FREE CRYPTO at scam.example"]
    assert api.post("/api/v1/admin/privacy/erase", {
        "email": "stranger@example.org", "delete_content": True}, key=keys.admin).status_code == 200
    erased = api.get(f"/api/v1/moderation/comments/{scam['id']}", key=keys.moderator).get_json()
    assert (erased["sent_thread_title"], erased["sent_thread_url"]) == (None, None)


def test_a_page_named_without_its_url_takes_the_url_from_a_later_comment(app, api):
    """Title and URL are each kept when first seen: a first comment that gave only the
    title left the thread "named", and the URL a later comment sent was never stored."""
    assert api.post("/api/v1/comments", comment(
        content="First.", thread="/half", thread_title="Half named")).status_code == 201
    assert api.post("/api/v1/comments", comment(
        content="Second.", thread="/half", thread_title="Renamed?",
        thread_url="https://news.example/half")).status_code == 201
    assert api.post("/api/v1/comments", comment(
        content="Third.", thread="/half",
        thread_url="https://news.example/moved")).status_code == 201
    with app.app_context():
        thread = db.session.execute(sa.select(Thread).where(Thread.key == "/half")).scalar_one()
        assert (thread.title, thread.url) == ("Half named", "https://news.example/half")


def test_a_honeypot_may_be_named_after_no_field_intake_reads():
    """The rules file refuses a honeypot named after a field of the form (it was taken out
    of every submission); its list must hold every name intake reads a field by."""
    from moderation.api.forms import WORDPRESS_FIELDS
    from moderation.api.public import SUBMISSION
    from moderation.rules.schema import SUBMISSION_FIELDS

    assert set(SUBMISSION.load_fields) | set(WORDPRESS_FIELDS) <= SUBMISSION_FIELDS


def test_a_retry_of_a_comment_stored_before_the_thread_closed_gets_its_first_answer(api, keys):
    """The comment was taken before the page closed: its retry is answered as it was."""
    body = comment(thread="/closing")
    first = api.post("/api/v1/comments", body, headers={"Idempotency-Key": "retry-1"})
    assert first.status_code == 201
    assert api.put("/api/v1/moderation/threads", {"thread": "/closing", "closed": True},
                   key=keys.moderator).status_code == 200
    again = api.post("/api/v1/comments", body, headers={"Idempotency-Key": "retry-1"})
    assert again.status_code == 201 and again.get_json() == first.get_json()
    # A new comment on the closed page is still refused.
    assert api.post("/api/v1/comments", comment(thread="/closing", content="new words"),
                    headers={"Idempotency-Key": "retry-2"}).status_code == 403


def test_the_same_words_after_a_moderator_deleted_them_are_not_a_duplicate(api, keys):
    """A deleted comment is no longer there to be repeated."""
    first = api.post("/api/v1/comments", comment()).get_json()
    decided = api.post(f"/api/v1/moderation/comments/{first['id']}/decision",
                       {"action": "delete", "reason": "typo"}, key=keys.moderator,
                       headers={"If-Match": "*"})
    assert decided.status_code == 200
    again = api.post("/api/v1/comments", comment())
    assert again.status_code == 201, again.get_json()


def test_every_rule_that_hit_finds_the_comment_in_the_queue(api, keys):
    """Every rule that hit is stored with the comment, so `rule=` finds it by any of them."""
    made = api.post("/api/v1/comments", comment(content="holdword and spammyword")).get_json()
    detail = api.get(f"/api/v1/moderation/comments/{made['id']}", key=keys.moderator).get_json()
    assert {hit["rule"] for hit in detail["hits"]} >= {"HOLD_WORD", "SPAMMY_WORD"}
    for rule in ("HOLD_WORD", "SPAMMY_WORD"):
        page = api.get(f"/api/v1/moderation/queue?status=spam&rule={rule}",
                       key=keys.moderator).get_json()
        assert [item["id"] for item in page["items"]] == [made["id"]], rule


def test_a_retried_blocked_comment_is_blocked_again_with_the_same_answer(api):
    """A retry gets the first answer, a 403 included, not a 201 with the 403's body."""
    body = comment(content="buy forbiddenword now")
    first = api.post("/api/v1/comments", body, headers={"Idempotency-Key": "blocked-1"})
    assert first.status_code == 403
    again = api.post("/api/v1/comments", body, headers={"Idempotency-Key": "blocked-1"})
    assert again.status_code == 403 and again.get_json() == first.get_json()


def test_the_stored_score_keeps_its_fraction(api, keys):
    """HOLD_WORD scores 3.5 in tests/data/permissive_rules.yaml."""
    made = api.post("/api/v1/comments", comment(content="a holdword here")).get_json()
    assert made["status"] == "pending"
    detail = api.get(f"/api/v1/moderation/comments/{made['id']}", key=keys.moderator).get_json()
    assert detail["score"] == 3.5


def test_the_same_comment_after_the_duplicates_window_is_taken(api, app):
    """The window (a day by default) bounds the duplicate check."""
    import datetime as dt

    from moderation.models import Comment

    first = api.post("/api/v1/comments", comment()).get_json()
    assert api.post("/api/v1/comments", comment()).status_code == 409
    with app.app_context():
        db.session.execute(sa.update(Comment).where(Comment.id == first["id"]).values(
            created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=2)))
        db.session.commit()
    again = api.post("/api/v1/comments", comment())
    assert again.status_code == 201, again.get_json()


FORM = {"site": "news", "author": "Ada", "email": "ada@example.org",
        "comment": "Posted from the WordPress form.", "comment_post_ID": "42"}



def test_the_redirect_prefers_thread_url_to_the_referer(api, two_sites):
    """Contract: 303 back to thread_url *or* the Referer: thread_url first."""
    response = api.client.post(
        "/api/v1/comments",
        data={**FORM, "thread_url": "https://news.example/story/"},
        headers={"Referer": "https://news.example/somewhere-else/"},
    )
    assert response.status_code == 303
    assert response.headers["Location"].startswith("https://news.example/story/?comment_status=")


@pytest.mark.parametrize("referer", [
    "https://evil.example\\@news.example/story/",   # a browser goes to evil.example
    "https://ada:secret@news.example/story/",       # credentials echoed into Location
])
def test_a_referer_with_userinfo_is_no_page_to_go_back_to(api, two_sites, referer):
    """Never an open redirect: Python reads the host after the last "@", a browser may
    not (backslash ends the authority in special schemes)."""
    response = api.client.post("/api/v1/comments", data=FORM, headers={"Referer": referer})
    assert response.status_code == 201, response.headers.get("Location")
    assert "Location" not in response.headers
