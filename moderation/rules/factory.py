"""Compiling one checked rule spec into its matcher; lists are read and normalised here."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

import re2

from .hosts import normalise_host
from .indexes import re2_options
from .matchers import (
    CapsMatcher,
    ClassifierMatcher,
    DomainsMatcher,
    EmailMatcher,
    EmptyUserAgentMatcher,
    IpMatcher,
    LengthMatcher,
    LinksMatcher,
    Matcher,
    RegexMatcher,
    RepeatsMatcher,
    TermsMatcher,
    UrlInNameMatcher,
    canonical_address,
)
from .normalise import normalise

__all__ = ["MATCHER_KEYS", "SpecError", "build_matcher"]

# A list file's entries, each with where it is ("line 3 of 'lists/x.txt'").
ListReader = Callable[[str, str], list[tuple[str, str]]]

# The keys each type's matcher is built from; a per-site override that changes none of
# them shares the compiled matcher (and its index) with the file's own rule.
MATCHER_KEYS: dict[str, tuple[str, ...]] = {
    "terms": ("terms", "match", "plurals"),
    "regex": ("pattern", "raw"),
    "links": ("at_least",),
    "domains": ("domains",),
    "ip": ("cidrs",),
    "email": ("addresses", "domains"),
    "length": ("min", "max"),
    "caps": ("min_share", "min_letters"),
    "repeats": ("at_least",),
    "empty_user_agent": (),
    "url_in_name": (),
    "classifier": ("weight", "spam_above", "ham_below"),
}


class SpecError(Exception):
    """A rule's setting that passed the schema but can't be compiled."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def _disposable_domains(key: str) -> list[str]:
    try:
        from disposable_email_domains import blocklist
    except ImportError as exc:
        raise SpecError(
            key, "'list:disposable' needs the disposable-email-domains package"
        ) from exc
    return sorted(blocklist)


def _expand(
    values: list[str], key: str, read_list: ListReader, *, domains: bool
) -> list[tuple[str, str]]:
    """The entries of a list setting, with ``file:`` (and for domains ``list:``) expanded.

    Each entry comes with how an error names it: quoted when written in the rules, by
    line when read from a file. A file's content is never quoted back, because the YAML
    of rules/test and rules/backtest may name any file beside the rules file (the
    instance's secret key, say) and would read it out in the 422.
    """
    entries: list[tuple[str, str]] = []
    for value in values:
        if value.startswith("file:"):
            entries.extend(read_list(value, key))
        elif value.startswith("list:"):
            if not domains or value != "list:disposable":
                raise SpecError(key, f"unknown list '{value}' (known: list:disposable for domains)")
            entries.extend((entry, repr(entry)) for entry in _disposable_domains(key))
        else:
            entries.append((value, repr(value)))
    return entries


def _terms(spec: dict[str, Any], read_list: ListReader) -> TermsMatcher:
    terms: dict[str, str] = {}
    for written, where in _expand(spec["terms"], "terms", read_list, domains=False):
        folded = normalise(written).text
        if not folded:
            raise SpecError("terms", f"the term {where} is empty once normalised")
        terms.setdefault(folded, written)
    if not terms:
        raise SpecError("terms", "the list is empty")
    pairs = tuple((folded, written) for folded, written in terms.items())
    return TermsMatcher(pairs, whole_words=spec.get("match", "word") == "word",
                        plurals=spec.get("plurals", False))


def _regex(spec: dict[str, Any]) -> RegexMatcher:
    raw = spec.get("raw", False)
    pattern = spec["pattern"]
    try:
        compiled = re2.compile(pattern, re2_options(case_sensitive=raw))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise SpecError(
            "pattern", f"{reason} (patterns use re2 syntax: no backreferences or lookaround)"
        ) from exc
    # Not only "" itself: "\\b" matches no empty text, but an empty span in every word.
    if any(found is not None and found.start() == found.end()
           for found in map(compiled.search, _EMPTY_MATCH_PROBES)):
        raise SpecError("pattern", "can match empty text, so it would hit every comment")
    # Rules are matched together in one re2 set, which has a memory budget that a pattern
    # compiling on its own may still exceed (\\pL{300}): the whole file would not load.
    alone = re2.Set.SearchSet(re2_options(case_sensitive=raw))
    try:
        alone.Add(pattern)
        alone.Compile()
    except re2.error:
        raise SpecError(
            "pattern", "is too large for re2 to match among the other patterns: shorten its "
            "counted repeats (such as \\pL{300})") from None
    return RegexMatcher(pattern, raw, compiled)


# Texts a pattern is tried on when it loads: one that finds an empty span in any of them
# would hit (almost) every comment.
_EMPTY_MATCH_PROBES = ("", "a", " ", "a b", "1", "a.")


# What normalise_host makes of a host name: labels of letters, digits, '-' and '_' (seen
# in real host names), at least two of them, 253 characters at most.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_RE = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})+")


def _domains(values: list[str], key: str, read_list: ListReader) -> frozenset[str]:
    domains = set()
    for entry, where in _expand(values, key, read_list, domains=True):
        host = normalise_host(entry)
        if not _HOST_RE.fullmatch(host):
            # A URL, a space or a single label would be kept and then never match.
            raise SpecError(
                key, f"{where} is not a domain name (write the host alone, like spam.example)"
            )
        domains.add(host)
    return frozenset(domains)


_V4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _networks(values: list[str], read_list: ListReader) -> IpMatcher:
    networks: dict[tuple[int, int], set[int]] = {}
    for entry, where in _expand(values, "cidrs", read_list, domains=False):
        try:
            network = ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError as exc:
            # ipaddress's reason quotes the entry: only given for one written in the rules.
            reason = f": {exc}" if where == repr(entry) else ""
            raise SpecError("cidrs", f"{where} is not an IP network{reason}") from exc
        if network.version == 6 and network.prefixlen >= 96 and network.subnet_of(_V4_MAPPED):
            # The matcher compares an IPv4-mapped address (::ffff:1.2.3.4) as the IPv4
            # address it is, so a mapped network is listed as its IPv4 network too.
            mapped = int(network.network_address) & 0xFFFFFFFF
            network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
        prefix = network.prefixlen
        value = int(network.network_address) >> (network.max_prefixlen - prefix)
        networks.setdefault((network.version, prefix), set()).add(value)
    return IpMatcher({key: frozenset(members) for key, members in networks.items()})


def _email(spec: dict[str, Any], read_list: ListReader) -> EmailMatcher:
    addresses = set()
    for entry, where in _expand(spec.get("addresses", []), "addresses", read_list, domains=False):
        if "@" not in entry:
            raise SpecError("addresses", f"{where} is not an email address")
        addresses.add(canonical_address(entry))
    domains = _domains(spec.get("domains", []), "domains", read_list)
    return EmailMatcher(frozenset(addresses), domains)


def build_matcher(spec: dict[str, Any], read_list: ListReader) -> Matcher:
    """The compiled matcher for a rule spec that the schema accepted."""
    rule_type = spec["type"]
    if rule_type == "terms":
        return _terms(spec, read_list)
    if rule_type == "regex":
        return _regex(spec)
    # An empty list matches nothing: refused, as a terms rule's is, rather than loaded as a
    # rule that looks in force.
    if rule_type == "domains":
        domains = _domains(spec["domains"], "domains", read_list)
        if not domains:
            raise SpecError("domains", "the list is empty")
        return DomainsMatcher(domains)
    if rule_type == "ip":
        networks = _networks(spec["cidrs"], read_list)
        if not networks.networks:
            raise SpecError("cidrs", "the list is empty")
        return networks
    if rule_type == "email":
        email = _email(spec, read_list)
        if not email.addresses and not email.domains:
            raise SpecError("domains", "the addresses and the domains are both empty")
        return email
    simple: dict[str, Callable[[], Matcher]] = {
        "links": lambda: LinksMatcher(spec["at_least"]),
        "length": lambda: LengthMatcher(spec.get("min"), spec.get("max")),
        "caps": lambda: CapsMatcher(spec["min_share"], spec.get("min_letters", 20)),
        "repeats": lambda: RepeatsMatcher(spec["at_least"]),
        "empty_user_agent": EmptyUserAgentMatcher,
        "url_in_name": UrlInNameMatcher,
        "classifier": lambda: ClassifierMatcher(
            spec.get("weight", 1.0), spec.get("spam_above", 0.9), spec.get("ham_below", 0.1)
        ),
    }
    return simple[rule_type]()
