"""Finding links and host names in text, and comparing hosts the way a browser would."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import idna

__all__ = ["HOST_LABEL", "Link", "find_links", "find_hosts", "normalise_host", "host_in"]

# An <a> start tag and its attributes read as the HTML tokenizer reads them, one at a time
# from where the last ended: a quoted value runs to its closing quote, spaces and ">"
# included, an unquoted one to white space or ">"; the tag ends at a ">" outside a value.
# Read so, every character is looked at once; a pattern spanning the whole tag took
# seconds on a 10,000-character comment of unclosed "<a href=".
_ANCHOR_OPEN_RE = re.compile(r"<a(?=[\t\n\f\r />])", re.I)
_ATTRIBUTE_RE = re.compile(
    r"""[\t\n\f\r /]*(?P<name>[^\t\n\f\r />][^\t\n\f\r />=]*)"""
    r"""(?:[\t\n\f\r ]*=[\t\n\f\r ]*(?P<value>"[^"]*"?|'[^']*'?|[^\t\n\f\r >]*))?"""
)
_TAG_END_RE = re.compile(r"[\t\n\f\r /]*>")
# What the URL parser drops before it reads a URL: C0 controls and spaces at either end,
# tabs and newlines anywhere (https://2no\n.co/ goes to 2no.co).
_URL_ENDS = "".join(map(chr, range(0x21)))
_URL_TAB_OR_NEWLINE_RE = re.compile("[\t\n\r]")
_ANCHOR_END_RE = re.compile(r"</a\s*>", re.I)
# No word boundary before the scheme: the public page links "xhttp://spam.example" from
# its "http", so the rules must count it (and see its host) just the same.
_URL_RE = re.compile(r"""(?:https?://|\bwww\.)[^\s<>"'`]+""", re.I)
# A bare host such as spam.example/path: labels of letters, digits and hyphens (any
# script, so a look-alike host is found and then compared as the different host it is),
# dots including the ideographic and full-width ones that IDNA treats as dots.
# A host starts nowhere inside another: not after a word character, a hyphen, a slash, a
# dot, or one of the wider dots that follows a word character ("a。b" is one name; after
# "」。" a new one starts, as in Japanese text). Without the second look-behind, "a。"
# repeated 5,000 times was scanned to its end from each of its letters: 1.5 s of CPU.
_DOT = "[.\u3002\uff0e\uff61]"
_BARE_HOST_RE = re.compile(
    rf"(?<![\w.\-/])(?<!\w[\u3002\uff0e\uff61])"
    rf"((?:[^\W_](?:[\w\-]{{0,61}}[^\W_])?{_DOT})+[^\W\d_]{{2,63}})(?![\w\-])"
)
_TRAILING_PUNCT = ".,;:!?)]}'\""
# One label of an ASCII host name (RFC 1123): letters, digits and inner hyphens, 1 to 63.
HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# How a browser reads an http(s) URL's authority (the WHATWG URL standard): any run of
# slashes and backslashes after the scheme, then all up to a slash, backslash, "?" or "#".
# The run may be empty: on a page of the other scheme https:2no.co/x and https:/2no.co/x
# go to 2no.co (on one of the same, to a path of the page's own site); which scheme the
# page has the rules cannot know, so they read the host.
# An href of two slashes or more and no scheme takes the page's, http(s).
_BROWSER_AUTHORITY_RE = re.compile(r"(?:https?:[/\\]*|[/\\]{2,})([^/\\?#]*)", re.I)
# Characters no host holds once percent-decoded; a browser refuses such a URL outright.
_FORBIDDEN_IN_HOST = frozenset("\x00\t\n\r #%/:<>?@[\\]^|\x7f")


class Link:
    """A link found in text: where it is and the host it points at."""

    __slots__ = ("start", "end", "text", "host")

    def __init__(self, start: int, end: int, text: str, host: str) -> None:
        self.start, self.end, self.text, self.host = start, end, text, host


def normalise_host(host: str) -> str:
    """The host as DNS sees it: IDNA-encoded, lower case, no trailing dot; '' if invalid.

    Deliberately no look-alike folding: ``spаm.example`` with a Cyrillic ``а`` is a
    different registrable domain, so it must not match ``spam.example``.
    """
    # The wide dots become dots before the trailing one goes: "grabify.link。/" is a link
    # to grabify.link (browsers read it so), and kept as "grabify.link." no list named it.
    host = re.sub(_DOT, ".", unicodedata.normalize("NFKC", host)).strip().rstrip(".").lower()
    if not host or ".." in host:
        return ""
    if host.isascii():
        return host
    try:
        # As browsers map a host (the URL standard: UTS #46, nontransitional), so that
        # faß.example is xn--fa-hia.example, where they go, and not fass.example, as
        # IDNA 2003 (Python's "idna" codec) has it.
        return idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        pass
    try:
        # What IDNA 2008 refuses but browsers still visit (emoji hosts, underscores).
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return ""


def host_in(host: str, domains: frozenset[str]) -> str | None:
    """The listed domain that ``host`` is, or is a subdomain of; None if there is none."""
    labels = host.split(".")
    for index in range(len(labels) - 1):
        candidate = ".".join(labels[index:])
        if candidate in domains:
            return candidate
    return None


def _url_host(url: str) -> str:
    if url.lower().startswith("www."):
        url = "http://" + url
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        host = ""
    if not host or "%" in host or "\\" in url:
        # urlsplit reads https://%32no.co/ as "%32no.co", https://2no.co\@x.example/ as
        # x.example and https:///2no.co/ as no host; a browser visits 2no.co each time.
        return _visited_host(url)
    return normalise_host(host)


def _visited_host(url: str) -> str:
    """The host a browser visits for an http(s) link, normalised; '' if it visits none."""
    authority = _BROWSER_AUTHORITY_RE.match(url)
    if authority is None:
        return ""  # a path, or another scheme (mailto:, javascript:): no host to visit
    host = authority.group(1).rpartition("@")[2]
    if host.startswith("["):
        return ""  # an IPv6 address: no domain rule can name it
    host = unquote(host.partition(":")[0], errors="replace")
    if any(char in _FORBIDDEN_IN_HOST for char in host):
        return ""
    return normalise_host(host)


def _trim(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1] in _TRAILING_PUNCT:
        end -= 1
    return end


def _anchor_tags(text: str) -> Iterator[tuple[int, int, str]]:
    """Each <a> start tag with an href: where the tag starts and ends, and its first href."""
    position = 0
    while opening := _ANCHOR_OPEN_RE.search(text, position):
        position = opening.end()
        href = None
        while (tag_end := _TAG_END_RE.match(text, position)) is None:
            attribute = _ATTRIBUTE_RE.match(text, position)
            if attribute is None:
                return  # the tag, perhaps a quoted value, runs to the end: a browser drops it
            position = attribute.end()
            if href is None and attribute["name"].lower() == "href":
                value = attribute["value"] or ""
                # A quoted value got here closed: one left open would have run to the end.
                href = value[1:-1] if value[:1] in ("'", '"') else value
        position = tag_end.end()
        if href is not None:
            yield opening.start(), position, href


def _href_url(href: str) -> str:
    """The URL a browser follows for an href attribute's value as written."""
    # The tokenizer decodes character references in an attribute value before the URL
    # parser reads it: href="https://2no&#46;co/" (or &period; or &#x2e;) leads to 2no.co.
    # html.unescape is HTML5's decoding as in text. In an attribute a browser leaves one
    # more kind as written, an old named reference with no ";" before a letter, digit or
    # "=" (&copy=); those decode to "&", "<", ">", '"' or Latin-1 letters and signs, never
    # to a dot, slash, "@" or ":", so decoding them anyway moves no host's bounds.
    # Only hrefs: a bare URL is text, which content_html (render.py) shows escaped, so
    # "https://2no&#46;co/" there is shown and linked as written, to the host "2no&".
    url = html.unescape(href).strip(_URL_ENDS)
    return _URL_TAB_OR_NEWLINE_RE.sub("", url)


def find_links(text: str) -> list[Link]:
    """Anchors and bare URLs in ``text``, each link once.

    An anchor whose text repeats its own href (``<a href="http://x">http://x</a>``)
    counts as one link, not two.
    """
    links: list[Link] = []
    anchors: list[tuple[int, int, int, str]] = []
    for tag_start, tag_end, href in _anchor_tags(text):
        closing = _ANCHOR_END_RE.search(text, tag_end)
        element_end = closing.end() if closing else tag_end
        url = _href_url(href)
        anchors.append((tag_start, tag_end, element_end, url.rstrip("/").lower()))
        links.append(Link(tag_start, tag_end, href, _url_host(url)))
    for match in _URL_RE.finditer(text):
        start = match.start()
        end = _trim(text, start, match.end())
        url = text[start:end]
        inside_anchor = any(
            tag_start <= start < tag_end
            or (tag_end <= start < element_end and html.unescape(url).rstrip("/").lower() == href)
            for tag_start, tag_end, element_end, href in anchors
        )
        if inside_anchor:
            continue
        links.append(Link(start, end, url, _url_host(url)))
    links.sort(key=lambda link: link.start)
    return links


# "Defanged" links, as security write-ups write them so that nothing is clickable, and as
# spam writes them to pass link checks: grabify[.]link, bit(dot)ly/x, hxxps://x.example.
# Only the bracketed forms: a bare "dot" is a word ("the dot com bubble"), and in round
# brackets a capitalised one is a nickname ("Dorothy (Dot) Jones"); in square or curly
# ones it is the host's dot in any case (bit[Dot]ly).
_DEFANGED_RE = re.compile(
    r"\s?(?:\[\s?(?:\.|(?i:dot))\s?\]|\{\s?(?:\.|(?i:dot))\s?\}|\(\s?(?:\.|dot|DOT)\s?\))\s?"
    r"|(?<![A-Za-z])[hH](?:xx|XX|\*\*)[pP](?=[sS]?:)"
)


def _refanged(match: re.Match[str]) -> str:
    return "http" if match.group()[:1] in "hH" else "."


def find_hosts(text: str, *, defanged: bool = False) -> Iterator[Link]:
    """Every host named in ``text``: in links, and bare (``spam.example/path``); with
    ``defanged``, also those written defanged (``grabify[.]link``, ``hxxps://``), read as
    the host they name.

    A defanged one is found in the text read with its dots and schemes restored; its span
    and text are of that reading (found by an audit: each such spelling passed the domain
    lists that caught the plain one). Only the domain lists read them: a name such as
    "Dorothy (dot) Jones" is no URL in a name, and the classifier's tokens stay as sent.
    """
    seen: set[str] = set()
    for link in _hosts_as_written(text):
        seen.add(link.host)
        yield link
    if defanged and _DEFANGED_RE.search(text) is not None:
        for link in _hosts_as_written(_DEFANGED_RE.sub(_refanged, text)):
            if link.host not in seen:
                seen.add(link.host)
                yield link


def _hosts_as_written(text: str) -> Iterator[Link]:
    seen_spans: list[tuple[int, int]] = []
    for link in find_links(text):
        seen_spans.append((link.start, link.end))
        if link.host:
            yield link
    for match in _BARE_HOST_RE.finditer(text):
        start, end = match.span(1)
        if any(low <= start < high for low, high in seen_spans):
            continue
        host = normalise_host(match.group(1))
        if host:
            yield Link(start, end, match.group(1), host)
