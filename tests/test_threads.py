"""GET /api/v1/comments: approved comments of a thread, nested, paged, safe to render."""

from __future__ import annotations

from tests.conftest import comment


def post(api, **fields):
    response = api.post("/api/v1/comments", comment(**fields))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_only_approved_comments_oldest_first_with_replies_nested(api):
    first = post(api, content="First!")
    reply = post(api, content="A reply", parent_id=first, author_email="b@example.org")
    post(api, content="a spammyword", author_email="c@example.org")
    nested = post(api, content="Reply to reply", parent_id=reply, author_email="d@example.org")
    second = post(api, content="Second", author_email="e@example.org")
    page = api.get("/api/v1/comments?thread=/2026/11/27/a-story").get_json()
    assert [item["id"] for item in page["items"]] == [first, second]
    assert page["items"][0]["replies"][0]["id"] == reply
    assert page["items"][0]["replies"][0]["replies"][0]["id"] == nested
    assert page["next_cursor"] is None
    assert "spammyword" not in str(page)


def test_public_items_carry_only_public_fields(api):
    post(api, author_url="https://ada.example")
    item = api.get("/api/v1/comments?thread=/2026/11/27/a-story").get_json()["items"][0]
    assert set(item) == {
        "id", "parent_id", "author_name", "author_url", "content", "content_html",
        "created_at", "replies",
    }


def test_content_html_is_escaped_and_links_are_nofollow(api):
    post(api, content="<script>alert(1)</script> see https://example.org/page\n\nBye")
    item = api.get("/api/v1/comments?thread=/2026/11/27/a-story").get_json()["items"][0]
    assert item["content"].startswith("<script>")
    html = item["content_html"]
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<a href="https://example.org/page" rel="nofollow ugc noopener">' in html
    assert html.count("<p>") == 2


def test_paging_by_cursor_walks_every_comment_once(api):
    ids = [post(api, content=f"Comment number {n}", author_email=f"u{n}@example.org")
           for n in range(7)]
    seen, cursor = [], None
    while True:
        url = "/api/v1/comments?thread=/2026/11/27/a-story&limit=3"
        page = api.get(url + (f"&cursor={cursor}" if cursor else "")).get_json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


def test_unknown_thread_is_an_empty_page_and_unknown_site_is_404(api):
    assert api.get("/api/v1/comments?thread=/none").get_json()["items"] == []
    assert api.get("/api/v1/comments?thread=/none&site=nowhere").status_code == 404


def test_bad_query_arguments_are_422(api):
    assert api.get("/api/v1/comments").status_code == 422
    assert api.get("/api/v1/comments?thread=/t&limit=0").status_code == 422
    assert api.get("/api/v1/comments?thread=/t&limit=101").status_code == 422  # 1..100
    assert api.get("/api/v1/comments?thread=/t&limit=100").status_code == 200
    assert api.get("/api/v1/comments?thread=/t&cursor=%%%").status_code == 422
    assert api.get("/api/v1/comments?thread=/t&bogus=1").status_code == 422


def test_a_query_that_is_not_utf8_is_a_400(api, keys):
    """Werkzeug kept an escape it could not decode as written: `?thread=%ff` was read as
    the thread "%FF", another page than the one meant (a form body of the same bytes is
    a 400). A lone surrogate's UTF-8 (%ED%A0%80) is no text either."""
    for query in ("thread=%ff", "thread=/a%ED%A0%80", "thread=/t&site=%C3"):
        answer = api.get(f"/api/v1/comments?{query}")
        assert answer.status_code == 400, query
        assert answer.get_json()["message"] == "The query string is not UTF-8 text."
    assert api.get("/api/v1/form-token?site=default&thread=%ff").status_code == 400
    assert api.get("/api/v1/moderation/queue?site=%ff", key=keys.moderator).status_code == 400
    assert api.get("/api/v1/comments?thread=/caf%C3%A9").status_code == 200  # UTF-8: fine


def test_blank_query_arguments_are_not_given_and_the_site_is_trimmed(api, keys):
    """A URL template sends `?limit=` as it sends `?cursor=`: the cursor's default applied
    and the limit's was a 422. `site` is trimmed, as a submission's is."""
    post(api, content="First!")
    page = api.get("/api/v1/comments?thread=/2026/11/27/a-story&limit=&cursor=&site=")
    assert page.status_code == 200 and len(page.get_json()["items"]) == 1
    padded = api.get("/api/v1/comments?thread=/2026/11/27/a-story&site=%20default%20")
    assert padded.status_code == 200 and len(padded.get_json()["items"]) == 1
    for path in ("/api/v1/moderation/queue?limit=&site=%20default",
                 "/api/v1/moderation/audit?limit=&comment_id="):
        assert api.get(path, key=keys.moderator).status_code == 200, path
    # The spec's maxLength is of the text as sent: 101 spaces are no blank `actor`.
    padding = api.get("/api/v1/moderation/audit?actor=" + "+" * 101, key=keys.moderator)
    assert padding.status_code == 422 and "actor" in padding.get_json()["errors"]


def every_id(items):
    return [i["id"] for i in items] + [n for i in items for n in every_id(i["replies"])]


def test_replies_under_a_hidden_comment_stay_hidden_on_every_page(api, keys):
    first = post(api, content="First", author_email="a1@example.org")
    hidden = post(api, content="Later found to be spam", author_email="a2@example.org")
    orphan = post(api, content="A reply to it", parent_id=hidden, author_email="a3@example.org")
    third = post(api, content="Third", author_email="a4@example.org")
    reply = post(api, content="A reply to the third", parent_id=third,
                 author_email="a5@example.org")
    etag = api.get(f"/api/v1/moderation/comments/{hidden}", key=keys.moderator).headers["ETag"]
    decided = api.post(f"/api/v1/moderation/comments/{hidden}/decision",
                       {"action": "spam", "reason": "test"}, key=keys.moderator,
                       headers={"If-Match": etag})
    assert decided.status_code == 200

    whole = api.get("/api/v1/comments?thread=/2026/11/27/a-story").get_json()
    assert [item["id"] for item in whole["items"]] == [first, third]
    assert whole["items"][1]["replies"][0]["id"] == reply
    assert orphan not in every_id(whole["items"])
    # One root a page: each page carries its own root's replies and no others.
    first_page = api.get("/api/v1/comments?thread=/2026/11/27/a-story&limit=1").get_json()
    assert [(i["id"], i["replies"]) for i in first_page["items"]] == [(first, [])]
    second_page = api.get("/api/v1/comments?thread=/2026/11/27/a-story&limit=1"
                          f"&cursor={first_page['next_cursor']}").get_json()
    assert [i["id"] for i in second_page["items"]] == [third]
    assert [r["id"] for r in second_page["items"][0]["replies"]] == [reply]


def rendered(api, content: str) -> str:
    """The content_html a reader gets for a comment of that text."""
    post(api, content=content)
    page = api.get("/api/v1/comments?thread=/2026/11/27/a-story").get_json()
    return page["items"][0]["content_html"]


def test_a_quote_or_bracket_next_to_a_url_ends_the_link(api):
    html = rendered(api, 'He said "see https://example.org/page" and \'https://example.org/a\''
                         " then https://example.org/<b>x</b>")
    assert ('&quot;see <a href="https://example.org/page" rel="nofollow ugc noopener">'
            "https://example.org/page</a>&quot; and") in html
    assert '<a href="https://example.org/a" rel="nofollow ugc noopener">' in html
    assert '<a href="https://example.org/" rel="nofollow ugc noopener">' in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html


def test_a_url_keeps_its_own_closing_parenthesis(api):
    html = rendered(api, "(see https://en.wikipedia.org/wiki/Mercury_(planet)) and "
                         "(https://example.org/page).")
    assert ('(see <a href="https://en.wikipedia.org/wiki/Mercury_(planet)" '
            'rel="nofollow ugc noopener">https://en.wikipedia.org/wiki/Mercury_(planet)</a>)'
            ) in html
    assert '(<a href="https://example.org/page" rel="nofollow ugc noopener">' in html
    assert "https://example.org/page</a>).</p>" in html


def test_a_url_whose_host_a_reader_and_a_browser_read_apart_is_not_linked() -> None:
    """The browser ends the host at the backslash (evil.example), the reader at the "@"
    (good.example): author_url refuses both spellings, and the page linked it (audit)."""
    from moderation.render import content_html

    assert content_html("https://evil.example\\@good.example/") == (
        "<p>https://evil.example\\@good.example/</p>")
    assert "<a href" in content_html("https://good.example/mail/a@b.example")


def test_a_url_whose_scheme_a_phone_capitalised_is_linked() -> None:
    """A phone capitalises a comment's first word: "Https://..." was left as text (audit)."""
    from moderation.render import content_html

    assert content_html("Https://example.org/a and HTTP://example.org/b") == (
        '<p><a href="https://example.org/a" rel="nofollow ugc noopener">https://example.org/a'
        '</a> and <a href="http://example.org/b" rel="nofollow ugc noopener">'
        'http://example.org/b</a></p>')


def test_a_url_closes_as_many_parentheses_as_it_opened_and_no_more() -> None:
    """Each closing one was checked by counting the whole URL again: 5,000 nested ones
    took 33 ms a comment, on every read of its thread (an audit; 0.9 ms now)."""
    from moderation.render import content_html

    url = "https://a.example/" + "(" * 5000 + ")" * 5000
    assert content_html(f"see {url}))") == (
        f'<p>see <a href="{url}" rel="nofollow ugc noopener">{url}</a>))</p>')


def depth(items):
    return max((1 + depth(i["replies"]) for i in items), default=0)


def test_replies_nest_ten_deep_and_deeper_ones_follow_their_parent(api):
    """A chain of replies nested without end: JSON encoding recursed once per level, so a
    commenter's 500-deep chain made the whole thread a 500 for every reader."""
    chain = [post(api, content="Level 1")]
    for level in range(2, 13):
        chain.append(post(api, content=f"Level {level}", parent_id=chain[-1],
                          author_email=f"level{level}@example.org"))
    page = api.get("/api/v1/comments?thread=/2026/11/27/a-story").get_json()
    assert depth(page["items"]) == 10
    assert sorted(every_id(page["items"])) == chain
    ninth = page["items"][0]
    for _ in range(8):
        ninth = ninth["replies"][0]
    # As WordPress shows them: past the tenth level, a reply follows its parent there,
    # and says by parent_id which comment it answers.
    assert [(r["id"], r["parent_id"]) for r in ninth["replies"]] == [
        (chain[9], chain[8]), (chain[10], chain[9]), (chain[11], chain[10])]


def test_a_very_deep_chain_of_replies_does_not_break_the_thread(api, app):
    first = post(api, content="Root")
    parent = first
    for level in range(600):
        parent = post(api, content=f"Deeper {level}", parent_id=parent,
                      author_email=f"deep{level}@example.org")
    page = api.get("/api/v1/comments?thread=/2026/11/27/a-story")
    assert page.status_code == 200
    assert len(every_id(page.get_json()["items"])) == 601


def test_an_empty_site_or_cursor_is_not_given(api, app):
    """URL templates send `?cursor=` for the first page and `?site=` when the page has no
    site of its own: both were 422. Absent, the site is `default` (its origins may read
    the answer) and the page the first."""
    from moderation.services import sites

    with app.app_context():
        sites.change_site("default", allowed_origins=["https://default.example"])
    first = post(api, content="First!")
    for query in ("cursor=", "site=", "site=&cursor=", "site=%20&cursor=%20"):
        page = api.get(f"/api/v1/comments?thread=/2026/11/27/a-story&{query}",
                       headers={"Origin": "https://default.example"})
        assert page.status_code == 200, (query, page.get_json())
        assert page.get_json()["site"] == "default"
        assert [item["id"] for item in page.get_json()["items"]] == [first]
        assert page.headers["Access-Control-Allow-Origin"] == "https://default.example"
    token = api.get("/api/v1/form-token?site=&thread=/a")
    assert token.status_code == 200 and token.get_json()["form_token"]


def test_a_cursor_pages_only_the_thread_it_was_made_for(api, keys):
    """Another thread's cursor paged this one from a position of that thread, skipping
    comments; it is a 422 naming the cursor."""
    for n in range(3):
        post(api, thread="/one", content=f"One {n}", author_email=f"o{n}@example.org")
        post(api, thread="/two", content=f"Two {n}", author_email=f"t{n}@example.org")
    cursor = api.get("/api/v1/comments?thread=/one&limit=1").get_json()["next_cursor"]
    assert api.get(f"/api/v1/comments?thread=/one&limit=1&cursor={cursor}").status_code == 200
    for elsewhere in ("thread=/two", "thread=/unseen", "site=other&thread=/one"):
        answer = api.get(f"/api/v1/comments?{elsewhere}&cursor={cursor}")
        assert answer.status_code == 422, elsewhere
        assert list(answer.get_json()["errors"]) == ["cursor"]


def test_a_look_alike_host_is_linked_and_shown_in_punycode(api):
    # Cyrillic "р" and "а" among Latin letters, then the same trick sent already encoded.
    html = rendered(api, "Log in at https://раypal.com/login?next=/Ä or https://xn--pypal-4ve.com/"
                         " or https://bankд.example/")
    assert ('<a href="https://xn--ypal-43d9g.com/login?next=/Ä" rel="nofollow ugc noopener">'
            "https://xn--ypal-43d9g.com/login?next=/Ä</a>") in html
    assert ('<a href="https://xn--pypal-4ve.com/" rel="nofollow ugc noopener">'
            "https://xn--pypal-4ve.com/</a>") in html
    assert "раypal" not in html and "pаypal" not in html
    # Scripts mixed in one label, even where the odd letter resembles none in ASCII.
    assert ('<a href="https://xn--bank-t4d.example/" rel="nofollow ugc noopener">'
            "https://xn--bank-t4d.example/</a>") in html


def test_a_host_in_small_capitals_is_shown_in_punycode(api):
    # All Latin, one script, yet it reads as "paypal" to anyone who sees it.
    html = rendered(api, "Log in at https://ᴘᴀʏᴘᴀʟ.com/")
    assert ('<a href="https://xn--cpa6a307mba1jc.com/" rel="nofollow ugc noopener">'
            "https://xn--cpa6a307mba1jc.com/</a>") in html


def test_a_host_in_one_script_is_linked_in_punycode_and_shown_in_unicode(api):
    html = rendered(api, "See https://bücher.example/Bücher?q=1&r=2 and https://例え.テスト/ and "
                         "https://аррӏе.example/")
    assert ('<a href="https://xn--bcher-kva.example/Bücher?q=1&amp;r=2" '
            'rel="nofollow ugc noopener">https://bücher.example/Bücher?q=1&amp;r=2</a>') in html
    assert ('<a href="https://xn--r8jz45g.xn--zckzah/" rel="nofollow ugc noopener">'
            "https://例え.テスト/</a>") in html
    # All Cyrillic, but every letter a look-alike of a Latin one: it reads as "apple".
    assert ('<a href="https://xn--80ak6aa92e.example/" rel="nofollow ugc noopener">'
            "https://xn--80ak6aa92e.example/</a>") in html


def test_an_invalid_or_overlong_host_is_text_not_a_link(api):
    stuffed = "b" + "\u00ad" * 300 + "ücher.example"  # IDNA drops soft hyphens
    html = rendered(api, f"Try https://xn--zzzz.example/a?b=<c> or https://-bücher.example/ or "
                         f"https://{stuffed}/")
    assert "<a " not in html
    assert ("Try https://xn--zzzz.example/a?b=&lt;c&gt; or https://-bücher.example/ or "
            f"https://{stuffed}/") in html


def test_a_percent_escaped_host_is_linked_as_the_browser_decodes_it(api):
    """A browser visits example.org for https://%65xample.org/: the href named the host
    as written, so a page's link checks and a reader's look at it saw another."""
    html = rendered(api, "See https://%65xample.org/a%20b and https://b%C3%BCcher.example/ or "
                         "https://example.org\\path")
    assert ('<a href="https://example.org/a%20b" rel="nofollow ugc noopener">'
            "https://example.org/a%20b</a>") in html
    assert ('<a href="https://xn--bcher-kva.example/" rel="nofollow ugc noopener">'
            "https://bücher.example/</a>") in html
    # The host ends at the backslash, as the browser reads it; the path stays as written.
    assert ('<a href="https://example.org\\path" rel="nofollow ugc noopener">') in html


def test_a_host_that_is_no_host_name_is_text_not_a_link(api):
    """Only non-ASCII and punycode hosts were checked: these ASCII ones were links."""
    long_host = ".".join(["a" * 63] * 4) + ".com"  # 259 characters, each label fine
    urls = ["https://-bad-.example/", "https://a..b.example/", "https://exa_mple.com/",
            "https://example.com:99999/", "https://example.com:0/", "https://example.com:8o/",
            f"https://{long_host}/", "https://" + "a" * 300 + ".com/", "https:///example.org/",
            "https://%2F.example/", "https://%zz.example/", "https://%00.example/"]
    html = rendered(api, " or ".join(urls))
    assert html == "<p>" + " or ".join(urls) + "</p>"


def test_a_host_with_a_port_or_a_final_dot_or_an_ip_address_is_linked(api):
    html = rendered(api, "But https://a-b.example:8080/x, https://example.com./ and "
                         "https://127.0.0.1:8000/ and https://[2001:db8::1]:8080/ are fine")
    assert html.count("<a ") == 4, html


def test_a_url_missing_its_slashes_is_text_not_a_link(api):
    """Only "http://" or "https://" starts a link: written in text, these are no link to
    2no.co, so the rules need not read them as one (in an href they do)."""
    html = rendered(api, "See https:/2no.co/x or http:2no.co/x")
    assert html == "<p>See https:/2no.co/x or http:2no.co/x</p>"


def test_a_url_with_a_user_name_is_text_not_a_link(api):
    """`https://paypal.com@evil.example/` reads as paypal.com and leads to evil.example;
    author_url refuses it (422), and a link in the text was made of it all the same."""
    html = rendered(api, "Log in at https://paypal.com@evil.example/login or "
                         "https://user:pw@news.example/ but https://news.example/@ada is fine")
    assert html.count("<a ") == 1
    assert ('<a href="https://news.example/@ada" rel="nofollow ugc noopener">') in html
    assert "Log in at https://paypal.com@evil.example/login or https://user:pw@news" in html


def test_a_page_polled_again_is_a_304_until_it_changes(api):
    """The page had no validator: a script polling for new comments, or a CDN in front,
    fetched every comment again each time."""
    post(api, content="First!")
    path = "/api/v1/comments?thread=/2026/11/27/a-story"
    page = api.get(path)
    etag = page.headers["ETag"]
    unchanged = api.get(path, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.data == b""
    assert api.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    post(api, content="Second", author_email="e@example.org")
    changed = api.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert len(changed.get_json()["items"]) == 2


def test_a_web_address_that_is_not_linked_is_still_escaped(api):
    """An underscore in the host makes it no link, and its text is escaped like the rest:
    "&lt;" typed after it showed as "<"."""
    text = "see https://a_b.example/?x=1&y=2&lt;"
    api.post("/api/v1/comments", comment(content=text))
    [item] = api.get("/api/v1/comments?thread=/2026/11/27/a-story").get_json()["items"]
    assert "<a " not in item["content_html"]
    assert "x=1&amp;y=2&amp;lt;" in item["content_html"]


def test_a_last_page_exactly_full_has_no_next_cursor(api):
    for n in range(2):
        assert api.post("/api/v1/comments", comment(content=f"Comment number {n}",
                                                    author_email=f"p{n}@example.org")
                        ).status_code == 201
    page = api.get("/api/v1/comments?thread=/2026/11/27/a-story&limit=2").get_json()
    assert len(page["items"]) == 2 and page["next_cursor"] is None


def test_the_thread_page_says_when_the_thread_is_closed(api, keys):
    api.post("/api/v1/comments", comment())
    url = "/api/v1/comments?thread=/2026/11/27/a-story"
    assert api.get(url).get_json()["closed"] is False
    assert api.put("/api/v1/moderation/threads", {"site": "default", "thread":
                   "/2026/11/27/a-story", "closed": True}, key=keys.moderator).status_code == 200
    assert api.get(url).get_json()["closed"] is True


def test_the_thread_page_trims_its_thread_key(api):
    page = api.get("/api/v1/comments?thread=%20/story%20")
    assert page.status_code == 200, page.get_json()
    assert page.get_json()["thread"] == "/story"
