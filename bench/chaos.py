"""Resilience: comments keep their promise while PostgreSQL crashes and a worker is killed.

  .venv/bin/python bench/chaos.py [--quick] [--duration 60] [--clients 6] [--outage 5]

- A private PostgreSQL (initdb in a temp folder under /tmp, its own port on 127.0.0.1,
  run as the `postgres` user when we are root), fsync and synchronous_commit left on.
- The service under gunicorn (gunicorn.conf.py, GUNICORN_WORKERS=4, its 30 s timeout) on it.
- --clients threads send comments, each with its own Idempotency-Key; on a 503 or a
  connection error or timeout they resend the same key and body (after min(Retry-After,
  0.2) s, so that the recovery time is measured finely); every 201's id is recorded.
- At 35% of the run PostgreSQL is stopped in immediate mode (`pg_ctl stop -m immediate`,
  a crash: no shutdown checkpoint), left down --outage seconds, and started again: an
  immediate-mode restart with a visible outage. At 60% one gunicorn worker gets SIGKILL.
- Afterwards: every acknowledged id is in the database; no key made two comments; no 500;
  during the outage only 503s with Retry-After (or refused connections), none slower than
  the gunicorn timeout; the first 201 within 5 s of PostgreSQL being back.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client as httplib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    base_env,
    free_port,
    gunicorn_cmd,
    header,
    http,
    moderation_cli,
    process,
    remove,
    temp_dir,
    this_command,
    workers_of,
    write_section,
)

GUNICORN_TIMEOUT = 30


def pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise RuntimeError(f"{name} not found (install postgresql)")


class PrivatePostgres:
    """initdb + pg_ctl in a temp folder; as `postgres` when run as root (initdb refuses root)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="moderation-chaos-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres", "postgres")

    def run(self, *args: str, timeout: float = 120) -> None:
        subprocess.run(
            [*self.as_user, *args],
            check=True,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.dir,
        )

    def init(self) -> None:
        self.run(
            pg_bin("initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-instructions",
            "-E",
            "UTF8",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c max_connections=50 -c shared_buffers=64MB"
        )
        self.run(
            pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self.run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):  # already down
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"


class Load:
    """Client threads: unique keys, retries on 503 / connection trouble, a log of answers."""

    def __init__(self, base: str, clients: int, stop_at: float, give_up_at: float) -> None:
        self.base = base
        self.clients = clients
        self.stop_at = stop_at
        self.give_up_at = give_up_at
        self.lock = threading.Lock()
        self.events: list[dict] = []  # one per attempt
        self.acks: dict[str, int] = {}  # key -> id
        self.failed: dict[str, str] = {}  # key -> why we gave up
        self.threads = [
            threading.Thread(target=self.client, args=(n,), daemon=True) for n in range(clients)
        ]

    def client(self, n: int) -> None:
        rng = random.Random(n)
        while time.monotonic() < self.stop_at:
            key = uuid.uuid4().hex
            body = {
                "thread": f"/chaos/{rng.randrange(20)}",
                "author_name": f"Client {n}",
                "author_email": f"c{n}-{key[:8]}@example.org",
                "content": f"chaos {key}: a comment that must not be lost.",
            }
            try:
                self.send(key, body)
            except Exception as exc:  # noqa: BLE001 - a client bug must show as a failure
                with self.lock:
                    self.failed[key] = f"client crashed: {exc!r}"
                return

    def send(self, key: str, body: dict) -> None:
        attempt = 0
        while True:
            attempt += 1
            sent = time.monotonic()
            status, retry_after, error, ident = None, None, None, None
            try:
                status, headers, answer = http(
                    "POST",
                    self.base + "/api/v1/comments",
                    body,
                    {"Idempotency-Key": key},
                    timeout=GUNICORN_TIMEOUT + 5,
                )
                retry_after = headers.get("Retry-After")
                if status == 201 and isinstance(answer, dict):
                    ident = answer.get("id")
            except (OSError, urllib.error.URLError, httplib.HTTPException) as exc:
                error = type(getattr(exc, "reason", exc)).__name__
            done = time.monotonic()
            with self.lock:
                self.events.append(
                    {
                        "key": key,
                        "attempt": attempt,
                        "sent": sent,
                        "done": done,
                        "status": status,
                        "retry_after": retry_after,
                        "error": error,
                        "id": ident,
                    }
                )
            if status == 201:
                with self.lock:
                    if key in self.acks and self.acks[key] != ident:
                        self.failed[key] = f"two ids: {self.acks[key]} and {ident}"
                    self.acks[key] = ident
                return
            if status == 503 or error is not None:
                if done > self.give_up_at:
                    with self.lock:
                        self.failed[key] = f"still failing at the end ({status or error})"
                    return
                wait = 0.2
                if retry_after and retry_after.isdigit():
                    wait = min(float(retry_after), 0.2)
                time.sleep(wait)
                continue
            with self.lock:
                self.failed[key] = f"answered {status}"
            return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 30 s run, 3 s outage")
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--outage", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=4)
    opts = parser.parse_args()
    if opts.quick:
        opts.duration = 30
        opts.outage = 3

    pg = PrivatePostgres(free_port())
    instance = temp_dir("chaos-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    marks: dict[str, float] = {}
    try:
        pg.init()
        pg.start()
        import psycopg

        with psycopg.connect(pg.dsn + "/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE moderation")
        url = pg.dsn.replace("postgresql://", "postgresql+psycopg://") + "/moderation"
        env = base_env(
            DATABASE_URL=url,
            MODERATION_INSTANCE_PATH=str(instance),
            MODERATION_RATELIMIT_ENABLED="false",
            GUNICORN_WORKERS=str(opts.workers),
            GUNICORN_BIND=f"127.0.0.1:{port}",
            GUNICORN_TIMEOUT=str(GUNICORN_TIMEOUT),
        )
        moderation_cli(["init"], env)
        with process(
            gunicorn_cmd("wsgi:app"), env, instance / "gunicorn.log", ready_url=base + "/readyz"
        ) as server:
            # Warm every worker: one comment each (new connections, rules loaded).
            for n in range(opts.workers * 2):
                http(
                    "POST",
                    base + "/api/v1/comments",
                    {
                        "thread": "/chaos/warm",
                        "author_name": "Warm",
                        "author_email": f"warm{n}@example.org",
                        "content": f"warm up {n} {uuid.uuid4().hex}",
                    },
                )
            t0 = time.monotonic()
            stop_at = t0 + opts.duration
            load = Load(base, opts.clients, stop_at, stop_at + GUNICORN_TIMEOUT + 10)
            for thread in load.threads:
                thread.start()

            time.sleep(max(0.0, t0 + opts.duration * 0.35 - time.monotonic()))
            marks["pg_stop_called"] = time.monotonic()
            pg.stop("immediate")
            marks["pg_down"] = time.monotonic()
            print(f"PostgreSQL stopped (immediate) at +{marks['pg_down'] - t0:.1f}s", flush=True)
            time.sleep(opts.outage)
            marks["pg_start_called"] = time.monotonic()
            pg.start()
            marks["pg_back"] = time.monotonic()
            print(f"PostgreSQL back at +{marks['pg_back'] - t0:.1f}s", flush=True)

            # The worker dies once the database is back, on its own (at 60%, or 2 s after).
            kill_at = max(t0 + opts.duration * 0.6, marks["pg_back"] + 2)
            time.sleep(max(0.0, kill_at - time.monotonic()))
            victims = workers_of(server.pid)
            victim = random.choice(victims)
            marks["worker_killed"] = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            print(
                f"worker {victim} killed (SIGKILL) at +{marks['worker_killed'] - t0:.1f}s",
                flush=True,
            )

            for thread in load.threads:
                thread.join(timeout=max(1.0, load.give_up_at - time.monotonic() + 5))
            alive = sum(t.is_alive() for t in load.threads)
            time.sleep(0.5)
            workers_after = len(workers_of(server.pid))
        stored = check_database(pg.dsn + "/moderation", load.acks)
    finally:
        pg.cleanup()
        remove(instance)
    report(opts, t0, marks, load, stored, alive, workers_after)
    return 0


def check_database(dsn: str, acks: dict[str, int]) -> dict:
    import psycopg

    with psycopg.connect(dsn) as conn:
        ids = list(acks.values())
        present = conn.execute(
            "SELECT count(*) FROM comments WHERE id = ANY(%s)", (ids,)
        ).fetchone()[0]
        per_key = conn.execute(
            "SELECT substring(content from 7 for 32) AS key, count(*) FROM comments "
            "WHERE content LIKE 'chaos %%' GROUP BY 1"
        ).fetchall()
        mismatched = 0
        for key, ident in acks.items():
            row = conn.execute("SELECT content FROM comments WHERE id = %s", (ident,)).fetchone()
            if row is None or key not in row[0]:
                mismatched += 1
    keys_stored = {key for key, _ in per_key}
    return {
        "acknowledged": len(ids),
        "acknowledged_present": present,
        "acknowledged_wrong_content": mismatched,
        "keys_stored": len(keys_stored),
        "keys_with_two_comments": sum(1 for _, n in per_key if n > 1),
        "stored_not_acknowledged": len(keys_stored - set(acks)),
    }


def report(opts, t0, marks, load: Load, stored: dict, alive: int, workers_after: int) -> None:
    events = load.events
    down, back = marks["pg_down"], marks["pg_back"]
    statuses = Counter(str(e["status"] or e["error"]) for e in events)
    # Answers to requests that overlapped the outage (sent before it ended, answered after
    # it began).
    outage = [e for e in events if e["sent"] <= back and e["done"] >= marks["pg_stop_called"]]
    outage_statuses = Counter(str(e["status"] or e["error"]) for e in outage)
    outage_503_no_retry_after = sum(
        1 for e in outage if e["status"] == 503 and not e["retry_after"]
    )
    all_503_no_retry_after = sum(1 for e in events if e["status"] == 503 and not e["retry_after"])
    slowest = max((e["done"] - e["sent"] for e in events), default=0.0)
    slowest_outage = max((e["done"] - e["sent"] for e in outage), default=0.0)
    after = [e["done"] for e in events if e["status"] == 201 and e["done"] >= back]
    first_201 = (min(after) - back) if after else float("inf")
    kill = marks["worker_killed"]
    around_kill = Counter(
        str(e["status"] or e["error"]) for e in events if kill - 0.5 <= e["done"] <= kill + 5
    )
    server_errors = sum(
        1 for e in events if e["status"] and e["status"] >= 500 and e["status"] != 503
    )
    checks = {
        "every acknowledged id is in the database": stored["acknowledged_present"]
        == stored["acknowledged"]
        and stored["acknowledged_wrong_content"] == 0,
        "no key made two comments": stored["keys_with_two_comments"] == 0
        and not any("two ids" in why for why in load.failed.values()),
        "no 500 (or other 5xx but 503) at any time": server_errors == 0,
        "every 503 carried Retry-After": all_503_no_retry_after == 0,
        "during the outage: only 503 or connection errors": all(
            k in ("503", "201") or not k.isdigit() for k in outage_statuses
        ),
        f"no answer slower than the gunicorn timeout ({GUNICORN_TIMEOUT} s)": slowest
        < GUNICORN_TIMEOUT,
        "first 201 within 5 s of PostgreSQL being back": first_201 <= 5.0,
        "every key settled (no client gave up)": not load.failed and alive == 0,
    }
    lines = [
        f"requests sent (attempts): {len(events)}; keys: {len(load.acks) + len(load.failed)}; "
        f"acknowledged (201): {stored['acknowledged']}",
        f"answers over the whole run: {dict(statuses)}",
        f"PostgreSQL down at +{down - t0:.1f} s (immediate stop), back at +{back - t0:.1f} s "
        f"(outage {back - marks['pg_stop_called']:.1f} s)",
        f"answers to requests overlapping the outage: {dict(outage_statuses)}; "
        f"503 without Retry-After: {outage_503_no_retry_after}; slowest {slowest_outage:.2f} s",
        f"first 201 after PostgreSQL was back: {first_201:.2f} s",
        f"worker SIGKILLed at +{kill - t0:.1f} s; answers in the 5 s after: {dict(around_kill)}; "
        f"workers alive at the end: {workers_after}/{opts.workers}",
        f"slowest answer of the run: {slowest:.2f} s",
        f"database: {json.dumps(stored)}",
        f"keys a client gave up on: {len(load.failed)} {dict(Counter(load.failed.values()))}",
    ]
    for line in lines:
        print(line, flush=True)
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}: {name}", flush=True)
    body = header(this_command())
    body += (
        f"- {opts.clients} client threads for {opts.duration:.0f} s against gunicorn "
        f"({opts.workers} sync workers, timeout {GUNICORN_TIMEOUT} s) on a private "
        "PostgreSQL (initdb in a temp folder, own port, fsync on). Each comment has its "
        "own Idempotency-Key; 503s and connection errors are retried with the same key "
        "after min(Retry-After, 0.2) s.\n- Faults: `pg_ctl stop -m immediate` at 35% of "
        f"the run, `pg_ctl start` {opts.outage:.0f} s later; SIGKILL to one gunicorn "
        "worker at 60%.\n\n"
    )
    body += "\n".join(f"- {line}" for line in lines) + "\n\n"
    body += "| check | result |\n|---|---|\n"
    body += "".join(f"| {name} | {'PASS' if ok else '**FAIL**'} |\n" for name, ok in checks.items())
    write_section("Resilience: chaos (PostgreSQL crash, worker SIGKILL)", body)


if __name__ == "__main__":
    sys.exit(main())
