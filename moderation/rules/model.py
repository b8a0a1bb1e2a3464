"""The engine's values: what goes in (submission, context), what comes out (verdict, hits)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

APPROVED = "approved"
PENDING = "pending"
SPAM = "spam"
REJECTED = "rejected"
OUTCOMES = (APPROVED, PENDING, SPAM, REJECTED)
# Among hard outcomes the strongest wins; an allow-list (`approved`) beats everything.
OUTCOME_PRIORITY = {PENDING: 1, SPAM: 2, REJECTED: 3, APPROVED: 4}

TARGETS = ("content", "author_name", "author_email", "author_url", "ip", "user_agent")
LIVE = "live"
SHADOW = "shadow"

# Why a submission's form token was refused (Context.form_token_problem): the FORM_TOO_FAST
# hit names it, in its match and explanation, so a site owner can tell a template that
# sends no token, or a cached page whose token went stale, from a bot.
TOKEN_MISSING = "missing"
TOKEN_INVALID = "invalid"  # not signed with our secret key, or not a token at all
TOKEN_OTHER_PAGE = "other_page"  # fetched for another site or thread
TOKEN_EXPIRED = "expired"  # served more than max_age_seconds ago
TOKEN_TOO_FAST = "too_fast"  # served less than min_seconds ago


@dataclass(frozen=True)
class Submission:
    """One comment as submitted, before any decision."""

    site: str
    thread: str
    author_name: str
    author_email: str
    author_url: str = ""
    content: str = ""
    ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True)
class ClassifierScore:
    """What the service's learned classifier says about one text."""

    probability: float
    ready: bool
    tokens: tuple[str, ...] = ()


@dataclass(frozen=True)
class Context:
    """Facts the caller looked up; the engine itself never looks anything up."""

    approved_count: int = 0
    rejected_count: int = 0
    recent_bad_run: int = 0
    honeypot_filled: bool = False
    # One of the TOKEN_* causes when form tokens are on and this submission's was refused.
    form_token_problem: str | None = None
    classify: Callable[[str], ClassifierScore] | None = None


@dataclass(frozen=True)
class Hit:
    """One reason behind a verdict: which rule fired on which field, and why."""

    rule: str
    target: str
    match: str
    score: float
    outcome: str | None
    explanation: str
    shadow: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The hit as JSON-ready data, in the contract's field names."""
        return {
            "rule": self.rule,
            "target": self.target,
            "match": self.match,
            "score": self.score,
            "outcome": self.outcome,
            "explanation": self.explanation,
            "shadow": self.shadow,
        }


@dataclass(frozen=True)
class Verdict:
    """The decision on one submission and everything that explains it."""

    outcome: str
    score: float
    hits: tuple[Hit, ...]
    rules_version: str

    def as_dict(self) -> dict[str, Any]:
        """The verdict as JSON-ready data, in the contract's field names."""
        return {
            "outcome": self.outcome,
            "score": self.score,
            "hits": [hit.as_dict() for hit in self.hits],
            "rules_version": self.rules_version,
        }


@dataclass(frozen=True)
class Thresholds:
    pending: float = 3.0
    spam: float = 6.0


@dataclass(frozen=True)
class TrustSettings:
    hold_new_commenters: bool = True
    trusted_after: int = 3
    trusted_max_rejection_rate: float = 0.1
    trusted_score: float = -2.0
    hold_after_bad_run: int = 2


@dataclass(frozen=True)
class LimitSettings:
    per_ip: str | None = "5/minute;30/hour"
    per_email: str | None = "5/minute;30/hour"
    flag_per_reporter: str | None = "10/hour"


@dataclass(frozen=True)
class DuplicateSettings:
    window_seconds: int = 86400


@dataclass(frozen=True)
class FlagSettings:
    threshold: int = 3


@dataclass(frozen=True)
class HoneypotSettings:
    field: str | None = None


@dataclass(frozen=True)
class FormTokenSettings:
    enabled: bool = False
    min_seconds: float = 3.0
    max_age_seconds: int = 86400


@dataclass(frozen=True)
class PublicSettings:
    reveal_spam: bool = False


@dataclass(frozen=True)
class ModerationSettings:
    pre_moderate: bool = False


@dataclass(frozen=True)
class SiteSettings:
    """The effective non-rule settings of one site: the file's globals with its overrides."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    trust: TrustSettings = field(default_factory=TrustSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    duplicates: DuplicateSettings = field(default_factory=DuplicateSettings)
    flags: FlagSettings = field(default_factory=FlagSettings)
    honeypot: HoneypotSettings = field(default_factory=HoneypotSettings)
    form_token: FormTokenSettings = field(default_factory=FormTokenSettings)
    public: PublicSettings = field(default_factory=PublicSettings)
    moderation: ModerationSettings = field(default_factory=ModerationSettings)


# Section name in the rules file -> the dataclass holding it.
SETTINGS_SECTIONS: dict[str, type] = {
    "thresholds": Thresholds,
    "trust": TrustSettings,
    "limits": LimitSettings,
    "duplicates": DuplicateSettings,
    "flags": FlagSettings,
    "honeypot": HoneypotSettings,
    "form_token": FormTokenSettings,
    "public": PublicSettings,
    "moderation": ModerationSettings,
}
