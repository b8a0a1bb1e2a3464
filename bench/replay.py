"""Spam evaluation replayed in memory: evaluate.py's trained pass without HTTP or a database.

  .venv/bin/python bench/replay.py [CSV ...] [--seed 11 --seed 12 | --seeds 11-30] [--rules F]

The same split (``evaluate.split``), the same commenters (``evaluate.commenter``), the
real rules engine and the real classifier maths (``moderation.classifier``); what the
service keeps in its database (the comments, the classifier's counts and weights) is
kept in dictionaries instead, updated as intake and decisions update those tables:

- intake: a duplicate (same normalised text from the same email or IP) is refused; the
  commenter's history counts their approved, spam and rejected comments and the bad run
  since the last approved one (``services.trust``); the verdict's outcome is stored;
- training: every stored comment is then decided (spam or approve), which teaches the
  classifier as ``services.learning.teach`` does: counts +1, the regression's step worked
  out from the weights as they stand, added to the tokens and (a tenth) to the bias.

It takes seconds where evaluate.py takes minutes, so it can judge a classifier change on
many seeds. It does not replace evaluate.py: it gave the same figures on all 39 HTTP runs
compared (seeds 1-3 and 11-20; see the README), and tests/test_replay.py holds it to the
service, but a change to intake or learning must be copied here too.
It prints each run, then the per-file summary; it writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evaluate import (  # noqa: E402
    DEFAULT_RULES,
    TABLE_HEAD,
    USER_AGENT,
    Labelled,
    Tally,
    commenter,
    labelled_files,
    read_labelled,
    row_text,
    served_rules,
    split,
    summary_text,
)

from moderation.classifier import BIAS_RATE, Counts, indicator, logistic_step, tokens  # noqa: E402
from moderation.config import DEFAULTS  # noqa: E402
from moderation.rules import (  # noqa: E402
    ClassifierScore,
    Context,
    RuleSet,
    Submission,
    evaluate,
    parse_rules,
)
from moderation.services.cursors import SCORE_DECIMALS  # noqa: E402
from moderation.services.identity import content_hash  # noqa: E402
from moderation.services.learning import HAM, NEUTRAL, SPAM  # noqa: E402
from moderation.services.trust import RECENT  # noqa: E402

SITE = "default"


@dataclass
class Stored:
    email: str
    ip: str
    digest: str
    status: str


@dataclass
class Memory:
    """One pass's service state: its comments, and the classifier's counts and weights."""

    min_decisions: int
    comments: list[Stored] = field(default_factory=list)
    counts: dict[str, list[int]] = field(default_factory=dict)  # token -> [spam, ham]
    weights: dict[str, float] = field(default_factory=dict)
    messages: dict[str, int] = field(default_factory=lambda: {SPAM: 0, HAM: 0})
    bias: dict[str, float] = field(default_factory=lambda: {SPAM: 0.0, HAM: 0.0})

    def classify(self, text: str) -> ClassifierScore:
        """As ``services.learning.classify``."""
        spam_messages, ham_messages = self.messages[SPAM], self.messages[HAM]
        if spam_messages < self.min_decisions or ham_messages < self.min_decisions:
            return NEUTRAL
        features = tokens(text)
        known = [token for token in features if token in self.counts]
        counts = {token: Counts(*self.counts[token]) for token in known}
        weights = {token: self.weights[token] for token in known}
        result = indicator(features, counts, weights, sum(self.bias.values()),
                           spam_messages, ham_messages)
        return ClassifierScore(result.probability, True, result.clues)

    def teach(self, text: str, label: str) -> None:
        """As ``services.learning.teach`` for a comment that has taught nothing yet."""
        features = tokens(text)
        weights = {token: self.weights[token] for token in features if token in self.weights}
        step = logistic_step(sum(self.bias.values()), weights, features, label == SPAM)
        for token in features:
            self.counts.setdefault(token, [0, 0])[0 if label == SPAM else 1] += 1
            self.weights[token] = self.weights.get(token, 0.0) + step
        self.messages[label] += 1
        self.bias[label] += step * BIAS_RATE

    def history(self, email: str) -> Context:
        """As ``services.trust.context_for``: the commenter's decided comments, oldest first."""
        decided = [c.status for c in self.comments
                   if c.email == email and c.status in ("approved", "spam", "rejected")]
        last_approved = max((i for i, s in enumerate(decided) if s == "approved"), default=-1)
        return Context(
            approved_count=decided.count("approved"),
            rejected_count=len(decided) - decided.count("approved"),
            recent_bad_run=min(len(decided) - last_approved - 1, RECENT),
            classify=self.classify,
        )


def load_rules(path: Path) -> RuleSet:
    """The rules file as evaluate.py serves it: hold_new_commenters off."""
    return parse_rules(served_rules(path), base_dir=path.parent)


def replay_pass(ruleset: RuleSet, thread: str, train: list[Labelled], test: list[Labelled],
                min_decisions: int = int(DEFAULTS["CLASSIFIER_MIN_DECISIONS"]),
                scores: list[float] | None = None) -> Tally:
    """evaluate.py's trained pass (``evaluate_pass`` with ``train``), in memory.

    With ``scores``, each stored test comment's score is appended to it, rounded as the
    service stores it.
    """
    memory = Memory(min_decisions=min_decisions)
    targets = next((rule.targets for rule in ruleset.rules_for(SITE)
                    if rule.type == "classifier" and rule.enabled), ("content",))
    tally = Tally()

    def submit(row: Labelled) -> tuple[Stored | None, Submission, float]:
        email, ip = commenter(row)
        submission = Submission(site=SITE, thread=thread, author_name=row.author,
                                author_email=email, content=row.content, ip=ip,
                                user_agent=USER_AGENT)
        digest = content_hash(row.content)
        if any(c.digest == digest and c.status != "deleted" and (c.email == email or c.ip == ip)
               for c in memory.comments):
            return None, submission, 0.0  # 409
        verdict = evaluate(ruleset, submission, memory.history(email))
        stored = Stored(email, ip, digest, verdict.outcome)
        memory.comments.append(stored)
        return stored, submission, round(verdict.score, SCORE_DECIMALS)

    for row in train:
        stored, submission, _ = submit(row)
        if stored is None:
            tally.duplicates += 1
        elif stored.status == "rejected":
            tally.blocked_in_training += 1  # answered 403: no id for the moderator
        else:
            label = SPAM if row.spam else HAM
            stored.status = "spam" if row.spam else "approved"
            memory.teach("\n".join(getattr(submission, target) or "" for target in targets),
                         label)
    for row in test:
        stored, _, score_ = submit(row)
        if stored is None:
            tally.duplicates += 1
        else:
            tally.count(row.spam, stored.status)
            if scores is not None and stored.status != "rejected":
                scores.append(score_)
    return tally


def seed_range(span: str) -> list[int]:
    """'11-30' as the seeds 11 to 30; '7' as [7]."""
    first, _, last = span.partition("-")
    return list(range(int(first), int(last or first) + 1))


def seed_list(options: argparse.Namespace) -> list[int]:
    seeds = list(options.seed or [])
    if options.seeds:
        seeds += seed_range(options.seeds)
    return seeds or [1, 2, 3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", nargs="*", type=Path, help="labelled CSV files")
    parser.add_argument("--seed", type=int, action="append", help="split seed (repeat)")
    parser.add_argument("--seeds", help="a range of seeds, such as 11-30")
    parser.add_argument("--rules", type=Path, default=DEFAULT_RULES, help="rules file to use")
    options = parser.parse_args()
    ruleset = load_rules(options.rules)
    trained: dict[str, list[dict[str, float]]] = {}
    print(TABLE_HEAD)
    for path in labelled_files(options.csv):
        rows = read_labelled(path)
        name = path.stem.split("-", 1)[-1]
        for seed in seed_list(options):
            train, test = split(rows, seed)
            tally = replay_pass(ruleset, f"/videos/{path.stem}", train, test)
            trained.setdefault(name, []).append(tally.scores())
            print(row_text(name, seed, "replayed", tally))
    print()
    print(summary_text(trained))


if __name__ == "__main__":
    main()
