"""One matcher per rule type: given a submission, what in it the rule finds.

Terms and regex rules are matched together, many rules in one pass (see ``indexes``);
their matchers here only hold the compiled lists. Every other matcher looks at the
fields itself.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from .hosts import find_hosts, find_links, host_in, normalise_host
from .model import Context, Submission
from .normalise import Normalised, normalise

__all__ = [
    "Finding",
    "Subject",
    "Matcher",
    "TermsMatcher",
    "RegexMatcher",
    "LinksMatcher",
    "DomainsMatcher",
    "IpMatcher",
    "EmailMatcher",
    "LengthMatcher",
    "CapsMatcher",
    "RepeatsMatcher",
    "EmptyUserAgentMatcher",
    "UrlInNameMatcher",
    "ClassifierMatcher",
    "canonical_address",
]

# Upper-case letters of the scripts people write comments in; counting with a regex keeps
# the caps check to C speed on long comments.
_UPPER_RE = re.compile("[A-Z\u00c0-\u00d6\u00d8-\u00de\u0391-\u03a9\u0410-\u042f]")
_NON_LETTER_RE = re.compile(r"[\W\d_]+")


@dataclass(frozen=True)
class Finding:
    """What one rule found in one field: the first match, how many, and a sentence."""

    target: str
    match: str
    detail: str
    note: str
    count: int = 1
    score: float | None = None  # only the classifier computes its own score


class Subject:
    """A submission with each field normalised at most once per evaluation."""

    __slots__ = ("submission", "_normalised")

    def __init__(self, submission: Submission) -> None:
        self.submission = submission
        self._normalised: dict[str, Normalised] = {}

    def raw(self, target: str) -> str:
        value: str = getattr(self.submission, target)
        return value

    def normalised(self, target: str) -> Normalised:
        folded = self._normalised.get(target)
        if folded is None:
            folded = self._normalised[target] = normalise(self.raw(target))
        return folded


class Matcher(Protocol):
    def find(self, subject: Subject, targets: tuple[str, ...], context: Context) -> list[Finding]:
        """What this rule finds in the given fields of ``subject``."""
        ...


@dataclass(frozen=True, eq=False)
class TermsMatcher:
    """Listed terms, each as written and as normalised; matched by ``indexes.TermIndex``."""

    terms: tuple[tuple[str, str], ...]
    whole_words: bool
    # A listed word also hits as its English plural (``plurals: true``): see indexes.
    plurals: bool = False

    def find(self, subject: Subject, targets: tuple[str, ...], context: Context) -> list[Finding]:
        raise NotImplementedError("terms are matched many rules at once by TermIndex")


@dataclass(frozen=True, eq=False)
class RegexMatcher:
    """One re2 pattern; matched many rules at once by ``indexes.RegexIndex``."""

    pattern: str
    raw: bool
    compiled: Any = field(repr=False)  # an re2 pattern; google-re2 ships no type hints

    def find(self, subject: Subject, targets: tuple[str, ...], context: Context) -> list[Finding]:
        raise NotImplementedError("regexes are matched many rules at once by RegexIndex")


@dataclass(frozen=True, eq=False)
class LinksMatcher:
    at_least: int

    def find(self, subject: Subject, targets: tuple[str, ...], context: Context) -> list[Finding]:
        links = find_links(subject.raw("content")) if "content" in targets else []
        texts = [link.text for link in links]
        if "author_url" in targets and subject.raw("author_url").strip():
            texts.append(subject.raw("author_url").strip())
        if len(texts) < self.at_least:
            return []
        where = "content and author URL" if len(targets) > 1 else targets[0]
        note = f"{where} carry {len(texts)} links (the limit is {self.at_least - 1})"
        target = "content" if links else "author_url"
        return [Finding(target, texts[0], str(self.at_least), note, count=len(texts))]


@dataclass(frozen=True, eq=False)
class DomainsMatcher:
    domains: frozenset[str]

    def find(self, subject: Subject, targets: tuple[str, ...], context: Context) -> list[Finding]:
        findings = []
        for target in targets:
            hits = []
            for link in find_hosts(subject.raw(target), defanged=True):
                listed = host_in(link.host, self.domains)
                if listed:
                    hits.append((link.text, listed))
            if hits:
                text, listed = hits[0]
                note = f"{target} links to the listed domain '{listed}' ('{text}')"
                findings.append(Finding(target, text, listed, note, count=len(hits)))
        return findings


@dataclass(frozen=True, eq=False)
class IpMatcher:
    # Network addresses as integers per (version, prefix length): a lookup costs one set
    # probe per prefix length in use, however long the list.
    networks: dict[tuple[int, int], frozenset[int]]

    def find(self, subject: Subject, targets: tuple[str, ...], context: Context) -> list[Finding]:
        text = subject.raw("ip").strip()
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return []
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        bits = address.max_prefixlen
        value = int(address)
        for (version, prefix), members in self.networks.items():
            if version == address.version and (value >> (bits - prefix)) in members:
                network = ipaddress.ip_network(
                    (value >> (bits - prefix) << (bits - prefix), prefix)
                )
                note = f"ip {text} is in the listed network {network}"
                return [Finding("ip", text, str(network), note)]
        return []


def canonical_address(address: str) -> str:
    """An address as lists compare it: lower case, without a ``+tag`` in the local part.

    The domain is compared as DNS sees it, as ``domains`` lists are: intake accepts
    ``x@ｍａｉｌｉｎａｔｏｒ.com`` and ``x@bücher.example``, which mail delivers to the
    plain and the punycode domain.
    """
    local, _, domain = address.strip().lower().rpartition("@")
    domain = normalise_host(domain) or domain
    return f"{local.split('+', 1)[0]}@{domain}" if local else domain


@dataclass(frozen=True, eq=False)
class EmailMatcher:
    addresses: frozenset[str]
    domains: frozenset[str]

    def find(self, subject: Subject, targets: tuple[str, ...], context: Context) -> list[Finding]:
        text = subject.raw("author_email").strip()
        if "@" not in text:
            return []
        address = canonical_address(text)
        if address in self.addresses:
            note = f"author email '{text}' is on the list of addresses"
            return [Finding("author_email", text, address, note)]
        listed = host_in(address.rpartition("@")[2], self.domains)
        if listed:
            note = f"author email '{text}' is at the listed domain '{listed}'"
            return [Finding("author_email", text, listed, note)]
        return []


@dataclass(frozen=True, eq=False)
class LengthMatcher:
    minimum: int | None
    maximum: int | None

    def find(self, subject: Subject, targets: tuple[str, ...], context: Context) -> list[Finding]:
        findings = []
        for target in targets:
            size = len(subject.raw(target).strip())
            if self.minimum is not None and size < self.minimum:
                note = f"{target} is {size} characters long, under the minimum of {self.minimum}"
            elif self.maximum is not None and size > self.maximum:
                note = f"{target} is {size} characters long, over the maximum of {self.maximum}"
            else:
                continue
            findings.append(Finding(target, subject.raw(target)[:80], str(size), note, size))
        return findings


@dataclass(frozen=True, eq=False)
class CapsMatcher:
    min_share: float
    min_letters: int

    def find(self, subject: Subject, targets: tuple[str, ...], context: Context) -> list[Finding]:
        findings = []
        for target in targets:
            text = subject.raw(target)
            letters = _NON_LETTER_RE.sub("", text)
            if len(letters) < self.min_letters:
                continue
            upper = len(letters) - len(_UPPER_RE.sub("", letters))
            share = upper / len(letters)
            if share >= self.min_share:
                note = f"{target} is {share:.0%} capital letters ({upper} of {len(letters)})"
                findings.append(Finding(target, text[:80], f"{share:.2f}", note, upper))
        return findings


@dataclass(frozen=True, eq=False)
class RepeatsMatcher:
    at_least: int
    pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # A backreference, so Python's re: the pattern is fixed by us, not by the file.
        compiled = re.compile(rf"(\S)\1{{{self.at_least - 1},}}")
        object.__setattr__(self, "pattern", compiled)

    def find(self, subject: Subject, targets: tuple[str, ...], context: Context) -> list[Finding]:
        findings = []
        for target in targets:
            match = self.pattern.search(subject.raw(target))
            if match:
                run = match.group()
                note = f"{target} repeats '{run[0]}' {len(run)} times in a row"
                findings.append(Finding(target, run, run[0], note, len(run)))
        return findings


@dataclass(frozen=True, eq=False)
class EmptyUserAgentMatcher:
    def find(self, subject: Subject, targets: tuple[str, ...], context: Context) -> list[Finding]:
        if subject.raw("user_agent").strip():
            return []
        return [Finding("user_agent", "", "", "the browser sent no user agent")]


@dataclass(frozen=True, eq=False)
class UrlInNameMatcher:
    def find(self, subject: Subject, targets: tuple[str, ...], context: Context) -> list[Finding]:
        name = subject.raw("author_name")
        for link in find_hosts(name):
            if link.text.lower().startswith(("http", "www.")) or "." in link.host:
                note = f"the author name contains a web address '{link.text}'"
                return [Finding("author_name", link.text, link.host, note)]
        return []


@dataclass(frozen=True, eq=False)
class ClassifierMatcher:
    """Turns the learned classifier's probability into a score.

    Between ``ham_below`` and ``spam_above`` the classifier is unsure and adds nothing.
    Above, it adds up to ``weight`` (at probability 1); below, it takes off up to
    ``weight`` (at probability 0): ``weight * (p - 0.5) * 2`` in both cases.
    """

    weight: float
    spam_above: float
    ham_below: float

    def find(self, subject: Subject, targets: tuple[str, ...], context: Context) -> list[Finding]:
        if context.classify is None:
            return []
        result = context.classify("\n".join(subject.raw(target) for target in targets))
        if not result.ready:
            return []
        probability = result.probability
        if self.ham_below < probability < self.spam_above:
            return []
        score = round(self.weight * (probability - 0.5) * 2, 4)
        tokens = ", ".join(result.tokens[:8]) or "none given"
        verdict = "spam" if score > 0 else "not spam"
        note = (
            f"the learned classifier rates {' and '.join(targets)} {verdict} "
            f"(probability {probability:.2f}); tokens that drove it: {tokens}"
        )
        match = ", ".join(result.tokens[:8])
        return [Finding(targets[0], match, f"{probability:.4f}", note, score=score)]
