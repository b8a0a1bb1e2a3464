"""Reading a rules file: YAML, checked by the schemas, lists expanded, matchers compiled.

Every problem is reported with the file, the rule (or site) and the key at fault, and
all problems found are reported at once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError

from .explain import check_template
from .factory import MATCHER_KEYS, SpecError, build_matcher
from .indexes import PatternSetError
from .matchers import RegexMatcher
from .model import LIVE, SETTINGS_SECTIONS, SHADOW, SiteSettings, Thresholds
from .ruleset import FileSignature, Rule, RuleSet, file_signature
from .schema import OVERRIDABLE_NEVER, RULE_SCHEMAS, SECTION_SCHEMAS, FileSchema, SiteSchema

__all__ = ["RulesError", "load_rules", "parse_rules", "default_rules_path", "BUILTIN_RULES"]

# Hits the engine adds itself; a file may not define rules with these ids.
BUILTIN_RULES = (
    "TRUST_NEW",
    "TRUST_KNOWN",
    "TRUST_BAD_RUN",
    "HONEYPOT",
    "FORM_TOO_FAST",
    "PRE_MODERATE",
)


class RulesError(ValueError):
    """A rules file that can't be used; each message names the file, rule and key."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML that refuses a key given twice (plain YAML keeps the last silently)."""


def _mapping_without_duplicates(loader: Any, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    # The mapping's own keys, before a merge key (<<: *base) brings in others: overriding
    # a merged key is what merging is for, not a key given twice.
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node)
        if isinstance(key, str | int | float | bool) and key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice", key_node.start_mark
            )
        seen.add(key)
    loader.flatten_mapping(node)
    return dict(loader.construct_mapping(node))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def default_rules_path() -> Path:
    """The rules file shipped in the package, used when no other is configured."""
    return Path(__file__).with_name("default_rules.yaml")


# The largest rules file and `file:` list taken, in bytes. A rules file is a few KB and a
# list of 100,000 terms about 1.5 MB; a 50 MB file (a dump named by mistake) took each
# gunicorn process past 1.6 GB and minutes to parse, every worker at once, the watcher
# blind to later edits meanwhile (found by fault injection). Past these, the file is
# refused like any other broken one, and the last good rules stay.
RULES_FILE_MAX_BYTES = 1 << 20
LIST_FILE_MAX_BYTES = 8 << 20
# What the rules may expand to once YAML's aliases are followed (each counted where it is
# used), in characters of text and in values. An alias repeats what it names at no cost
# in the file: 105 KB of YAML (a 100 KB string, a list of 1,000 aliases to it, 20 rules
# using that list) took a worker to 4.1 GB and 25 s (found by an audit).
EXPANDED_MAX_CHARACTERS = 8 << 20
EXPANDED_MAX_VALUES = 1_000_000
# The size of the regex rules' compiled programs together (re2's count of instructions).
# Compiling takes about 0.4 us an instruction, three times (the pattern, a set of one to
# check it fits, the set of all): 3,000 patterns of \pL{30} took 57 s, past the worker's
# timeout (found by an audit). The shipped rules need 3,300; this is half a second.
REGEX_PROGRAM_BUDGET = 400_000


def _expands_too_far(data: Any) -> bool:
    """Whether ``data``, aliases followed, holds more than the limits above allow."""
    characters = values = 0
    pending = [data]
    while pending:
        value = pending.pop()
        values += 1
        if isinstance(value, str):
            characters += len(value)
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        if characters > EXPANDED_MAX_CHARACTERS or values > EXPANDED_MAX_VALUES:
            return True
    return False


def _read_at_most(path: Path, limit: int) -> bytes:
    with path.open("rb") as file:
        content = file.read(limit + 1)
    if len(content) > limit:
        raise ValueError(f"it is over {limit >> 20} MiB, the most taken")
    return content


def load_rules(path: str | Path) -> RuleSet:
    """Load and check the rules file at ``path``; raises RulesError saying what is wrong."""
    path = Path(path)
    try:
        text = _read_at_most(path, RULES_FILE_MAX_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RulesError([f"{path}: cannot read the rules file: {exc}"]) from exc
    return parse_rules(text, source=str(path), base_dir=path.parent)


def parse_rules(text: str, source: str = "<string>", base_dir: str | Path | None = None) -> RuleSet:
    """Check and compile rules given as YAML text; ``file:`` lists resolve in ``base_dir``."""
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RulesError([f"{source}: {where}{problem}"]) from exc
    if _expands_too_far(data):
        raise RulesError([
            f"{source}: the rules expand to more than {EXPANDED_MAX_CHARACTERS:,} characters "
            f"or {EXPANDED_MAX_VALUES:,} values once YAML's aliases (*name) are followed: "
            "put long lists in a `file:` list, or use fewer aliases"])
    return _Builder(source, Path(base_dir) if base_dir is not None else None).build(data)


def _flatten(messages: Any, path: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """marshmallow's nested error dict as (dotted key, message) pairs."""
    if isinstance(messages, dict):
        pairs = []
        for key, value in messages.items():
            step = () if key == "_schema" else (str(key),)
            pairs.extend(_flatten(value, path + step))
        return pairs
    if isinstance(messages, list):
        return [pair for message in messages for pair in _flatten(message, path)]
    return [(".".join(path) or "(file)", str(messages))]


class _Builder:
    def __init__(self, source: str, base_dir: Path | None) -> None:
        self.source = source
        self.base_dir = base_dir
        self.errors: list[str] = []
        self.file_cache: dict[Path, list[tuple[str, str]]] = {}
        self.file_hashes: dict[str, str] = {}
        self.file_signatures: dict[Path, FileSignature] = {}
        self.regex_program = 0  # instructions compiled so far (REGEX_PROGRAM_BUDGET)

    def fail(self, where: str, key: str, message: str) -> None:
        place = f"{where}: " if where else ""
        self.errors.append(f"{self.source}: {place}{key}: {message}")

    def build(self, data: Any) -> RuleSet:
        if not isinstance(data, dict):
            raise RulesError([f"{self.source}: the file must be a mapping with 'version: 1'"])
        try:
            FileSchema().load(data)
        except ValidationError as exc:
            # Sorted: marshmallow names unknown keys in a set's order, different each run.
            for key, message in sorted(_flatten(exc.messages)):
                self.fail("", key, message)
        raw_rules = data.get("rules") or []
        rules = self._rules(raw_rules if isinstance(raw_rules, list) else [])
        settings = self._settings("", [data])
        sites = self._sites(data.get("sites"), data, raw_rules, rules)
        if not self.errors:
            self._check_regex_sets([tuple(rules.values()), *(site[0] for site in sites.values())])
        if self.errors:
            raise RulesError(self.errors)
        canonical = json.dumps(
            {"rules": data, "files": self.file_hashes}, sort_keys=True, default=str
        )
        try:
            return RuleSet(
                version=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
                source=self.source,
                rules=tuple(rules.values()),
                settings=settings,
                sites=sites,
                dependencies=tuple(self.file_cache),
                dependency_signatures=tuple(
                    self.file_signatures[path] for path in self.file_cache
                ),
            )
        except PatternSetError as error:
            # Named as the other errors name a place: "site news: rules: ..." or "rules: ..."
            where = str(error) if str(error).startswith("site ") else f"rules: {error}"
            raise RulesError([f"{self.source}: {where}"]) from None

    def _check_regex_sets(self, rule_sets: list[tuple[Rule, ...]]) -> None:
        """Each site that changes a regex rule's pattern compiles its own set of all the
        regex rules when the file loads: 30 such sites made a file of three \\pL{30}
        patterns load in a second, and it grows with each (found by a review). Those sets
        together have the same budget as the patterns."""
        sets: dict[tuple[tuple[int, int], ...], int] = {}
        for rule_set in rule_sets:
            regexes = [(slot, rule.matcher) for slot, rule in enumerate(rule_set)
                       if isinstance(rule.matcher, RegexMatcher)]
            key = tuple((slot, id(matcher)) for slot, matcher in regexes)
            sets[key] = sum(matcher.compiled.programsize for _, matcher in regexes)
        if sum(sets.values()) > REGEX_PROGRAM_BUDGET:
            self.fail("sites", "rules", (
                f"the {len(sets)} sets of regex rules (one for the file, and one for each "
                "site that changes a pattern) compile to more than "
                f"{REGEX_PROGRAM_BUDGET:,} re2 instructions together: change fewer patterns "
                "per site, or shorten the longest"))

    def _rules(self, raw_rules: list[Any]) -> dict[str, Rule]:
        rules: dict[str, Rule] = {}
        for number, raw in enumerate(raw_rules, start=1):
            if not isinstance(raw, dict):
                self.fail(f"rule #{number}", "(rule)", "must be a mapping with 'id' and 'type'")
                continue
            rule_id = raw.get("id")
            # Any YAML value may stand here, a list or a mapping too: only a string is an
            # id to look up; the schema refuses anything else, naming the rule by number.
            where = f"rule {rule_id}" if isinstance(rule_id, str) else f"rule #{number}"
            if isinstance(rule_id, str) and rule_id in rules:
                self.fail(where, "id", "the same id is used by an earlier rule")
                continue
            if isinstance(rule_id, str) and rule_id in BUILTIN_RULES:
                self.fail(where, "id", "this id is reserved for the engine's own hits")
                continue
            rule = self._rule(where, raw)
            if rule is not None:
                rules[rule.id] = rule
        return rules

    def _rule(
        self,
        where: str,
        raw: dict[str, Any],
        base: Rule | None = None,
        base_raw: dict[str, Any] | None = None,
    ) -> Rule | None:
        rule_type = raw.get("type")
        schema_class = RULE_SCHEMAS.get(rule_type) if isinstance(rule_type, str) else None
        if schema_class is None:
            known = ", ".join(RULE_SCHEMAS)
            if rule_type is None:  # not "unknown rule type None": the key is missing
                self.fail(where, "type", f"missing (one of {known})")
            else:
                self.fail(where, "type", f"unknown rule type {rule_type!r} (one of {known})")
            return None
        try:
            spec = schema_class().load(raw)
        except ValidationError as exc:
            for key, message in _flatten(exc.messages):
                self.fail(where, key, message)
            return None
        if "explain" in spec:
            problem = check_template(spec["explain"])
            if problem:
                self.fail(where, "explain", problem)
                return None
        keys = MATCHER_KEYS[spec["type"]]
        if (
            base is not None
            and base_raw is not None
            and all(raw.get(key) == base_raw.get(key) for key in keys)
        ):
            matcher = base.matcher  # unchanged lists and patterns: share the compiled matcher
        elif spec["type"] == "regex" and self.regex_program > REGEX_PROGRAM_BUDGET:
            return None  # over the budget: said once, and no more compiled
        else:
            try:
                matcher = build_matcher(spec, self.read_list)
            except SpecError as exc:
                self.fail(where, exc.key, exc.message)
                return None
            if isinstance(matcher, RegexMatcher):
                self.regex_program += matcher.compiled.programsize
                if self.regex_program > REGEX_PROGRAM_BUDGET:
                    self.fail(where, "pattern", (
                        f"the regex rules up to this one compile to more than "
                        f"{REGEX_PROGRAM_BUDGET:,} re2 instructions together, more than "
                        "loads in good time: shorten counted repeats (\\pL{30} alone is "
                        "36,000), merge patterns, or list words in a terms rule"))
                    return None
        return Rule(
            id=spec["id"],
            type=spec["type"],
            targets=tuple(spec.get("targets") or schema_class.default_targets),
            score=float(spec.get("score", 0.0)),
            outcome=spec.get("outcome"),
            enabled=spec.get("enabled", True),
            shadow=spec.get("mode", LIVE) == SHADOW,
            explain=spec.get("explain"),
            description=spec.get("description", ""),
            matcher=matcher,
        )

    def read_list(self, reference: str, key: str) -> list[tuple[str, str]]:
        """The entries of a ``file:`` list, each with its line: ``#`` comments and blanks skipped.

        Errors name an entry by its line, never by its content (see ``factory._expand``).
        """
        relative = reference.removeprefix("file:").strip()
        if self.base_dir is None:
            raise SpecError(key, f"'{reference}': file lists need a rules file to be relative to")
        base = self.base_dir.resolve()
        path = (base / relative).resolve()
        if not path.is_relative_to(base):
            raise SpecError(key, f"'{reference}' is outside the rules file's folder")
        if path not in self.file_cache:
            self.file_signatures[path] = file_signature(path)  # before the read: see RuleSet
            try:
                content = _read_at_most(path, LIST_FILE_MAX_BYTES)
                # utf-8-sig: Windows editors start a UTF-8 file with a byte-order mark.
                text = content.decode("utf-8-sig")
            except FileNotFoundError as exc:
                raise SpecError(key, f"file '{relative}' not found (looked for {path})") from exc
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise SpecError(key, f"file '{relative}' can't be read: {exc}") from exc
            self.file_hashes[relative] = hashlib.sha256(content).hexdigest()
            entries = []
            for number, line in enumerate(text.splitlines(), start=1):
                entry = line.split(" #", 1)[0].strip()
                if entry and not entry.startswith("#"):
                    entries.append((entry, f"line {number} of '{relative}'"))
            self.file_cache[path] = entries
        return self.file_cache[path]

    def _settings(self, where: str, layers: list[dict[str, Any]]) -> SiteSettings:
        sections = {}
        for name, section_class in SETTINGS_SECTIONS.items():
            values: dict[str, Any] = {}
            for layer in layers:
                if isinstance(layer.get(name), dict):
                    values.update(layer[name])
            try:
                loaded = SECTION_SCHEMAS[name]().load(values)
            except ValidationError:
                continue  # reported when the file or the site was checked as a whole
            known = {item.name for item in dataclass_fields(section_class)}
            sections[name] = section_class(**{k: v for k, v in loaded.items() if k in known})
        thresholds = sections.get("thresholds", Thresholds())
        if isinstance(thresholds, Thresholds) and thresholds.pending > thresholds.spam:
            self.fail(where, "thresholds.pending", "must not be above thresholds.spam")
        settings = SiteSettings(**sections)
        token = settings.form_token
        if token.enabled and token.min_seconds >= token.max_age_seconds:
            # No token could be old enough and young enough: every form filed as spam.
            self.fail(where, "form_token.min_seconds", "must be below form_token.max_age_seconds")
        return settings

    def _sites(
        self, raw_sites: Any, data: dict[str, Any], raw_rules: Any, rules: dict[str, Rule]
    ) -> dict[str, tuple[tuple[Rule, ...], SiteSettings]]:
        sites: dict[str, tuple[tuple[Rule, ...], SiteSettings]] = {}
        if not isinstance(raw_sites, dict):
            if raw_sites is not None:
                self.fail("", "sites", "must be a mapping of site slug to settings")
            return sites
        raw_by_id = {
            raw.get("id"): raw
            for raw in (raw_rules if isinstance(raw_rules, list) else [])
            if isinstance(raw, dict) and isinstance(raw.get("id"), str)
        }
        for slug, raw_site in raw_sites.items():
            where = f"site {slug}"
            raw_site = raw_site or {}
            try:
                SiteSchema().load(raw_site)
            except ValidationError as exc:
                for key, message in _flatten(exc.messages):
                    self.fail(where, key, message)
                continue
            effective = dict(rules)
            for rule_id, override in (raw_site.get("rules") or {}).items():
                self._override(slug, rule_id, override, raw_by_id, effective)
            settings = self._settings(where, [data, raw_site])
            sites[slug] = (tuple(effective.values()), settings)
        return sites

    def _override(
        self,
        slug: str,
        rule_id: str,
        override: dict[str, Any],
        raw_by_id: dict[Any, dict[str, Any]],
        effective: dict[str, Rule],
    ) -> None:
        where = f"site {slug}: rule {rule_id}"
        if rule_id not in effective:
            self.fail(f"site {slug}", f"rules.{rule_id}", "no rule has this id")
            return
        for key in OVERRIDABLE_NEVER:
            if key in override:
                self.fail(where, key, "can't be changed per site")
                return
        base_raw = raw_by_id[rule_id]
        merged = {**base_raw, **override}
        if "score" in override:
            merged.pop("outcome", None)
        if "outcome" in override:
            merged.pop("score", None)
        rule = self._rule(where, merged, effective[rule_id], base_raw)
        if rule is not None:
            effective[rule_id] = rule
