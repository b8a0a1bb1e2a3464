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
    for match in URL.finditer(paragraph):
        url = html.escape(match.group(0), quote=True)
        pieces.append(html.escape(paragraph[position:match.start()], quote=True))
        pieces.append(f'<a href="{url}" rel="nofollow ugc noopener">{url}</a>')
        position = match.end()
    pieces.append(html.escape(paragraph[position:], quote=True))
    return "".join(pieces)


def content_html(text: str) -> str:
    """Escape everything, link bare http(s) URLs with rel="nofollow ugc noopener", keep breaks."""
    paragraphs = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip())
    return "".join(
        "<p>" + _linked(paragraph).replace("\n", "<br>") + "</p>" for paragraph in paragraphs
    )
