"""The learned spam classifier's maths: tokens, and Robinson-Fisher scoring as in SpamBayes.

Pure: no Flask, no database. ``services.learning`` keeps the counts in the database and
calls these functions.

The indicator is the mean of Robinson-Fisher naive Bayes and a logistic regression on the
same tokens (``logistic``, ``logistic_step``, ``blend`` below; why: see there). Why
Robinson-Fisher is the half that counts, and names the clues:

- It learns online from one decision at a time with two integer counters per token, so
  learning and un-learning are exact inverses (add one, subtract one), done atomically
  in SQL and shared by every worker. Logistic regression needs a learning rate, its
  weights depend on the order of the decisions, and a reversed decision cannot be
  taken back exactly.
- It works from a handful of decisions (SpamBayes was built for personal mailboxes),
  which is what a new site has.
- Its clues are readable: each token has a spam probability, so a hit can name the
  tokens that drove it.
- Fisher's chi-square combining yields an indicator that is near 0 or 1 when the
  evidence agrees and near 0.5 when it conflicts or is missing, so an "unsure" band in
  the middle is meaningful (Robinson, "A statistical approach to the spam problem",
  2003; SpamBayes ``classifier.py``).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from moderation.rules import normalise
from moderation.rules.hosts import find_hosts

# The database column's width; longer tokens are cut (two tokens sharing 64 characters
# are, for spam, the same token).
MAX_TOKEN = 64

# Robinson's smoothing: a token seen n times gets (S*X + n*p) / (S + n), so a token seen
# once cannot claim certainty. SpamBayes' default S is 0.45, tuned on mailboxes of
# thousands of messages; a comment section learns from hundreds of short comments, where a
# word seen once or twice in spam is mostly chance, so it is pulled harder towards 0.5.
UNKNOWN_PROBABILITY = 0.5
STRENGTH = 1.5
# Tokens closer to 0.5 than this say little and only dilute the chi-square combining.
MIN_DISTANCE = 0.15
# SpamBayes' max_discriminators: the most extreme tokens of a message are its clues.
MAX_CLUES = 150
# How many clues a hit names for the moderator.
SHOWN_CLUES = 8
# Evidence: Fisher's combining grows confident from several middling clues, and in a short
# comment those are common words ("if", "you", "my", "much") that a small corpus happens
# to have seen more in spam. A clue at least this far from 0.5 (p >= 0.85 or <= 0.15) is
# strong; the indicator's distance from 0.5 is scaled by n / (n + EVIDENCE_PRIOR), n the
# strong clues that agree with it, so one strong clue keeps half the verdict, two keep
# two thirds, and a comment with none stays at 0.5, unsure.
STRONG_CLUE = 0.35
EVIDENCE_PRIOR = 1

_WORD_RE = re.compile(r"[^\W_][\w'$%-]*")
_CAPS_WORD_RE = re.compile(r"\b[A-Z]{3,}\b")
# Words longer than this are usually URLs, hashes or keyboard mashing: SpamBayes keeps
# only their first letter and length bucket, which generalises better than the word.
_LONG_WORD = 20
# A crude stem: longer words also count by their first letters, so "subscribe",
# "subscribers" and "subscribed" (or "promote", "promotion") back one another's evidence
# even when the corpus has seen only one of them.
_STEM = 5


def tokens(text: str) -> frozenset[str]:
    """The features of a text, each at most MAX_TOKEN characters; each counts once per text.

    Words are folded by the rules engine's ``normalise`` (case, look-alikes, leetspeak,
    split letters), so evasions of the rules are also evasions of nothing here. On top
    of words: their stems, the first word (``first:``), link hosts (``url:host``, and its
    parent domain), shape tokens (has a link, shouted words, repeated punctuation, length
    bucket) and emoji.

    No word pairs: in a corpus of a few hundred short comments most pairs are seen once or
    twice, and each repeats the evidence of its two words, which the combining (it takes
    clues as independent) then counts twice; that filed good comments as spam.
    """
    found: set[str] = set()
    hosts = [link.host for link in find_hosts(text) if link.host]
    for host in hosts:
        found.add(f"url:{host}")
        labels = host.split(".")
        if len(labels) > 2:
            found.add("url:" + ".".join(labels[-2:]))
    if hosts:
        found.add("shape:link")
    if len(hosts) > 1:
        found.add("shape:links")
    if _CAPS_WORD_RE.search(text):
        found.add("shape:caps")
    if "!!" in text or "??" in text:
        found.add("shape:exclaim")
    found.add(f"shape:len{min(len(text).bit_length(), 12)}")
    # Emoji and other symbols carry tone that words miss ("😍" in a fan's reply).
    found.update(f"sym:{char}" for char in text if unicodedata.category(char) == "So")

    words = [_word_token(word) for word in _WORD_RE.findall(normalise(text).text)]
    found.update(words)
    found.update(f"stem:{word[:_STEM]}" for word in words
                 if len(word) > _STEM and word.isalpha())
    # Comment spam tends to open with its call to action ("subscribe ...", "check out ...",
    # "visit ..."), where a reply opens with its subject: the opening word is its own clue.
    if words:
        found.add(f"first:{words[0]}")
    return frozenset(token[:MAX_TOKEN] for token in found)


def _word_token(word: str) -> str:
    word = word.strip("'-")
    if len(word) > _LONG_WORD:
        return f"skip:{word[0]} {len(word) // 10 * 10}"
    if word.isdigit():
        return f"num:{len(word)}"  # the digits themselves rarely recur; their count may
    return word


@dataclass(frozen=True)
class Counts:
    """How often one token was in comments learned as spam and as ham."""

    spam: int
    ham: int


@dataclass(frozen=True)
class Score:
    """The combined indicator (0 ham .. 1 spam) and the clues that drove it, strongest first."""

    probability: float
    clues: tuple[str, ...]


def token_probability(counts: Counts, spam_messages: int, ham_messages: int) -> float:
    """Robinson's f(w): the token's spam probability, pulled towards 0.5 when rarely seen."""
    spam_ratio = counts.spam / spam_messages if spam_messages else 0.0
    ham_ratio = counts.ham / ham_messages if ham_messages else 0.0
    if spam_ratio + ham_ratio == 0:
        return UNKNOWN_PROBABILITY
    raw = spam_ratio / (spam_ratio + ham_ratio)
    seen = counts.spam + counts.ham
    return (STRENGTH * UNKNOWN_PROBABILITY + seen * raw) / (STRENGTH + seen)


def chi2_q(statistic: float, freedom: int) -> float:
    """P(chi-square with ``freedom`` (even) degrees >= ``statistic``): the survival function."""
    half = statistic / 2.0
    term = total = math.exp(-half)
    for i in range(1, freedom // 2):
        term *= half / i
        total += term
    return min(total, 1.0)


def combine(probabilities: Iterable[float]) -> float:
    """Fisher's combining of token probabilities into one indicator, as SpamBayes does.

    S and H test "these probabilities are not random" towards spam and towards ham;
    the indicator (S - H + 1) / 2 is 0.5 when both or neither hold.
    """
    clipped = [min(max(p, 1e-12), 1 - 1e-12) for p in probabilities]
    if not clipped:
        return UNKNOWN_PROBABILITY
    freedom = 2 * len(clipped)
    spam = 1.0 - chi2_q(-2.0 * sum(math.log1p(-p) for p in clipped), freedom)
    ham = 1.0 - chi2_q(-2.0 * sum(math.log(p) for p in clipped), freedom)
    return (spam - ham + 1.0) / 2.0


def score(counts: dict[str, Counts], spam_messages: int, ham_messages: int) -> Score:
    """Score one text from the counts of its known tokens (unknown tokens are neutral).

    Fisher's indicator, pulled towards 0.5 unless strong clues back it (see
    ``EVIDENCE_PRIOR``). The clues named are those that pulled the same way as the result.
    """
    rated = []
    for token, seen in counts.items():
        probability = token_probability(seen, spam_messages, ham_messages)
        distance = abs(probability - 0.5)
        if distance >= MIN_DISTANCE:
            rated.append((distance, token, probability))
    rated.sort(key=lambda clue: (-clue[0], clue[1]))
    clues = rated[:MAX_CLUES]
    result = combine(probability for _, _, probability in clues)
    towards_spam = result >= 0.5
    strong = sum(
        1
        for distance, _, probability in clues
        if distance >= STRONG_CLUE and (probability > 0.5) == towards_spam
    )
    result = 0.5 + (result - 0.5) * strong / (strong + EVIDENCE_PRIOR)
    shown = tuple(
        token for _, token, probability in clues if (probability > 0.5) == towards_spam
    )[:SHOWN_CLUES]
    return Score(result, shown)


# The logistic half. Robinson-Fisher rates each token on its own and takes clues as
# independent; a logistic regression learned from the same decisions weighs tokens
# against one another (a stem and its word, a length bucket and the words of a short
# comment), which ranks short one-clue spam and long chatty ham better. The indicator the
# rule sees is the mean of the two. Online: each decision takes LR_PASSES gradient steps
# of LR_RATE on that comment alone (binary features, no regularisation); the bias moves at
# BIAS_RATE of that. Chosen with the rule's threshold on seeds 1-3 (see the README).
LR_RATE = 0.1
LR_PASSES = 5
BIAS_RATE = 0.1
BLEND = 0.5


def logistic(bias: float, weights: dict[str, float], features: Iterable[str]) -> float:
    """The regression's spam probability: the sigmoid of the bias plus the tokens' weights."""
    z = bias + sum(weights.get(token, 0.0) for token in features)
    return 1.0 / (1.0 + math.exp(-min(max(z, -30.0), 30.0)))


def logistic_step(
    bias: float, weights: dict[str, float], features: frozenset[str], spam: bool
) -> float:
    """What learning one comment adds to the weight of each of its tokens (to the bias:
    BIAS_RATE times that).

    ``weights`` holds the current weights of ``features`` (missing: 0). The passes are
    gradient steps of the log loss on this comment alone, so they add the same amount to
    each of its tokens: one number, kept with the comment so that un-learning can subtract
    exactly what learning added.
    """
    local = {token: weights.get(token, 0.0) for token in features}
    target = 1.0 if spam else 0.0
    total = 0.0
    for _ in range(LR_PASSES):
        step = LR_RATE * (target - logistic(bias, local, features))
        total += step
        for token in features:
            local[token] += step
        bias += step * BIAS_RATE
    return total


def blend(robinson: float, regression: float) -> float:
    """The indicator the rule sees: the mean of the two halves."""
    return BLEND * robinson + (1.0 - BLEND) * regression


def indicator(
    features: frozenset[str],
    counts: dict[str, Counts],
    weights: dict[str, float],
    bias: float,
    spam_messages: int,
    ham_messages: int,
) -> Score:
    """Both halves on one text, blended; the clues named are Robinson-Fisher's."""
    robinson = score(counts, spam_messages, ham_messages)
    probability = blend(round(robinson.probability, 6), logistic(bias, weights, features))
    return Score(round(probability, 6), robinson.clues)
