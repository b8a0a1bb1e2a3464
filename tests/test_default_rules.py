"""The shipped rules file, through the real intake path."""

from __future__ import annotations

import pytest

from moderation.rules import Context, Submission, default_rules_path, evaluate, load_rules
from tests.conftest import comment


@pytest.fixture
def app_config():
    return {"RULES_FILE": None}


def judged(api, keys, **fields):
    answer = api.post("/api/v1/comments", comment(**fields), key=keys.site)
    assert answer.status_code in (201, 403), answer.get_json()
    if answer.status_code == 403:
        return "rejected", []
    detail = api.get(f"/api/v1/moderation/comments/{answer.get_json()['id']}",
                     key=keys.admin).get_json()
    return detail["status"], [hit["rule"] for hit in detail["hits"]]


def test_the_shipped_file_is_what_the_service_runs(api, keys):
    state = api.get("/api/v1/admin/rules", key=keys.admin).get_json()
    assert state["version"] == load_rules(default_rules_path()).version


def test_a_newcomers_ordinary_comment_waits_for_a_moderator(api, keys):
    status, rules = judged(api, keys, content="Good reporting, thanks.",
                           user_agent="Mozilla/5.0")
    assert status == "pending" and "TRUST_NEW" in rules


def test_pharmacy_link_spam_is_spam_whatever_the_disguise(api, keys):
    status, rules = judged(
        api, keys,
        content="Ch3ap v.i.a.g.r.a and ｃｉａｌｉｓ, online pharmacy, no prescription: "
                "https://bit.ly/x1 https://bit.ly/x2 https://bit.ly/x3 https://bit.ly/x4",
        user_agent="Mozilla/5.0",
    )
    assert status == "spam"
    assert {"PHARMA_TERMS", "SHORTENED_LINK", "LINK_FLOOD"} <= set(rules)


@pytest.mark.parametrize(("content", "match"), [
    ("Buy ᴠɪᴀɢʀᴀ here", "ᴠɪᴀɢʀᴀ"),
    ("ᴅiet ᴘills that work", "ᴅiet ᴘills"),  # some letters of a word in small capitals
])
def test_small_capitals_spell_the_pharmacy_terms(api, keys, content, match):
    verdict = api.post("/api/v1/admin/rules/test", {"comment": {"content": content}},
                       key=keys.admin).get_json()
    assert [hit["match"] for hit in verdict["hits"] if hit["rule"] == "PHARMA_TERMS"] == [match]


@pytest.mark.parametrize(("content", "match"), [
    ("<Buy Viagra online at cheap prices>", "Viagra"),
    ("hi <!-- viagra --> there", "<!-- viagra -->"),
    ("<b title='cheap viagra'>hello</b>", "<b title='cheap viagra'>"),
])
def test_words_in_angle_brackets_are_read_as_the_reader_sees_them(api, keys, content, match):
    """Anything shaped like a tag was dropped before matching, yet a comment is shown as
    text: "<Buy Viagra online>" went past every rule and the classifier, in full view."""
    verdict = api.post("/api/v1/admin/rules/test", {"comment": {"content": content}},
                       key=keys.admin).get_json()
    assert [hit["match"] for hit in verdict["hits"] if hit["rule"] == "PHARMA_TERMS"] == [match]


@pytest.mark.parametrize(("content", "rule"), [
    ("You are all assholes.", "ABUSE_TERMS"),
    ("Best online casinos, free spins daily", "GAMBLING_TERMS"),
    ("Payday loans approved in minutes", "MONEY_SCAM_TERMS"),
])
def test_the_shipped_term_rules_read_plurals(api, keys, content, rule):
    """Each list names the singular; the plural passed every rule (an evasion audit)."""
    _, rules = judged(api, keys, content=content, user_agent="Mozilla/5.0")
    assert rule in rules


def test_abuse_is_held_for_review_not_rejected(api, keys):
    status, rules = judged(api, keys, content="You are a fucking idiot.",
                           user_agent="Mozilla/5.0")
    assert status == "pending" and "ABUSE_TERMS" in rules


@pytest.mark.parametrize(
    "link", ["https://2no.co/x", "https://%32no.co/x", "https://2no%2Eco/x", "https://2no.co\\x",
             "https://2no.co\\@news.example/x"],
)
def test_an_ip_logger_is_spam_however_its_host_is_written(api, keys, link):
    """A browser decodes a percent-escaped host and ends the host at a backslash: each
    of these links goes to 2no.co, and all but the first were published."""
    status, rules = judged(api, keys, content=f"Look at this: {link}", user_agent="Mozilla/5.0")
    assert status == "spam" and "BAD_HOST" in rules


@pytest.mark.parametrize(
    "href", ["https://2no&#46;co/x", "https://2no&period;co/x", "https://2no&#x2e;co/x",
             "https&colon;//2no.co/x", " https://2no&#10;.co/x", "https:/2no.co/x",
             "http:2no.co/x"],
)
def test_an_ip_logger_in_a_disguised_href_is_judged_as_the_plain_link(api, keys, href):
    """A browser decodes character references in an href before it reads the URL, and for
    http(s) skips missing slashes after the scheme (on a page of the other scheme): each
    of these anchors goes to 2no.co, as the plain one does, and gets the same verdict."""
    plain = judged(api, keys, content='Look at <a href="https://2no.co/x">this</a>',
                   author_email="plain@example.org", user_agent="Mozilla/5.0")
    disguised = judged(api, keys, content=f'Look at <a href="{href}">this</a>',
                       author_email="disguised@example.org", user_agent="Mozilla/5.0")
    assert disguised == plain
    assert plain[0] == "spam" and "BAD_HOST" in plain[1]


def test_a_filled_honeypot_is_spam(api, keys):
    answer = api.post("/api/v1/comments", {**comment(), "website_url": "https://x.example"})
    assert answer.get_json()["status"] == "pending"
    detail = api.get(f"/api/v1/moderation/comments/{answer.get_json()['id']}",
                     key=keys.admin).get_json()
    assert detail["status"] == "spam" and detail["hits"][0]["rule"] == "HONEYPOT"


def test_disposable_email_and_missing_user_agent_add_up(api, keys):
    _, rules = judged(api, keys, author_email="someone@mailinator.com", content="Hello!")
    assert {"DISPOSABLE_EMAIL", "NO_USER_AGENT"} <= set(rules)


@pytest.mark.parametrize("content", [
    "Great song! Check out my channel for covers, I'll sub back.",
    "Please subscribe to me, I upload every week",
    "Nice video. Follow me on Instagram: @someone",
    "Come and listen to our new track, it's better than this",
    # Spelled as spam spells it (an evasion audit): hyphens, emoji, "2", "YT", plurals.
    "Check-out my channel!",
    "Check out my 🎵 channel",
    "Nice. Visit my web-site",
    "Subscribe 2 my channel",
    "Check out my YT channels",
    "Follow me on lnstagram",
    "you should check out my channel",
    "Come check out my Instagram",
    "Check out my latest video",
    "Head over to my channel",
])
def test_self_promotion_is_spam_when_nothing_vouches_for_it(api, keys, content):
    status, rules = judged(api, keys, content=content, user_agent="Mozilla/5.0")
    assert status == "spam" and "SELF_PROMOTION" in rules


@pytest.mark.parametrize("content", [
    "I subscribe to my local paper for stories like this one.",
    "See my comment above: the figures in the third paragraph are wrong.",
    "Follow me on this: the council voted before the report was out.",
    "My page count is off; the print edition ran it on page 4.",
    # Each was spam, at the rule's 6.0 alone (the audit): not a request to the reader.
    "I cancelled my subscription and won't subscribe back until they fix the paywall.",
    "After the redesign I can't see my profile or watch my videos in the app.",
    "You can see our site plans at the council offices until Friday.",
    "People who follow me on Twitter know I've said this for years.",
    "I check my app every morning for the news.",
    "We watch our channel 4 news every night.",
    "Watch our Channel 4 news tonight at six.",
    # And from the review of that change: after "and", "then" or a quotation mark.
    "I get up at six and check my app for the traffic.",
    "Then check my app, it shows the delays.",
    "I logged in this morning and see my profile has been suspended.",
    '"Follow me on Twitter" was his whole campaign.',
    "We visit our Channel Islands cottage every summer.",
    # And from the review of that: curly quotes, questions, a business's or council's site.
    "Her slogan, ‘Follow me on Twitter’, flopped.",
    "I always check my channel 4 news app first.",
    "I check my playlist when I run.",
    "Can you see my page properly? The comments won't load for me.",
    "Be sure to check our site for updated flood warnings, says the Environment Agency.",
    "The mayor said: visit our site and see for yourself.",
])
def test_talk_about_ones_own_reading_is_not_self_promotion(api, keys, content):
    _, rules = judged(api, keys, content=content, user_agent="Mozilla/5.0")
    assert "SELF_PROMOTION" not in rules


def test_self_promotion_in_the_name_is_self_promotion(api, keys):
    """Moved from the comment to the name, the same request went through (audit)."""
    status, rules = judged(api, keys, author_name="Check out my channel",
                           content="Great song!", user_agent="Mozilla/5.0")
    assert status == "spam" and "SELF_PROMOTION" in rules

# Each shipped rule on an example of its own, judged in-process (a mutation audit: dropping
# a term, an alternative or a list entry, or moving a score, went unnoticed).
KNOWN = Context(approved_count=1)


def judge(content="Good point.", name="Ann", email="reader@example.org", ua="Mozilla/5.0",
          context=KNOWN):
    submission = Submission("default", "t", name, email, content=content, user_agent=ua)
    verdict = evaluate(load_rules(default_rules_path()), submission, context)
    return verdict.outcome, {hit.rule for hit in verdict.hits}


@pytest.mark.parametrize(("fields", "rule"), [
    ({"content": "Buy tramadol online"}, "PHARMA_TERMS"),
    ({"content": "Claim 50 free spins today"}, "GAMBLING_TERMS"),
    ({"content": "Message me on Telegram +1 555 010 0199"}, "MESSENGER_CONTACT"),
    ({"content": "cheap meds here"}, "CHEAP_MEDS"),
    ({"content": "THIS COUNCIL IS USELESS AND CORRUPT AND LAZY ok then"}, "SHOUTING"),
    ({"content": "Nooooooooooo way"}, "REPEATED_CHARACTERS"),
    ({"email": "x@guerrillamail.com"}, "DISPOSABLE_EMAIL"),
    ({"content": "see https://tinyurl.com/abc"}, "SHORTENED_LINK"),
    ({"name": "Fucking Idiot"}, "ABUSE_TERMS"),
])
def test_each_shipped_rule_hits_its_own_example(fields, rule):
    assert rule in judge(**fields)[1]


def test_a_url_in_the_name_and_one_weak_term_hold_the_comment():
    assert judge(content="Nice piece on the casino vote.", name="www.loans.example") == (
        "pending", {"GAMBLING_TERMS", "URL_IN_NAME"})


def test_scores_summing_to_exactly_the_pending_threshold_hold_the_comment():
    assert judge(content="Nice piece on the casino vote, click here") == (
        "pending", {"GAMBLING_TERMS", "PROMOTION_TERMS"})


def test_two_bad_comments_in_a_row_put_a_regular_back_under_review():
    outcome, rules = judge(context=Context(approved_count=5, recent_bad_run=2))
    assert outcome == "pending" and "TRUST_BAD_RUN" in rules


def test_a_missing_user_agent_alone_does_not_hold_a_known_commenter():
    assert judge(ua="") == ("approved", {"NO_USER_AGENT"})
