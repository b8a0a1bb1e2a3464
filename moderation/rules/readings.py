"""Further readings of a text that listed terms are looked for in, besides its folded form.

``normalise`` gives the one folded text that regexes, the learned classifier and the
duplicate check share; changing it would change all of them. Listed terms are also
looked for in readings that each add only what a reader takes for the term:

- the *phrase form* of a folded text, where a separator that joins two words without
  ending a sentence or clause reads as one space: ``french-fries``, ``french_fries``,
  ``french/fries`` and ``french - fries`` all read ``french fries``, while
  ``no. Prescription`` and ``money, online`` stay apart;
- the *glued form* of a phrase form, its spaces taken out, where a long listed word split
  once (``vi agra``, ``via-gra``) is found whole; only a listed word is ever joined, never
  two ordinary words such as ``a gun`` or ``is lam``.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from itertools import accumulate

import re2

from .normalise import Normalised

__all__ = ["Glued", "joins_when_split", "phrase_form", "phrase_key"]

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
# Where a separator that is more than one plain space starts, and what follows it up to
# the next word; a space just before it (spaces are collapsed: one at most) belongs to it.
# Starting with a class and repeating nothing nested keeps the scan linear and lets
# Python's re skip through words at C speed, much quicker than re2's binding per match,
# on folded ASCII text (most comments). Other text needs re2's classes to keep combining
# marks (Devanagari vowel signs) inside their words, as matching does.
_ASCII_SEPARATOR_RE = re.compile(r"[^a-z0-9 ][^a-z0-9]*")
_SEPARATOR_RE = re2.compile(r"[^\pL\pN\pM ][^\pL\pN\pM]*", _OPTIONS)
# A sentence or clause ends at one of these marks when a space follows it (perhaps after a
# closing quote or bracket): the words either side of it are not one phrase.
_CLAUSE_MARK_RE = re.compile(r"[.,;:!?]")
# A folded term that is words joined by spaces, hyphens or underscores (the alternating
# classes can't overlap, so no backtracking); re2 for the word classes beyond ASCII.
_ASCII_PHRASE_TERM_RE = re.compile(r"[a-z0-9]+(?:[ _-]+[a-z0-9]+)*")
_PHRASE_TERM_RE = re2.compile(r"[\pL\pN\pM]+(?:[ _-]+[\pL\pN\pM]+)*", _OPTIONS)
_TERM_JOINER_RE = re.compile(r"[ _-]+")


def _joins(text: str, start: int, end: int) -> bool:
    """Whether words either side of the separator ``text[start:end]`` read as one phrase."""
    space = text.rfind(" ", start, end)
    return space < 0 or not _CLAUSE_MARK_RE.search(text, start, space)


def phrase_form(folded: Normalised) -> Normalised:
    """``folded`` with every separator that joins two words into a phrase read as a space."""
    text = folded.text
    separators = _ASCII_SEPARATOR_RE if text.isascii() else _SEPARATOR_RE
    pieces = []
    for match in separators.finditer(text):
        start, end = match.span()
        if start and text[start - 1] == " ":
            start -= 1
        if _joins(text, start, end):
            pieces.append((start, end, " "))
    return folded.rewritten(pieces) if pieces else folded


def phrase_key(term: str) -> str | None:
    """What a folded term is looked for as in the phrase form, if it is words.

    A term of words joined by spaces, hyphens or underscores (``french fries``,
    ``e-mail``) is those words with one space between them, whatever joins them in the
    text; any other term (``100% free``) is matched in the folded text as it is.
    """
    words = _ASCII_PHRASE_TERM_RE if term.isascii() else _PHRASE_TERM_RE
    return _TERM_JOINER_RE.sub(" ", term) if words.fullmatch(term) else None


# A word split once is only joined back when it is this long and each part has two letters
# or more, so that "a gun" or "is lam" never read "agun" or "islam", nor "it's ex" "sex".
# Longer words that split into two ordinary words are rare, and mostly compounds that mean
# the same apart ("ass hole", "pay day").
_SPLIT_MIN_LENGTH = 6
_SPLIT_MIN_PART = 2


def joins_when_split(word: str) -> bool:
    """Whether a folded listed word also hits split once by a space (``vi agra``)."""
    return len(word) >= _SPLIT_MIN_LENGTH and word.isalpha()


class Glued:
    """A phrase form with its spaces taken out, and the way back to the spaced text."""

    __slots__ = ("spaced", "text", "_offsets")

    def __init__(self, spaced: str) -> None:
        self.spaced = spaced
        self.text = spaced.replace(" ", "")
        self._offsets: list[int] | None = None

    def _spaced_index(self, index: int) -> int:
        if self._offsets is None:
            # Where each space was, counted in the glued text; worked out on the first hit.
            self._offsets = list(accumulate(map(len, self.spaced.split(" "))))[:-1]
        return index + bisect_right(self._offsets, index)

    def split_span(self, start: int, end: int) -> tuple[int, int] | None:
        """The spaced span behind the glued ``[start, end)``, if one space splits it in two
        parts long enough to read as one word; otherwise None (no space: a plain hit)."""
        first, last = self._spaced_index(start), self._spaced_index(end - 1) + 1
        if last - first != end - start + 1:
            return None
        cut = self.spaced.find(" ", first, last)
        if min(cut - first, last - cut - 1) < _SPLIT_MIN_PART:
            return None
        return first, last
