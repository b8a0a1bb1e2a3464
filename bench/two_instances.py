"""Two instances, one PostgreSQL and one Redis: limits hold across both, rules reach both.

  .venv/bin/python bench/two_instances.py [--quick] [--workers 2]

- Database `moderation_bench_two` on the machine's PostgreSQL (created afresh), Redis
  db 14 (MODERATION_RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/14, flushed first).
- One rules file shared by both: the shipped rules with `limits.per_ip: 10/minute` and
  `trust.hold_new_commenters: false`.
- Two gunicorn instances (gunicorn.conf.py, GUNICORN_WORKERS each) on two ports, rate
  limits on. 30 comments from one IP, alternating between the ports: at most 10 accepted.
- Then the shared rules file is edited; GET /api/v1/admin/rules is polled on both ports
  until both report the new version (target: within ~2 s).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    PG_ADMIN_DSN,
    ROOT,
    base_env,
    free_port,
    gunicorn_cmd,
    header,
    http,
    last_line,
    moderation_cli,
    process,
    remove,
    temp_dir,
    this_command,
    write_section,
)

DB_NAME = "moderation_bench_two"
REDIS_URI = "redis://127.0.0.1:6379/14"
LIMIT = 10


def rules_file(folder: Path) -> Path:
    shipped = ROOT / "moderation" / "rules" / "default_rules.yaml"
    shutil.copytree(shipped.parent / "lists", folder / "lists")
    text = shipped.read_text()
    lines = []
    for line in text.splitlines():
        if line.startswith("limits:"):
            line = (
                f'limits: {{per_ip: "{LIMIT}/minute", per_email: "5/minute;30/hour", '
                'flag_per_reporter: "10/hour"}'
            )
        line = line.replace("hold_new_commenters: true", "hold_new_commenters: false")
        lines.append(line)
    path = folder / "rules.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert (
        f"{LIMIT}/minute" in path.read_text() and "hold_new_commenters: false" in path.read_text()
    )
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="(already short)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--posts", type=int, default=30)
    opts = parser.parse_args()

    import psycopg
    import redis

    redis.Redis.from_url(REDIS_URI).flushdb()
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    db_url = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    db_url += f"/{DB_NAME}"
    folder = temp_dir("two-")
    rules = rules_file(folder)
    common_env = dict(
        DATABASE_URL=db_url,
        MODERATION_INSTANCE_PATH=str(folder / "instance"),
        MODERATION_RULES_FILE=str(rules),
        MODERATION_RATELIMIT_ENABLED="true",
        MODERATION_RATELIMIT_STORAGE_URI=REDIS_URI,
        GUNICORN_WORKERS=str(opts.workers),
    )
    admin_key = last_line(moderation_cli(["init"], base_env(**common_env)))
    auth = {"Authorization": f"Bearer {admin_key}"}
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    outcome: dict = {}
    try:
        with ExitStack() as stack:
            for n, port in enumerate(ports):
                env = base_env(**common_env, GUNICORN_BIND=f"127.0.0.1:{port}")
                stack.enter_context(
                    process(
                        gunicorn_cmd("wsgi:app"),
                        env,
                        folder / f"instance{n}.log",
                        ready_url=bases[n] + "/readyz",
                    )
                )
            # The rate limit, across both instances and all their workers.
            answers: list[tuple[int, int]] = []
            run = uuid.uuid4().hex[:8]
            for n in range(opts.posts):
                which = n % 2
                status, headers, _ = http(
                    "POST",
                    bases[which] + "/api/v1/comments",
                    {
                        "thread": "/two/limits",
                        "author_name": f"Poster {n}",
                        "author_email": f"p{n}-{run}@example.org",
                        "content": f"Comment {n} of run {run}, on instance {which}.",
                    },
                )
                answers.append((which, status))
            outcome["answers"] = answers
            outcome["accepted"] = sum(1 for _, s in answers if s == 201)
            outcome["limited"] = sum(1 for _, s in answers if s == 429)
            outcome["by_instance"] = {
                f"instance {i}": dict(Counter(s for w, s in answers if w == i)) for i in (0, 1)
            }
            print(
                f"rate limit: {outcome['accepted']} accepted, {outcome['limited']} answered "
                f"429 of {opts.posts}; {outcome['by_instance']}",
                flush=True,
            )

            # The rules file change.
            before = [
                http("GET", b + "/api/v1/admin/rules", headers=auth)[2]["version"] for b in bases
            ]
            text = rules.read_text()
            assert "thresholds: {pending: 3.0, spam: 6.0}" in text
            rules.write_text(
                text.replace(
                    "thresholds: {pending: 3.0, spam: 6.0}", "thresholds: {pending: 3.5, spam: 6.0}"
                )
            )
            edited = time.monotonic()
            # Each worker reloads on its own watcher's tick, so an instance has settled once
            # STREAK answers in a row (its workers take turns) carry the new version; its
            # time is that of the first answer of that streak.
            streak_needed = opts.workers * 4
            seen: dict[int, float] = {}
            settled: dict[int, float] = {}
            streak = {0: 0, 1: 0}
            streak_start: dict[int, float] = {}
            versions: dict[int, str] = {}
            while len(settled) < 2 and time.monotonic() - edited < 15:
                for i, b in enumerate(bases):
                    if i in settled:
                        continue
                    status, _, body = http("GET", b + "/api/v1/admin/rules", headers=auth)
                    now = time.monotonic() - edited
                    if status != 200 or body["version"] == before[i]:
                        streak[i] = 0
                        continue
                    seen.setdefault(i, now)
                    versions[i] = body["version"]
                    if streak[i] == 0:
                        streak_start[i] = now
                    streak[i] += 1
                    if streak[i] >= streak_needed:
                        settled[i] = streak_start[i]
                time.sleep(0.02)
            outcome["before"] = before
            outcome["after"] = versions
            outcome["reload_seconds"] = seen
            outcome["settled_seconds"] = settled
            print(f"rules change first seen after: {seen}; every worker after: {settled}",
                  flush=True)
    finally:
        remove(folder)
        redis.Redis.from_url(REDIS_URI).flushdb()
        # The machine's PostgreSQL is shared (the test suite's database is on it): leave
        # no database behind.
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    report(opts, outcome)
    return 0


def report(opts, outcome) -> None:
    seen = outcome["reload_seconds"]
    ok_limit = outcome["accepted"] <= LIMIT and outcome["accepted"] > 0
    settled = outcome["settled_seconds"]
    ok_rules = len(settled) == 2 and max(settled.values()) <= 2.5
    body = header(this_command())
    body += (
        f"- Two gunicorn instances ({opts.workers} workers each) on two ports, one "
        f"PostgreSQL database (`{DB_NAME}`), Redis `{REDIS_URI}` for limits, one rules "
        f"file with `per_ip: {LIMIT}/minute` and `hold_new_commenters: false`.\n\n"
    )
    body += (
        f"- Rate limit: {opts.posts} comments from 127.0.0.1 alternating between the "
        f"instances: **{outcome['accepted']} accepted**, {outcome['limited']} answered 429 "
        f"(per instance: {outcome['by_instance']}). Target: at most {LIMIT} accepted: "
        f"{'met' if ok_limit else 'NOT met'}.\n"
    )
    body += (
        "- Rules change (shared file edited in place, thresholds.pending 3.0 -> 3.5): "
        "new version seen on "
        + ", ".join(f"instance {i} after {s:.2f} s" for i, s in sorted(seen.items()))
        + "; every worker of it (then "
        + f"{opts.workers * 4} new answers in a row) after "
        + ", ".join(f"{s:.2f} s" for _, s in sorted(settled.items()))
        + f". Target ~2 s on both: {'met' if ok_rules else 'NOT met'}.\n"
    )
    write_section("Two instances: shared limits and rules", body)


if __name__ == "__main__":
    sys.exit(main())
