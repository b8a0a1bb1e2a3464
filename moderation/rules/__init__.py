"""The spam and abuse rules engine: pure Python, no web framework and no database.

The caller loads a rules file (``load_rules`` or a ``RulesWatcher`` that reloads it),
fills a ``Context`` with what it knows about the commenter, and asks ``evaluate`` for
a ``Verdict``.
"""

from .config import RulesError, default_rules_path, load_rules, parse_rules
from .engine import evaluate
from .model import (
    ClassifierScore,
    Context,
    Hit,
    SiteSettings,
    Submission,
    Verdict,
)
from .normalise import Normalised, normalise
from .ruleset import RuleSet
from .watcher import RulesWatcher

__all__ = [
    "ClassifierScore",
    "Context",
    "Hit",
    "Normalised",
    "RuleSet",
    "RulesError",
    "RulesWatcher",
    "SiteSettings",
    "Submission",
    "Verdict",
    "default_rules_path",
    "evaluate",
    "load_rules",
    "normalise",
    "parse_rules",
]
