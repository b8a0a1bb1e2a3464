"""Field handling a careful API user expects: null means absent, blank is trimmed away,
invisible text is not text, and a site key's submissions go to its own site."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from moderation.extensions import db
from moderation.models import Comment
from tests.conftest import comment

THREAD = "/2026/11/27/a-story"


def test_null_optional_fields_mean_not_given(api):
    answer = api.post("/api/v1/comments", comment(author_url=None, thread_title=None) | {
        "author_url": None, "thread_title": None, "parent_id": None, "thread_url": None})
    assert answer.status_code == 201, answer.get_json()


def test_a_blank_website_is_no_website(api, app):
    answer = api.post("/api/v1/comments", comment(author_url="   "))
    assert answer.status_code == 201, answer.get_json()
    with app.app_context():
        assert db.session.scalar(sa.select(Comment.author_url)) is None


@pytest.mark.parametrize("field", ["author_name", "content"])
@pytest.mark.parametrize("blank", ["\u200b\u200b", "\u3164", " \u2800 ", "\u200d\ufeff"])
def test_invisible_text_is_not_text(api, field, blank):
    answer = api.post("/api/v1/comments", comment(**{field: blank}))
    assert answer.status_code == 422
    assert field in answer.get_json()["errors"]


def test_visible_text_with_invisible_characters_is_fine(api):
    answer = api.post("/api/v1/comments", comment(author_name="Zoë\u200b", content="Ok \u200d!"))
    assert answer.status_code == 201


def test_a_thread_is_read_by_the_key_it_was_posted_with(api, keys):
    """Intake trims the thread key, so the page's reader finds it given the same text."""
    posted = api.post("/api/v1/comments", comment(thread=f"  {THREAD}  "), key=keys.site)
    assert posted.status_code == 201 and posted.get_json()["thread"] == THREAD
    for thread in (THREAD, f"%20{THREAD}%20"):
        page = api.get(f"/api/v1/comments?thread={thread}")
        assert page.status_code == 200 and page.get_json()["thread"] == THREAD
    assert api.get("/api/v1/comments?thread=%20%20").status_code == 422


def test_privacy_routes_trim_the_email_as_intake_does(api, keys):
    api.post("/api/v1/comments", comment(author_email=" ada@example.org "))
    found = api.get("/api/v1/admin/privacy/export?email=%20ada@example.org%20", key=keys.admin)
    assert found.status_code == 200 and len(found.get_json()["comments"]) == 1
    erased = api.post("/api/v1/admin/privacy/erase", {"email": " ada@example.org "},
                      key=keys.admin)
    assert erased.status_code == 200


def test_a_site_key_submits_to_its_own_site_by_default(api, keys, app):
    """The `other` site's key posting without `site` meant `default`, and so a 403."""
    answer = api.post("/api/v1/comments", comment(ip="198.51.100.7"), key=keys.other_site)
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["site"] == "other"
    # Naming another site is still refused.
    refused = api.post("/api/v1/comments", comment(site="default", content="Elsewhere."),
                       key=keys.other_site)
    assert refused.status_code == 403


@pytest.mark.parametrize("site", [None, "", "  "])
def test_a_null_or_empty_site_is_the_default(api, keys, site):
    assert api.post("/api/v1/comments", {**comment(), "site": site}).get_json()["site"] == (
        "default")
    keyed = api.post("/api/v1/comments", {**comment(content="Keyed."), "site": site,
                                          "ip": "198.51.100.7"}, key=keys.other_site)
    assert keyed.status_code == 201 and keyed.get_json()["site"] == "other"


def test_a_fraction_is_not_an_id(api, keys):
    """marshmallow's int() cut 1.5 down to 1: a bulk decision acted on the wrong comment."""
    first = api.post("/api/v1/comments", comment()).get_json()["id"]
    reply = api.post("/api/v1/comments", comment(content="Reply.", parent_id=first + 0.5))
    assert reply.status_code == 422 and "parent_id" in reply.get_json()["errors"]
    bulk = api.post("/api/v1/moderation/bulk", {"ids": [first + 0.5], "action": "spam"},
                    key=keys.moderator)
    assert bulk.status_code == 422
    whole = api.post("/api/v1/moderation/bulk", {"ids": [float(first)], "action": "spam"},
                     key=keys.moderator)
    assert whole.status_code == 200


def test_a_pattern_must_match_to_the_end_not_to_a_final_newline(api, keys):
    """Python's `$` matches before a final newline: "TRUST_NEW\\n" passed the rule id
    pattern. (`site` is trimmed first, as intake trims it: "default\\n" is `default`.)"""
    assert api.get("/api/v1/moderation/queue?rule=TRUST_NEW%0A",
                   key=keys.moderator).status_code == 422
    assert api.get("/api/v1/comments?site=default%0Ax&thread=/a").status_code == 422


def test_the_queues_thread_filter_is_trimmed_as_the_thread_is(api, keys):
    status = api.post("/api/v1/comments", comment()).get_json()["status"]
    found = api.get(f"/api/v1/moderation/queue?status={status}&thread=%20{THREAD}%20",
                    key=keys.moderator)
    assert found.status_code == 200 and len(found.get_json()["items"]) == 1


def test_an_emoji_newer_than_pythons_unicode_tables_is_text(api):
    """U+1FAE8 (Unicode 15) is unassigned to Python 3.11: unknown is not invisible."""
    assert api.post("/api/v1/comments", comment(content="\U0001FAE8")).status_code == 201


def test_control_character_checks_refuse_exactly_the_control_characters():
    """The validators search character classes; every code point is checked against what
    they refuse: below U+0020, DEL and C1 (U+0080-U+009F), a comment keeping tab, line feed
    and carriage return; one line also refuses the line and paragraph separators."""
    from marshmallow import ValidationError

    from moderation.schemas.base import no_control_chars, single_line

    def refused(check, text):
        try:
            check(text)
        except ValidationError:
            return True
        return False

    for code in range(0x110000):
        ch = chr(code)
        if 0xD800 <= code <= 0xDFFF:
            continue  # lone surrogates: JSON decoding never hands one over
        control = code < 32 or 0x7F <= code <= 0x9F
        assert refused(single_line, f"a{ch}b") == (control or ch in "\u2028\u2029"), hex(code)
        assert refused(no_control_chars, f"a{ch}b") == (control and ch not in "\t\n\r"), hex(code)


@pytest.mark.parametrize("ch", ["\x85", "\x9b", "\u2028", "\u2029"])
def test_one_line_fields_refuse_c1_controls_and_line_separators(api, ch):
    """NEL (U+0085) and U+2028/U+2029 show as line breaks in the admin page and in logs, the
    other C1 controls as garbage: a commenter's name or a thread key is one line of text."""
    for field in ("author_name", "thread"):
        answer = api.post("/api/v1/comments", comment(**{field: f"Ada{ch}Lovelace"}))
        assert answer.status_code == 422, (field, hex(ord(ch)))
        assert field in answer.get_json()["errors"]


@pytest.mark.parametrize("name", [
    "\u202eevil",                 # an override left open (found by the audit: it took 201)
    "Eve\u2067",                  # an isolate left open
    "\u202bEve\u2069",            # closed by the wrong kind
    "\u2066\u202bEve\u2069\u202c",  # crossed
    "Eve\u202c",                  # a close with nothing open
])
def test_a_name_that_leaves_a_bidi_control_open_is_refused(api, name):
    """A name that opens a bidi override, embedding or isolate and leaves it open shows
    reversed, and reverses the text after it on the line ("Eve says:" on the page)."""
    for field in ("author_name", "thread_title"):
        answer = api.post("/api/v1/comments", comment(**{field: name}))
        assert answer.status_code == 422, (field, repr(name))
        assert field in answer.get_json()["errors"]


def test_a_right_to_left_name_wrapped_as_platforms_wrap_it_is_taken(api):
    """YouTube exports a Hebrew or Arabic name as RLE, the name, PDF and LRM (the spam
    evaluation's own data holds seven): closed, the run ends with the name."""
    for number, name in enumerate(["\u202b\u05d0\u05e1\u05e3 \u05e9\u05de\u05e9\u202c\u200e",
                                   "\u2067\u0645\u0631\u064a\u0645\u2069 (Maryam)",
                                   "\u202eevil\u202c"]):
        answer = api.post("/api/v1/comments", comment(
            author_name=name, thread_title=name, thread=f"/rtl/{number}"))
        assert answer.status_code == 201, (repr(name), answer.get_json())


def test_a_comment_may_hold_line_separators_but_not_c1_controls(api):
    """U+2028 in a comment is harmless text, a line break; a C1 control is not text."""
    assert api.post("/api/v1/comments", comment(content="one\u2028two")).status_code == 201
    for ch in ("\x85", "\x9b"):
        answer = api.post("/api/v1/comments", comment(content=f"one{ch}two"))
        assert answer.status_code == 422, hex(ord(ch))
        assert "content" in answer.get_json()["errors"]


# Arabic-Indic, Devanagari and full-width digits: int() and `\d` take them all.
UNICODE_DIGITS = ["\u0663", "\u0969", "\uff13"]


def _spelt(number: int, three: str) -> str:
    """The number in the digits of three's script (its digits are consecutive code points)."""
    zero = ord(three) - 3
    return "".join(chr(zero + int(digit)) for digit in str(number))


@pytest.mark.parametrize("three", UNICODE_DIGITS)
def test_an_id_in_a_path_is_written_in_ascii_digits(api, keys, three):
    """`/comments/٣` was comment 3: one comment, many spellings in the access log."""
    first = api.post("/api/v1/comments", comment()).get_json()["id"]
    spelt = _spelt(first, three)
    assert int(spelt) == first  # what werkzeug's converter did with it
    assert api.get(f"/api/v1/moderation/comments/{first}", key=keys.moderator).status_code == 200
    assert api.get(f"/api/v1/moderation/comments/{spelt}", key=keys.moderator).status_code == 404
    assert api.post(f"/api/v1/comments/{spelt}/flags", {"reason": "spam"}).status_code == 404
    decision = api.post(f"/api/v1/moderation/comments/{spelt}/decision", {"action": "spam"},
                        key=keys.moderator)
    assert decision.status_code == 404
    key_id = api.get("/api/v1/admin/keys", key=keys.admin).get_json()["items"][0]["id"]
    assert api.get(f"/api/v1/admin/keys/{key_id}", key=keys.admin).status_code == 200
    assert api.get(f"/api/v1/admin/keys/{_spelt(key_id, three)}",
                   key=keys.admin).status_code == 404


def test_an_id_in_a_path_has_no_leading_zero(api, keys):
    """`/comments/056` was comment 56: one comment, two spellings in the access log."""
    first = api.post("/api/v1/comments", comment()).get_json()["id"]
    assert api.get(f"/api/v1/moderation/comments/{first}", key=keys.moderator).status_code == 200
    assert api.get(f"/api/v1/moderation/comments/0{first}", key=keys.moderator).status_code == 404
    assert api.post(f"/api/v1/comments/00{first}/flags", {"reason": "spam"}).status_code == 404
    # Nor a plus sign in a number sent as text (int() took "+5" as 5).
    assert api.get("/api/v1/comments?thread=/a&limit=%2B5").status_code == 422
    bulk = api.post("/api/v1/moderation/bulk", {"ids": [f"+{first}"], "action": "spam"},
                    key=keys.moderator)
    assert bulk.status_code == 422


def test_an_id_too_large_for_its_column_is_a_404_whatever_the_method(api, keys):
    """Only the conversion refused 2147483648, so the path still matched the route's other
    methods: `DELETE /keys/2147483648` was a 405 where `GET` was a 404."""
    for method, path in [("get", "/api/v1/admin/keys/2147483648"),
                         ("delete", "/api/v1/admin/keys/2147483648"),
                         ("delete", "/api/v1/admin/keys/99999999999"),
                         ("get", "/api/v1/moderation/comments/2147483648"),
                         ("post", "/api/v1/comments/2147483648/flags")]:
        admin = {"Authorization": f"Bearer {keys.admin}"}
        answer = getattr(api.client, method)(path, headers=admin)
        assert answer.status_code == 404, (method, path, answer.status_code)
    assert api.client.delete("/api/v1/admin/keys/2147483647", headers={
        "Authorization": f"Bearer {keys.admin}"}).status_code == 404  # the largest id: no key


@pytest.mark.parametrize("number", [*UNICODE_DIGITS, "1_0", "01"])
def test_a_number_is_written_in_ascii_digits(api, keys, number):
    """int() read `limit=٣`, `３` and `1_0` as numbers; query arguments and ids sent as text
    take ASCII digits only (a 422), so the numbers logged and audited have one spelling."""
    first = api.post("/api/v1/comments", comment()).get_json()["id"]
    assert api.get(f"/api/v1/comments?thread=/a&limit={number}").status_code == 422
    for path in ("/api/v1/moderation/queue", "/api/v1/moderation/audit"):
        answer = api.get(f"{path}?limit={number}", key=keys.moderator)
        assert answer.status_code == 422 and "limit" in str(answer.get_json()), path
    audit = api.get(f"/api/v1/moderation/audit?comment_id={number}", key=keys.moderator)
    assert audit.status_code == 422
    bulk = api.post("/api/v1/moderation/bulk", {"ids": [number], "action": "spam"},
                    key=keys.moderator)
    assert bulk.status_code == 422
    reply = api.post("/api/v1/comments", comment(content="Reply.", parent_id=number))
    assert reply.status_code == 422 and "parent_id" in reply.get_json()["errors"]
    # The ASCII spelling, as text, still works (forms send numbers as text).
    assert api.get("/api/v1/comments?thread=/a&limit=5").status_code == 200
    bulk = api.post("/api/v1/moderation/bulk", {"ids": [str(first)], "action": "spam"},
                    key=keys.moderator)
    assert bulk.status_code == 200


@pytest.mark.parametrize("url", ["https://e.example:0/", "https://e.example:99999/",
                                 "https://e..example/", "https://a_b.example/"])
def test_a_website_no_browser_can_visit_is_422(api, url):
    """content_html refused to link these hosts and ports, and allowed origins refused
    them, but author_url took them: the page's link to the commenter was broken (audit)."""
    answer = api.post("/api/v1/comments", comment(author_url=url))
    assert answer.status_code == 422
    assert answer.get_json()["errors"] == {"author_url": [
        "Must name a host name (and a port from 1 to 65535) that a browser can visit."]}


@pytest.mark.parametrize("url", ["https://ok.example:8080/x", "HTTPS://OK.example/",
                                 "http://b\u00fccher.example/", "http://[2001:db8::1]/",
                                 "http://192.0.2.1/"])
def test_a_website_a_browser_can_visit_is_taken(api, url):
    assert api.post("/api/v1/comments", comment(author_url=url)).status_code == 201


def test_an_apostrophe_in_a_website_is_stored_as_the_escape_that_ends_no_attribute(api, keys):
    """Readers are shown author_url as sent: in a template writing href='...', an
    apostrophe ended the attribute, and "'onmouseover='alert(1)" ran (an audit)."""
    sent = "https://evil.example/'onmouseover='alert(1)'x='"
    answer = api.post("/api/v1/comments", comment(author_url=sent, thread_url=sent),
                      key=keys.site)
    assert answer.status_code == 201
    detail = api.get(f"/api/v1/moderation/comments/{answer.get_json()['id']}",
                     key=keys.moderator).get_json()
    quoted = "https://evil.example/%27onmouseover=%27alert(1)%27x=%27"
    assert (detail["author_url"], detail["sent_thread_url"]) == (quoted, quoted)


def test_an_apostrophe_quoted_counts_toward_the_websites_length(api):
    """Quoted after the 2,048-character check, a website of apostrophes reached the column
    at three times that: PostgreSQL refused it (422 naming no field, and a traceback), and
    SQLite stored it (a review)."""
    answer = api.post("/api/v1/comments",
                      comment(author_url="https://a.example/?q=" + "'" * 2000))
    assert answer.status_code == 422
    assert set(answer.get_json()["errors"]) == {"author_url"}


@pytest.mark.parametrize("website", ["http://", "https://", " HTTP:// "])
def test_a_website_box_left_as_the_theme_filled_it_is_no_website(api, keys, website):
    """Older themes fill the Website box with "http://"; WordPress reads that as none, and
    here the whole comment was refused (an audit)."""
    form = {"author": "Ada", "email": "ada@example.org", "url": website,
            "comment": "Hello", "comment_post_ID": "/story"}
    answer = api.client.post("/api/v1/comments", data=form)
    assert answer.status_code == 201, answer.get_json()
    detail = api.get(f"/api/v1/moderation/comments/{answer.get_json()['id']}",
                     key=keys.moderator).get_json()
    assert detail["author_url"] is None


@pytest.mark.parametrize("content", ["one\r\ntwo", "one\rtwo"])
def test_a_line_break_is_one_however_it_is_sent(api, keys, content):
    """A JSON body's CRLF counted twice toward the 10,000 characters (a form's was folded
    already), and a lone CR showed as no break at all (an audit)."""
    answer = api.post("/api/v1/comments", comment(content=content))
    detail = api.get(f"/api/v1/moderation/comments/{answer.get_json()['id']}",
                     key=keys.moderator).get_json()
    assert (detail["content"], detail["content_html"]) == ("one\ntwo", "<p>one<br>two</p>")
    long = "x" * 4999 + "\r\n" + "y" * 4999  # 9,999 characters as a reader counts them
    assert api.post("/api/v1/comments", comment(content=long)).status_code == 201


@pytest.mark.parametrize("email", ["ada@corp.local", "ada@corp.internal", "ada@x.onion",
                                   "ada@staging.test"])
def test_an_intranets_tors_or_staging_sites_address_is_taken(api, email):
    """Refused as special-use names, though real mailboxes (an intranet install's own
    staff could not comment; an audit). WordPress takes them."""
    assert api.post("/api/v1/comments", comment(author_email=email)).status_code == 201


@pytest.mark.parametrize("email", ["ada@localhost", "ada@x.invalid", "ada@test"])
def test_names_that_hold_no_mailbox_are_refused(api, email):
    assert api.post("/api/v1/comments", comment(author_email=email)).status_code == 422


def test_an_author_name_of_101_characters_is_refused_100_taken(api):
    too_long = api.post("/api/v1/comments", comment(author_name="a" * 101))
    assert too_long.status_code == 422
    assert "author_name" in too_long.get_json()["errors"]
    # 100, padded with blanks that trimming removes, is fine
    fine = api.post("/api/v1/comments", comment(author_name="  " + "a" * 100 + "  "))
    assert fine.status_code == 201, fine.get_json()


def test_a_site_keys_user_agent_of_513_characters_is_refused(api, keys):
    answer = api.post("/api/v1/comments", comment(user_agent="a" * 513), key=keys.site)
    assert answer.status_code == 422
    assert "user_agent" in answer.get_json()["errors"]
    fine = api.post("/api/v1/comments", comment(user_agent="a" * 512), key=keys.site)
    assert fine.status_code == 201, fine.get_json()


def test_a_thread_key_of_513_characters_is_refused_512_taken(api):
    answer = api.post("/api/v1/comments", comment(thread="t" * 513))
    assert answer.status_code == 422
    assert "thread" in answer.get_json()["errors"]
    assert api.post("/api/v1/comments", comment(thread="t" * 512)).status_code == 201


def test_a_thread_title_of_501_characters_is_refused(api):
    answer = api.post("/api/v1/comments", comment(thread_title="x" * 501))
    assert answer.status_code == 422
    assert "thread_title" in answer.get_json()["errors"]
    assert api.post("/api/v1/comments", comment(thread_title="x" * 500)).status_code == 201


@pytest.mark.parametrize("url", ["https:///path", "http:example.org", "https:"])
def test_a_website_without_a_host_is_refused(api, url):
    answer = api.post("/api/v1/comments", comment(author_url=url))
    assert answer.status_code == 422
    assert "author_url" in answer.get_json()["errors"]
