"""Folding one character at a time: the per-character part of normalisation.

Compatibility decomposition (NFKD: full-width, circled and mathematical letters),
combining marks and default-ignorable characters dropped, look-alikes mapped through the
Unicode confusables data and Latin small capitals to their letters, case folded. The
result for any character is a fixed point.
"""

from __future__ import annotations

import json
import unicodedata
from functools import lru_cache
from importlib import resources

__all__ = ["ASCII_FOLD", "ASCII_LOOKALIKES", "FOLD_TABLE", "fold_char"]

_BIDI_MARKS = "\u200e\u200f"
# ASCII folds one character to one, so a single translate does it without moving positions.
ASCII_FOLD = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}
ASCII_FOLD.update({code: 0x20 for code in (*range(0x20), 0x7F, ord("<"), ord(">"), ord("&"))})

# Default-ignorable code points that are not in category Cf or Mn (those are dropped by
# category): Hangul fillers, plus reserved ranges that Unicode says to ignore.
_IGNORABLE_RANGES = (
    (0x115F, 0x1160),
    (0x3164, 0x3164),
    (0xFFA0, 0xFFA0),
    (0x2060, 0x206F),
    (0xFFF0, 0xFFF8),
    (0xE0000, 0xE0FFF),
)


def _confusable_map() -> dict[str, str]:
    """Map each non-ASCII look-alike of an ASCII letter or digit to that (lower-case) one.

    Built from the Unicode confusables data that confusable-homoglyphs ships, so nothing
    here is typed by hand. Where a character resembles several, a lower-case letter is
    preferred over an upper-case one, and either over a digit.
    """
    text = resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    best: dict[str, tuple[int, str]] = {}
    for key, entries in json.loads(text).items():
        first = key.strip(_BIDI_MARKS)
        for entry in entries:
            second = entry["c"].strip(_BIDI_MARKS)
            for source, target in ((first, second), (second, first)):
                if len(source) != 1 or source.isascii() or len(target) != 1:
                    continue
                if not (target.isascii() and target.isalnum()):
                    continue
                rank = 0 if target.islower() else 1 if target.isalpha() else 2
                candidate = (rank, target.lower())
                if source not in best or candidate < best[source]:
                    best[source] = candidate
    return {source: target for source, (_, target) in best.items()}


# Where the Latin letter small capitals are: a word spelled in them (ᴠɪᴀɢʀᴀ) reads as
# the plain word.
_SMALL_CAPITAL_RANGES = ((0x0262, 0x029F), (0x1D00, 0x1D22), (0xA730, 0xA731), (0xA7AF, 0xA7AF))


def _small_capital_map() -> dict[str, str]:
    """Map each Latin letter small capital of an ASCII letter to that (lower-case) one.

    The confusables data lists only some of them (ᴄ, ᴏ, ᴠ, not ᴀ, ɢ, ʀ) and NFKD keeps
    them as they are, so the letter is read from each one's Unicode name. Small capitals
    of other letters (ᴁ, ᴎ, ʁ) are left alone: they read as no ASCII letter. Modifier
    forms (ᶫ, ᶰ) decompose to these under NFKD.
    """
    capitals = {}
    for low, high in _SMALL_CAPITAL_RANGES:
        for code in range(low, high + 1):
            prefix, _, letter = unicodedata.name(chr(code), "").rpartition(" ")
            if prefix == "LATIN LETTER SMALL CAPITAL" and len(letter) == 1:
                capitals[chr(code)] = letter.lower()
    return capitals


ASCII_LOOKALIKES = _confusable_map() | _small_capital_map()


def _is_ignorable(code: int) -> bool:
    return any(low <= code <= high for low, high in _IGNORABLE_RANGES)


# Negative circled and negative squared capitals (🅥🅘🅐🅖🅡🅐): letters with no
# decomposition, so neither NFKD nor the confusables data reads them.
_NEGATIVE_LETTERS = (0x1F150, 0x1F170)
# The braille blank looks like a space and is used as one ("vi⠀agra"); it is a symbol.
_BRAILLE_BLANK = 0x2800


def _fold_one(char: str) -> str:
    """One step of the per-character fold (see ``fold_char``)."""
    if char.isascii():
        return char.translate(ASCII_FOLD)
    code = ord(char)
    if code == _BRAILLE_BLANK:
        return " "
    for first in _NEGATIVE_LETTERS:
        if first <= code < first + 26:
            return chr(ord("a") + code - first)
    category = unicodedata.category(char)
    if category in ("Mn", "Me", "Cf", "Cs", "Cc") or _is_ignorable(ord(char)):
        return " " if char.isspace() else ""
    if char.isspace():
        return " "
    if category == "Nd":
        return str(unicodedata.decimal(char))
    folded = char.casefold()
    # Look up the case-folded form first: Cyrillic 'І' folds to 'і', which resembles 'i',
    # while the upper-case form resembles 'l'. Greek 'Η' only has a match before folding.
    if len(folded) == 1 and folded in ASCII_LOOKALIKES:
        return ASCII_LOOKALIKES[folded]
    if char in ASCII_LOOKALIKES:
        return ASCII_LOOKALIKES[char]
    # Lower after case folding: Cherokee folds to upper case, and every folded character
    # must be its own lower case so that whole texts can be lower-cased in one call.
    return folded.lower()


@lru_cache(maxsize=65536)
def fold_char(char: str) -> str:
    """Fold one character to its matching form; the result is a fixed point of the fold."""
    decomposed = unicodedata.normalize("NFKD", char)
    if len(char) == 1 and len(decomposed) > 1 and unicodedata.category(char) == "So":
        # A sign spelt in letters (™ is TM, ℠ SM, ㎏ kg) is a word of its own, as a
        # reader takes it: "Viagra™" read "viagratm", which no listed word matched.
        return f" {fold_char(decomposed).strip()} "
    current = char
    # Decomposition, case folding and the confusables map can each expose a character
    # the others change; a few rounds reach the fixed point.
    for _ in range(6):
        folded = "".join(_fold_one(part) for part in unicodedata.normalize("NFKD", current))
        if folded == current:
            break
        current = folded
    return current


class _FoldTable(dict[int, str]):
    """A ``str.translate`` table that folds each character the first time it is seen."""

    def __missing__(self, code: int) -> str:
        folded = self[code] = fold_char(chr(code))
        return folded


FOLD_TABLE = _FoldTable()
