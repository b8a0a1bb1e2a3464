"""Turn a plain-text comment into safe HTML for readers."""

from __future__ import annotations

import html
import ipaddress
import re
from functools import lru_cache
from urllib.parse import unquote

import idna
from confusable_homoglyphs import categories

from moderation.rules.fold import ASCII_LOOKALIKES
from moderation.rules.hosts import HOST_LABEL

# http(s) URLs up to white space or a closing bracket/quote; trailing punctuation is left out.
# The scheme in any case: phones capitalise a comment's first word, and "Https://..." was
# left unlinked (found by an audit); WordPress links it, and browsers visit it.
URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)
# Scheme and user information, the host (an IPv6 address in brackets), then the port and
# the rest as written. A browser ends the host at a backslash as at a slash in an http(s) URL.
URL_PARTS = re.compile(r"(https?://(?:[^/?#\\]*@)?)(\[[^\]/?#\\]*\]|[^/?#\\:]*)(.*)", re.S)
# A host name as DNS takes it (RFC 1123): at most 253 characters, the root's dot aside, in
# labels of letters, digits and inner hyphens, 1 to 63 characters each. An underscore,
# an empty label or a "%" a browser left undecoded is no host it can reach.
HOST_NAME = re.compile(rf"(?=.{{1,253}}\.?$){HOST_LABEL}(?:\.{HOST_LABEL})*\.?")
# The port a browser takes: digits up to the path, 1 to 65535 here (0 reaches nothing).
PORT = re.compile(r":([0-9]*)(?=[/?#\\]|$)")
# ICU's "highly restrictive" level, where Chromium's IDN display policy starts: a label in
# one script, or in the scripts Japanese, Chinese or Korean are written in together.
WRITING_SYSTEMS = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


def _shown_label(label: str) -> str:
    """A label of an IDNA-encoded host as an address bar shows it: Unicode only if safe."""
    if not label.startswith("xn--"):
        return label
    # Plain punycode: idna.encode has checked the label, and idna.ulabel would check it
    # again at five times the cost of decoding it.
    unicode_label = label[4:].encode("ascii").decode("punycode")
    scripts = {categories.alias(char) for char in unicode_label} - {"COMMON", "INHERITED"}
    one_writing_system = len(scripts) <= 1 or any(scripts <= known for known in WRITING_SYSTEMS)
    # Every letter resembling an ASCII one (Cyrillic "аррӏе") reads as an ASCII name.
    looks_ascii = all(char.isascii() or char in ASCII_LOOKALIKES for char in unicode_label)
    return unicode_label if one_writing_system and not looks_ascii else label


# Every view of a thread renders its comments again, so their hosts come back often.
@lru_cache(maxsize=4096)
def _browser_host(host: str) -> tuple[str, str] | None:
    """The host as a browser visits it (IDNA) and as its address bar shows it; None if invalid."""
    try:
        visited = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        return None
    return visited, ".".join(_shown_label(label) for label in visited.split("."))


def _valid_port(rest: str) -> bool:
    """Whether what follows the host starts with no port, or with one a browser can reach."""
    if not rest.startswith(":"):
        return True
    port = PORT.match(rest)
    return port is not None and 1 <= int(port.group(1) or "1") <= 65535


# As for _browser_host: the same hosts come back with every view of a thread.
@lru_cache(maxsize=4096)
def _valid_ascii_host(host: str) -> bool:
    """Whether an ASCII host is an IPv6 address in brackets or a host name DNS takes."""
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    return HOST_NAME.fullmatch(host) is not None


def _link(url: str) -> str:
    """The anchor for a URL: the host in punycode in href, in the text as a browser shows it.

    A host no browser would reach (not a host name, not valid IDNA, a port outside
    1..65535) is no link, only escaped text; nor is a URL with a user name or password.
    A percent-escaped host is linked decoded, as the browser visits it.
    """
    visited = _visited(url)
    if visited is None:
        return html.escape(url, quote=True)
    href, shown = html.escape(visited[0], quote=True), html.escape(visited[1], quote=True)
    return f'<a href="{href}" rel="nofollow ugc noopener">{shown}</a>'


def reachable(url: str) -> bool:
    """Whether an http(s) URL names a host and port a browser can reach, and no user: what
    a comment's text must hold to be linked, and a commenter's website to be taken."""
    scheme, separator, rest = url.partition("://")
    return bool(separator) and _visited(scheme.lower() + separator + rest) is not None


def _visited(url: str) -> tuple[str, str] | None:
    """The URL as a browser visits it (its host in punycode) and as its address bar shows
    it; None when it names a user, or a host or port no browser reaches."""
    prefix, host, rest = URL_PARTS.match(url).groups()
    if "@" in prefix or "@" in rest.partition("/")[0].partition("?")[0].partition("#")[0]:
        # A user name before the host (https://paypal.com@evil.example/) reads as one site
        # and leads to another; author_url refuses it, and a link would vouch for it. So
        # does https://evil.example\@paypal.com/, where the browser ends the host at the
        # backslash and the reader at the "@" (found by an audit).
        return None
    if not _valid_port(rest):
        return None
    href = shown = url
    if "%" in host:
        # A browser decodes the host before it looks it up: https://%32no.co/ goes to 2no.co.
        host = unquote(host, errors="replace")
        href = shown = prefix + host + rest
    # A DNS name has at most 253 characters, and perhaps the root's dot. A longer host
    # could only fit by IDNA dropping invisible characters from it; not linking it keeps
    # the caches' keys small.
    if len(host) > 254:
        return None
    if host.isascii() and "xn--" not in host.lower():
        if not _valid_ascii_host(host):
            return None
    else:
        hosts = _browser_host(host)
        if hosts is None:
            return None
        href, shown = prefix + hosts[0] + rest, prefix + hosts[1] + rest
    return href, shown


def _linked(paragraph: str) -> str:
    """Escape a paragraph and link its bare http(s) URLs.

    URLs are found in the text as written, then each piece is escaped: found in the
    escaped text, a quote or bracket next to a URL (`"see https://x.example"`) had become
    `&quot;` and joined the link as `https://x.example&quot`.
    """
    pieces = []
    position = 0
    while match := URL.search(paragraph, position):
        url, end = match.group(0), match.end()
        scheme, separator, rest = url.partition("://")
        url = scheme.lower() + separator + rest
        # A closing parenthesis is trailing punctuation unless it closes one the URL opened
        # (https://en.wikipedia.org/wiki/Mercury_(planet)), as other autolinkers read it.
        # Counted once: counted again for each, 5,000 of them took 33 ms a comment, on
        # every read of its thread (found by an audit).
        unclosed = url.count("(") - url.count(")")
        closing = 0
        while closing < unclosed and paragraph[end + closing:end + closing + 1] == ")":
            closing += 1
        url, end = url + ")" * closing, end + closing
        pieces.append(html.escape(paragraph[position:match.start()], quote=True))
        pieces.append(_link(url))
        position = end
    pieces.append(html.escape(paragraph[position:], quote=True))
    return "".join(pieces)


def content_html(text: str) -> str:
    """Escape everything, link bare http(s) URLs with rel="nofollow ugc noopener", keep breaks.

    A link's host is in punycode in its href (what the browser visits) and in its text
    unless the host reads safely in Unicode (one writing system, no look-alike of ASCII).
    """
    paragraphs = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip())
    return "".join(
        "<p>" + _linked(paragraph).replace("\n", "<br>") + "</p>" for paragraph in paragraphs
    )
