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
  two ordinary words such as ``a gun`` or ``is lam``;
- *letter readings* of the original text, for ``l``, ``I``, ``1`` and ``|``, which look
  alike in most sans-serif fonts. Normalising reads them as written (and ``1`` beside a
  letter as ``i``); where case shows another letter is meant, a reading swaps them: a
  lower-case ``l`` in a word of capitals is an ``I`` (``VlAGRA``), a capital ``I`` inside
  a lower-case word an ``l`` (``ciaIis``), as is one starting a lower-case word of four
  characters or more before a vowel (``Iick``). A ``1`` or a ``|`` beside a letter, in a
  word of four characters or more, is ``i`` or ``l``: each on its own, in four readings
  (the first one ``i`` or ``l``, the others ``i`` or ``l``: ``c1a1is``, ``ki11``,
  ``va|ium``). Ordinary words (``ill``, ``slim``, ``Illinois``, ``Ian``, ``1st``) give
  no such cue: they are read one way;
- a *glued-symbols reading* of the original text, where a ``$`` or ``@`` touching a
  letter, and digits starting or ending a word, are spaces. Normalising reads such
  symbols as leetspeak (``v1agr@``), so one glued to a word made it another word:
  ``viagra$`` read ``viagras``, ``fucking$`` ``fuckings``, and every whole-word rule
  missed them (found by an audit), as it missed ``2viagra`` and ``viagra@home``. Digits
  between letters are leetspeak still (``c1ass``), so ``viagra4u`` is not read so
  there; a *split-digits reading* reads them as spaces too, for listed terms of five
  characters or more whose first and last words have four or more (``viagra4u``,
  ``cialis2go``, ``kill4yourself``), which no leetspeak word spells by chance (``c1ass``
  read so is ``c ass``, and ``ass`` or ``ass hat`` is too short to count);
- two *squeezed readings* of the original text, where a letter written three times or
  more in a row is read once, and twice: ``fuuuuck`` and ``viaaagra`` read ``fuck`` and
  ``viagra``, ``asssshole`` ``asshole`` (found by an audit: every listed word missed them
  below the ten repeats that ``REPEATED_CHARACTERS`` scores). The letters dropped become
  a zero-width space, which normalising drops, so the reading keeps the text's length;
- an *overridden reading*, where what follows a right-to-left override (U+202E) up to
  the PDF (U+202C) that closes it, or the paragraph's end, is reversed, as a browser
  shows it: ``\u202eargaiv`` shows as ``viagra`` (found by an audit: normalising drops
  the override as invisible, and read the letters backwards). A position in a reversed
  run is its mirror in the text: ``Overridden.span_as_sent`` maps a hit back.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from itertools import accumulate

import re2

from .normalise import Normalised

__all__ = ["Glued", "glued_symbols_reading", "joins_when_split", "letter_readings",
           "overridden_reading", "phrase_form", "phrase_key", "split_digits_reading",
           "squeezed_readings", "long_enough_to_split"]

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


# Where a reading may differ from the text as written. Each starts with its character, so
# that Python's re skips to it at C speed: ordinary text pays a few microseconds.
_CUES = (
    # A lower-case l between capitals, or two capitals on one side and none on the other.
    re.compile(r"l(?:(?<=[A-Z]l)(?=[A-Z])|(?<=[A-Z][A-Z]l)(?![^\W_])|(?<![^\W_]l)(?=[A-Z][A-Z]))"),
    # A capital I after a lower-case letter, or starting a word before a lower-case vowel.
    re.compile(r"I(?:(?<=[a-z]I)|(?<![^\W_]I)(?=[aeiou][a-z]))"),
    # A 1 or a bar beside a letter; one pattern each, for a literal is quicker to find.
    re.compile(r"1(?:(?<=[^\W\d_]1)|(?=[^\W\d_]))"),
    re.compile(r"\|(?:(?<=[^\W\d_]\|)|(?=[^\W\d_]))"),
)
# A 1 or a bar reads i or l, each on its own (c1a1is); four readings cover a word's first
# and each further one (ki11). Each reading is a pass of the automata, so no more. A 1 is
# left for normalising to read as i, so that a reading with no other change is the text.
_AS_I = str.maketrans({"|": "i"})
_AS_L = str.maketrans({"1": "l", "|": "l"})
_ONES = ((_AS_I, _AS_I), (_AS_I, _AS_L), (_AS_L, _AS_I), (_AS_L, _AS_L))
# Fewer characters than this are numbers and names ("1st", "F1", "Ian"), not words
# spelled in look-alikes: their 1, bar or leading I is read as written.
_MIN_LOOK_ALIKE_WORD = 4


def _in_word(char: str) -> bool:
    return char.isalnum() or char == "|"


def _word_around(text: str, index: int) -> tuple[int, int]:
    start, end = index, index + 1
    while start > 0 and _in_word(text[start - 1]):
        start -= 1
    while end < len(text) and _in_word(text[end]):
        end += 1
    return start, end


def _read_case(word: str) -> str:
    """``word`` with ``l`` and ``I`` read as the case of the other letters shows them."""
    others = [char for char in word if char.isalpha() and char != "l"]
    if "l" in word and len(others) >= 2 and all(char.isupper() for char in others):
        return word.replace("l", "I")
    # A capital first letter is a capitalised word ("Ill", "Iris"), not a cue, unless it is
    # an I before a vowel in a word of four or more ("Iick", "Ioan"): few words start so.
    rest = [char for char in word[1:] if char.isalpha() and char != "I"]
    if len(rest) >= 2 and all(char.islower() for char in rest):
        lead_l = word[0] == "I" and word[1] in "aeiou" and len(word) >= _MIN_LOOK_ALIKE_WORD
        if lead_l or "I" in word[1:]:
            return ("l" if lead_l else word[0]) + word[1:].replace("I", "l")
    return word


def _read_ones(word: str, first: dict[int, str], further: dict[int, str]) -> str:
    """``word`` with its first 1 or bar read through ``first``, and the others ``further``."""
    if len(word) < _MIN_LOOK_ALIKE_WORD:
        return word
    one = min((word.find(char) for char in "1|" if char in word), default=-1)
    if one < 0:
        return word
    return word[:one] + word[one].translate(first) + word[one + 1 :].translate(further)


def letter_readings(text: str) -> tuple[str, ...]:
    """The other readings of ``text`` (as written) for ``l``, ``I``, ``1`` and ``|``, if any.

    Each has the length of ``text``, so a span of one is the same span of the other.
    """
    words: set[tuple[int, int]] = set()
    for cue in _CUES:
        end = 0
        for match in cue.finditer(text):
            # Found once per word: a long word of cues ("lIlI...", 10,000 characters) was
            # scanned again from each of its cues, seconds of intake for one comment.
            if match.start() >= end:
                word = _word_around(text, match.start())
                words.add(word)
                end = word[1]
    if not words:
        return ()
    readings = [list(text) for _ in _ONES]
    for start, end in words:
        word = _read_case(text[start:end])
        for reading, (first, further) in zip(readings, _ONES, strict=True):
            reading[start:end] = _read_ones(word, first, further)
    unique = dict.fromkeys("".join(reading) for reading in readings)
    return tuple(reading for reading in unique if reading != text)


# Whether a text may have a symbol glued to a word: re2's automaton scans 2 KB in 5 us,
# where Python's re, trying each position, took 80 us and the pattern below 240 us (the
# rules benchmark's median grew by that much on every comment, glued symbols or none).
_GLUED_SYMBOL_CUE = re2.compile(r"[A-Za-z][$@0-9]|[$@0-9][A-Za-z]", _OPTIONS)
# A $ or @ touching a letter, and digits that start or end a word of letters (ASCII
# letters; other scripts are not written in leetspeak). Digits between letters stay:
# `c1ass` is `class` in leetspeak, and read as a space it made `c ass`, which a rule
# listing `ass` hit.
_GLUED_SYMBOL_RE = re.compile(
    r"[$@](?=[A-Za-z])|(?<=[A-Za-z])[$@]"
    r"|(?<![A-Za-z0-9])[0-9]+(?=[A-Za-z])|(?<=[A-Za-z])[0-9]+(?![A-Za-z0-9])"
)


def _as_spaces(match: re.Match[str]) -> str:
    return " " * len(match.group())


def glued_symbols_reading(text: str) -> str | None:
    """``text`` (as written) with each ``$`` or ``@`` that touches a letter, and each run
    of digits that starts or ends a word, read as spaces; None when it has none. Of the
    length of ``text``, as the letter readings are."""
    if _GLUED_SYMBOL_CUE.search(text) is None:
        return None
    reading = _GLUED_SYMBOL_RE.sub(_as_spaces, text)
    return reading if reading != text else None


# Whether a text has an ASCII letter three times in a row, in any case: re2's automaton,
# for Python's re would try the pattern below at every position of every comment.
_STRETCH_CUE = re2.compile(
    "(?i)" + "|".join(letter * 3 for letter in "abcdefghijklmnopqrstuvwxyz"), _OPTIONS)
_STRETCHED_RE = re.compile(r"([a-z])\1{2,}", re.IGNORECASE)
_DROPPED = "\u200b"  # a zero-width space: dropped by normalising, as the text's own are


def squeezed_readings(text: str) -> tuple[str, ...]:
    """``text`` (as written) with each run of three or more of one letter read once, and
    read twice; () when it has none. Of the length of ``text``, as the letter readings are.
    """
    if _STRETCH_CUE.search(text) is None:
        return ()
    readings = []
    for kept in (1, 2):
        readings.append(_STRETCHED_RE.sub(
            lambda run, kept=kept: run.group()[:kept] + _DROPPED * (len(run.group()) - kept),
            text))
    return tuple(readings)


_OVERRIDE = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: what follows shows right to left
# The embeddings and overrides (LRE, RLE, LRO, RLO) that a POP DIRECTIONAL FORMATTING
# closes, innermost first; and what ends a paragraph, and all of them with it.
_OPENERS = frozenset("\u202a\u202b\u202d\u202e")
_POP = "\u202c"
_PARAGRAPH_ENDS = frozenset("\n\r\u2029\x85\x1c\x1d\x1e")


def _overridden_runs(text: str) -> list[tuple[int, int]]:
    """Where right-to-left overrides run in ``text``: from after each outermost one to the
    PDF that closes it (PDFs close the innermost opener first, as bidi reads them) or the
    paragraph's end. Text nested inside is reversed with the rest: an approximation of
    the bidi algorithm that holds for text written to be read backwards."""
    runs = []
    depth = 0  # openers still open inside the current run, the override included
    start = 0
    for index, char in enumerate(text):
        if depth == 0:
            if char == _OVERRIDE:
                depth, start = 1, index + 1
        elif char in _PARAGRAPH_ENDS:
            runs.append((start, index))
            depth = 0
        elif char in _OPENERS:
            depth += 1
        elif char == _POP:
            depth -= 1
            if depth == 0:
                runs.append((start, index))
    if depth:
        runs.append((start, len(text)))
    return runs


class Overridden:
    """``text`` (as written) with each right-to-left override's run reversed, as shown.

    Of the length of ``text``, but a position inside a run is its mirror in the text:
    ``span_as_sent`` takes a span of the reading back to the one it shows of the text.
    """

    __slots__ = ("runs", "text")

    def __init__(self, text: str) -> None:
        self.runs = _overridden_runs(text)
        pieces, last = [], 0
        for start, end in self.runs:
            pieces += [text[last:start], text[start:end][::-1]]
            last = end
        self.text = "".join([*pieces, text[last:]])

    def _as_sent(self, position: int) -> int:
        for start, end in self.runs:
            if start <= position < end:
                return start + end - 1 - position
        return position

    def span_as_sent(self, start: int, end: int) -> tuple[int, int]:
        """The span of the text whose characters are the reading's ``[start, end)``: where
        a run is reversed, its mirror (the span covering all of them, across runs)."""
        points = {start, end - 1}
        for run_start, run_end in self.runs:
            points.update(p for p in (run_start, run_end - 1, run_start - 1, run_end)
                          if start <= p < end)
        mapped = [self._as_sent(point) for point in points]
        return min(mapped), max(mapped) + 1


def overridden_reading(text: str) -> Overridden | None:
    """The reading of ``text`` with its right-to-left overrides' runs reversed; None when
    it has none."""
    return Overridden(text) if _OVERRIDE in text else None


# Digits between two letters: a cue for the split-digits reading (re2, as the others).
_DIGITS_BETWEEN_CUE = re2.compile(r"[A-Za-z][0-9]+[A-Za-z]", _OPTIONS)
_DIGITS_BETWEEN_RE = re.compile(r"(?<=[A-Za-z])[0-9]+(?=[A-Za-z])")
# The shortest listed term the split-digits reading may hit, and the shortest first and
# last word of a phrase it may hit: "c1ass hat" read so is "c ass hat", and a list's
# "ass hat", seven characters, hit it (found by a review).
SPLIT_DIGITS_MIN_TERM = 5
SPLIT_DIGITS_MIN_EDGE_WORD = 4


def long_enough_to_split(term: str) -> bool:
    """Whether a listed term, as folded, may hit in the split-digits reading."""
    words = term.split(" ")
    return (len(term) >= SPLIT_DIGITS_MIN_TERM and len(words[0]) >= SPLIT_DIGITS_MIN_EDGE_WORD
            and len(words[-1]) >= SPLIT_DIGITS_MIN_EDGE_WORD)


def split_digits_reading(text: str) -> str | None:
    """``text`` (as written) with each run of digits between two letters read as spaces;
    None when it has none. Of the length of ``text``. Its hits count only for listed
    terms that are ``long_enough_to_split``."""
    if _DIGITS_BETWEEN_CUE.search(text) is None:
        return None
    return _DIGITS_BETWEEN_RE.sub(_as_spaces, text)
