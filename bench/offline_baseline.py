"""The spam targets in context: strong offline classifiers on the very splits the service
is evaluated on, beside the service's own online classifier, in one run.

  .venv/bin/python bench/offline_baseline.py [--seeds 21-60] [--no-write]

Issue 4's targets are the TubeSpam study's best F1 per video (a 70/30 split each,
classifiers trained offline). This script asks how high such classifiers reach on our
splits (``evaluate.split``, the same comments and seeds as ``bench/replay.py``):

- scikit-learn, in a venv cached under bench/.work/ (it is not a dependency of the
  service), trains on each split's 70% at once and labels the 30%: a linear SVM on TF-IDF
  word unigrams and bigrams plus character 2-5-grams, the same SVM on words alone, and
  multinomial naive Bayes on words;
- "service" is ``bench/replay.py``'s trained pass: the default rules and the online
  classifier learning one moderator decision at a time, as the HTTP flow does.

An offline model labels every comment spam or ham; the service may also leave one
`pending`, which counts as not spam (as in evaluate.py). Results go to bench/RESULTS.md,
section "Spam targets in context".
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import WORK, header, this_command, write_section  # noqa: E402
from evaluate import DATA, Tally, read_labelled, split, summary_text  # noqa: E402

SKLEARN_VENV = WORK / "sklearn-venv"
MODELS = ("svm words+chars", "svm words", "naive bayes")


def ensure_sklearn() -> Path:
    """scikit-learn in a venv cached under bench/.work/ (git-ignored)."""
    python = SKLEARN_VENV / "bin" / "python"
    if not python.exists() or subprocess.run([str(python), "-c", "import sklearn, yaml"],
                                             capture_output=True).returncode != 0:
        print("installing scikit-learn into", SKLEARN_VENV, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(SKLEARN_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "scikit-learn", "pyyaml"],
                       check=True, timeout=900)
    return python


def offline_runs(seeds: list[int]) -> dict[str, dict[str, list[dict[str, float]]]]:
    """Run in the scikit-learn venv: model -> file -> the scores of each seed's split."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    def build(model: str):
        if model == "svm words+chars":
            return make_pipeline(make_union(
                TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
            ), LinearSVC())
        if model == "svm words":
            return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                                 LinearSVC())
        return make_pipeline(TfidfVectorizer(), MultinomialNB())

    runs: dict[str, dict[str, list[dict[str, float]]]] = {model: {} for model in MODELS}
    for path in sorted(DATA.glob("*.csv")):
        name = path.stem.split("-", 1)[-1]
        rows = read_labelled(path)
        for seed in seeds:
            train, test = split(rows, seed)
            for model in MODELS:
                fitted = build(model).fit([row.content for row in train],
                                          [row.spam for row in train])
                tally = Tally()
                for row, spam in zip(test, fitted.predict([row.content for row in test]),
                                     strict=True):
                    tally.count(row.spam, "spam" if spam else "approved")
                runs[model].setdefault(name, []).append(tally.scores())
    return runs


def service_runs(seeds: list[int]) -> dict[str, list[dict[str, float]]]:
    """bench/replay.py's trained pass: the default rules and the online classifier."""
    from replay import DEFAULT_RULES, load_rules, replay_pass

    ruleset = load_rules(DEFAULT_RULES)
    runs: dict[str, list[dict[str, float]]] = {}
    for path in sorted(DATA.glob("*.csv")):
        name = path.stem.split("-", 1)[-1]
        rows = read_labelled(path)
        for seed in seeds:
            train, test = split(rows, seed)
            tally = replay_pass(ruleset, f"/videos/{path.stem}", train, test)
            runs.setdefault(name, []).append(tally.scores())
    return runs


def seed_range(span: str) -> list[int]:
    first, _, last = span.partition("-")
    return list(range(int(first), int(last or first) + 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="21-60", help="a range of split seeds")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--offline-json", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    seeds = seed_range(options.seeds)
    if options.offline_json:  # the half that runs in the scikit-learn venv
        print(json.dumps(offline_runs(seeds)))
        return
    python = ensure_sklearn()
    offline = json.loads(subprocess.run(
        [str(python), __file__, "--seeds", options.seeds, "--offline-json"],
        check=True, capture_output=True, text=True, timeout=1800).stdout)
    sections = [("service: default rules + online classifier (replay.py)",
                 service_runs(seeds))]
    sections += [(f"offline {model} (scikit-learn)", offline[model]) for model in MODELS]
    body = [header(this_command()),
            f"Seeds {options.seeds}: the same 70/30 splits for every row. Offline models "
            "label each test comment spam or ham; the service may leave one pending "
            "(counted as not spam).\n"]
    for title, runs in sections:
        body += [f"**{title}**\n", summary_text(runs), ""]
    text = "\n".join(body)
    print(text)
    if not options.no_write:
        write_section("Spam targets in context", text)


if __name__ == "__main__":
    main()
