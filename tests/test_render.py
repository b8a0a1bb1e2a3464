"""A comment's text as safe HTML: which addresses become links, and how they are shown."""

from __future__ import annotations

from moderation.render import content_html


def test_a_port_past_65535_is_not_linked():
    assert content_html("see https://example.org:65536/x") == "<p>see https://example.org:65536/x</p>"


def test_a_host_with_capitals_and_accents_is_linked_as_browsers_map_it():
    assert content_html("see https://Bücher.example/x") == (
        '<p>see <a href="https://xn--bcher-kva.example/x" rel="nofollow ugc noopener">'
        "https://bücher.example/x</a></p>")


def test_a_closing_square_bracket_ends_the_link():
    assert content_html("[see https://example.org/page]") == (
        '<p>[see <a href="https://example.org/page" rel="nofollow ugc noopener">'
        "https://example.org/page</a>]</p>")


def test_brackets_round_no_ipv6_address_are_not_linked():
    assert "<a" not in content_html("see http://[not-an-ip]/x")


def test_a_host_of_254_characters_is_not_linked():
    host = ".".join(["a" * 63] * 3 + ["a" * 62])
    assert "<a" not in content_html(f"see https://{host}/")
    assert "<a" in content_html(f"see https://{host[1:]}/")  # 253: still a host name


def test_a_korean_and_latin_label_is_shown_in_unicode():
    assert ">https://한국abc.example/</a>" in content_html("see https://한국abc.example/")
