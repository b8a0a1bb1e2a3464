"""Worker recycling under load: the app preloaded in gunicorn's master, against each worker
loading the app itself (GUNICORN_PRELOAD=false), side by side.

  .venv/bin/python bench/recycle.py [--quick] [--duration 30] [--runs 3] [--max-requests N]

gunicorn.conf.py recycles a worker after max_requests (10,000, plus up to 1,000 of jitter)
requests. A worker that loads the app itself spends about a second importing and building
it before it takes a request again. Both servers run ours on SQLite with the read thread of
http_bench.py (2,500 approved comments), 2 workers, and wrk reads it 20 at a time
(bench/lua/read.lua), interleaving the two servers run by run. For each: the median of
--runs runs of req/s, p50, p99 and the slowest request, and the workers recycled during the
runs (gunicorn's "Autorestarting worker" log lines). --max-requests sets a lower limit on
gunicorn's command line, for more recyclings in a short run.
"""

from __future__ import annotations

import argparse
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
    remove,
    run_wrk,
    temp_dir,
    this_command,
    write_section,
)
from http_bench import prepare_servers, start_servers, write_read_paths  # noqa: E402

MODES = {"preloaded": {}, "loading": {"GUNICORN_PRELOAD": "false"}}
LABELS = {
    "preloaded": "app preloaded in the master (shipped)",
    "loading": "each worker loads the app (GUNICORN_PRELOAD=false)",
}


def recycled(log: Path) -> int:
    return log.read_text(errors="replace").count("Autorestarting worker")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 runs of 5 s, max_requests 1,000")
    parser.add_argument("--duration", type=int, default=30, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--max-requests", type=int, default=None,
                        help="gunicorn --max-requests (jitter a tenth of it); default: the conf's")
    opts = parser.parse_args()
    if opts.quick:
        opts.duration, opts.max_requests = 5, opts.max_requests or 1000
    ensure_wrk()

    tmp = temp_dir("recycle-")
    servers = {name: server for name, server in
               prepare_servers(tmp, 2, with_isso=False, ours=MODES).items() if name in MODES}
    if opts.max_requests:
        limit = ["--max-requests", str(opts.max_requests),
                 "--max-requests-jitter", str(opts.max_requests // 10)]
        for server in servers.values():
            server.cmd[-1:-1] = limit  # before the app argument
    results: dict[str, list[dict]] = {name: [] for name in servers}
    try:
        with ExitStack() as stack:
            start_servers(stack, servers, tmp)
            paths = write_read_paths(servers, tmp)
            for name, server in servers.items():  # warm up: imports, connections, rules
                run_wrk(server.url + "/", lua_dir() / "read.lua", [str(paths[name])], duration=2)
            for run in range(opts.runs):
                order = list(servers)[run % 2:] + list(servers)[:run % 2]
                for name in order:
                    log = tmp / f"{name}.log"
                    before = recycled(log)
                    result = run_wrk(servers[name].url + "/", lua_dir() / "read.lua",
                                     [str(paths[name])], duration=opts.duration,
                                     connections=opts.connections)
                    result["recycled"] = recycled(log) - before
                    results[name].append(result)
                    print(f"{name:9} run {run + 1}: {result['rps']:7.0f} rps "
                          f"p99 {fmt_ms(result['p99_us'])} ms max {fmt_ms(result['max_us'])} ms "
                          f"recycled {result['recycled']} errors {result['errors']}", flush=True)
    finally:
        remove(tmp)
    report(opts, results)
    return 0


def report(opts: argparse.Namespace, results: dict[str, list[dict]]) -> None:
    limit = (f"`--max-requests {opts.max_requests} --max-requests-jitter "
             f"{opts.max_requests // 10}` on the command line" if opts.max_requests
             else "max_requests 10,000 + jitter up to 1,000, as shipped")
    lines = [
        header(this_command()),
        f"- Ours on SQLite, 2 sync workers, {limit}; wrk -t2 -c{opts.connections} "
        f"-d{opts.duration}s reading the 2,500-comment thread 20 at a time; median of "
        f"{opts.runs} interleaved runs; recycled = workers recycled during all the runs.\n",
        "- A stall shows only in the runs where recycled workers were loading at the same "
        "time, so beside the medians: the slowest request of all runs, and the p99 of each.\n",
        "| server | req/s | p50 ms | p99 ms | slowest ms (median) | slowest ms (all runs) "
        "| recycled | errors | p99 ms of each run | req/s of each run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        lines.append(
            f"| {LABELS[name]} | {med([r['rps'] for r in runs]):.0f} "
            f"| {fmt_ms(med([r['p50_us'] for r in runs]))} "
            f"| {fmt_ms(med([r['p99_us'] for r in runs]))} "
            f"| {fmt_ms(med([r['max_us'] for r in runs]))} "
            f"| {fmt_ms(max(r['max_us'] for r in runs))} "
            f"| {sum(r['recycled'] for r in runs)} | {sum(r['errors'] for r in runs)} "
            f"| {', '.join(fmt_ms(r['p99_us']) for r in runs)} "
            f"| {', '.join(str(round(r['rps'])) for r in runs)} |"
        )
    slowest = {n: max(r["max_us"] for r in results[n]) for n in ("preloaded", "loading")}
    ratio = slowest["preloaded"] / slowest["loading"]
    lines.append(f"\nSlowest request of all runs, preloaded / loading: {ratio:.2f}")
    body = "\n".join(lines) + "\n"
    print(body)
    write_section("Worker recycling" + (", quick" if opts.quick else ""), body)


if __name__ == "__main__":
    sys.exit(main())
