"""Offline baselines: scikit-learn classifiers trained on the evaluation's own splits, beside
the service's result on the same splits.

  .venv/bin/python bench/baseline.py [--seeds 21-60] [--no-write]

Why: issue 4's targets are the TubeSpam study's best F1 per video, reached by classifiers
trained offline on one 70/30 split each. A single split's F1 moves by several hundredths
with the seed (a test set holds 50-70 spam comments), so this trains such classifiers
on many splits (``evaluate.split``, the same seeds as the replay) to show what offline
learning reaches on this data, split by split, next to what the service reaches.

- The service: ``replay.replay_pass`` (the trained pass of evaluate.py in memory; it gave
  the same figures as HTTP on every run compared, see replay.py), default rules.
- Offline, scikit-learn with its default settings (nothing tuned here), fitted on the
  70% and scored on the 30%: logistic regression and Bernoulli naive Bayes on the
  service's own tokens (``classifier.tokens``, present or not), logistic regression on word
  TF-IDF and multinomial naive Bayes on word counts (the TubeSpam study's bag of words),
  and a linear SVM on character 2-5-gram TF-IDF.
- scikit-learn runs in a venv cached under bench/.work/ (git-ignored), so the service's
  own environment does not carry it; the texts and tokens go to it as JSON.

Positive is a predicted spam; ham FP is ham predicted spam. An offline classifier has no
`pending`, so it answers every comment, where the service may hold one for a moderator.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import WORK, header, remove, temp_dir, this_command, write_section  # noqa: E402
from evaluate import DATA, DEFAULT_RULES, TARGET_F1, Tally, read_labelled, split  # noqa: E402
from replay import load_rules, replay_pass, seed_range  # noqa: E402

from moderation.classifier import tokens  # noqa: E402

SKLEARN_VENV = WORK / "sklearn-venv"
SKLEARN = "scikit-learn==1.9.1"
SERVICE = "the service (default rules, online classifier)"

# Runs in the scikit-learn venv: reads the splits, writes each model's test predictions.
FIT = textwrap.dedent("""
    import json, sys
    import sklearn
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import BernoulliNB, MultinomialNB
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    def given(features):
        return features

    MODELS = {
        "logistic regression, service tokens": (
            "tokens", lambda: make_pipeline(CountVectorizer(analyzer=given, binary=True),
                                            LogisticRegression(max_iter=5000))),
        "Bernoulli naive Bayes, service tokens": (
            "tokens", lambda: make_pipeline(CountVectorizer(analyzer=given, binary=True),
                                            BernoulliNB())),
        "logistic regression, word TF-IDF": (
            "text", lambda: make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=5000))),
        "multinomial naive Bayes, word counts": (
            "text", lambda: make_pipeline(CountVectorizer(), MultinomialNB())),
        "linear SVM, character 2-5-gram TF-IDF": (
            "text", lambda: make_pipeline(
                TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
                LinearSVC())),
    }
    runs = json.load(open(sys.argv[1]))
    out = {"version": sklearn.__version__, "runs": []}
    for run in runs:
        predicted = {}
        for name, (field, make) in MODELS.items():
            model = make()
            model.fit([row[field] for row in run["train"]], [row["spam"] for row in run["train"]])
            predicted[name] = [bool(p) for p in model.predict([row[field] for row in run["test"]])]
        out["runs"].append(predicted)
    json.dump(out, open(sys.argv[2], "w"))
""")


def ensure_sklearn() -> Path:
    """A venv with scikit-learn, cached under bench/.work/; its python."""
    python = SKLEARN_VENV / "bin" / "python"
    ready = python.exists() and subprocess.run(
        [str(python), "-c", "import sklearn"], capture_output=True).returncode == 0
    if not ready:
        print("installing", SKLEARN, "into", SKLEARN_VENV, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(SKLEARN_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", SKLEARN],
                       check=True, timeout=900)
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="21-60", help="a range of split seeds")
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md")
    options = parser.parse_args()
    seeds = seed_range(options.seeds)
    python = ensure_sklearn()
    ruleset = load_rules(DEFAULT_RULES)

    # Per model, per file: the scores of each split.
    results: dict[str, dict[str, list[dict[str, float]]]] = {SERVICE: {}}
    runs, keys = [], []
    for path in sorted(DATA.glob("*.csv")):
        rows = read_labelled(path)
        name = path.stem.split("-", 1)[-1]
        for seed in seeds:
            train, test = split(rows, seed)
            tally = replay_pass(ruleset, f"/videos/{path.stem}", train, test)
            results[SERVICE].setdefault(name, []).append(tally.scores())
            runs.append({part: [{"text": row.content, "tokens": sorted(tokens(row.content)),
                                 "spam": row.spam} for row in rows_]
                         for part, rows_ in (("train", train), ("test", test))})
            keys.append((name, [row.spam for row in test]))

    folder = temp_dir("baseline-")
    try:
        (folder / "fit.py").write_text(FIT)
        (folder / "runs.json").write_text(json.dumps(runs))
        subprocess.run([str(python), str(folder / "fit.py"), str(folder / "runs.json"),
                        str(folder / "predicted.json")], check=True, timeout=3600)
        fitted = json.loads((folder / "predicted.json").read_text())
    finally:
        remove(folder)
    for (name, truth), predicted in zip(keys, fitted["runs"], strict=True):
        for model, answers in predicted.items():
            tally = Tally()
            for spam, answer in zip(truth, answers, strict=True):
                tally.count(spam, "spam" if answer else "approved")
            results.setdefault(model, {}).setdefault(name, []).append(tally.scores())

    table = table_text(results)
    print(table)
    if options.no_write:
        return
    body = (
        header(this_command())
        + f"- Splits: `evaluate.split`, seeds {seeds[0]}-{seeds[-1]} ({len(seeds)} per file)."
        f" scikit-learn {fitted['version']}, default settings, in bench/.work/sklearn-venv.\n"
        "- The service's row is the replayed trained pass (default rules with "
        "hold_new_commenters off). Offline models answer every comment; the service may "
        "hold one `pending`, which counts as not spam.\n\n"
        + table + "\n"
    )
    write_section(f"Offline baselines, seeds {seeds[0]}-{seeds[-1]}", body)


def table_text(results: dict[str, dict[str, list[dict[str, float]]]]) -> str:
    """Per file, then per model: mean and lowest F1, and how many splits met the targets."""
    out = ["| file (target F1) | classifier | mean F1 | min F1 | splits F1 >= target "
           "| splits ham FP > 1% | splits meeting both |",
           "|---|---|---|---|---|---|---|"]
    files = list(results[SERVICE])
    for name in files:
        target = TARGET_F1[name]
        for model, by_file in results.items():
            runs = by_file[name]
            f1s = [run["f1"] for run in runs]
            reached = sum(f1 >= target for f1 in f1s)
            over = sum(run["ham_fp"] > 0.01 for run in runs)
            both = sum(run["f1"] >= target and run["ham_fp"] <= 0.01 for run in runs)
            shown = f"**{model}**" if model == SERVICE else model
            out.append(f"| {name} ({target}) | {shown} | {sum(f1s) / len(f1s):.3f} "
                       f"| {min(f1s):.3f} | {reached}/{len(runs)} | {over} | {both} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
