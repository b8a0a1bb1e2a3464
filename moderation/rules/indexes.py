"""Many rules matched in one pass: all listed terms in one automaton, all regexes in one set."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import ahocorasick
import re2

from .matchers import Finding, RegexMatcher, Subject, TermsMatcher
from .normalise import Normalised, is_word_char, normalise
from .readings import (
    Glued,
    glued_symbols_reading,
    joins_when_split,
    letter_readings,
    long_enough_to_split,
    overridden_reading,
    phrase_form,
    phrase_key,
    split_digits_reading,
    squeezed_readings,
)

__all__ = ["TermIndex", "RegexIndex", "PatternSetError", "re2_options"]

_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def re2_options(*, case_sensitive: bool) -> Any:
    """Options for compiling a rule's pattern (errors are reported, not logged by re2)."""
    options = re2.Options()
    options.case_sensitive = case_sensitive
    options.log_errors = False
    return options


class PatternSetError(ValueError):
    """Regex rules that each compile, but not together into one re2 set (its memory
    budget); ``str()`` says so for the rules file's errors."""


def _encodable(text: str) -> str:
    """``text`` with lone surrogates (which JSON allows) replaced, so re2 can encode it."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE_RE.sub("\ufffd", text)
    return text


# Scripts written without spaces between words (Thai, Lao, Myanmar, Khmer, kana, Han):
# there a word's edge can't be seen, so a listed term is taken as a word wherever it is,
# or "match: word" could never hit a Chinese or Japanese sentence.
_UNSPACED_RE = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]"
)


def _joined(before: str, after: str) -> bool:
    """Whether two adjacent characters belong to one word."""
    return (
        is_word_char(before)
        and is_word_char(after)
        and not (_UNSPACED_RE.match(before) or _UNSPACED_RE.match(after))
    )


def _bounded(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is not part of a longer word on either side."""
    if start > 0 and _joined(text[start - 1], text[start]):
        return False
    return not (end < len(text) and _joined(text[end - 1], text[end]))


# English plurals: -es after these endings (bitches, asses, boxes), -s after any other
# (casinos, loans, assholes).
_SIBILANT_ENDINGS = ("s", "x", "z", "ch", "sh")


def _plural_end(text: str, start: int, end: int) -> int | None:
    """Where the English plural of the word ``text[start:end]`` ends, if it is written so
    there (``casino`` in ``online casinos``) and stands as a word; else None."""
    if start > 0 and _joined(text[start - 1], text[start]):
        return None
    suffix = "es" if text.endswith(_SIBILANT_ENDINGS, start, end) else "s"
    stop = end + len(suffix)
    if not text.startswith(suffix, end):
        return None
    return stop if stop == len(text) or not _joined(text[stop - 1], text[stop]) else None


def _differs(match: str, term: str) -> bool:
    return match.casefold() != term.casefold()


def _automaton(entries: dict[str, list[tuple[int, str, bool, bool]]]) -> Any:
    """An Aho-Corasick automaton of ``entries``, or None when there are none."""
    if not entries:
        return None
    automaton = ahocorasick.Automaton()
    for key, listed in entries.items():
        automaton.add_word(key, (len(key), tuple(listed)))
    automaton.make_automaton()
    return automaton


# An automaton, a form of the text, whether only terms long enough to split may hit in
# it, and how its spans map back to the text as sent (None: as they are).
Form = tuple[Any, Normalised, bool, Any]


class TermIndex:
    """Every listed term of every terms rule in one Aho-Corasick automaton per text form.

    A term of words (joined by spaces, hyphens or underscores) is looked for in the phrase
    form of the text, where any separator that joins two words reads as a space, and a
    long one split once (``vi agra``) in its glued form; any other term, such as
    ``100% free``, in the folded text as it is.
    """

    def __init__(self, rules: Iterable[tuple[int, TermsMatcher]]) -> None:
        words: dict[str, list[tuple[int, str, bool, bool]]] = {}
        literal: dict[str, list[tuple[int, str, bool, bool]]] = {}
        for slot, matcher in rules:
            for folded, written in matcher.terms:
                key = phrase_key(folded)
                entries, key = (literal, folded) if key is None else (words, key)
                listed = entries.setdefault(key, [])
                # "french fries" and "french-fries" in one rule are one phrase, counted once.
                if all(other[0] != slot for other in listed):
                    listed.append((slot, written, matcher.whole_words, matcher.plurals))
        # Long words of whole-word rules, to find split once in the glued form. Matched
        # inside words, "vi agra" would join "navi agrarian"; scripts written without
        # spaces are not split by one.
        joinable = {
            key: [entry for entry in listed if entry[2]]
            for key, listed in words.items()
            if joins_when_split(key) and not _UNSPACED_RE.search(key)
        }
        self._words = _automaton(words)
        self._joinable = _automaton({key: listed for key, listed in joinable.items() if listed})
        self._literal = _automaton(literal)

    def _forms(self, subject: Subject, target: str) -> list[Form]:
        """Each automaton with each form of the target's text it is matched against, whether
        only terms long enough to split may hit in that form, and how its spans map to the
        text as sent (None: as they are)."""
        # Each reading: its folded text, whether only terms long enough to split may hit
        # in it, and how its spans map back (None: they are spans of the text as written,
        # since every reading has the text's length).
        raw = subject.raw(target)
        texts = [*letter_readings(raw), glued_symbols_reading(raw), *squeezed_readings(raw)]
        readings: list[tuple[Normalised, bool, Any]] = [(subject.normalised(target), False, None)]
        readings += [(normalise(text), False, None) for text in texts if text is not None]
        overridden = overridden_reading(raw)
        if overridden is not None:
            readings.append((normalise(overridden.text), False, overridden.span_as_sent))
        split = split_digits_reading(raw)
        if split is not None:
            readings.append((normalise(split), True, None))
        forms = []
        for folded, only_long, remap in readings:
            if self._words is not None:
                forms.append((self._words, phrase_form(folded), only_long, remap))
            if self._literal is not None:
                forms.append((self._literal, folded, only_long, remap))
        return forms

    def _split_hits(
        self, phrases: Normalised, slots: frozenset[int]
    ) -> Iterator[tuple[int, tuple[int, int], str]]:
        """Long listed words split once by a space in the phrase form: slot, span, term."""
        glued = Glued(phrases.text)
        found = list(self._joinable.iter(glued.text))
        # Most are the word written whole, found in the phrase form too. Where each word is
        # found there as often as glued, none is split: skip mapping them back.
        glued_words = Counter(glued.text[end + 1 - length : end + 1] for end, (length, _) in found)
        if all(phrases.text.count(word) == count for word, count in glued_words.items()):
            return
        for end_index, (length, listed) in found:
            split = glued.split_span(end_index + 1 - length, end_index + 1)
            if split is None or not _bounded(phrases.text, *split):
                continue
            span = phrases.original_span(*split)
            for slot, written, *_ in listed:
                if slot in slots:
                    yield slot, span, written

    def scan(
        self, subject: Subject, wanted: Mapping[str, frozenset[int]]
    ) -> dict[int, list[Finding]]:
        """Findings per rule slot, for the slots that want each target."""
        found: dict[int, list[Finding]] = {}
        for target, slots in wanted.items():
            if not subject.normalised(target).text:
                continue
            # Per slot, each span of the original text that hit, with the term it hit: one
            # span is one hit, whichever form it was found in.
            spans: dict[int, dict[tuple[int, int], str]] = {}
            for automaton, form, only_long, remap in self._forms(subject, target):
                text = form.text
                for end_index, (length, listed) in automaton.iter(text):
                    start, end = end_index + 1 - length, end_index + 1
                    if only_long and not long_enough_to_split(text[start:end]):
                        continue
                    for slot, written, whole_words, plurals in listed:
                        if slot not in slots:
                            continue
                        stop = end
                        if whole_words and not _bounded(text, start, end):
                            plural = _plural_end(text, start, end) if plurals else None
                            if plural is None:
                                continue
                            stop = plural
                        span = form.original_span(start, stop)
                        if remap is not None:
                            span = remap(*span)
                        spans.setdefault(slot, {}).setdefault(span, written)
                if automaton is self._words and self._joinable is not None:
                    for slot, span, written in self._split_hits(form, slots):
                        if remap is not None:
                            span = remap(*span)
                        spans.setdefault(slot, {}).setdefault(span, written)
            raw = subject.raw(target)
            for slot, hits in spans.items():
                ordered = sorted(hits.items())
                (start, end), written = ordered[0]
                match = raw[start:end]
                note = f"{target} contains the listed term '{written}'"
                if _differs(match, written):
                    note += f" (as '{match}')"
                others = list(dict.fromkeys(term for _, term in ordered))[1:]
                if others:
                    note += ", and also " + ", ".join(f"'{term}'" for term in others[:5])
                finding = Finding(target, match, written, note, count=len(ordered))
                found.setdefault(slot, []).append(finding)
        return found


class RegexIndex:
    """Every regex rule in one re2 set per text form (normalised or raw).

    The set says which patterns match in one linear pass; only those are then searched
    again on their own, for the span to show.
    """

    def __init__(self, rules: Iterable[tuple[int, RegexMatcher]]) -> None:
        self._sets: list[tuple[bool, Any, list[tuple[int, RegexMatcher]]]] = []
        by_form: dict[bool, list[tuple[int, RegexMatcher]]] = {}
        for slot, matcher in rules:
            by_form.setdefault(matcher.raw, []).append((slot, matcher))
        for raw, members in by_form.items():
            pattern_set = re2.Set.SearchSet(re2_options(case_sensitive=raw))
            try:
                for _, matcher in members:
                    pattern_set.Add(matcher.pattern)
                pattern_set.Compile()
            except re2.error:
                raise PatternSetError(
                    f"the {len(members)} regex rules matched on the "
                    f"{'text as sent' if raw else 'normalised text'} are, together, more than "
                    "re2 can compile into one set: shorten the longest patterns (counted "
                    "repeats such as \\pL{100} are the usual cause) or merge some"
                ) from None
            self._sets.append((raw, pattern_set, members))

    def scan(
        self, subject: Subject, wanted: Mapping[str, frozenset[int]]
    ) -> dict[int, list[Finding]]:
        """Findings per rule slot, for the slots that want each target."""
        found: dict[int, list[Finding]] = {}
        for raw, pattern_set, members in self._sets:
            for target, slots in wanted.items():
                text = _encodable(subject.raw(target)) if raw else subject.normalised(target).text
                matched = pattern_set.Match(text) if text else None
                for index in matched or ():
                    slot, matcher = members[index]
                    if slot not in slots:
                        continue
                    spans = [m.span() for m in matcher.compiled.finditer(text)]
                    start, end = spans[0]
                    if raw or start == end:
                        match = text[start:end]
                    else:
                        match = subject.normalised(target).original_text(start, end)
                    match = match.strip()
                    note = f"{target} matches the pattern '{matcher.pattern}' ('{match}')"
                    finding = Finding(target, match, matcher.pattern, note, count=len(spans))
                    found.setdefault(slot, []).append(finding)
        return found
