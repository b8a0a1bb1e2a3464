"""HTTP throughput: our intake against a bare Flask app and against isso, all under the
same gunicorn.conf.py with the same worker count, loaded by wrk on loopback.

  .venv/bin/python bench/http_bench.py [--quick] [--workers N] [--duration 10] [--runs 3]

What runs, side by side in one process tree, each on its own 127.0.0.1 port:
  - ours:  `gunicorn -c gunicorn.conf.py wsgi:app` on SQLite in a temp instance,
           MODERATION_RATELIMIT_ENABLED=false, default rules;
  - bare:  `gunicorn -c gunicorn.conf.py bare_app:app` (bench/bare_app.py);
  - floor: `gunicorn -c gunicorn.conf.py floor_app:app` (bench/floor_app.py): one durable
           SQLite INSERT per POST, as the service's database settings make it, and
           nothing else; intake only. What no intake that keeps each comment can beat;
  - isso:  isso (PyPI) from a cached venv in bench/.work/, guard and moderation off,
           SQLite in a temp folder, `gunicorn -c gunicorn.conf.py isso.run:application`.
Intake: wrk POSTs unique comments (bench/lua/post.lua). Reads: a 2,500-comment thread
(pre-loaded straight into each database) read 20 at a time, cycling through all its pages
(bench/lua/read.lua). Each figure is the median of --runs runs; the runs of the servers
are interleaved so that the machine's noise falls on all of them alike. Each run also
reads the workers' CPU time (user + system, /proc) to give the CPU per request.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    BENCH,
    BIN,
    WORK,
    base_env,
    cpu_seconds,
    ensure_wrk,
    fmt_ms,
    free_port,
    gunicorn_cmd,
    header,
    http,
    lua_dir,
    med,
    moderation_cli,
    now_id,
    peak_rss_mib,
    process,
    remove,
    run_wrk,
    temp_dir,
    this_command,
    workers_of,
    write_section,
)

READ_THREAD = "/bench/read-2500"
READ_COMMENTS = 2500
ISSO_VENV = WORK / "isso-venv"

TEXT = (
    "I read the whole piece twice. The part about the council budget matches what we saw "
    "at the meeting last spring, although the figures for the library look low to me. "
    "Comment number {i}."
)
LINK_TEXT = " More context: https://example.org/reports/{i}"


# --------------------------------------------------------------------------- set-up


def preload_ours(env: dict[str, str]) -> None:
    """Insert the read thread's approved comments straight into our database."""
    code = textwrap.dedent(f"""
        import datetime as dt, hashlib
        import sqlalchemy as sa
        from moderation import create_app
        from moderation.extensions import db
        from moderation.models import Comment, Site, Status, Thread
        app = create_app()
        with app.app_context():
            site = db.session.scalar(sa.select(Site).where(Site.slug == "default"))
            thread = Thread(site_id=site.id, key={READ_THREAD!r}, title="Read bench")
            db.session.add(thread)
            db.session.flush()
            start = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
            rows = []
            for i in range({READ_COMMENTS}):
                text = {TEXT!r}.format(i=i) + ({LINK_TEXT!r}.format(i=i) if i % 10 == 0 else "")
                when = start + dt.timedelta(seconds=60 * i)
                email = f"reader{{i}}@example.org"
                rows.append(dict(
                    site_id=site.id, thread_id=thread.id, status=Status.APPROVED,
                    status_reason="moderator", author_name=f"Reader {{i}}", author_email=email,
                    email_hash=hashlib.sha256(email.encode()).hexdigest(),
                    author_url=None, content=text,
                    content_hash=hashlib.sha256(text.encode()).hexdigest(), ip="192.0.2.1",
                    user_agent="bench", referrer=None, score=0.0, hits=[], rules_version="",
                    flag_count=0, version=1, created_at=when, updated_at=when))
            db.session.execute(sa.insert(Comment), rows)
            db.session.commit()
    """)
    subprocess.run([str(BIN / "python"), "-c", code], env=env, check=True, timeout=300)


def ensure_isso() -> Path:
    """isso and gunicorn in a venv cached under bench/.work/ (git-ignored)."""
    python = ISSO_VENV / "bin" / "python"
    if (
        not (ISSO_VENV / "bin" / "gunicorn").exists()
        or subprocess.run([str(python), "-c", "import isso"], capture_output=True).returncode != 0
    ):
        print("installing isso into", ISSO_VENV, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(ISSO_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "isso", "gunicorn"], check=True, timeout=900
        )
    return ISSO_VENV


def isso_config(folder: Path) -> Path:
    """isso with its guard and moderation off, SQLite in the temp folder."""
    cfg = folder / "isso.cfg"
    cfg.write_text(
        textwrap.dedent(f"""
        [general]
        dbpath = {folder / "comments.db"}
        ; isso insists on a site; nothing listens there (it only logs a warning).
        host = http://127.0.0.1:9/
        notify = stdout
        gravatar = false
        [moderation]
        enabled = false
        [guard]
        enabled = false
        require-author = false
        require-email = false
        [admin]
        enabled = false
        [server]
        trusted-proxies =
    """)
    )
    return cfg


def preload_isso(cfg: Path) -> None:
    code = textwrap.dedent(f"""
        import time
        from isso import config
        from isso.db import SQLite3
        conf = config.load(config.default_file(), {str(cfg)!r})
        db = SQLite3(conf.get("general", "dbpath"), conf)
        db.threads.new({READ_THREAD!r}, "Read bench")
        start = time.time() - 3 * 86400
        for i in range({READ_COMMENTS}):
            text = {TEXT!r}.format(i=i) + ({LINK_TEXT!r}.format(i=i) if i % 10 == 0 else "")
            db.comments.add({READ_THREAD!r}, dict(
                text=text, author=f"Reader {{i}}", email=f"reader{{i}}@example.org",
                website=None, parent=None, mode=1, remote_addr="192.0.2.1",
                created=start + 60 * i))
    """)
    subprocess.run([str(ISSO_VENV / "bin" / "python"), "-c", code], check=True, timeout=600)


def ours_read_paths(base: str) -> list[str]:
    """Walk the thread once by its cursors: every page's path, 20 comments each."""
    paths = []
    cursor = None
    for _ in range(READ_COMMENTS // 20 + 2):
        path = f"/api/v1/comments?thread={quote(READ_THREAD)}&limit=20"
        if cursor:
            path += f"&cursor={cursor}"
        status, _, body = http("GET", base + path)
        assert status == 200 and len(body["items"]) == 20, (status, body)
        paths.append(path)
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(paths) == READ_COMMENTS // 20, len(paths)
    return paths


def isso_read_paths(base: str) -> list[str]:
    paths = [
        f"/?uri={quote(READ_THREAD)}&limit=20&offset={offset}"
        for offset in range(0, READ_COMMENTS, 20)
    ]
    status, _, body = http("GET", base + paths[-1])
    assert status == 200 and len(body["replies"]) == 20, (status, str(body)[:300])
    return paths


@dataclass(frozen=True)
class Server:
    """One server of a comparison: how to start it, and which API it speaks."""

    kind: str  # "ours", "bare", "floor" or "isso"
    cmd: list[str]
    env: dict[str, str]
    url: str

    @property
    def ready_url(self) -> str:
        return self.url + {"ours": "/healthz", "bare": "/api/v1/comments",
                           "floor": "/api/v1/comments", "isso": "/info"}[self.kind]

    @property
    def post_url(self) -> str:
        return self.url + ("/new?uri=/bench/intake" if self.kind == "isso" else "/api/v1/comments")

    @property
    def lua_mode(self) -> str:
        """What bench/lua/post.lua sends: isso's fields, or ours (bare Flask and the floor
        take anything)."""
        return "isso" if self.kind == "isso" else "ours"


def prepare_servers(
    folder: Path,
    workers: int,
    with_isso: bool,
    ours: dict[str, dict[str, str]] | None = None,
    with_floor: bool = False,
) -> dict[str, Server]:
    """The servers to compare, under the same gunicorn.conf.py and worker count, each
    database holding the read thread: ours (one per entry of ``ours``: name -> extra
    environment), bare Flask and, if asked, the floor (intake only) and isso."""
    gunicorn_env = {"GUNICORN_WORKERS": str(workers)}
    servers: dict[str, Server] = {}
    for name, extra in (ours or {"ours": {}}).items():
        port = free_port()
        env = base_env(
            MODERATION_INSTANCE_PATH=str(folder / name),
            MODERATION_RATELIMIT_ENABLED="false",
            **gunicorn_env,
            GUNICORN_BIND=f"127.0.0.1:{port}",
            **extra,
        )
        moderation_cli(["init"], env)
        preload_ours(env)
        servers[name] = Server("ours", gunicorn_cmd("wsgi:app"), env, f"http://127.0.0.1:{port}")
    port = free_port()
    servers["bare"] = Server(
        "bare",
        [*gunicorn_cmd("bare_app:app"), "--pythonpath", str(BENCH)],
        base_env(**gunicorn_env, GUNICORN_BIND=f"127.0.0.1:{port}"),
        f"http://127.0.0.1:{port}",
    )
    if with_floor:
        port = free_port()
        servers["floor"] = Server(
            "floor",
            [*gunicorn_cmd("floor_app:app"), "--pythonpath", str(BENCH)],
            base_env(**gunicorn_env, GUNICORN_BIND=f"127.0.0.1:{port}",
                     FLOOR_DATABASE=str(folder / "floor.sqlite")),
            f"http://127.0.0.1:{port}",
        )
    if with_isso:
        isso_dir = folder / "isso"
        isso_dir.mkdir(parents=True)
        cfg = isso_config(isso_dir)
        preload_isso(cfg)
        port = free_port()
        servers["isso"] = Server(
            "isso",
            gunicorn_cmd("isso.run:application", ISSO_VENV / "bin" / "gunicorn"),
            base_env(**gunicorn_env, GUNICORN_BIND=f"127.0.0.1:{port}", ISSO_SETTINGS=str(cfg)),
            f"http://127.0.0.1:{port}",
        )
    return servers


def start_servers(
    stack: ExitStack, servers: dict[str, Server], folder: Path
) -> dict[str, subprocess.Popen]:
    """Start every server, each logging into the folder; the stack stops them."""
    return {
        name: stack.enter_context(
            process(server.cmd, server.env, folder / f"{name}.log", ready_url=server.ready_url)
        )
        for name, server in servers.items()
    }


def write_read_paths(servers: dict[str, Server], folder: Path) -> dict[str, Path]:
    """For each running server, a file of the paths that read the thread 20 at a time."""
    files = {}
    for name, server in servers.items():
        if server.kind == "ours":
            paths = ours_read_paths(server.url)
        elif server.kind == "isso":
            paths = isso_read_paths(server.url)
        else:
            paths = ["/api/v1/comments"]
        files[name] = folder / f"{name}-paths.txt"
        files[name].write_text("\n".join(paths) + "\n")
    return files


# --------------------------------------------------------------------------- run



def show(kind: str, name: str, run: int, result: dict) -> None:
    """One line of progress per wrk run."""
    print(
        f"{kind:6} {name:4} run {run + 1}: {result['rps']:8.1f} rps "
        f"p50 {fmt_ms(result['p50_us'])} ms p99 {fmt_ms(result['p99_us'])} ms "
        f"errors {result['errors']}",
        flush=True,
    )

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 runs of 3 s each")
    # One sync worker per core: bench/workers.py measured it fastest for ours and bare
    # Flask, and within a few percent of the best for isso, on this 2-core machine.
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--no-isso", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temp folders")
    opts = parser.parse_args()
    if opts.quick:
        opts.duration = 3
    ensure_wrk()
    with_isso = not opts.no_isso
    if with_isso:
        ensure_isso()

    tmp = temp_dir("http-")
    servers = prepare_servers(tmp, opts.workers, with_isso, with_floor=True)
    names = list(servers)
    readers = [name for name in names if servers[name].kind != "floor"]
    intake: dict[str, list[dict]] = {name: [] for name in names}
    reads: dict[str, list[dict]] = {name: [] for name in readers}
    rss: dict[str, list[float]] = {}
    try:
        with ExitStack() as stack:
            procs = start_servers(stack, servers, tmp)

            # Warm up (imports, first connections, rules compiled) before measuring.
            nonce = now_id()
            for server in servers.values():
                run_wrk(
                    server.post_url,
                    lua_dir() / "post.lua",
                    [f"warm{nonce}", server.lua_mode],
                    duration=2,
                    connections=opts.connections,
                )
            read_files = write_read_paths(
                {name: servers[name] for name in readers}, tmp)

            for run in range(opts.runs):
                order = names[run % len(names) :] + names[: run % len(names)]
                for name in order:
                    before = cpu_seconds(procs[name].pid)
                    result = run_wrk(
                        servers[name].post_url,
                        lua_dir() / "post.lua",
                        [f"r{run}{nonce}", servers[name].lua_mode],
                        duration=opts.duration,
                        connections=opts.connections,
                    )
                    result["cpu_ms"] = cpu_ms(procs[name].pid, before, result)
                    intake[name].append(result)
                    show("intake", name, run, result)
                for name in (name for name in order if name in readers):
                    before = cpu_seconds(procs[name].pid)
                    result = run_wrk(
                        servers[name].url + "/",
                        lua_dir() / "read.lua",
                        [str(read_files[name])],
                        duration=opts.duration,
                        connections=opts.connections,
                    )
                    result["cpu_ms"] = cpu_ms(procs[name].pid, before, result)
                    reads[name].append(result)
                    show("read", name, run, result)
            for name, proc in procs.items():
                rss[name] = [peak_rss_mib(pid) for pid in workers_of(proc.pid)]
            stored = count_ours(servers["ours"].env)
    finally:
        if not opts.keep:
            remove(tmp)

    report(opts, intake, reads, rss, stored, with_isso)
    return 0


def cpu_ms(master: int, before: float, result: dict) -> float:
    """The workers' CPU per request of a wrk run, in ms (``before``: cpu_seconds at its start)."""
    return (cpu_seconds(master) - before) * 1000 / max(result["requests"], 1)


def count_ours(env: dict[str, str]) -> dict[str, int]:
    code = (
        "import sqlalchemy as sa\nfrom moderation import create_app\n"
        "from moderation.extensions import db\nfrom moderation.models import Comment\n"
        "app = create_app()\nwith app.app_context():\n"
        "    rows = db.session.execute(sa.select(Comment.status, sa.func.count())"
        ".group_by(Comment.status)).all()\n"
        "    import json; print(json.dumps({s.value: n for s, n in rows}))"
    )
    out = subprocess.run(
        [str(BIN / "python"), "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def summary(results: list[dict]) -> dict[str, float]:
    return {
        "rps": med([r["rps"] for r in results]),
        "p50": med([r["p50_us"] for r in results]),
        "p99": med([r["p99_us"] for r in results]),
        "errors": sum(r["errors"] for r in results),
        "requests": sum(r["requests"] for r in results),
        "cpu_ms": med([r["cpu_ms"] for r in results]),
    }


def report(opts, intake, reads, rss, stored, with_isso) -> None:
    s_in = {name: summary(runs) for name, runs in intake.items() if runs}
    s_rd = {name: summary(runs) for name, runs in reads.items() if runs}
    setup = (
        f"- gunicorn: `gunicorn.conf.py` (sync workers), GUNICORN_WORKERS={opts.workers} "
        f"for every server; wrk -t2 -c{opts.connections} -d{opts.duration}s on 127.0.0.1; "
        f"median of {opts.runs} interleaved runs; wrk and the servers share the machine.\n"
    )

    def row(label: str, s: dict[str, float], runs: list[dict]) -> str:
        each = ", ".join(f"{r['rps']:.0f}" for r in runs)
        return (
            f"| {label} | {s['rps']:.0f} | {fmt_ms(s['p50'])} | {fmt_ms(s['p99'])} | "
            f"{s['cpu_ms']:.2f} | {s['requests']} | {s['errors']} | {each} |\n"
        )

    table_head = (
        "| server | req/s (median) | p50 ms | p99 ms | worker CPU ms/req (median) | "
        "requests (all runs) | non-2xx/socket errors | req/s per run |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    ratio = s_in["ours"]["rps"] / s_in["bare"]["rps"]
    body = header(this_command()) + setup
    body += (
        "- Ours: SQLite (WAL) in a temp instance, default rules, "
        "MODERATION_RATELIMIT_ENABLED=false; every request is a new commenter with unique "
        "text, so each is judged, stored and held `pending` (the default trust rule).\n"
    )
    body += f"- Comments stored by ours at the end, by status: `{json.dumps(stored)}`\n\n"
    body += "### Intake: `POST /api/v1/comments` vs a bare Flask JSON endpoint\n\n" + table_head
    body += row("ours: POST /api/v1/comments", s_in["ours"], intake["ours"])
    body += row("bare Flask: POST (bench/bare_app.py)", s_in["bare"], intake["bare"])
    body += row("floor: one durable SQLite INSERT (bench/floor_app.py)", s_in["floor"],
                intake["floor"])
    floor = s_in["floor"]["rps"] / s_in["bare"]["rps"]
    body += (
        f"\n**Ratio ours / bare Flask: {ratio:.2f}** (target >= 0.5: "
        f"{'met' if ratio >= 0.5 else 'NOT met'}).\n\n"
        f"The floor, which stores each body as one row and does nothing else, reaches "
        f"{floor:.2f} of bare Flask; ours reaches {s_in['ours']['rps'] / s_in['floor']['rps']:.2f} "
        "of the floor. Worker CPU per request: ours "
        f"{s_in['ours']['cpu_ms']:.2f} ms, floor {s_in['floor']['cpu_ms']:.2f} ms, bare "
        f"{s_in['bare']['cpu_ms']:.2f} ms.\n"
    )
    body += (
        "\nPeak RSS per worker at the end (MiB): "
        + "; ".join(
            f"{name}: {', '.join(f'{v:.0f}' for v in values)}" for name, values in rss.items()
        )
        + "\n"
    )
    write_section("HTTP intake vs bare Flask", body)

    if with_isso:
        r_in = s_in["ours"]["rps"] / s_in["isso"]["rps"]
        r_rd = s_rd["ours"]["rps"] / s_rd["isso"]["rps"]
        body = header(this_command()) + setup
        body += (
            f"- isso {isso_version()} from PyPI in bench/.work/isso-venv, guard and moderation "
            "off, SQLite in a temp folder, `gunicorn -c gunicorn.conf.py "
            "isso.run:application`.\n- Intake: each request a new comment with unique text "
            "and email on one thread (ours: held pending; isso: published).\n"
            f"- Read: a {READ_COMMENTS}-comment thread (all top-level, every 10th with a "
            "link), loaded straight into each database; wrk cycles through all 125 pages of "
            "20 (ours: `GET /api/v1/comments?thread=...&limit=20&cursor=...`; isso: "
            "`GET /?uri=...&limit=20&offset=...`).\n\n"
        )
        body += "### New comments\n\n" + table_head
        body += row("ours: POST /api/v1/comments", s_in["ours"], intake["ours"])
        body += row("isso: POST /new?uri=...", s_in["isso"], intake["isso"])
        body += (
            f"\n**Intake ours / isso: {r_in:.2f}x** (target >= 4x: "
            f"{'met' if r_in >= 4 else 'NOT met'}).\n\n"
        )
        body += f"### Reading a {READ_COMMENTS}-comment thread, 20 at a time\n\n" + table_head
        body += row("ours: GET /api/v1/comments", s_rd["ours"], reads["ours"])
        body += row("isso: GET /?uri=", s_rd["isso"], reads["isso"])
        body += row("(bare Flask GET, for scale)", s_rd["bare"], reads["bare"])
        body += (
            f"\n**Thread read ours / isso: {r_rd:.2f}x** (target >= 10x: "
            f"{'met' if r_rd >= 10 else 'NOT met'}).\n"
        )
        write_section("Peer comparison: isso", body)
    print(f"intake ours/bare {ratio:.2f}, floor/bare {floor:.2f}", flush=True)


def isso_version() -> str:
    out = subprocess.run(
        [
            str(ISSO_VENV / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('isso'))",
        ],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or "?"


if __name__ == "__main__":
    os.environ.pop("DATABASE_URL", None)
    sys.exit(main())
