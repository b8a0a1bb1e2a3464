"""Turn a plain-text comment into safe HTML for readers."""

from __future__ import annotations

import html
import re

# http(s) URLs up to white space or a closing bracket/quote; trailing punctuation is left out.
URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


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
        # A closing parenthesis is trailing punctuation unless it closes one the URL opened
        # (https://en.wikipedia.org/wiki/Mercury_(planet)), as other autolinkers read it.
        while paragraph[end:end + 1] == ")" and url.count("(") > url.count(")"):
            url, end = url + ")", end + 1
        pieces.append(html.escape(paragraph[position:match.start()], quote=True))
        href = html.escape(url, quote=True)
        pieces.append(f'<a href="{href}" rel="nofollow ugc noopener">{href}</a>')
        position = end
    pieces.append(html.escape(paragraph[position:], quote=True))
    return "".join(pieces)


def content_html(text: str) -> str:
    """Escape everything, link bare http(s) URLs with rel="nofollow ugc noopener", keep breaks."""
    paragraphs = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip())
    return "".join(
        "<p>" + _linked(paragraph).replace("\n", "<br>") + "</p>" for paragraph in paragraphs
    )
