"""One folded form of text for matching, the same for listed terms and for comments.

Stages, each recording where it changed lengths so that a span of the folded text maps
back to the span of the original it came from:

1. HTML tags stripped (inline tags and comments vanish inside a word, so
   ``vi<b>ag</b>ra`` and ``vi<!-- -->agra`` stay one word, as a browser shows them;
   elsewhere a tag is a space) and character entities unescaped. Only real tags: a
   comment is plain text that a site shows escaped, so a reader sees what a tag holds,
   and ``<buy cheap pills now>`` (no element's name) stays text. What a tag holds is
   read too, between spaces: its attributes' values (``title``, ``alt``; not the links
   of ``href`` and ``src``, which the link rules read, nor ``style``), names given
   without a value (``<a great offer>`` is an ``a`` tag to a browser), and a comment's
   text (``<!-- buy pills -->``).
2. Each character folded on its own: compatibility decomposition (NFKD, which covers
   full-width, circled and mathematical letters), combining marks and default-ignorable
   characters dropped, look-alikes mapped through the Unicode confusables data and Latin
   small capitals (``ᴠɪᴀɢʀᴀ``) to their letters, case folded. Whitespace and control
   characters become a plain space; ``<``, ``>`` and ``&`` become spaces too, so folded
   text never looks like markup again (which keeps folding idempotent).
3. Runs of spaces collapsed to one, and spaces at either end dropped.
4. Letters split by a repeated single separator joined: ``v i a g r a`` and
   ``v.i.a.g.r.a`` become ``viagra`` (three or more single characters, at least one a
   letter). A joined run is one word.
5. Leetspeak folded in words where a leet character touches a letter (``v1agr@``), so
   plain numbers stay numbers.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import NamedTuple

import re2

from .fold import ASCII_FOLD, FOLD_TABLE

__all__ = ["Normalised", "normalise", "is_word_char"]

_LEET = str.maketrans("013457@$!", "oieastasi")
# '!' at either edge of a word and '@' at its start are punctuation ("great!", "@john");
# a trailing '@' is still leet for 'a' ("v1agr@").
_EDGE_PUNCT_START = "!@"
_EDGE_PUNCT_END = "!"
# The elements of HTML, current and obsolete: a tag names one of them, else it is text.
_ELEMENTS = frozenset((
    "a", "abbr", "acronym", "address", "applet", "area", "article", "aside", "audio", "b",
    "base", "basefont", "bdi", "bdo", "bgsound", "big", "blink", "blockquote", "body", "br",
    "button", "canvas", "caption", "center", "cite", "code", "col", "colgroup", "data",
    "datalist", "dd", "del", "details", "dfn", "dialog", "dir", "div", "dl", "dt", "em",
    "embed", "fieldset", "figcaption", "figure", "font", "footer", "form", "frame", "frameset",
    "h1", "h2", "h3", "h4", "h5", "h6", "head", "header", "hgroup", "hr", "html", "i",
    "iframe", "img", "input", "ins", "isindex", "kbd", "keygen", "label", "legend", "li",
    "link", "listing", "main", "map", "mark", "marquee", "math", "menu", "menuitem", "meta",
    "meter", "multicol", "nav", "nextid", "nobr", "noembed", "noframes", "noscript", "object",
    "ol", "optgroup", "option", "output", "p", "param", "picture", "plaintext", "pre",
    "progress", "q", "rb", "rp", "rt", "rtc", "ruby", "s", "samp", "script", "search",
    "section", "select", "slot", "small", "source", "spacer", "span", "strike", "strong",
    "style", "sub", "summary", "sup", "svg", "table", "tbody", "td", "template", "textarea",
    "tfoot", "th", "thead", "time", "title", "tr", "track", "tt", "u", "ul", "var", "video",
    "wbr", "xmp"
))  # fmt: skip
# Attributes whose values are links (read by the link rules from the text as sent) or CSS:
# as words they would only add noise.
_UNREAD_ATTRIBUTES = frozenset(("href", "src", "srcset", "action", "cite", "poster",
                                "background", "style"))
_ATTRIBUTE_RE = re.compile(
    r"""([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?"""
)
# Tags that style text inside a word ("vi<b>ag</b>ra"); any other tag separates words.
_INLINE_TAGS = frozenset(
    ("a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "del", "dfn", "em", "font", "i",
     "ins", "kbd", "mark", "q", "s", "samp", "small", "span", "strike", "strong", "sub",
     "sup", "tt", "u", "var", "wbr")
)  # fmt: skip
# Tags and entities; comments are found apart (``_comment_spans``): "<!--.*?-->" tried
# again from each "<!--" of a text with no "-->" after it took quadratic time (1.7 s for
# 40,000 characters of "<!--").
_TAG_OR_ENTITY_RE = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9]*)\b[^<>]*>"
    r"|&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});"
)
# After the common ASCII specials are replaced, what needs more than lower-casing.
_SPECIAL_RE = re.compile(r"[^\x20-\x7e]")
_ASCII_SPACED = "\t\n\r\x0b\x0c<>&"
_SPACES_RE = re.compile(r" {2,}")
_TOKEN_RE = re.compile(r"[\w@$!]*")
_LEET_TRIGGER_RE = re.compile(r"[^\W\d_][013457@$]|[013457@$!][^\W\d_]")
# For ASCII text: letters -> "a", leet characters -> "1" ("!" apart: it is only leet
# before a letter, "great!" is punctuation), anything else -> " ".
_LEET_CLASSES = {code: " " for code in range(128)}
_LEET_CLASSES.update({ord(char): "a" for char in "abcdefghijklmnopqrstuvwxyz"})
_LEET_CLASSES.update({ord(char): "1" for char in "013457@$"})
_LEET_CLASSES[ord("!")] = "!"
_WORD = r"[\pL\pN\pM@$!]"
_SEP = r"[^\pL\pN\pM@$!]"
_JOIN_OPTIONS = re2.Options()
_JOIN_OPTIONS.log_errors = False
# re2 because this runs on every comment: a linear scan, no look-behind needed since the
# boundary characters are consumed (a run can't start right after another one ends).
# A separator is one character, or one followed by a space: "v.i.a.g.r.a" and
# "v. i. a. g. r. a" (spaces are collapsed to one before this runs).
_JOIN_RE = re2.compile(
    rf"(?:^|{_SEP})({_WORD}(?:{_SEP} ?{_WORD}){{2,}})(?:{_SEP}|$)", _JOIN_OPTIONS
)


def is_word_char(char: str) -> bool:
    """Whether a folded character is part of a word (a letter, digit or mark)."""
    return char.isalnum() or (not char.isascii() and unicodedata.category(char)[0] == "M")


class _Edits:
    """Where one stage replaced text with text of another length."""

    __slots__ = ("out_starts", "out_ends", "in_starts", "in_ends")

    def __init__(self) -> None:
        self.out_starts: list[int] = []
        self.out_ends: list[int] = []
        self.in_starts: list[int] = []
        self.in_ends: list[int] = []

    def add(self, in_start: int, in_end: int, out_start: int, out_len: int) -> None:
        self.in_starts.append(in_start)
        self.in_ends.append(in_end)
        self.out_starts.append(out_start)
        self.out_ends.append(out_start + out_len)

    def char_span(self, index: int) -> tuple[int, int]:
        """The input span that produced output character ``index``."""
        k = bisect_right(self.out_starts, index) - 1
        if k < 0:
            return index, index + 1
        if index < self.out_ends[k]:
            return self.in_starts[k], self.in_ends[k]
        start = self.in_ends[k] + index - self.out_ends[k]
        return start, start + 1

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The input span that produced output span ``[start, end)``."""
        return self.char_span(start)[0], self.char_span(end - 1)[1]


_LazyEdits = Callable[[], _Edits]


def _rewrite(text: str, pieces: list[tuple[int, int, str]]) -> tuple[str, _Edits | None]:
    """Apply ordered, non-overlapping replacements, recording those that change length."""
    if not pieces:
        return text, None
    edits = _Edits()
    out: list[str] = []
    last = 0
    length = 0
    for start, end, replacement in pieces:
        out.append(text[last:start])
        length += start - last
        if len(replacement) != end - start:
            edits.add(start, end, length, len(replacement))
        out.append(replacement)
        length += len(replacement)
        last = end
    out.append(text[last:])
    return "".join(out), edits if edits.out_starts else None


class _Markup(NamedTuple):
    """An entity, a comment or a real tag: where it is, and a tag's name."""

    start: int
    end: int
    token: str
    slash: str = ""
    name: str = ""

    @property
    def is_tag(self) -> bool:
        return self.token[0] == "<"


def _comment_spans(text: str) -> Iterator[tuple[int, int]]:
    """Each ``<!-- ... -->`` in one pass: with no "-->" left, no later comment ends."""
    start = text.find("<!--")
    while start >= 0:
        close = text.find("-->", start + 4)
        if close < 0:
            return
        yield start, close + 3
        start = text.find("<!--", close + 3)


def _markup(text: str) -> list[_Markup]:
    """The entities, comments and real tags of ``text``, in order. Brackets round no
    element's name are text: looked into, so an entity inside is still found."""
    found = []
    comments = _comment_spans(text) if "<!--" in text else iter(())
    comment = next(comments, None)
    position = 0
    while True:
        limit = comment[0] if comment else len(text)
        match = _TAG_OR_ENTITY_RE.search(text, position, limit)
        if match is None:
            if comment is None:
                return found
            found.append(_Markup(comment[0], comment[1], text[comment[0]:comment[1]]))
            position = comment[1]
            comment = next(comments, None)
            continue
        token = match.group()
        name = (match.group(2) or "").lower()
        if token[0] == "<" and name not in _ELEMENTS:
            position = match.start() + 1  # "<buy v&#105;agra>": text, entity and all
            continue
        found.append(_Markup(match.start(), match.end(), token, match.group(1) or "", name))
        position = match.end()


def _strip_html(text: str) -> tuple[str, _Edits | None]:
    if "<" not in text and "&" not in text:
        return text, None
    markup = _markup(text)
    pieces = []
    for piece, (run_start, run_end) in zip(markup, _tag_runs(markup), strict=True):
        if not piece.is_tag:
            pieces.append((piece.start, piece.end, html.unescape(piece.token)))
            continue
        comment = piece.token.startswith("<!--")
        # Inside a word: letters either side of this tag and the tags right next to it
        # ("vi<b><i>ag</i></b>ra", which a browser shows as "viagra").
        within_word = (run_start > 0 and run_end < len(text)
                       and is_word_char(text[run_start - 1]) and is_word_char(text[run_end]))
        if within_word and (comment or piece.name in _INLINE_TAGS):
            # A browser shows a comment or a styling tag as nothing, so the word runs on.
            pieces.append((piece.start, piece.end, ""))
            continue
        # A comment's text is read as text is, its own tags stripped (comments don't nest).
        held = _strip_html(piece.token[4:-3])[0] if comment else " ".join(
            _shown_attributes(piece.token[1 + len(piece.slash) + len(piece.name):-1]))
        pieces.append((piece.start, piece.end, f" {held} " if held.strip() else " "))
    return _rewrite(text, pieces)


def _tag_runs(markup: list[_Markup]) -> list[tuple[int, int]]:
    """For each piece of markup, the span of the run of tags and comments it is in (tags
    that touch one another); an entity is a run of its own. Linear, however long."""
    runs: list[tuple[int, int]] = []
    first = 0
    for index, piece in enumerate(markup):
        if not (piece.is_tag and index > 0 and markup[index - 1].is_tag
                and markup[index - 1].end == piece.start):
            first = index
        runs.append((markup[first].start, piece.end))
    # A run ends where its last member ends: carried back over the run.
    for index in range(len(markup) - 2, -1, -1):
        if runs[index][0] == runs[index + 1][0]:
            runs[index] = runs[index + 1]
    return runs


def _shown_attributes(attributes: str) -> list[str]:
    """The words a tag's attributes hold: values (but links and CSS), and bare names."""
    shown = []
    for found in _ATTRIBUTE_RE.finditer(attributes):
        name, *values = found.groups()
        value = next((v for v in values if v is not None), None)
        if value is None:
            shown.append(name)
        elif name.lower() not in _UNREAD_ATTRIBUTES:
            shown.append(html.unescape(value))
    return shown


def fold_chars(text: str) -> tuple[str, _Edits | None]:
    if text.isascii():
        return text.translate(ASCII_FOLD), None
    for char in _ASCII_SPACED:
        if char in text:
            text = text.replace(char, " ")
    # Two strategies, because the regex is cheap per character it skips and dear per match:
    # a few accents or curly quotes in English are found one by one; text mostly in
    # another script is translated whole.
    if len(text.encode("utf-8", "surrogatepass")) - len(text) < len(text) // 4:
        pieces = [
            (match.start(), match.end(), FOLD_TABLE[ord(match.group())])
            for match in _SPECIAL_RE.finditer(text)
        ]
        rewritten, edits = _rewrite(text, pieces)
        # What is left unfolded is plain ASCII; folded characters are their own lower case.
        return rewritten.lower(), edits
    folded = text.translate(FOLD_TABLE)
    if len(folded) == len(text):
        return folded, None
    # Some character folded to nothing or to several: record each one, so that a hit maps
    # back to exactly the characters it used.
    pieces = []
    for index, char in enumerate(text):
        replacement = FOLD_TABLE[ord(char)]
        if len(replacement) != 1:
            pieces.append((index, index + 1, replacement))
    rewritten, edits = _rewrite(text, pieces)
    return rewritten.translate(FOLD_TABLE), edits


def _collapse_spaces(text: str) -> tuple[str, _LazyEdits | None]:
    collapsed = " ".join(text.split())
    if len(collapsed) == len(text):
        return text, None
    # Line breaks make many runs; the map back is only needed when something hits, so it
    # is worked out then (once: a comment may hit many terms).
    return collapsed, functools.cache(functools.partial(_space_edits, text))


def _space_edits(text: str) -> _Edits:
    edits = _Edits()
    lead = len(text) - len(text.lstrip(" "))
    body_end = len(text.rstrip(" "))
    runs = [match.span() for match in _SPACES_RE.finditer(text, lead, max(lead, body_end))]
    # Each run keeps one space: everything before run k has lost ``removed[k]`` characters.
    removed = list(accumulate((end - start - 1 for start, end in runs), initial=lead))
    edits.in_starts = [start for start, _ in runs]
    edits.in_ends = [end for _, end in runs]
    edits.out_starts = [start - gone for (start, _), gone in zip(runs, removed, strict=False)]
    edits.out_ends = [start + 1 for start in edits.out_starts]
    if lead:
        edits.in_starts.insert(0, 0)
        edits.in_ends.insert(0, lead)
        edits.out_starts.insert(0, 0)
        edits.out_ends.insert(0, 0)
    if lead < body_end < len(text):
        out = body_end - removed[-1]
        edits.add(body_end, len(text), out, 0)
    return edits


def _same(text: str, one: tuple[int, int], other: tuple[int, int]) -> bool:
    return text[one[0] : one[1]] == text[other[0] : other[1]]


def _join_split_letters(text: str) -> tuple[str, _Edits | None]:
    pieces = []
    for match in _JOIN_RE.finditer(text):
        start, end = match.span(1)
        # The run alternates a single character and a separator of one or two characters
        # (a space after the first is part of it: a character never is a space).
        letters = []
        separators: list[tuple[int, int]] = []
        index = start
        while True:
            letters.append(text[index])
            index += 1
            if index >= end:
                break
            after = index + 2 if text[index + 1] == " " else index + 1
            separators.append((index, after))
            index = after
        if not any(char.isalpha() for char in letters):
            continue
        # Only a stretch with one and the same separator is a split word: "a f.u.c.k"
        # keeps the article "a" apart from the dotted word.
        first = 0
        for position in range(1, len(separators) + 1):
            if position < len(separators) and _same(text, separators[position], separators[first]):
                continue
            if position - first >= 2:
                pieces.extend((low, high, "") for low, high in separators[first:position])
            first = position
    return _rewrite(text, pieces)


def _leet_triggers(text: str) -> list[int]:
    """Positions where a leet character touches a letter; only those words are folded."""
    if text.isascii():
        # Classify every character in one C-speed translate, then look for the pairs.
        classes = text.translate(_LEET_CLASSES)
        positions = []
        for pair in ("a1", "1a", "!a"):
            found = classes.find(pair)
            while found >= 0:
                positions.append(found)
                found = classes.find(pair, found + 1)
        return sorted(positions)
    return [match.start() for match in _LEET_TRIGGER_RE.finditer(text)]


def _fold_leet(text: str) -> str:
    triggers = _leet_triggers(text)
    if not triggers:
        return text
    chars = list(text)
    backwards = text[::-1]
    done_until = 0
    for position in triggers:
        if position < done_until:
            continue
        # The whole word around the trigger: letters, digits and the leet symbols.
        end = _TOKEN_RE.match(text, position).end()  # type: ignore[union-attr]
        back = _TOKEN_RE.match(backwards, len(text) - position)  # type: ignore[union-attr]
        start = len(text) - back.end()
        done_until = end
        while start < end and text[start] in _EDGE_PUNCT_START:
            start += 1
        while end > start and text[end - 1] in _EDGE_PUNCT_END:
            end -= 1
        chars[start:end] = text[start:end].translate(_LEET)
    return "".join(chars)


@dataclass(frozen=True)
class Normalised:
    """Folded text, and the way back from any span of it to the original."""

    original: str
    text: str
    _stages: tuple[_Edits | _LazyEdits, ...] = ()

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of ``original`` that the folded span ``[start, end)`` came from."""
        if end <= start:
            raise ValueError("empty span")
        for stage in reversed(self._stages):
            edits = stage if isinstance(stage, _Edits) else stage()
            start, end = edits.span(start, end)
        return start, end

    def original_text(self, start: int, end: int) -> str:
        """The original text behind the folded span ``[start, end)``."""
        begin, finish = self.original_span(start, end)
        return self.original[begin:finish]

    def rewritten(self, pieces: list[tuple[int, int, str]]) -> Normalised:
        """This text with ordered, non-overlapping ``(start, end, text)`` replacements made.

        The result still maps its spans back to ``original``.
        """
        text, edits = _rewrite(self.text, pieces)
        stages = self._stages if edits is None else (*self._stages, edits)
        return Normalised(self.original, text, stages)


# One intake folds the same content three times (its duplicate hash, the rules, the
# classifier's tokens); the result is immutable, so the recent ones are kept.
@functools.lru_cache(maxsize=64)
def normalise(text: str) -> Normalised:
    """Fold ``text`` for matching; normalising the result again changes nothing."""
    stages: list[_Edits | _LazyEdits] = []
    current = text
    for stage in (_strip_html, fold_chars, _collapse_spaces, _join_split_letters):
        current, edits = stage(current)
        if edits is not None:
            stages.append(edits)
    # Leetspeak swaps one character for one, so positions don't move.
    return Normalised(text, _fold_leet(current), tuple(stages))
