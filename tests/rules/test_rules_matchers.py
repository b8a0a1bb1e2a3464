"""Every rule type: what hits, what must not, and what the hit shows."""

from __future__ import annotations

import itertools
import re
import textwrap

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from moderation.rules import (
    ClassifierScore,
    Context,
    Hit,
    RulesError,
    Submission,
    evaluate,
    parse_rules,
    readings,
)

NOBODY = Context()


def hits_of(rule_yaml: str, context: Context = NOBODY, **fields: str) -> list[Hit]:
    """The hits of one rule (given as a YAML mapping) on a submission with ``fields``."""
    text = "version: 1\ntrust: {hold_new_commenters: false}\nrules:\n" + textwrap.indent(
        "- " + textwrap.dedent(rule_yaml).strip().replace("\n", "\n  "), "  "
    )
    ruleset = parse_rules(text)
    values = {"site": "default", "thread": "t", "author_name": "Ann", "author_email": "a@b.org"}
    values.update(fields)
    return list(evaluate(ruleset, Submission(**values), context).hits)


TERMS = "{id: T, type: terms, terms: [viagra, ass, french fries], score: 1}"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("buy viagra", "viagra"),
        ("buy VIAGRA now", "VIAGRA"),
        ("buy ｖｉａｇｒａ now", "ｖｉａｇｒａ"),
        ("buy 𝐯𝐢𝐚𝐠𝐫𝐚", "𝐯𝐢𝐚𝐠𝐫𝐚"),
        ("buy ⓥⓘⓐⓖⓡⓐ", "ⓥⓘⓐⓖⓡⓐ"),
        ("buy viаgra", "viаgra"),
        ("buy ᴠɪᴀɢʀᴀ", "ᴠɪᴀɢʀᴀ"),
        ("buy ᴠɪagʀa", "ᴠɪagʀa"),
        ("buy via\u200bgra", "via\u200bgra"),
        ("buy via\u00adgra", "via\u00adgra"),
        ("buy v1agr@!", "v1agr@"),
        ("buy v i a g r a today", "v i a g r a"),
        ("buy v.i.a.g.r.a.", "v.i.a.g.r.a"),
        ("buy vi<b>ag</b>ra", "vi<b>ag</b>ra"),
        ("buy vi<!-- -->agra", "vi<!-- -->agra"),
        ("you ass", "ass"),
        ("you ᴀꜱꜱ", "ᴀꜱꜱ"),
        ("an a.s.s", "a.s.s"),
        ("FRENCH   Fries please", "FRENCH   Fries"),
        ("french\nfries", "french\nfries"),
        ("french-fries", "french-fries"),
        ("french_fries", "french_fries"),
        ("french/fries", "french/fries"),
        ("french - fries", "french - fries"),
        ("a French.Fries ad", "French.Fries"),
        ("(french) fries", "french) fries"),
    ],
)
def test_terms_see_through_evasions(content: str, match: str) -> None:
    [hit] = hits_of(TERMS, content=content)
    assert (hit.rule, hit.target, hit.match) == ("T", "content", match)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("buy VlAGRA now", "VlAGRA"),  # a lower-case l for a capital I
        ("buy CIALlS", "CIALlS"),
        ("buy ciaIis", "ciaIis"),  # a capital I for a lower-case l
        ("buy cia1is", "cia1is"),  # the digit 1 for an l
        ("buy CIAL1S", "CIAL1S"),  # ... or for an i
        ("buy ClAL1S", "ClAL1S"),
    ],
)
def test_case_shows_which_look_alike_of_l_i_and_1_is_meant(content: str, match: str) -> None:
    [hit] = hits_of("{id: T, type: terms, terms: [viagra, cialis], score: 1}", content=content)
    assert hit.match == match


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("buy c1a1is", "c1a1is"),  # one 1 for an i, the other for an l
        ("I will ki11 you", "ki11"),
        ("Iick it", "Iick"),  # a capital I for an l, starting a lower-case word
        ("buy va|ium", "va|ium"),  # a bar for an l
        ("buy v|agra", "v|agra"),  # ... or for an i
        ("buy c|a|is", "c|a|is"),
        ("buy CIA|IS", "CIA|IS"),
    ],
)
def test_each_1_or_bar_reads_i_or_l_on_its_own(content: str, match: str) -> None:
    rule = "{id: T, type: terms, terms: [viagra, cialis, kill, lick, valium], score: 1}"
    [hit] = hits_of(rule, content=content)
    assert hit.match == match


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("tr4m4d0l", "tr4m4d0l"),  # 4 a, 0 o
        ("x@n@x", "x@n@x"),  # @ a
        ("s3x", "s3x"),  # 3 e
        ("5ex and more", "5ex"),  # 5 s
        ("ca$ino", "ca$ino"),  # $ s
        ("7ramadol", "7ramadol"),  # 7 t
    ],
)
def test_terms_see_through_leetspeak_digits_and_symbols(content: str, match: str) -> None:
    rule = "{id: T, type: terms, terms: [tramadol, xanax, sex, casino], score: 1}"
    assert [hit.match for hit in hits_of(rule, content=content)] == [match]


def test_ordinary_words_with_l_and_i_are_read_as_written() -> None:
    # Were l, I and 1 one letter, "ill" would read "iii" and "Illinois" "iiiinois".
    rule = (
        "{id: T, type: terms, terms: [iii, lll, iiiinois, ii, llinois, lst, lan, lf, lt,"
        " fl, ldea, lnto], score: 1}"
    )
    content = (
        "I'll be ill, Ill or ILL in Illinois; 1 pill on the 1st, Il Divo. Ian, If It Into"
        " an Idea: F1 h1n1 covid19 mp3 b2b at $5, ann.lee1@mail.example,"
        " http://x1.example/a|b?i=1&l=1, if (a || b) { x|y }"
    )
    assert hits_of(rule, content=content) == []


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("buy vi agra", "vi agra"),
        ("buy via gra now", "via gra"),
        ("buy VIAG RA", "VIAG RA"),
        ("buy v1a-gra", "v1a-gra"),
        ("ci alis and more", "ci alis"),
    ],
)
def test_a_long_listed_word_split_once_is_joined(content: str, match: str) -> None:
    rule = "{id: T, type: terms, terms: [viagra, cialis, islam, sex], score: 1}"
    [hit] = hits_of(rule, content=content)
    assert hit.match == match


def test_a_split_word_counts_beside_the_whole_one() -> None:
    rule = "{id: T, type: terms, terms: [viagra], score: 1, explain: '{match} {count}'}"
    assert [hit.explanation for hit in hits_of(rule, content="viagra, vi agra")] == ["viagra 2"]


@pytest.mark.parametrize(
    "content",
    [
        "this is lam",  # short words would join ordinary ones: "islam"
        "it's ex-wife",  # a part of one letter: "sex"
        "the navi agrarian",  # a split word is a whole word
        "vi ag ra",  # split twice
        "vi. Agra",  # across a sentence
    ],
)
def test_only_a_long_listed_word_is_joined_and_only_whole(content: str) -> None:
    rule = "{id: T, type: terms, terms: [viagra, islam, sex], score: 1}"
    assert hits_of(rule, content=content) == []
    substring = "{id: T, type: terms, terms: [viagra], match: substring, score: 1}"
    assert hits_of(substring, content="a navi agrarian vi agra") == []


@pytest.mark.parametrize(
    "content",
    ["I am French. Fries are not", "French, fries and more", "french; fries", "french? fries"],
)
def test_a_phrase_does_not_run_across_a_sentence_or_clause(content: str) -> None:
    assert hits_of(TERMS, content=content) == []


def test_a_phrase_listed_with_hyphens_matches_any_separator_once() -> None:
    rule = "{id: T, type: terms, terms: [french-fries, french fries, FRENCH_FRIES], score: 1}"
    content = "french fries, french-fries and french.fries"
    [hit] = hits_of(rule, content=content)
    assert hit.explanation == "content contains the listed term 'french-fries' (as 'french fries')"
    counted = rule.replace("score: 1", "score: 1, explain: '{count} times'")
    assert [hit.explanation for hit in hits_of(counted, content=content)] == ["3 times"]


def test_a_term_listed_in_small_capitals_hits_the_plain_word() -> None:
    # A moderator may paste a term as a spam comment wrote it; it is folded as comments are.
    rule = "{id: T, type: terms, terms: [ᴄᴀꜱɪɴᴏ], score: 1}"
    assert [hit.match for hit in hits_of(rule, content="the best Casino tonight")] == ["Casino"]


def test_a_term_with_other_punctuation_is_matched_as_written() -> None:
    rule = "{id: T, type: terms, terms: ['100% free'], score: 1}"
    assert [hit.match for hit in hits_of(rule, content="now 100% free")] == ["100% free"]
    assert hits_of(rule, content="100 free tickets, 100-free") == []


@pytest.mark.parametrize(
    "content",
    [
        "a class of its own",
        "the assassin",
        "passage and bass",
        "viagrafalls",
        "c1ass",  # leet inside a longer word is still the longer word
        "ᴄʟᴀꜱꜱ and ᴘᴀꜱꜱᴀɢᴇ",  # so are small capitals
        "ᴄlass",
    ],
)
def test_word_terms_never_hit_inside_a_longer_word(content: str) -> None:
    assert hits_of(TERMS, content=content) == []


def test_word_terms_hit_between_punctuation() -> None:
    [hit] = hits_of(TERMS, content="glass-ass-embly")
    assert hit.match == "ass"


@pytest.mark.parametrize(
    ("content", "match"),
    [("网上赌博网站", "赌博"), ("今すぐカジノで遊ぼう", "カジノ"), ("เล่นคาสิโนออนไลน์", "คาสิโน")],
)
def test_word_terms_hit_in_scripts_written_without_spaces(content: str, match: str) -> None:
    rule = "{id: T, type: terms, terms: [赌博, カジノ, คาสิโน], score: 1}"
    assert [hit.match for hit in hits_of(rule, content=content)] == [match]
    # A Latin term beside them is still a word of its own, or not.
    assert [hit.match for hit in hits_of("{id: T, type: terms, terms: [ass], score: 1}",
                                         content="赌博class")] == []


def test_substring_terms_hit_inside_words() -> None:
    [hit] = hits_of(
        "{id: T, type: terms, terms: [ass], match: substring, score: 1}", content="a class"
    )
    assert hit.match == "ass"


def test_terms_cover_the_name_and_url_by_default_and_count_matches() -> None:
    hits = hits_of(TERMS, content="viagra, viagra and VIAGRA", author_name="Viagra Shop")
    assert [(hit.target, hit.match) for hit in hits] == [
        ("content", "viagra"),
        ("author_name", "Viagra"),
    ]
    assert "'viagra'" in hits[0].explanation


def test_explanation_shows_the_original_spelling() -> None:
    [hit] = hits_of(TERMS, content="cheap v.i.a.g.r.a")
    assert hit.explanation == "content contains the listed term 'viagra' (as 'v.i.a.g.r.a')"


@settings(max_examples=200, deadline=None)
@given(
    term=st.text("abcdefgh", min_size=2, max_size=6),
    prefix=st.text("abcdefghxyzéßᴀʙᴄ", max_size=4),
    suffix=st.text("abcdefghxyzéßᴀʙᴄ", max_size=4),
    before=st.lists(st.text("abcdefgh", min_size=2, max_size=6), max_size=3),
    after=st.lists(st.text("abcdefgh", min_size=2, max_size=6), max_size=3),
)
def test_word_mode_never_reports_a_hit_inside_a_longer_word(
    term: str, prefix: str, suffix: str, before: list[str], after: list[str]
) -> None:
    # Every word but the term itself is longer than the term or different from it, so
    # any hit at all would be a hit inside a longer word.
    assume(prefix or suffix)
    assume(term not in before + after)
    words = [*before, prefix + term + suffix, *after]
    # Two words that spell the term are a split term, not a longer word.
    assume(all(first + second != term for first, second in itertools.pairwise(words)))
    content = " ".join(words)
    # A letter three times in a row is read once and twice: "aaa" is a stretched "aa".
    assume(re.search(r"([a-z])\1\1", content) is None)
    ruleset = parse_rules(f"version: 1\nrules: [{{id: T, type: terms, terms: [{term}], score: 1}}]")
    verdict = evaluate(ruleset, Submission("default", "t", "n", "e@x.org", content=content))
    assert [hit for hit in verdict.hits if hit.rule == "T"] == []


def test_regex_matches_the_normalised_text_and_shows_the_original() -> None:
    rule = r"{id: PILLS, type: regex, pattern: 'cheap\W{0,3}(pills|meds)', score: 2.5}"
    [hit] = hits_of(rule, content="Get CHEAP - P1LLS here")
    assert (hit.match, hit.score) == ("CHEAP - P1LLS", 2.5)
    assert hits_of(rule, content="cheap -- pills") == []  # four separators: too far apart


def test_a_regex_covers_the_look_alikes_of_l_in_a_class_as_the_readme_says() -> None:
    rule = "{id: R, type: regex, pattern: 'c[il|]a[il|][il|]s', score: 1}"
    for content in ("c1a1is", "CIALlS", "c|a|is", "ciaIis"):
        assert [hit.match for hit in hits_of(rule, content=f"buy {content} now")] == [content]


def test_raw_regex_matches_the_original_text_as_written() -> None:
    rule = "{id: SHOUT, type: regex, pattern: '[A-Z]{5,}', raw: true, score: 1}"
    assert [hit.match for hit in hits_of(rule, content="this is LOUD TEXT")] == []
    assert [hit.match for hit in hits_of(rule, content="this is LOUDER")] == ["LOUDER"]


def test_a_raw_regex_keeps_its_case() -> None:
    """Matched as written, case and all: the cheap search that picks the candidate rules
    must be case-sensitive too, or it picks one whose own search then finds nothing."""
    rule = "{id: SHOUT, type: regex, pattern: 'BUY NOW', raw: true, score: 1}"
    assert hits_of(rule, content="buy now") == []
    assert [hit.match for hit in hits_of(rule, content="BUY NOW")] == ["BUY NOW"]


def test_a_regex_reads_only_its_own_targets() -> None:
    rules = ("{id: A, type: regex, pattern: hello, score: 1}\n"
             "- {id: X, type: regex, pattern: casino, targets: [author_name], score: 1}")
    text = ("version: 1\ntrust: {hold_new_commenters: false}\nrules:\n  - "
            + rules.replace("\n- ", "\n  - "))
    submission = Submission("default", "t", "Ann", "a@b.org", content="casino hello")
    assert [hit.rule for hit in evaluate(parse_rules(text), submission, NOBODY).hits] == ["A"]


def test_regex_stays_linear_on_a_pathological_input() -> None:
    rule = "{id: R, type: regex, pattern: '(a+)+b', score: 1}"
    assert hits_of(rule, content="a" * 5000 + "!") == []


@pytest.mark.parametrize("content", ["lI" * 5000, "aI" * 5000, "a1" * 5000, "ABl" * 3333,
                                     "a|" * 5000, "Ia " * 3333],
                         ids=["lI", "aI", "a1", "ABl", "a|", "Ia"])
def test_letter_readings_stay_linear_on_one_long_word_of_cues(content: str, monkeypatch) -> None:
    # Each l, I or 1 of the word is a cue; the word was scanned again from every one of
    # them: 1-4 s for a comment of 10,000 characters. Counted, not timed: the characters
    # the word look-ups walk must stay within a few passes over the text.
    walked = []
    word_around = readings._word_around

    def counted(text: str, index: int) -> tuple[int, int]:
        start, end = word_around(text, index)
        walked.append(end - start)
        return start, end

    monkeypatch.setattr(readings, "_word_around", counted)
    assert hits_of(TERMS, content=content) == []
    assert sum(walked) <= 3 * len(content), sum(walked)
    # However many look-alikes, a few readings of the text: each is a pass of the automata.
    assert len(readings.letter_readings(content)) <= 4


def test_every_word_of_cues_is_read_in_a_long_comment() -> None:
    rule = "{id: T, type: terms, terms: [viagra, cialis], score: 1, explain: '{count}'}"
    hits = hits_of(rule, content="VlAGRA ciaIis " * 700)
    assert [(hit.match, hit.explanation) for hit in hits] == [("VlAGRA", "1400")]


@pytest.mark.parametrize(
    ("content", "author_url", "count"),
    [
        ("one http://a.example/x", "", 1),
        ("http://a.example and www.b.example and https://c.example/p?q=1", "", 3),
        ('<a href="http://a.example">http://a.example</a>', "", 1),
        ('<a href="http://a.example">here</a> and http://b.example', "https://me.example", 3),
        # The public page links these from their "http", so they count.
        ("xhttp://a.example _https://b.example 9http://c.example", "", 3),
        # A quoted value holds a ">": the tag, and the anchor repeating its href, go on.
        ('<a title="a > b" href="http://a.example">http://a.example</a>', "", 1),
        # The href as a browser decodes it is the URL the anchor's text repeats.
        ('<a href="http://a&#46;example/?p=1&amp;q=2">http://a.example/?p=1&amp;q=2</a>', "", 1),
    ],
)
def test_links_count_anchors_bare_urls_and_the_author_url(
    content: str, author_url: str, count: int
) -> None:
    hits = hits_of(
        "{id: L, type: links, at_least: 1, score: 1}", content=content, author_url=author_url
    )
    assert [hit.explanation.split(" carry ")[1].split()[0] for hit in hits] == [str(count)]
    assert (
        hits_of(
            f"{{id: L, type: links, at_least: {count + 1}, score: 1}}",
            content=content,
            author_url=author_url,
        )
        == []
    )


DOMAINS = "{id: D, type: domains, domains: [spam.example, Bücher.example], outcome: spam}"


@pytest.mark.parametrize(
    ("content", "author_url", "match"),
    [
        ("see http://spam.example/page", "", "http://spam.example/page"),
        ("see https://x.spam.example", "", "https://x.spam.example"),
        ("see SPAM.EXAMPLE/path", "", "SPAM.EXAMPLE"),
        ('<a href="http://www.spam.example/">here</a>', "", "http://www.spam.example/"),
        ("nothing here", "http://spam.example", "http://spam.example"),
        ("visit xn--bcher-kva.example", "", "xn--bcher-kva.example"),
        ("visit bücher.example", "", "bücher.example"),
        ("buy xhttp://spam.example/now", "", "http://spam.example/now"),
        # A browser percent-decodes the host, ends it at a backslash as at a slash, and
        # skips any slashes after the scheme: each of these links goes to spam.example.
        ("see https://%73pam.example/x", "", "https://%73pam.example/x"),
        ("see https://spam%2Eexample/x", "", "https://spam%2Eexample/x"),
        ("see https://b%C3%BCcher.example/", "", "https://b%C3%BCcher.example/"),
        ('<a href="https://%73pam.example/">here</a>', "", "https://%73pam.example/"),
        ("see https://spam.example\\x", "", "https://spam.example\\x"),
        ("see https://spam.example\\@news.example/", "", "https://spam.example\\@news.example/"),
        ("see https://\\spam.example/", "", "https://\\spam.example/"),
        ("see https:///spam.example/", "", "https:///spam.example/"),
        ("nothing here", "https://%73pam.example/", "https://%73pam.example/"),
        # A browser decodes character references in an attribute value, quoted or not,
        # then drops white space at its ends and tabs and newlines within, before it
        # reads the URL: each of these anchors goes to spam.example.
        ('<a href="https://spam&#46;example/">here</a>', "", "https://spam&#46;example/"),
        ("<a href='https://spam&period;example/'>here</a>", "", "https://spam&period;example/"),
        ("<a href=https://spam&#x2E;example/>here</a>", "", "https://spam&#x2E;example/"),
        ('<a href="https://spam&#X2e;example">here</a>', "", "https://spam&#X2e;example"),
        (
            '<a href="https&colon;&sol;&sol;spam.example/">here</a>',
            "",
            "https&colon;&sol;&sol;spam.example/",
        ),
        ('<a href="https://spam&#46example/">here</a>', "", "https://spam&#46example/"),
        ('<a href="https://sp&#9;am.example/">here</a>', "", "https://sp&#9;am.example/"),
        ('<a href="https://spam&NewLine;.example/">here</a>', "", "https://spam&NewLine;.example/"),
        ('<a href="https://spam\n.example/">here</a>', "", "https://spam\n.example/"),
        ('<a href=" https://spam.example/ ">here</a>', "", " https://spam.example/ "),
        # An http(s) href with one slash or none after the scheme: on a page of the other
        # scheme a browser skips the missing slashes and visits spam.example.
        ('<a href="https:/spam.example/x">here</a>', "", "https:/spam.example/x"),
        ('<a href="HTTP:spam.example:80/x">here</a>', "", "HTTP:spam.example:80/x"),
        ('<a href="https:&#47;spam.example/">here</a>', "", "https:&#47;spam.example/"),
        # A browser follows the anchor's href, not an attribute whose name ends in "href".
        (
            '<a data-href="https://news.example/" href="https://spam.example/">here</a>',
            "",
            "https://spam.example/",
        ),
    ],
)
def test_domains_hit_listed_hosts_and_their_subdomains(
    content: str, author_url: str, match: str
) -> None:
    [hit] = hits_of(DOMAINS, content=content, author_url=author_url)
    assert (hit.match, hit.outcome) == (match, "spam")


@pytest.mark.parametrize(
    "content",
    [
        "see http://spam.example.evil.com/",
        "see notspam.example",
        "see http://spаm.example",  # Cyrillic а: a different registrable domain
        "see spam.examples.org",
        "mail me at spam dot example",
        # The host ends at the backslash: the browser visits news.example.
        "see https://news.example\\@spam.example/",
        # A "%" left after decoding, or a "/" it made, is no host a browser visits.
        "see https://spam%252Eexample/ or https://x%2Fspam.example/",
        # Text is shown escaped (content_html), so its references stay as written: this is
        # shown, and linked, as "https://spam&#46;example/", host "spam&", not spam.example.
        "see https://spam&#46;example/",
        # Decoded, the reference ends the host: the browser visits news.example.
        '<a href="https://news.example&#47;spam.example/">here</a>',
    ],
)
def test_domains_leave_other_hosts_alone(content: str) -> None:
    assert hits_of(DOMAINS, content=content) == []


IPS = "{id: I, type: ip, cidrs: [203.0.113.0/24, '2001:db8::/32', 198.51.100.7], outcome: spam}"


@pytest.mark.parametrize(
    "ip", ["203.0.113.5", "203.0.113.255", "2001:db8::1", "::ffff:203.0.113.9", "198.51.100.7"]
)
def test_ip_rules_hit_addresses_in_the_networks(ip: str) -> None:
    [hit] = hits_of(IPS, ip=ip)
    assert (hit.target, hit.match) == ("ip", ip)


@pytest.mark.parametrize(
    "ip",
    [
        "203.0.114.5",
        "203.0.113.55x",
        "1203.0.113.5",
        "203.0.113",
        "2001:db9::1",
        "198.51.100.8",
        "",
    ],
)
def test_ip_rules_miss_other_and_invalid_addresses(ip: str) -> None:
    assert hits_of(IPS, ip=ip) == []


@pytest.mark.parametrize(
    ("cidr", "ip"),
    [
        ("'::ffff:198.51.100.0/120'", "198.51.100.7"),
        ("'::ffff:198.51.100.0/120'", "::ffff:198.51.100.7"),
        ("'::ffff:0:0/96'", "192.0.2.1"),
        ("198.51.100.0/24", "::ffff:c633:6407"),
    ],
)
def test_ip_rules_take_ipv4_mapped_networks_as_ipv4(cidr: str, ip: str) -> None:
    [hit] = hits_of(f"{{id: I, type: ip, cidrs: [{cidr}], outcome: spam}}", ip=ip)
    assert hit.match == ip


EMAIL = "{id: E, type: email, addresses: [bad@ok.example], domains: [trash.example], score: 2}"


@pytest.mark.parametrize(
    "email", ["bad@ok.example", "BAD+tag@ok.example", "x@trash.example", "x@mx.trash.example"]
)
def test_email_rules_hit_addresses_and_domains(email: str) -> None:
    [hit] = hits_of(EMAIL, author_email=email)
    assert (hit.target, hit.match) == ("author_email", email)


@pytest.mark.parametrize(
    "email", ["good@ok.example", "x@nottrash.example", "x@trash.example.org", "not-an-address"]
)
def test_email_rules_leave_other_addresses_alone(email: str) -> None:
    assert hits_of(EMAIL, author_email=email) == []


@pytest.mark.parametrize(
    "email",
    [
        "x@ｔｒａｓｈ.example",
        "x@TRASH.EXAMPLE",
        "x@trash.example.",
        "x@bücher.example",
        "x@xn--bcher-kva.example",
        "x@mx.bücher.example",
    ],
)
def test_email_domains_are_compared_as_dns_sees_them(email: str) -> None:
    rule = "{id: E, type: email, domains: [trash.example, 'Bücher.example.'], score: 2}"
    [hit] = hits_of(rule, author_email=email)
    assert (hit.target, hit.match) == ("author_email", email)


def test_email_domains_can_come_from_the_disposable_list() -> None:
    rule = "{id: E, type: email, domains: 'list:disposable', score: 1}"
    assert [hit.rule for hit in hits_of(rule, author_email="x@mailinator.com")] == ["E"]
    assert hits_of(rule, author_email="x@gmail.com") == []


@pytest.mark.parametrize(
    ("rule", "fields", "hit"),
    [
        ("{id: X, type: length, min: 5, score: 1}", {"content": " hi  "}, True),
        ("{id: X, type: length, min: 5, score: 1}", {"content": "hello"}, False),
        (
            "{id: X, type: length, max: 5, targets: [author_name], score: 1}",
            {"author_name": "A very long name"},
            True,
        ),
        (
            "{id: X, type: caps, min_share: 0.7, min_letters: 10, score: 1}",
            {"content": "THIS IS ALL SHOUTING!"},
            True,
        ),
        (
            "{id: X, type: caps, min_share: 0.7, min_letters: 10, score: 1}",
            {"content": "This is Normal text, NASA and BBC."},
            False,
        ),
        ("{id: X, type: caps, min_share: 0.7, score: 1}", {"content": "SHORT"}, False),
        # The bounds are "at least": ten letters of ten, half of them capitals.
        ("{id: X, type: caps, min_share: 0.5, min_letters: 10, score: 1}",
         {"content": "ABCDEFGHIJ"}, True),
        ("{id: X, type: caps, min_share: 0.5, min_letters: 10, score: 1}",
         {"content": "ABCDEfghij"}, True),
        ("{id: X, type: repeats, at_least: 5, score: 1}", {"content": "nooooooo"}, True),
        ("{id: X, type: repeats, at_least: 5, score: 1}", {"content": "!!!!!"}, True),
        ("{id: X, type: repeats, at_least: 5, score: 1}", {"content": "noooo     x"}, False),
        ("{id: X, type: empty_user_agent, score: 1}", {"user_agent": "  "}, True),
        ("{id: X, type: empty_user_agent, score: 1}", {"user_agent": "Mozilla/5.0"}, False),
        (
            "{id: X, type: url_in_name, score: 1}",
            {"author_name": "Cheap Loans www.x.example"},
            True,
        ),
        ("{id: X, type: url_in_name, score: 1}", {"author_name": "best-deals.com"}, True),
        ("{id: X, type: url_in_name, score: 1}", {"author_name": "https://x.example"}, True),
        ("{id: X, type: url_in_name, score: 1}", {"author_name": "J. R. Smith"}, False),
        ("{id: X, type: url_in_name, score: 1}", {"author_name": "Ann Lee"}, False),
    ],
)
def test_field_checks(rule: str, fields: dict[str, str], hit: bool) -> None:
    assert [h.rule for h in hits_of(rule, **fields)] == (["X"] if hit else [])


CLASSIFIER = "{id: C, type: classifier, weight: 4, spam_above: 0.9, ham_below: 0.1}"


def fake_classifier(probability: float, ready: bool = True) -> tuple[Context, list[str]]:
    """A context whose classifier always answers ``probability``, and the texts it saw."""
    seen: list[str] = []

    def classify(text: str) -> ClassifierScore:
        seen.append(text)
        return ClassifierScore(probability, ready, ("free", "money", "click"))

    return Context(classify=classify), seen


@pytest.mark.parametrize(
    ("probability", "ready", "score"),
    [
        (0.99, True, 3.92),
        (1.0, True, 4.0),
        (0.02, True, -3.84),
        (0.5, True, None),
        (0.89, True, None),
        (0.99, False, None),
    ],
)
def test_classifier_turns_probability_into_a_score(
    probability: float, ready: bool, score: float | None
) -> None:
    context, seen = fake_classifier(probability, ready)
    hits = hits_of(CLASSIFIER, context, content="the comment text")
    assert seen == ["the comment text"]
    assert [hit.score for hit in hits] == ([score] if score is not None else [])
    if hits:
        assert "free, money, click" in hits[0].explanation


def test_the_classifier_reads_every_target_it_names() -> None:
    context, seen = fake_classifier(0.99)
    rule = CLASSIFIER.replace("}", ", targets: [content, author_name]}")
    hits_of(rule, context, content="hello", author_name="Cheap Pills")
    assert seen == ["hello\nCheap Pills"]


def test_classifier_is_not_asked_without_a_hook_or_when_disabled() -> None:
    assert hits_of(CLASSIFIER, Context(), content="text") == []
    context, seen = fake_classifier(0.99)
    disabled = "{id: C, type: classifier, weight: 4, enabled: false}"
    assert hits_of(disabled, context, content="text") == []
    assert seen == []


@pytest.mark.parametrize("dot", [".", "\u3002", "\uff0e", "\uff61"])
def test_a_bare_host_never_starts_inside_another_after_any_dot(dot):
    """After an ideographic or full-width dot the host search started again: "a。"
    repeated 5,000 times was scanned to its end from each of its letters (1.5 s of CPU
    for one comment). It starts after none of the dots IDNA reads as dots."""
    from moderation.rules.hosts import _BARE_HOST_RE

    text = f"x{dot}ab.example"
    assert _BARE_HOST_RE.search(text, 2) is None
    assert _BARE_HOST_RE.search(text).group(1) == text
    if dot != ".":  # after punctuation such a dot ends a sentence: a host may follow it
        assert _BARE_HOST_RE.search(f"「ここ」{dot}ab.example").group(1) == "ab.example"


def test_an_idn_host_is_the_one_a_browser_visits() -> None:
    """IDNA 2003 read faß.example as fass.example; browsers (UTS #46, nontransitional) go
    to xn--fa-hia.example, so a list naming that domain missed the link."""
    from moderation.rules.hosts import normalise_host

    assert normalise_host("faß.example") == "xn--fa-hia.example"
    assert normalise_host("ςa.example") == "xn--a-xmb.example"
    assert normalise_host("bücher.example") == "xn--bcher-kva.example"
    assert normalise_host("emoji😀.example") == "xn--emoji-3224d.example"  # 2008 refuses it
    listed = "{id: IDN, type: domains, domains: [xn--fa-hia.example], outcome: spam}"
    assert [hit.match for hit in hits_of(listed, content="see https://faß.example/x")] == [
        "https://faß.example/x"]
    assert hits_of(listed, content="see https://fass.example/x") == []


@pytest.mark.parametrize("dot", ["\u3002", "\uff61", "\uff0e", "."])
def test_a_host_ending_in_a_wide_dot_is_the_host_a_browser_visits(dot) -> None:
    """"https://grabify.link。/" is linked on the page and goes to grabify.link; its trailing
    dot was stripped before the wide dots were read as dots, so no list named it (audit)."""
    from moderation.rules.hosts import normalise_host

    assert normalise_host(f"grabify.link{dot}") == "grabify.link"
    listed = "{id: LOGGER, type: domains, domains: [grabify.link], outcome: spam}"
    assert [hit.match for hit in hits_of(listed, content=f"Great post https://grabify.link{dot}/")]


@pytest.mark.parametrize(("content", "match"), [
    ("you are a fucking$ bitch$", "fucking"),  # read as leetspeak: "fuckings"
    ("cheap viagra$ and more", "viagra"),
    ("go kill yourself$", "yourself"),
    ("$viagra here", "viagra"),
    ("2viagra here", "viagra"),
    ("viagra3 here", "viagra"),
    ("viagra@home", "viagra"),
])
def test_a_symbol_glued_to_a_word_does_not_hide_it(content: str, match: str) -> None:
    """Normalising reads $, @ and digits beside letters as leetspeak, so one glued to a
    word made it another word, and every whole-word rule missed it, hard outcomes
    included (found by an audit)."""
    rule = ("{id: T, type: terms, terms: [fucking, viagra, yourself], outcome: rejected}")
    assert match in [hit.match for hit in hits_of(rule, content=content)]


def test_a_term_in_an_address_is_found_beside_its_at_sign() -> None:
    rule = "{id: T, type: terms, targets: [author_email], terms: [viagra], score: 1}"
    for email in ("x@viagra.example", "viagra@x.example"):
        assert [hit.match for hit in hits_of(rule, author_email=email)] == ["viagra"]


@pytest.mark.parametrize("content", ["a cla$$ act", "in 2026we met", "mail me@home",
                                     "it costs 5$ or 5 $", "a55ert it", "top c1ass"])
def test_symbols_read_as_spaces_make_no_word_of_their_own(content: str) -> None:
    """`cla$$` still does not hit `ass`, nor `s` standing alone where `$` was."""
    rule = "{id: T, type: terms, terms: [ass, s, me, we], score: 1}"
    assert [hit.match for hit in hits_of(rule, content=content)] == (
        ["me"] if "me@" in content else ["we"] if "we " in content else [])


PLURALS = "{id: P, type: terms, terms: [casino, bitch, payday loan, ass], plurals: true, score: 1}"


@pytest.mark.parametrize(("content", "match"), [
    ("Best online casinos here", "casinos"),
    ("you bitches", "bitches"),  # -es after ch, sh, s, x, z
    ("Payday loans, fast!", "Payday loans"),  # a phrase's last word
    ("kiss my asses", "asses"),
    ("Casino.", "Casino"),  # the word itself, as without plurals
])
def test_plurals_true_hits_a_listed_words_english_plural(content, match) -> None:
    """"payday loans", "online casinos", "assholes" passed every shipped list, written as
    the singular only (an evasion audit)."""
    assert [hit.match for hit in hits_of(PLURALS, content=content)] == [match]


@pytest.mark.parametrize("content", ["class", "casinoss", "casinoes", "bitchs", "assess",
                                     "the pcasinos here"])
def test_plurals_stay_whole_words(content) -> None:
    assert hits_of(PLURALS, content=content) == []


def test_without_plurals_a_listed_word_hits_only_as_written() -> None:
    assert hits_of(PLURALS.replace("plurals: true", "plurals: false"), content="casinos") == []


@pytest.mark.parametrize(("content", "match"), [
    ("Buy viaaagra now", "viaaagra"),  # read once
    ("VIAAAAAGRA", "VIAAAAAGRA"),
    ("fresh frenchhh friesss", "frenchhh fries"),  # the letters dropped at its end are not shown
])
def test_a_letter_stretched_below_the_repeat_rule_is_read_once_or_twice(content, match):
    """"fuuuuck", "viaaagra", "bitchhhh": every listed word missed them, below the ten
    repeats REPEATED_CHARACTERS scores (an evasion audit)."""
    assert [hit.match for hit in hits_of(TERMS, content=content)] == [match]


def test_a_stretched_letter_kept_twice_where_the_word_has_two() -> None:
    rule = "{id: T, type: terms, terms: [asshole], score: 1}"
    assert [hit.match for hit in hits_of(rule, content="you asssshole")] == ["asssshole"]


@pytest.mark.parametrize("content", ["classsss", "Hellllo there", "www.example.org"])
def test_squeezing_makes_no_word_of_others(content) -> None:
    assert hits_of(TERMS, content=content) == []


LOGGERS = "{id: LOGGER, type: domains, domains: [grabify.link], outcome: spam}"


@pytest.mark.parametrize("content", [
    "see grabify[.]link/abc", "grabify(dot)link", "grabify [.] link", "grabify[Dot]link",
    "grabify{DoT}link/x",
    "hxxps://grabify.link/abc", "HXXP://grabify.link", "h**ps://grabify.link/x",
])
def test_a_defanged_host_is_the_host_it_names(content) -> None:
    """Written "defanged", as security write-ups do so that nothing is clickable, each
    passed the lists that caught the plain host (an evasion audit)."""
    assert [hit.match for hit in hits_of(LOGGERS, content=content)]


@pytest.mark.parametrize("content", [
    "nice (.) point", "Array[.]length", "the dot com bubble", "grabify dot link",
])
def test_only_bracketed_dots_are_read_as_dots(content) -> None:
    assert hits_of(LOGGERS, content=content) == []


@pytest.mark.parametrize("content", [
    "Buy \u202eargaiv\u202c now",  # shows "Buy viagra now"
    "Buy \u202eargaiv",  # to the end of the line
    "\u202ewon argaiv yuB",
])
def test_a_right_to_left_override_is_read_as_it_shows(content) -> None:
    """Normalising drops the override as invisible and read the letters backwards, while
    every browser shows them the right way round (an evasion audit)."""
    [hit] = hits_of(TERMS, content=content)
    assert "the listed term 'viagra'" in hit.explanation
    assert hit.match == "argaiv"  # what was sent, where it was sent


@pytest.mark.parametrize(("content", "match"), [
    ("Cheap \u202eargaiv yub\u202c here", "argaiv"),  # not in the middle of its run
    ("\u202eenilno argaiv yuB\u202c", "argaiv"),
    ("\u202eargaiv \ufb01", "argaiv"),  # a ligature that folding widens, after it
    ("\u202e seirf hcnerf yub", "seirf hcnerf"),  # a phrase
    # A PDF closes the innermost opener first (a review): the override runs on.
    ("Buy \u202e\u202e\u202cargaiv", "argaiv"),
    ("Buy \u202e\u202a\u202cargaiv now", "argaiv"),
])
def test_a_hit_in_an_overridden_run_shows_the_characters_sent(content, match) -> None:
    """A position inside a reversed run is its mirror in the text: the hit showed 'iv yub'
    for "argaiv yub", unless the term sat in the middle of its run (a review)."""
    assert [hit.match for hit in hits_of(TERMS, content=content)] == [match]


@pytest.mark.parametrize("content", ["\u202eolleh\u202c argaiv", "\u202eolleh\x85argaiv",
                                     "\u202eolleh\u2029argaiv"])
def test_letters_after_an_override_ended_are_read_as_written(content) -> None:
    assert hits_of(TERMS, content=content) == []


@pytest.mark.parametrize(("content", "term"), [
    ("Buy viagra4u today", "viagra"), ("cialis2go", "cialis"), ("kill4yourself", "kill yourself"),
])
def test_digits_between_letters_split_a_long_listed_word_from_the_next(content, term) -> None:
    """Read as leetspeak, "viagra4u" was "viagraau", and no list caught it (an audit)."""
    rule = "{id: T, type: terms, terms: [viagra, cialis, kill yourself, ass], score: 1}"
    [hit] = hits_of(rule, content=content)
    assert f"the listed term '{term}'" in hit.explanation


@pytest.mark.parametrize("content", ["a c1ass act", "b1ass", "gl4ss", "top c1ass hat"])
def test_digits_split_no_short_listed_word_out_of_a_leetspeak_one(content) -> None:
    """Nor a phrase that starts or ends with one: "c1ass hat" read "c ass hat" (a review)."""
    rule = "{id: T, type: terms, terms: [ass, ass hat], score: 1}"
    assert hits_of(rule, content=content) == []


@pytest.mark.parametrize("name", ["Dorothy (Dot) Jones", "Dorothy (dot) Jones"])
def test_a_name_with_a_bracketed_dot_is_no_url_in_the_name(name) -> None:
    """Read defanged, "Dorothy (Dot) Jones" was the host dorothy.jones (a review)."""
    assert hits_of("{id: U, type: url_in_name, score: 2.5}", author_name=name) == []


def test_a_word_of_devanagari_is_whole_with_its_vowel_signs() -> None:
    """A vowel sign (a combining mark) continues the word: "कम" is not inside "कमा"."""
    rule = "{id: X, type: terms, terms: ['कम'], score: 1}"
    assert hits_of(rule, content="कमा है") == []
    assert [hit.match for hit in hits_of(rule, content="कम है")] == ["कम"]


def test_a_one_letter_word_is_not_joined_to_the_next() -> None:
    """"a" and "I" are words: "a broad church" does not read "abroad"."""
    rule = "{id: X, type: terms, terms: [abroad], score: 1}"
    assert hits_of(rule, content="It is a broad church") == []
    assert [hit.rule for hit in hits_of(rule, content="Sent ab road")] == ["X"]


SPAM_HOSTS = "{id: D, type: domains, domains: [spam.example, bit.ly], outcome: spam}"


def test_the_host_after_the_last_at_sign_is_the_one_visited():
    assert [h.rule for h in hits_of(SPAM_HOSTS, content="https://a@b@spam%2Eexample/")] == ["D"]


def test_a_listed_host_in_the_path_of_a_bare_link_is_not_a_host():
    assert hits_of(SPAM_HOSTS, content="see en.wikipedia.org/wiki/Bit.ly") == []


def test_version_numbers_in_a_name_are_no_web_address():
    for name in ("Version 1.2.10", "Agent 0.07"):
        assert hits_of("{id: X, type: url_in_name, score: 1}", author_name=name) == []


def test_a_link_no_browser_follows_names_no_listed_host():
    assert hits_of("{id: D, type: domains, domains: [news.example], outcome: spam}",
                   content="see https://evil.example%2F.news.example/") == []


def test_a_links_rule_on_content_only_ignores_the_author_url():
    assert hits_of("{id: L, type: links, at_least: 2, targets: [content], score: 1}",
                   content="see https://a.example/", author_url="https://me.example/") == []


def test_a_link_only_in_the_author_url_is_reported_there():
    [hit] = hits_of("{id: L, type: links, at_least: 1, score: 1}", content="hi",
                    author_url="https://me.example/")
    assert (hit.target, hit.match) == ("author_url", "https://me.example/")


def test_the_author_url_counts_towards_at_least():
    [hit] = hits_of("{id: L, type: links, at_least: 2, score: 1}",
                    content="see https://a.example/", author_url="https://me.example/")
    assert (hit.rule, hit.target) == ("L", "content")


def test_length_max_is_inclusive():
    assert hits_of("{id: X, type: length, max: 5, score: 1}", content="12345") == []
    assert [h.rule for h in hits_of("{id: X, type: length, max: 5, score: 1}",
                                    content="123456")] == ["X"]


def test_an_unknown_named_list_is_refused_for_domains():
    with pytest.raises(RulesError, match="unknown list 'list:disposible'"):
        parse_rules("version: 1\nrules:\n  - {id: E, type: email, domains: 'list:disposible', "
                    "score: 1}\n")


def test_a_network_written_with_host_bits_is_taken_as_its_network():
    assert [h.rule for h in hits_of("{id: I, type: ip, cidrs: [203.0.113.7/24], score: 1}",
                                    ip="203.0.113.200")] == ["I"]


def test_a_link_attribute_in_capitals_is_not_read_as_words():
    assert hits_of("{id: T, type: terms, terms: [viagra], score: 1}",
                   content='read <a HREF="https://news.example/viagra-recall">the story</a>') == []


@pytest.mark.parametrize(("content", "match"), [("you b!tch", "b!tch"),
                                               ("buy v!agra", "v!agra")])
def test_a_bang_inside_a_word_is_leetspeak(content: str, match: str) -> None:
    rule = "{id: T, type: terms, terms: [bitch, viagra], score: 1}"
    assert [hit.match for hit in hits_of(rule, content=content)] == [match]


@pytest.mark.parametrize(("content", "match"), [("buy 1ip1tor", "1ip1tor"),
                                               ("over the 1im1t", "1im1t")])
def test_a_1_may_be_read_l_then_i_in_one_word(content: str, match: str) -> None:
    rule = "{id: T, type: terms, terms: [lipitor, limit], score: 1}"
    assert [hit.match for hit in hits_of(rule, content=content)] == [match]
