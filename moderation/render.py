"""Turn a plain-text comment into safe HTML for readers."""

from __future__ import annotations

import html
import re

# http(s) URLs up to white space or a closing bracket/quote; trailing punctuation is left out.
URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


def _link(match: re.Match[str]) -> str:
    url = match.group(0)
    return f'<a href="{url}" rel="nofollow ugc noopener">{url}</a>'


def content_html(text: str) -> str:
    """Escape everything, link bare http(s) URLs with rel="nofollow ugc noopener", keep breaks."""
    paragraphs = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip())
    rendered = []
    for paragraph in paragraphs:
        escaped = html.escape(paragraph, quote=True)
        linked = URL.sub(_link, escaped)
        rendered.append("<p>" + linked.replace("\n", "<br>") + "</p>")
    return "".join(rendered)
