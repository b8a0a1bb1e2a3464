"""A loaded rules file: its rules and settings per site, compiled once and shared."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .indexes import PatternSetError, RegexIndex, TermIndex
from .matchers import Matcher, RegexMatcher, TermsMatcher
from .model import SiteSettings

__all__ = ["Rule", "CompiledRules", "RuleSet"]

MatcherT = TypeVar("MatcherT")
IndexT = TypeVar("IndexT")


# A file's path, mtime, ctime, size and inode: what identifies its content unread.
FileSignature = tuple[str, int, int, int, int]


def file_signature(path: Path) -> FileSignature:
    """What identifies the file's current content without reading it.

    The change time too: an edit of the same size whose modification time is put back
    (`cp -p`, `rsync -a`, `tar` keep the source's) changed neither mtime nor size, and was
    never picked up. No tool can set ctime: every write, and the utime that puts mtime
    back, moves it.
    """
    try:
        stat = path.stat()
    except OSError:
        return (str(path), -1, -1, -1, -1)
    return (str(path), stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size, stat.st_ino)


@dataclass(frozen=True, eq=False)
class Rule:
    """One rule as it applies to one site, its matcher compiled."""

    id: str
    type: str
    targets: tuple[str, ...]
    score: float
    outcome: str | None
    enabled: bool
    shadow: bool
    explain: str | None
    description: str
    matcher: Matcher


@dataclass(frozen=True, eq=False)
class CompiledRules:
    """A site's rules ready to evaluate: the indexes, and which rule wants which field."""

    rules: tuple[Rule, ...]
    terms: TermIndex | None
    regexes: RegexIndex | None
    terms_wanted: dict[str, frozenset[int]]
    regexes_wanted: dict[str, frozenset[int]]
    others: tuple[int, ...]


def _wanted(rules: tuple[Rule, ...], rule_type: str) -> dict[str, frozenset[int]]:
    slots: dict[str, set[int]] = {}
    for slot, rule in enumerate(rules):
        if rule.enabled and rule.type == rule_type:
            for target in rule.targets:
                slots.setdefault(target, set()).add(slot)
    return {target: frozenset(members) for target, members in slots.items()}


class RuleSet:
    """Immutable rules and settings from one file, with a content hash as its version.

    Sites whose overrides leave the matchers alone share the default site's indexes; a
    site that changes a list or a pattern gets its own, built when the rules load.
    """

    def __init__(
        self,
        *,
        version: str,
        source: str,
        rules: tuple[Rule, ...],
        settings: SiteSettings,
        sites: dict[str, tuple[tuple[Rule, ...], SiteSettings]],
        dependencies: tuple[Path, ...] = (),
        dependency_signatures: tuple[FileSignature, ...] = (),
    ) -> None:
        self._version = version
        self._source = source
        self._rules = rules
        self._settings = settings
        self._sites = sites
        self._dependencies = dependencies
        self._dependency_signatures = dependency_signatures
        self._lock = threading.RLock()
        self._indexes: dict[tuple[object, ...], Any] = {}
        self._compiled: dict[str, CompiledRules] = {}
        # Build the shared indexes now, each site's too, so loading pays for them and no
        # request does, and a set of patterns re2 cannot compile fails the load (naming
        # the site), not every comment to that site with a 500.
        self._default = self._compile(rules)
        for site in sites:
            try:
                self.compiled_for(site)
            except PatternSetError as error:
                raise PatternSetError(f"site {site}: rules: {error}") from None

    @property
    def version(self) -> str:
        """sha256 of the file's content and of every list file it reads."""
        return self._version

    @property
    def source(self) -> str:
        """Where the rules came from: a path, or ``<string>``."""
        return self._source

    @property
    def dependencies(self) -> tuple[Path, ...]:
        """The list files read through ``file:``; editing one changes the rules."""
        return self._dependencies

    @property
    def dependency_signatures(self) -> tuple[FileSignature, ...]:
        """Each list file's signature as it was just before it was read: an edit made
        while the rules loaded then differs from it, and is loaded at the next check."""
        return self._dependency_signatures

    @property
    def sites(self) -> tuple[str, ...]:
        """The sites that the file configures by name."""
        return tuple(self._sites)

    def settings_for(self, site: str) -> SiteSettings:
        """The effective settings of ``site`` (the file's own when it names no such site)."""
        entry = self._sites.get(site)
        return entry[1] if entry else self._settings

    def rules_for(self, site: str) -> tuple[Rule, ...]:
        """The effective rules of ``site``, in file order."""
        entry = self._sites.get(site)
        return entry[0] if entry else self._rules

    def compiled_for(self, site: str) -> CompiledRules:
        """The compiled rules for ``site``, built once per rule set and site."""
        rules = self.rules_for(site)
        if rules is self._rules:
            return self._default
        compiled = self._compiled.get(site)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(site)
                if compiled is None:
                    compiled = self._compiled[site] = self._compile(rules)
        return compiled

    def _compile(self, rules: tuple[Rule, ...]) -> CompiledRules:
        term_rules = [
            (slot, rule.matcher)
            for slot, rule in enumerate(rules)
            if isinstance(rule.matcher, TermsMatcher)
        ]
        regex_rules = [
            (slot, rule.matcher)
            for slot, rule in enumerate(rules)
            if isinstance(rule.matcher, RegexMatcher)
        ]
        others = tuple(
            slot
            for slot, rule in enumerate(rules)
            if rule.enabled and not isinstance(rule.matcher, TermsMatcher | RegexMatcher)
        )
        with self._lock:
            terms = self._cached(term_rules, TermIndex) if term_rules else None
            regexes = self._cached(regex_rules, RegexIndex) if regex_rules else None
        return CompiledRules(
            rules=rules,
            terms=terms,
            regexes=regexes,
            terms_wanted=_wanted(rules, "terms"),
            regexes_wanted=_wanted(rules, "regex"),
            others=others,
        )

    def _cached(
        self,
        members: list[tuple[int, MatcherT]],
        build: Callable[[list[tuple[int, MatcherT]]], IndexT],
    ) -> IndexT:
        # Keyed by matcher identity: sites that only change scores reuse the same index.
        key = (build, *((slot, id(matcher)) for slot, matcher in members))
        index = self._indexes.get(key)
        if index is None:
            index = self._indexes[key] = build(members)
        return index  # type: ignore[return-value]
