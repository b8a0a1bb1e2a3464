"""Run every benchmark (`make bench`), each as its own process, and report what failed.

  .venv/bin/python bench/run_all.py [--quick] [--only NAME ...] [--skip NAME ...]

Each script writes its own section of bench/RESULTS.md. bench_rules.py and evaluate.py
(written elsewhere) run too when they are present; their absence is not an error.
A script that fails does not stop the others; the exit status says whether any failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# (name, script, per-script time limit in seconds, passes --quick through)
SCRIPTS = [
    ("http", "http_bench.py", 900, True),
    ("workers", "workers.py", 900, True),
    ("worker_class", "worker_class.py", 600, True),
    ("recycle", "recycle.py", 600, True),
    ("memory", "memory.py", 600, True),
    ("scale_pg", "scale_pg.py", 1200, True),
    ("chaos", "chaos.py", 300, True),
    ("two_instances", "two_instances.py", 300, True),
    ("rules", "bench_rules.py", 900, False),
    ("evaluate", "evaluate.py", 900, False),
    ("baseline", "baseline.py", 1200, False),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs of every script")
    parser.add_argument("--only", nargs="*", default=None, help="names to run")
    parser.add_argument("--skip", nargs="*", default=[], help="names to skip")
    opts = parser.parse_args()
    outcomes = []
    for name, script, limit, quick in SCRIPTS:
        if (opts.only is not None and name not in opts.only) or name in opts.skip:
            continue
        path = BENCH / script
        if not path.exists():
            print(f"== {name}: {script} not present, skipped", flush=True)
            outcomes.append((name, "absent", 0.0))
            continue
        cmd = [sys.executable, str(path)] + (["--quick"] if opts.quick and quick else [])
        print(f"== {name}: {' '.join(cmd)}", flush=True)
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=BENCH.parent)
        try:
            code = proc.wait(timeout=limit)
            state = "ok" if code == 0 else f"failed ({code})"
        except subprocess.TimeoutExpired:
            # SIGTERM lets the script's finally blocks stop the servers it started.
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            state = f"timed out after {limit}s"
        outcomes.append((name, state, time.monotonic() - started))
    print("\n== summary")
    for name, state, seconds in outcomes:
        print(f"{name:14} {state:22} {seconds:7.1f}s")
    return 0 if all(state in ("ok", "absent") for _, state, _ in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
