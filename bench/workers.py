"""Worker count: the same intake and thread-read loads as http_bench.py, for ours, bare Flask
and isso, at several gunicorn worker counts, with the workers' CPU time per request.

  .venv/bin/python bench/workers.py [--quick] [--counts 1 2 4] [--duration 8] [--no-isso]

Ours runs twice: as shipped (SQLite synchronous=FULL, a disk flush per commit) and with
MODERATION_SQLITE_SYNCHRONOUS=NORMAL, to show what durability against power cuts costs.

It says which worker count to compare the servers at (http_bench.py --workers) on this
machine: sync workers are CPU-bound here (SQLite is a local file), so more workers than
cores only add context switches, and wrk shares the same cores.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    cpu_seconds,
    ensure_wrk,
    header,
    lua_dir,
    now_id,
    remove,
    run_wrk,
    temp_dir,
    this_command,
    write_section,
)
from http_bench import (  # noqa: E402
    READ_COMMENTS,
    ensure_isso,
    prepare_servers,
    start_servers,
    write_read_paths,
)


def measure(url: str, script: str, args: list[str], master: int, duration: int) -> dict:
    before = cpu_seconds(master)
    result = run_wrk(url, lua_dir() / script, args, duration=duration)
    result["cpu_ms"] = (cpu_seconds(master) - before) * 1000 / max(result["requests"], 1)
    return result


def run_count(workers: int, opts: argparse.Namespace, tmp: Path) -> dict[str, dict]:
    """Fresh servers with this many workers; one intake and one read run each."""
    folder = tmp / f"w{workers}"
    # Ours as shipped, and with SQLite's synchronous=NORMAL (no disk flush per commit).
    ours = {"ours": {}, "ours-normal": {"MODERATION_SQLITE_SYNCHRONOUS": "NORMAL"}}
    servers = prepare_servers(folder, workers, not opts.no_isso, ours)
    results: dict[str, dict] = {}
    with ExitStack() as stack:
        procs = start_servers(stack, servers, folder)
        nonce = now_id()
        read_files = write_read_paths(servers, folder)
        for name, server in servers.items():
            master = procs[name].pid
            run_wrk(server.post_url, lua_dir() / "post.lua", [f"warm{nonce}", server.lua_mode],
                    duration=2)
            intake = measure(server.post_url, "post.lua",
                             [f"w{workers}{nonce}", server.lua_mode], master, opts.duration)
            read = measure(server.url + "/", "read.lua", [str(read_files[name])],
                           master, opts.duration)
            results[name] = {"intake": intake, "read": read}
            print(f"workers {workers} {name:11}: intake {intake['rps']:7.1f} rps "
                  f"({intake['cpu_ms']:.2f} ms CPU/req, {intake['errors']} errors), "
                  f"read {read['rps']:7.1f} rps ({read['cpu_ms']:.2f} ms CPU/req, "
                  f"{read['errors']} errors)", flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--no-isso", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--quick", action="store_true", help="1 and 2 workers, 3 s runs")
    opts = parser.parse_args()
    if opts.quick:
        opts.counts, opts.duration = [1, 2], 3
    ensure_wrk()
    if not opts.no_isso:
        ensure_isso()
    tmp = temp_dir("workers-")
    try:
        by_count = {workers: run_count(workers, opts, tmp) for workers in opts.counts}
    finally:
        remove(tmp)

    names = list(next(iter(by_count.values())))
    lines = [
        header(this_command()),
        f"- One wrk run of {opts.duration} s per cell (-t2 -c8, loopback), fresh servers per "
        "worker count, sync workers, `gunicorn.conf.py`; the loads of `bench/http_bench.py` "
        f"(unique comments; a {READ_COMMENTS}-comment thread read 20 a page). CPU per "
        "request is the workers' user + system time over the run divided by the requests.",
        "",
        "| workers | " + " | ".join(f"{n} intake req/s (CPU ms/req)" for n in names)
        + " | " + " | ".join(f"{n} read req/s (CPU ms/req)" for n in names) + " |",
        "|---" * (1 + 2 * len(names)) + "|",
    ]
    for workers, results in by_count.items():
        cells = [f"{results[n][kind]['rps']:,.0f} ({results[n][kind]['cpu_ms']:.2f})"
                 for kind in ("intake", "read") for n in names]
        lines.append(f"| {workers} | " + " | ".join(cells) + " |")
    body = "\n".join(lines) + "\n"
    print(body)
    if not opts.no_write:
        write_section("Worker count", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
