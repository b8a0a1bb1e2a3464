"""Worker class: our intake under sync workers against gthread workers, side by side.

  .venv/bin/python bench/worker_class.py [--quick] [--threads 2 4] [--duration 8] [--runs 3]

Each variant is our service (SQLite, default rules, limits off) under gunicorn.conf.py
with the same worker count (one per core), started with GUNICORN_THREADS=N (gunicorn
then runs gthread workers). Every request says `Connection: close`
(bench/lua/post_close.lua): a sync worker never keeps a connection open, so letting
gthread keep them would measure keep-alive, not the worker class. What threads could win
is overlapping one request's disk flush (SQLite synchronous=FULL) with another's work.
Medians of interleaved wrk runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    ensure_wrk,
    fmt_ms,
    header,
    lua_dir,
    med,
    now_id,
    remove,
    run_wrk,
    temp_dir,
    this_command,
    write_section,
)
from http_bench import prepare_servers, start_servers  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="3 s runs")
    parser.add_argument("--no-write", action="store_true")
    opts = parser.parse_args()
    if opts.quick:
        opts.duration = 3
    ensure_wrk()
    variants = {"sync": {}} | {f"gthread x{n}": {"GUNICORN_THREADS": str(n)}
                               for n in opts.threads}
    tmp = temp_dir("worker-class-")
    servers = prepare_servers(tmp, opts.workers, with_isso=False, ours=variants)
    servers.pop("bare")
    script = lua_dir() / "post_close.lua"
    results: dict[str, list[dict]] = {name: [] for name in servers}
    try:
        with ExitStack() as stack:
            start_servers(stack, servers, tmp)
            nonce = now_id()
            for server in servers.values():  # warm up
                run_wrk(server.post_url, script, [f"warm{nonce}", "ours"], duration=2)
            names = list(servers)
            for run in range(opts.runs):
                for name in names[run % len(names):] + names[:run % len(names)]:
                    result = run_wrk(servers[name].post_url, script,
                                     [f"r{run}{nonce}", "ours"], duration=opts.duration)
                    results[name].append(result)
                    print(f"{name:12} run {run + 1}: {result['rps']:7.1f} rps p50 "
                          f"{fmt_ms(result['p50_us'])} ms p99 {fmt_ms(result['p99_us'])} ms "
                          f"errors {result['errors']}", flush=True)
    finally:
        remove(tmp)

    rows = []
    base = med([r["rps"] for r in results["sync"]])
    for name, runs in results.items():
        rps = med([r["rps"] for r in runs])
        p50 = fmt_ms(med([r["p50_us"] for r in runs]))
        p99 = fmt_ms(med([r["p99_us"] for r in runs]))
        each = ", ".join(f"{r['rps']:.0f}" for r in runs)
        errors = sum(r["errors"] for r in runs)
        ratio = rps / base
        rows.append(f"| {name} | {rps:.0f} | {ratio:.2f} | {p50} | {p99} | {errors} | {each} |")
    body = (
        header(this_command())
        + f"- Ours, SQLite (synchronous=FULL), default rules, limits off; gunicorn.conf.py with "
        f"GUNICORN_WORKERS={opts.workers} for every variant and GUNICORN_THREADS as named; "
        f"wrk -t2 -c8 -d{opts.duration}s, every request `Connection: close`; median of "
        f"{opts.runs} interleaved runs.\n\n"
        "| worker class | intake req/s | vs sync | p50 ms | p99 ms | errors | req/s per run |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    print(body)
    if not opts.no_write:
        write_section("Worker class", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
