"""Scale on PostgreSQL: 1,000,000 comments bulk-loaded with COPY, then the moderation
queue's page 1 and page 10,000 (50 a page) and a 10,000-comment public thread, timed.

  .venv/bin/python bench/scale_pg.py [--quick] [--reload] [--calls 300]

- Database: `moderation_bench` on the machine's PostgreSQL (BENCH_PG_DSN, default
  postgresql://postgres@127.0.0.1:5432/postgres to create it); never the `test` database.
  Migrated with `moderation db upgrade`, then loaded by psycopg 3 `COPY ... FROM STDIN`
  (indexes dropped during the load and rebuilt from the migration's own definitions, FK
  triggers off for the load). A database already holding the same data is reused;
  --reload forces a fresh load.
- The mix: 5 sites; `default` holds 70% of the comments with a big pre-moderation backlog
  (80% pending: page 10,000 of its queue must exist), the others are mostly approved;
  ~45,000 threads; one thread, `/big-thread` on `default`, holds 10,000 approved comments
  (a fifth of them replies). The audit log and flags (``load_history``): a moderator's
  decision on 3 in 10 decided comments, and 1 in 20 pending ones flagged back by 3 readers.
- Timing: in-process, through the Flask test client (routing, auth, query, serialization;
  no HTTP socket), --calls calls per case after a warm-up; p50/p99 reported. The SQL
  the app sends is captured and shown with EXPLAIN (ANALYZE, BUFFERS).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    PG_ADMIN_DSN,
    ROOT,
    base_env,
    header,
    moderation_cli,
    percentile,
    temp_dir,
    this_command,
    write_section,
)

DB_NAME = "moderation_bench"
TOTAL = 1_000_000
BIG_THREAD = "/big-thread"
BIG_COUNT = 10_000
PAGE = 50
DEEP_PAGE = 10_000


def db_urls() -> tuple[str, str]:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    plain = f"{base}/{DB_NAME}"
    return plain, plain.replace("postgresql://", "postgresql+psycopg://", 1)


# --------------------------------------------------------------------------- loading

SENTENCES = [
    "I read the whole piece twice and I still think the council got the numbers wrong.",
    "Thanks for covering this, nobody else did.",
    "The library hours were cut last year too, and nobody asked the people who use it.",
    "Does anyone know when the consultation closes?",
    "This is the third article this month about the bridge and still no date for the repairs.",
    "My grandmother lived on that street for fifty years; it was always like this.",
    "Good reporting, but the headline oversells it.",
    "Cheap pills online no prescription visit my website now",
    "Work from home and make $500 per day, click here for details.",
    "The figures in the second chart do not add up to 100%.",
    "I disagree with the previous comment; the data says the opposite.",
    "Where can I read the full report?",
]
SPAM_HITS = (
    '[{"rule": "PHARMA_TERMS", "target": "content", "match": "pills", "score": 2.5, '
    '"outcome": null, "explanation": "pharmacy spam"}]'
)
USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0 Safari/537.36",
]


def _esc(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def load(plain_url: str, total: int) -> dict[str, float]:
    import psycopg

    rng = random.Random(42)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with psycopg.connect(plain_url, autocommit=False) as conn, conn.cursor() as cur:
        cur.execute("SET session_replication_role = replica")  # no FK triggers during the load
        cur.execute("SELECT id FROM sites WHERE slug = 'default'")
        default_id = cur.fetchone()[0]
        site_ids = [default_id]
        for n in range(1, 5):
            cur.execute(
                "INSERT INTO sites (slug, name, allowed_origins, created_at) VALUES "
                "(%s, %s, '[]', now()) RETURNING id",
                (f"site-{n}", f"Site {n}"),
            )
            site_ids.append(cur.fetchone()[0])

        # Threads: the big one, then 20,000 on default and 6,000 on each other site.
        thread_rows = [(default_id, BIG_THREAD, "The big thread")]
        thread_rows += [(default_id, f"/news/{n}", f"Story {n}") for n in range(20_000)]
        for site in site_ids[1:]:
            thread_rows += [(site, f"/posts/{n}", f"Post {n}") for n in range(6_000)]
        with cur.copy("COPY threads (site_id, key, title, closed, created_at) FROM STDIN") as cp:
            for site, key, title in thread_rows:
                cp.write_row((site, key, title, False, "2024-01-01T00:00:00+00:00"))
        cur.execute("SELECT id, site_id, key FROM threads")
        by_key = {(site, key): tid for tid, site, key in cur.fetchall()}
        big_id = by_key[(default_id, BIG_THREAD)]
        default_threads = [by_key[(default_id, f"/news/{n}")] for n in range(20_000)]
        other_threads = {
            site: [by_key[(site, f"/posts/{n}")] for n in range(6_000)] for site in site_ids[1:]
        }
        timings["threads"] = time.perf_counter() - started

        # Indexes off for the load, rebuilt afterwards from their own definitions.
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'comments' "
            "AND indexname <> 'comments_pkey'"
        )
        index_defs = cur.fetchall()
        for name, _ in index_defs:
            cur.execute(f'DROP INDEX "{name}"')

        emails = [f"reader{n}@example.org" for n in range(200_000)]
        email_hashes = [hashlib.sha256(e.encode()).hexdigest() for e in emails]
        cols = (
            "id, site_id, thread_id, parent_id, root_id, status, status_reason, author_name, "
            "author_email, email_hash, author_url, content, content_hash, ip, user_agent, "
            "referrer, score, hits, rules_version, learned_as, flag_count, version, "
            "created_at, updated_at"
        )
        big_every = total // BIG_COUNT
        big_ids: list[int] = []
        big_root: dict[int, int] = {}
        start_epoch = 1_700_000_000
        load_started = time.perf_counter()
        with cur.copy(f"COPY comments ({cols}) FROM STDIN") as cp:
            chunk: list[str] = []
            for cid in range(1, total + 1):
                roll = rng.random()
                parent = root = None
                if cid % big_every == 0 and len(big_ids) < BIG_COUNT:
                    site, thread, status, reason = default_id, big_id, "approved", "moderator"
                    if big_ids and rng.random() < 0.2:
                        parent = rng.choice(big_ids[-200:])
                        root = big_root[parent]
                    big_ids.append(cid)
                    big_root[cid] = root or cid
                elif roll < 0.7:
                    site, thread = default_id, rng.choice(default_threads)
                    r = rng.random()
                    status = (
                        "pending"
                        if r < 0.80
                        else "approved"
                        if r < 0.95
                        else "spam"
                        if r < 0.99
                        else "rejected"
                    )
                    reason = "rules"
                else:
                    site = site_ids[1 + int((roll - 0.7) / 0.075) % 4]
                    thread = rng.choice(other_threads[site])
                    r = rng.random()
                    status = (
                        "approved"
                        if r < 0.80
                        else "pending"
                        if r < 0.85
                        else "spam"
                        if r < 0.97
                        else "rejected"
                        if r < 0.99
                        else "deleted"
                    )
                    reason = "rules"
                person = rng.randrange(len(emails))
                text = " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(1, 4)))
                score = (
                    rng.uniform(6, 10)
                    if status == "spam"
                    else rng.uniform(0, 5)
                    if status == "pending"
                    else rng.uniform(-2, 2)
                )
                when = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(start_epoch + cid * 30))
                fields = [
                    str(cid),
                    str(site),
                    str(thread),
                    "\\N" if parent is None else str(parent),
                    "\\N" if root is None else str(root),
                    status,
                    reason,
                    f"Reader {person}",
                    emails[person],
                    email_hashes[person],
                    "\\N" if person % 7 else f"https://blog{person}.example.org/",
                    _esc(text),
                    hashlib.md5(f"{cid}{text}".encode()).hexdigest(),
                    f"198.51.{person % 256}.{person // 256 % 256}",
                    rng.choice(USER_AGENTS),
                    "\\N",
                    f"{score:.3f}",
                    SPAM_HITS if status == "spam" else "[]",
                    "bench",
                    "\\N",
                    "0",
                    "1",
                    when,
                    when,
                ]
                chunk.append("\t".join(fields))
                if len(chunk) >= 20_000:
                    cp.write("\n".join(chunk) + "\n")
                    chunk = []
            if chunk:
                cp.write("\n".join(chunk) + "\n")
        timings["copy_comments"] = time.perf_counter() - load_started
        cur.execute("SELECT setval(pg_get_serial_sequence('comments', 'id'), %s)", (total,))
        history_started = time.perf_counter()
        load_history(cur)
        timings["history"] = time.perf_counter() - history_started
        index_started = time.perf_counter()
        cur.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in index_defs:
            cur.execute(definition)
        timings["indexes"] = time.perf_counter() - index_started
        conn.commit()
    with psycopg.connect(plain_url, autocommit=True) as conn:
        t0 = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        timings["vacuum_analyze"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    return timings


def load_history(cur) -> None:
    """The audit log and reader flags a busy site has, so that the queue's page of comment
    details (each with its flags and history) reads real rows: a moderator decided 3 in 10
    of the approved, spam and rejected comments; 1 in 20 pending comments came back from
    being published, flagged by 3 readers (a decision by `readers` and 3 flags each)."""
    cur.execute(
        "INSERT INTO decisions (site_id, comment_id, actor, action, old_status, new_status,"
        " reason, created_at) "
        "SELECT site_id, id, 'bench-mod', CASE status WHEN 'approved' THEN 'approve'"
        " WHEN 'spam' THEN 'spam' ELSE 'reject' END, 'pending', status, '',"
        " created_at + interval '1 hour' "
        "FROM comments WHERE status IN ('approved', 'spam', 'rejected') AND id % 10 < 3"
    )
    cur.execute(
        "INSERT INTO decisions (site_id, comment_id, actor, action, old_status, new_status,"
        " reason, created_at) "
        "SELECT site_id, id, 'readers', 'flag', 'approved', 'pending',"
        " 'flagged by 3 readers', created_at + interval '2 hours' "
        "FROM comments WHERE status = 'pending' AND id % 20 = 0"
    )
    cur.execute(
        "INSERT INTO flags (comment_id, reporter_hash, reason, created_at) "
        "SELECT c.id, md5(c.id::text || '-' || n), (ARRAY['spam', 'abuse', 'other'])[n],"
        " c.created_at + n * interval '20 minutes' "
        "FROM comments c CROSS JOIN generate_series(1, 3) AS n "
        "WHERE c.status = 'pending' AND c.id % 20 = 0"
    )


def prepare(reload: bool, total: int, env: dict[str, str]) -> dict[str, float] | None:
    """Create, migrate and load the database unless it already holds this data set."""
    import psycopg

    plain, _ = db_urls()
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)
        ).fetchone()
    if exists and not reload:
        try:
            with psycopg.connect(plain) as conn:
                count = conn.execute("SELECT count(*) FROM comments").fetchone()[0]
                big = conn.execute(
                    "SELECT count(*) FROM comments c JOIN threads t ON "
                    "t.id = c.thread_id WHERE t.key = %s",
                    (BIG_THREAD,),
                ).fetchone()[0]
                flags = conn.execute("SELECT count(*) FROM flags").fetchone()[0]
            if count == total and big == BIG_COUNT and flags:
                print(f"reusing {DB_NAME}: {count} comments", flush=True)
                moderation_cli(["db", "upgrade"], env)  # new migrations (indexes) apply
                return None
        except psycopg.Error:
            pass
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DB_NAME}"')
    moderation_cli(["db", "upgrade"], env)
    print(f"loading {total} comments with COPY ...", flush=True)
    timings = load(plain, total)
    print("loaded:", {k: round(v, 1) for k, v in timings.items()}, flush=True)
    return timings


# --------------------------------------------------------------------------- timing


def measure(calls: int) -> dict:
    import sqlalchemy as sa

    from moderation import create_app
    from moderation.extensions import db
    from moderation.services import cursors, keys

    app = create_app()
    results: dict = {"cases": {}, "plans": {}}
    with app.app_context():
        engine = db.engine
        key_name = "scale-bench"
        _, secret = keys.create_key(key_name, "admin", [])
        site_id = db.session.execute(sa.text("SELECT id FROM sites WHERE slug='default'")).scalar()
        # The keyset position after page 9,999: the id of the 499,950th pending comment.
        after_row = db.session.execute(
            sa.text(
                "SELECT id, score FROM comments WHERE site_id = :s AND status = 'pending' "
                "ORDER BY id OFFSET :o LIMIT 1"
            ),
            {"s": site_id, "o": (DEEP_PAGE - 1) * PAGE - 1},
        ).first()
        thread_id = db.session.execute(
            sa.text("SELECT id FROM threads WHERE key = :k"), {"k": BIG_THREAD}
        ).scalar()
        last_root = db.session.execute(
            sa.text(
                "SELECT id FROM comments WHERE thread_id = :t AND status='approved' AND parent_id "
                "IS NULL ORDER BY id DESC OFFSET 20 LIMIT 1"
            ),
            {"t": thread_id},
        ).scalar()
        db.session.remove()
    if after_row is None:
        raise RuntimeError("fewer pending comments than page 10,000 needs")
    deep_cursor = queue_cursor(cursors, after_row[1], after_row[0])
    last_cursor = id_cursor(cursors, last_root)
    auth = {"Authorization": f"Bearer {secret}"}
    thread_q = f"site=default&thread={quote(BIG_THREAD)}"
    cases = {
        "queue page 1 (site=default, pending, oldest, 50)": (
            f"/api/v1/moderation/queue?site=default&limit={PAGE}",
            auth,
        ),
        f"queue page {DEEP_PAGE:,} (cursor)": (
            f"/api/v1/moderation/queue?site=default&limit={PAGE}&cursor={deep_cursor}",
            auth,
        ),
        "queue page 1, all sites (admin, no site filter)": (
            f"/api/v1/moderation/queue?limit={PAGE}",
            auth,
        ),
        "thread of 10,000: first page (20)": (f"/api/v1/comments?{thread_q}", {}),
        "thread of 10,000: first page (100)": (f"/api/v1/comments?{thread_q}&limit=100", {}),
        "thread of 10,000: last page (20, cursor)": (
            f"/api/v1/comments?{thread_q}&cursor={last_cursor}",
            {},
        ),
    }
    client = app.test_client()
    captured: list[tuple[str, object]] = []
    capturing = [False]

    def capture(conn, cursor, statement, parameters, context, executemany):
        if capturing[0]:
            captured.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    for name, (url, headers) in cases.items():
        for _ in range(10):
            response = client.get(url, headers=headers)
            assert response.status_code == 200, (name, response.status_code, response.data[:300])
        body = response.get_json()
        captured.clear()
        capturing[0] = True
        client.get(url, headers=headers)
        capturing[0] = False
        statements = list(captured)
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            client.get(url, headers=headers)
            times.append((time.perf_counter() - t0) * 1000)
        items = body["items"]
        results["cases"][name] = {
            "url": url,
            "p50": percentile(times, 50),
            "p99": percentile(times, 99),
            "mean": statistics.fmean(times),
            "items": len(items),
            "replies": sum(len(i.get("replies", [])) for i in items),
            "first_id": items[0]["id"] if items else None,
            "queries": len(statements),
        }
        print(
            f"{name}: p50 {results['cases'][name]['p50']:.2f} ms p99 "
            f"{results['cases'][name]['p99']:.2f} ms, {len(items)} items, "
            f"{len(statements)} queries",
            flush=True,
        )
        results["plans"][name] = explain(engine, statements)
    sa.event.remove(engine, "before_cursor_execute", capture)
    with app.app_context():
        db.session.execute(sa.text("DELETE FROM api_keys WHERE name = :n"), {"n": key_name})
        db.session.commit()
    return results


# The listings the cases page: cursors carry a digest of theirs (older code took none).
QUEUE_LISTING = ("queue", "default", "pending", None, None, None, "oldest")
THREAD_LISTING = ("thread", "default", BIG_THREAD)


def queue_cursor(cursors, score: float, last_id: int) -> str:
    """The queue's cursor after (score, id), in moderation/services/cursors.py's format."""
    if hasattr(cursors, "Listing"):
        return cursors.encode_queue(score, last_id, QUEUE_LISTING)
    if hasattr(cursors, "encode_queue"):
        return cursors.encode_queue(score, last_id)
    return cursors.encode([last_id])


def id_cursor(cursors, last_id: int) -> str:
    if hasattr(cursors, "Listing"):
        return cursors.encode_id(last_id, THREAD_LISTING)
    if hasattr(cursors, "encode_id"):
        return cursors.encode_id(last_id)
    return cursors.encode([last_id])


def explain(engine, statements) -> list[dict]:
    """EXPLAIN (ANALYZE, BUFFERS) of each SELECT the request sent that reads comments."""
    plans = []
    seen = set()
    with engine.connect() as conn:
        for statement, parameters in statements:
            reads = ("comments", "flags", "decisions")
            if not statement.lstrip().upper().startswith("SELECT") or not any(
                table in statement for table in reads
            ):
                continue
            if statement in seen:
                continue
            seen.add(statement)
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()
            text = "\n".join(r[0] for r in rows)
            plans.append(
                {
                    "sql": statement,
                    "params": parameters,
                    "plan": text,
                    "seq_scan": any(f"Seq Scan on {table}" in text for table in reads),
                    "uses_index": "Index" in text,
                }
            )
        conn.rollback()
    return plans


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 calls per case")
    parser.add_argument("--reload", action="store_true", help="drop and reload the database")
    parser.add_argument("--calls", type=int, default=300)
    opts = parser.parse_args()
    if opts.quick:
        opts.calls = 100
    plain, sa_url = db_urls()
    instance = temp_dir("scale-")
    env = base_env(
        DATABASE_URL=sa_url,
        MODERATION_INSTANCE_PATH=str(instance),
        MODERATION_RATELIMIT_ENABLED="false",
    )
    timings = prepare(opts.reload, TOTAL, env)
    # The app in this process reads the same settings.
    for key in [k for k in os.environ if k.startswith("MODERATION_")]:
        os.environ.pop(key)
    os.environ.update(
        {k: v for k, v in env.items() if k.startswith("MODERATION_") or k == "DATABASE_URL"}
    )
    sys.path.insert(0, str(ROOT))
    results = measure(opts.calls)
    report(opts, timings, results)
    return 0


def report(opts, timings, results) -> None:
    import psycopg

    plain, _ = db_urls()
    with psycopg.connect(plain) as conn:
        counts = conn.execute(
            "SELECT s.slug, c.status, count(*) FROM comments c JOIN sites s "
            "ON s.id = c.site_id GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('comments'))").fetchone()[
            0
        ]
        version = conn.execute("SHOW server_version").fetchone()[0]
    cases = results["cases"]
    p1 = cases["queue page 1 (site=default, pending, oldest, 50)"]
    deep = cases[f"queue page {DEEP_PAGE:,} (cursor)"]
    ratio = deep["p50"] / p1["p50"]
    body = header(this_command())
    body += (
        f"- PostgreSQL {version}, database `{DB_NAME}` ({size} for `comments` with indexes); "
        f"timed in-process with the Flask test client ({opts.calls} calls per case after "
        "10 warm-up calls; includes routing, auth, query and JSON, not the HTTP socket).\n"
    )
    if timings:
        body += (
            "- Load (COPY, psycopg 3): "
            + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
            + "\n"
        )
    else:
        body += "- Data set reused from an earlier run of this script (same shape).\n"
    body += (
        "- Comments by site and status: "
        + ", ".join(f"{slug}/{status} {n:,}" for slug, status, n in counts)
        + "\n\n"
    )
    body += (
        "| case | p50 ms | p99 ms | mean ms | items (+replies) | SQL statements | p99 <= 20 ms |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    for name, c in cases.items():
        body += (
            f"| {name} | {c['p50']:.2f} | {c['p99']:.2f} | {c['mean']:.2f} | "
            f"{c['items']} (+{c['replies']}) | {c['queries']} | "
            f"{'yes' if c['p99'] <= 20 else 'NO'} |\n"
        )
    body += (
        f"\n**Page {DEEP_PAGE:,} / page 1 (p50): {ratio:.2f}** (target <= 1.5: "
        f"{'met' if ratio <= 1.5 else 'NOT met'}). "
    )
    seq = [
        name
        for name, plans in results["plans"].items()
        if any(p["seq_scan"] for p in plans)
    ]
    body += (
        "No plan has a sequential scan of `comments`, `flags` or `decisions`.\n"
        if not seq
        else f"Sequential scans of `comments`, `flags` or `decisions` in: {', '.join(seq)}.\n"
    )
    body += "\n### Query plans (EXPLAIN (ANALYZE, BUFFERS) of the SQL each request sent)\n"
    for name, plans in results["plans"].items():
        body += f"\n#### {name}\n\n`GET {cases[name]['url']}`\n"
        for p in plans:
            body += f"\n```sql\n{p['sql'].strip()}\n-- params: {p['params']}\n```\n"
            body += f"```\n{p['plan']}\n```\n"
    write_section("PostgreSQL scale: 1,000,000 comments", body)


if __name__ == "__main__":
    sys.exit(main())
