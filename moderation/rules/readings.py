"""Further readings of a text that listed terms are looked for in, besides its folded form.

``normalise`` gives the one folded text that regexes, the learned classifier and the
duplicate check share; changing it would change all of them. Listed terms are also
looked for in readings that each add only what a reader takes for the term:

- the *phrase form* of a folded text, where a separator that joins two words without
  ending a sentence or clause reads as one space: ``french-fries``, ``french_fries``,
  ``french/fries`` and ``french - fries`` all read ``french fries``, while
  ``no. Prescription`` and ``money, online`` stay apart.
"""

from __future__ import annotations

import re

import re2

from .normalise import Normalised

__all__ = ["phrase_form", "phrase_key"]

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
