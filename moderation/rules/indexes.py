"""Many rules matched in one pass: all listed terms in one automaton, all regexes in one set."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import ahocorasick
import re2

from .matchers import Finding, RegexMatcher, Subject, TermsMatcher
from .normalise import is_word_char

__all__ = ["TermIndex", "RegexIndex", "re2_options"]

_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def re2_options(*, case_sensitive: bool) -> Any:
    """Options for compiling a rule's pattern (errors are reported, not logged by re2)."""
    options = re2.Options()
    options.case_sensitive = case_sensitive
    options.log_errors = False
    return options


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


def _differs(match: str, term: str) -> bool:
    return match.casefold() != term.casefold()


class TermIndex:
    """Every listed term of every terms rule in one Aho-Corasick automaton."""

    def __init__(self, rules: Iterable[tuple[int, TermsMatcher]]) -> None:
        entries: dict[str, list[tuple[int, str, bool]]] = {}
        for slot, matcher in rules:
            for folded, written in matcher.terms:
                entries.setdefault(folded, []).append((slot, written, matcher.whole_words))
        self._automaton = ahocorasick.Automaton()
        for folded, listed in entries.items():
            self._automaton.add_word(folded, (len(folded), tuple(listed)))
        self._empty = not entries
        if not self._empty:
            self._automaton.make_automaton()

    def scan(
        self, subject: Subject, wanted: Mapping[str, frozenset[int]]
    ) -> dict[int, list[Finding]]:
        """Findings per rule slot, for the slots that want each target."""
        found: dict[int, list[Finding]] = {}
        if self._empty:
            return found
        for target, slots in wanted.items():
            folded = subject.normalised(target)
            text = folded.text
            if not text:
                continue
            first: dict[int, tuple[int, int, str]] = {}
            terms: dict[int, list[str]] = {}
            counts: dict[int, int] = {}
            for end_index, (length, listed) in self._automaton.iter(text):
                start, end = end_index + 1 - length, end_index + 1
                for slot, written, whole_words in listed:
                    if slot not in slots or (whole_words and not _bounded(text, start, end)):
                        continue
                    counts[slot] = counts.get(slot, 0) + 1
                    first.setdefault(slot, (start, end, written))
                    seen = terms.setdefault(slot, [])
                    if written not in seen:
                        seen.append(written)
            for slot, (start, end, written) in first.items():
                match = folded.original_text(start, end)
                note = f"{target} contains the listed term '{written}'"
                if _differs(match, written):
                    note += f" (as '{match}')"
                others = terms[slot][1:]
                if others:
                    note += ", and also " + ", ".join(f"'{term}'" for term in others[:5])
                finding = Finding(target, match, written, note, count=counts[slot])
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
            for _, matcher in members:
                pattern_set.Add(matcher.pattern)
            pattern_set.Compile()
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
