"""The service as `make run` serves it: gunicorn, several workers, metrics summed across them."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent


def call(url: str, body: dict | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@contextmanager
def gunicorn(tmp_path: Path, *args: str, **settings: str) -> Iterator[str]:
    """`moderation init`, then gunicorn.conf.py with two workers (plus ``args``); its base URL.

    The port is bound here and the socket handed to gunicorn (bind fd://N): a port found
    free, closed and bound again by gunicorn seconds later (after `moderation init`) could
    be taken meanwhile by another process, another run's gunicorn included."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    env = {
        **os.environ,
        "MODERATION_INSTANCE_PATH": str(tmp_path / "instance"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "GUNICORN_BIND": f"fd://{listener.fileno()}",
        "GUNICORN_WORKERS": "2",
        "MODERATION_RATELIMIT_ENABLED": "false",
        **settings,
    }
    env.pop("DATABASE_URL", None)
    env = {name: value for name, value in env.items() if value != ""}  # "": leave it unset
    with listener:
        init = subprocess.run([BIN / "moderation", "init"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert init.returncode == 0, init.stderr
        assert init.stdout.strip().splitlines()[-1].strip().startswith("mk_")
        server = subprocess.Popen(
            [BIN / "gunicorn", "-c", "gunicorn.conf.py", *args, "wsgi:app"], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            pass_fds=[listener.fileno()])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if call(base + "/readyz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("gunicorn did not become ready")
        yield base
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


@pytest.fixture
def served(tmp_path):
    with gunicorn(tmp_path) as base:
        yield base


def test_a_thread_of_the_longest_key_is_read_back(served):
    """512 emoji in a thread key are 6,144 bytes in a page's query: intake took such a
    comment, and gunicorn answered every read of its thread 414 (an audit)."""
    key = "/" + "\U0001F600" * 511
    assert call(served + "/api/v1/comments", {
        "thread": key, "author_name": "Ada", "author_email": "ada@example.org",
        "content": "Smiles all round."})[0] == 201
    status, _ = call(served + "/api/v1/comments?" + urllib.parse.urlencode({"thread": key}))
    assert status == 200


@pytest.mark.parametrize("preload", ["true", "false"])
def test_a_broken_rules_file_is_counted_once_across_the_workers(tmp_path, preload):
    """Each of the workers (and the master) counted the same broken edit (audit)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules: []\n")
    with gunicorn(tmp_path, "--workers", "3", MODERATION_RULES_FILE=str(rules),
                  MODERATION_RULES_RELOAD_INTERVAL="0.2", GUNICORN_PRELOAD=preload) as base:
        def errors() -> float:
            total = 0.0
            for line in call(base + "/metrics")[1].decode().splitlines():
                if line.startswith("moderation_rules_reload_errors_total "):
                    total = float(line.split()[1])
            return total

        for edit in (1, 2):
            rules.write_text(f"version: 1\nrules: [broken {edit}\n")
            time.sleep(1.5)  # every watcher has seen it
            assert [errors() for _ in range(6)] == [float(edit)] * 6


def post_comment(base: str, n: int, content: str | None = None) -> int:
    return call(base + "/api/v1/comments", {
        "thread": "/served", "author_name": f"Reader {n}",
        "author_email": f"r{n}@example.org", "content": content or f"Comment {n} on the story.",
    })[0]


def _sums_across_workers(base: str) -> None:
    """12 comments, then 10 scrapes (landing on both workers): each counts all 12."""
    for n in range(12):
        assert post_comment(base, n) == 201
    for _ in range(10):
        status, body = call(base + "/metrics")
        assert status == 200
        text = body.decode()
        line = [row for row in text.splitlines()
                if row.startswith("moderation_http_requests_total{")
                and 'route="/api/v1/comments"' in row and 'status="201"' in row]
        assert line and float(line[0].rsplit(" ", 1)[1]) == 12.0
    assert 'moderation_queue_depth{site="default",status="pending"} 12.0' in text


def test_two_workers_take_comments_and_metrics_sum_across_them(served):
    _sums_across_workers(served)


def test_metrics_sum_across_workers_without_a_metrics_folder_set(tmp_path):
    """Without PROMETHEUS_MULTIPROC_DIR each worker counted alone; gunicorn.conf.py now
    makes a temporary folder for the run, and removes it on the way out."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    with gunicorn(tmp_path, PROMETHEUS_MULTIPROC_DIR="", TMPDIR=str(temp)) as base:
        _sums_across_workers(base)
        assert [p.name[:19] for p in temp.iterdir()] == ["moderation-metrics-"]
    assert list(temp.iterdir()) == []


def test_no_control_socket_is_left_in_the_home_folder(tmp_path):
    """gunicorn 27 opens one at ~/.gunicorn/gunicorn.ctl, shared by every instance of the
    user (and in the Docker image, inside the data volume); it is switched off."""
    home = tmp_path / "home"
    home.mkdir()
    with gunicorn(tmp_path, HOME=str(home), XDG_RUNTIME_DIR="") as base:
        assert post_comment(base, 1) == 201
        assert not (home / ".gunicorn").exists()


def test_recycled_workers_fork_from_the_preloaded_app_and_follow_rules_edits(tmp_path):
    """Workers recycled every few requests (max_requests) keep serving, count in the
    metrics, and use the rules file as it is now, not as the master loaded it."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules: []\n")
    recycle = ("--max-requests", "3", "--max-requests-jitter", "0")
    # No watcher (the master's included) looks again during the test: what is checked is
    # the look each worker takes as it is forked.
    with gunicorn(tmp_path, *recycle, MODERATION_RULES_FILE=str(rules),
                  MODERATION_RULES_RELOAD_INTERVAL="60") as base:
        for n in range(12):
            assert post_comment(base, n) == 201
        aside = tmp_path / "rules.tmp"
        aside.write_text("version: 1\nrules: [{id: ZEBRA, type: terms, terms: [zebra], "
                         "outcome: rejected}]\n")
        os.replace(aside, rules)
        # The two workers running now serve at most three requests each, with the rules
        # they had (until their own watcher's next look), in any order among the others;
        # every worker forked after them must judge by the edited file from its first
        # request, though the master still holds the rules as they were.
        answers = [post_comment(base, 100 + n, f"A zebra, number {n}.") for n in range(12)]
        assert answers.count(201) <= 6 and set(answers) <= {201, 403}, answers
        _, body = call(base + "/metrics")
        # A recycled worker's counters are folded into one archive file and its own go:
        # kept, they piled up (hundreds a day) and every scrape read them all.
        counters = sorted(path.name for path in (tmp_path / "metrics").glob("counter_*.db"))
        assert "counter_archive.db" in counters and len(counters) <= 4, counters
    # Counters of recycled workers stay in the sum.
    line = [row for row in body.decode().splitlines()
            if row.startswith("moderation_http_requests_total{")
            and 'route="/api/v1/comments"' in row and 'status="201"' in row]
    assert line and float(line[0].rsplit(" ", 1)[1]) == 12 + answers.count(201)


def test_a_worker_forked_while_the_rules_file_is_broken_keeps_the_last_good_rules(tmp_path):
    """A good edit, then a broken one: a worker forked after that (recycled, or after a
    crash) started from the rules the master loaded at start, found the file broken and
    kept those as its last good rules, undoing the good edit (found by an audit); so did a
    worker forked at start that had served nothing yet, its watcher not yet started. The
    master now follows the file too, and each worker from its fork."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules: []\n")

    def replace(text: str) -> None:
        aside = tmp_path / "rules.tmp"
        aside.write_text(text)
        os.replace(aside, rules)

    recycle = ("--max-requests", "3", "--max-requests-jitter", "0")
    with gunicorn(tmp_path, *recycle, MODERATION_RULES_FILE=str(rules),
                  MODERATION_RULES_RELOAD_INTERVAL="0.1") as base:
        replace("version: 1\nrules: [{id: ZEBRA, type: terms, terms: [zebra], "
                "outcome: rejected}]\n")
        time.sleep(2)  # twenty looks by each watcher, the master's too: all hold the edit
        replace("version: 1\nrules: [{id: BROKEN, type: regex, pattern: 'oops(', score: 1}]\n")
        time.sleep(2)  # and have seen the broken file, and kept the edit
        # The two workers forked at start, idle until now, and every worker forked after
        # the break (each serves three) judge by the edit.
        answers = [post_comment(base, n, f"A zebra, number {n}.") for n in range(12)]
        assert answers == [403] * 12, answers


REDIS_URL = os.environ.get("TEST_REDIS_URL")


def _storage_up_lines(base: str) -> set[str]:
    """The rate limit storage gauge as 10 scrapes (landing on both workers) read it."""
    lines = set()
    for _ in range(10):
        status, body = call(base + "/metrics")
        assert status == 200
        lines |= {row for row in body.decode().splitlines()
                  if row.startswith("moderation_ratelimit_storage_up ")}
    return lines


@pytest.mark.parametrize("storage, up", [
    ("redis://127.0.0.1:1/0", "0.0"),  # nothing listens on port 1
    ("memory://", "1.0"),
    pytest.param(REDIS_URL, "1.0", marks=pytest.mark.skipif(
        not REDIS_URL, reason="TEST_REDIS_URL is not set (CI sets it)")),
])
def test_the_ratelimit_storage_gauge_is_the_lowest_of_the_workers(tmp_path, storage, up):
    """One worker on the in-memory fallback is enough to read 0, whichever worker answers
    the scrape; with the storage answering, every worker and the preloading master read 1."""
    with gunicorn(tmp_path, MODERATION_RATELIMIT_ENABLED="true",
                  MODERATION_RATELIMIT_STORAGE_URI=storage) as base:
        assert post_comment(base, 1) == 201
        assert _storage_up_lines(base) == {f"moderation_ratelimit_storage_up {up}"}


def test_a_command_run_beside_the_server_leaves_the_storage_gauge_at_1(tmp_path):
    """A `moderation purge` run in the container (whose Dockerfile sets the metrics folder)
    loads the app, which writes metrics files there: its gauge must not read as a
    fallback, and its files must not outlive it."""
    with gunicorn(tmp_path, MODERATION_RATELIMIT_ENABLED="true") as base:
        env = {**os.environ, "MODERATION_INSTANCE_PATH": str(tmp_path / "instance"),
               "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
        env.pop("DATABASE_URL", None)
        served = {path.name for path in (tmp_path / "metrics").iterdir()}
        purge = subprocess.run([BIN / "moderation", "purge"], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=120)
        assert purge.returncode == 0, purge.stderr
        # Its own files go as it exits: left, each cron run added to what a scrape reads.
        assert {path.name for path in (tmp_path / "metrics").iterdir()} <= served
        assert post_comment(base, 1) == 201
        assert _storage_up_lines(base) == {"moderation_ratelimit_storage_up 1.0"}


def _config():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("word", "preload"), [
    (None, True), ("no", False), ("0", False), ("OFF", False), ("false", False), ("yes", True),
    ("maybe", None),
])
def test_gunicorn_preload_is_a_switch_like_the_apps(tmp_path, monkeypatch, word, preload):
    """GUNICORN_PRELOAD=no (or 0, off) left preloading on: only "false" turned it off."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    if word is None:
        monkeypatch.delenv("GUNICORN_PRELOAD", raising=False)
    else:
        monkeypatch.setenv("GUNICORN_PRELOAD", word)
    if preload is None:
        with pytest.raises(SystemExit, match="GUNICORN_PRELOAD must be true or false"):
            _config()
    else:
        assert _config().preload_app is preload


@pytest.mark.parametrize(("limit", "cores"), [
    ("150000 100000\n", 2),   # docker --cpus=1.5: two workers, not one per host CPU
    ("100000 100000\n", 1),
    ("max 100000\n", None),   # no quota: the affinity mask
    (None, None),             # no cgroup v2 file at all
])
def test_workers_follow_a_containers_cpu_limit(tmp_path, monkeypatch, limit, cores):
    # Named, so that loading the config makes no folder and changes nothing for later tests.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    config = _config()
    path = tmp_path / "cpu.max"
    if limit is not None:
        path.write_text(limit)
    affinity = len(os.sched_getaffinity(0))
    expected = affinity if cores is None else min(cores, affinity)
    assert config._usable_cores(str(path)) == expected


@pytest.mark.parametrize(("where", "url", "workers"), [
    ("environment", "postgresql+psycopg://db.example/moderation", "2 x cores + 1"),
    ("instance", "postgresql+psycopg://db.example/moderation", "2 x cores + 1"),
    ("instance-moderation-name", "postgresql+psycopg://db.example/moderation", "2 x cores + 1"),
    ("nowhere", None, "cores"),
])
def test_the_worker_default_reads_the_database_url_where_the_app_does(tmp_path, monkeypatch,
                                                                     where, url, workers):
    """A PostgreSQL URL set in the instance config (as the README offers) got the workers
    of SQLite: gunicorn.conf.py read the environment only."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.setenv("MODERATION_INSTANCE_PATH", str(tmp_path / "instance"))
    for name in ("DATABASE_URL", "MODERATION_SQLALCHEMY_DATABASE_URI"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "instance").mkdir()
    if where == "environment":
        monkeypatch.setenv("DATABASE_URL", url)
    elif where == "instance":
        (tmp_path / "instance" / "config.py").write_text(f"DATABASE_URL = {url!r}\n")
    elif where == "instance-moderation-name":
        (tmp_path / "instance" / "config.py").write_text(
            f"MODERATION_SQLALCHEMY_DATABASE_URI = {url!r}\n")
    config = _config()
    cores = config._usable_cores()
    assert config._default_workers() == (cores * 2 + 1 if workers == "2 x cores + 1" else cores)


def test_the_config_serves_an_app_that_is_not_this_one(tmp_path, monkeypatch):
    """bench/ serves bare Flask and isso under this config, isso from its own venv, where
    this package cannot be imported: reading the database URL for the worker count made
    the config fail to load there."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    for module in ("moderation.config", "moderation.services.rules", "prometheus_client"):
        monkeypatch.setitem(sys.modules, module, None)  # an import of it: ImportError
    for name in ("GUNICORN_WORKERS", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    config = _config()
    assert config.workers == config._usable_cores()
    # The master's hooks, given isso's app (no Flask extensions) and a worker leaving.
    config._follow_rules(lambda environ, start_response: [])
    config.child_exit(None, type("Worker", (), {"pid": 1})())


def _raw(base: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes gunicorn itself must refuse (the app never sees them); its answer, parsed."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return _parsed(answer)


def _parsed(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    """An HTTP answer's status, headers (names in lower case) and body."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip()
               for name, value in (line.split(":", 1) for line in header_lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("request_bytes, status", [
    (b"NOT A REQUEST LINE\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Name: 1\r\n\r\n", 400),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", 431),
])
def test_requests_gunicorn_refuses_get_the_contracts_json_error(served, request_bytes, status):
    """The contract's "every error is JSON" holds for what gunicorn refuses before the app."""
    code, headers, body = _raw(served, request_bytes)
    assert code == status
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)
    assert error["code"] == status and error["status"] and error["message"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"  # as the app's own answers say


# A client address the suite uses nowhere else (gunicorn listens on 127.0.0.1, and says so
# in its log), and a word to put in the URI, a header and a body.
CLIENT = "127.0.0.3"
NEEDLE = "needle"


def _send(base: str, request: bytes, *, half_close: bool = False) -> bytes:
    """Send ``request`` from CLIENT; the answer, whole (the server closes each connection)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.socket() as sock:
        sock.settimeout(30)
        sock.bind((CLIENT, 0))
        sock.connect((host, int(port)))
        sock.sendall(request)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def _assert_private(log: str) -> None:
    assert CLIENT not in log
    assert NEEDLE not in log.lower()


@pytest.mark.parametrize("threads", ["1", "2"])  # sync workers, and gthread for comparison
def test_gunicorns_own_log_lines_name_no_client_address_nor_anything_it_sent(tmp_path, threads):
    """gunicorn logged a request it refused as "Invalid request from ip=<client>: <error>",
    and the error quoted the request line (with its query) or the header; at debug level, a
    client that hung up mid-request left what it had sent in the log. The reason stays."""
    log = tmp_path / "error.log"
    refused = [
        (b"GET  /thread?q=needle HTTP/1.1\r\n\r\n", b" 400 ", "InvalidRequestLine"),
        (b"GET /healthz?q=needle HTTP/1.1\r\nHost: x\r\nNeedle Name: 1\r\n\r\n",
         b" 400 ", "InvalidHeaderName"),
        (b"GET /" + b"needle" * 1500 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b" 414 ",
         "LimitRequestLine"),
        (b"GET /healthz?q=needle HTTP/1.1\r\nHost: x\r\n" + b"X-A: needle\r\n" * 200 + b"\r\n",
         b" 431 ", "LimitRequestHeaders"),
        # A chunked body is read by the app's RequestBody middleware, outside Flask.
        (b"POST /api/v1/comments?q=needle HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
         b"Content-Type: application/json\r\n\r\nneedle\r\n", b" 400 ", "InvalidChunkSize"),
    ]
    with gunicorn(tmp_path, "--error-logfile", str(log), "--log-level", "debug",
                  GUNICORN_THREADS=threads) as base:
        for request, status, _ in refused:
            assert status in _send(base, request).split(b"\r\n", 1)[0]
        # Hangs up before its headers end: "Ignored premature client disconnection".
        hangs_up = b"GET /thread HTTP/1.1\r\nHost: x\r\nReferer: https://needle.example/\r\n"
        assert _send(base, hangs_up, half_close=True) == b""
        post_comment(base, 1)  # a request after them all: their lines are written by now
    text = log.read_text()
    _assert_private(text)
    for _, _, reason in refused:
        assert f"Invalid request: {reason}" in text
    assert "Ignored premature client disconnection" in text


def _drip(base: str, head: bytes, body: bytes, pause: float) -> bytes:
    """Send ``head``, then ``body`` a byte at a time, ``pause`` seconds apart, while the
    server listens; the answer, whole."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        answer = b""
        try:
            for byte in body:
                time.sleep(pause)
                sock.sendall(bytes([byte]))
        except OSError:  # the server answered and closed meanwhile
            pass
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_request_the_worker_timeout_cuts_off_is_503_and_logged_without_its_uri(tmp_path):
    """A request still running at the worker timeout (here: a body dripping in, each byte
    within the read timeout) is aborted in gunicorn, outside Flask: gunicorn logged "Error
    handling request POST <uri>", query and all, and answered 500. It now logs the method
    and the traceback, and answers 503 with Retry-After: the server's limit, not a fault
    of the request's."""
    log = tmp_path / "error.log"
    with gunicorn(tmp_path, "--error-logfile", str(log), "--timeout", "2") as base:
        answer = _drip(base, b"POST /api/v1/comments?q=needle HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Type: application/json\r\nContent-Length: 40\r\n\r\n",
                       b"{" + b" " * 39, pause=0.25)
        status, headers, body = _parsed(answer)
        assert status == 503 and headers["retry-after"] == "5"
        assert json.loads(body)["code"] == 503
    text = log.read_text()
    _assert_private(text)
    assert "WORKER TIMEOUT" in text
    assert "Error handling request POST\n" in text


FORM = (b"POST /api/v1/comments HTTP/1.1\r\nHost: x\r\nContent-Length: 118\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        b"comment_post_ID=%2Fcut&author=Ada&email=ada%40example.org&comment=Please+do+NOT")


def _stored(base: str) -> int:
    """How many comments the thread of FORM holds, pending ones included (the queue's
    count would need a key: the metrics' queue depth needs none)."""
    text = call(base + "/metrics")[1].decode()
    return sum(int(float(row.rsplit(" ", 1)[1])) for row in text.splitlines()
               if row.startswith("moderation_queue_depth{"))


def test_a_body_shorter_than_its_length_is_400_and_stores_nothing(tmp_path):
    """gunicorn marks its input as terminated, so Werkzeug read a form to its end without
    checking its length: a client that hung up half-way had the half that came stored
    ("Please do NOT" of "Please do NOT cut me short here"; found by an audit)."""
    with gunicorn(tmp_path) as base:
        status, headers, body = _parsed(_send(base, FORM, half_close=True))
        assert status == 400 and headers["content-type"] == "application/json"
        assert "Content-Length" in json.loads(body)["message"]
        assert _stored(base) == 0


def test_a_body_that_stops_coming_is_408_well_before_the_worker_timeout(tmp_path):
    """A sync worker read the client without a timeout: a body that stopped coming held the
    worker until the arbiter killed it (30 s) and got a 500, and two such clients held
    every route, /healthz included (found by an audit). A read now waits a third of the
    timeout at most."""
    with gunicorn(tmp_path, "--timeout", "6") as base:  # reads wait 2 s
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            started = time.monotonic()
            sock.sendall(FORM)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            waited = time.monotonic() - started
        status, headers, body = _parsed(answer)
        assert status == 408 and json.loads(body)["code"] == 408
        assert headers["content-security-policy"]  # the app's answer, with its headers
        assert waited < 5, waited
        assert _stored(base) == 0


def test_headers_that_stop_coming_close_the_connection_before_the_worker_timeout(tmp_path):
    log = tmp_path / "error.log"
    with gunicorn(tmp_path, "--error-logfile", str(log), "--timeout", "6") as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            started = time.monotonic()
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ")
            assert sock.recv(65536) == b""
            assert time.monotonic() - started < 5
        assert call(base + "/healthz")[0] == 200
    text = log.read_text()
    assert "A client stopped sending or reading" in text and "Traceback" not in text


def test_a_broken_rules_file_stops_gunicorn_with_the_reasons_and_no_traceback(tmp_path):
    """The operator reads what is wrong with the file, not 40 lines of import frames."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - id: BROKEN\n    type: nope\n")
    env = {**os.environ, "MODERATION_INSTANCE_PATH": str(tmp_path / "instance"),
           "MODERATION_RULES_FILE": str(rules), "GUNICORN_BIND": "127.0.0.1:0"}
    env.pop("DATABASE_URL", None)
    started = subprocess.run([BIN / "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert started.returncode != 0
    assert "Traceback" not in started.stderr
    assert "the rules file is invalid" in started.stderr
    assert "rule BROKEN: type: unknown rule type 'nope'" in started.stderr


def test_a_worker_that_builds_its_own_app_says_why_a_broken_rules_file_stops_it(tmp_path):
    """With GUNICORN_PRELOAD=false each worker loads the file: one that finds it broken
    leaves, and gunicorn forks another until the file is fixed. It left without a word
    (worker_exit's os._exit skipped the message Python prints), the pool one short."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - id: BROKEN\n    type: nope\n")
    env = {**os.environ, "MODERATION_INSTANCE_PATH": str(tmp_path / "instance"),
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
           "MODERATION_RULES_FILE": str(rules), "GUNICORN_BIND": "127.0.0.1:0",
           "GUNICORN_PRELOAD": "false", "GUNICORN_WORKERS": "1"}
    env.pop("DATABASE_URL", None)
    server = subprocess.Popen([BIN / "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    said = ""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "BROKEN" not in said:
            said += server.stderr.readline()
    finally:
        os.killpg(server.pid, 15)
        server.communicate(timeout=30)
    assert "the rules file is invalid" in said
    assert "rule BROKEN: type: unknown rule type 'nope'" in said


def test_a_metrics_folder_holding_anything_else_is_refused_and_left_alone(tmp_path):
    """Named by mistake as the instance folder, it held the database and the secret key,
    and gunicorn's start emptied it."""
    metrics = tmp_path / "shared"
    metrics.mkdir()
    (metrics / "moderation.sqlite3").write_text("the database")
    (metrics / "counter_12345.db").write_text("an old worker's counters")
    env = {**os.environ, "MODERATION_INSTANCE_PATH": str(tmp_path / "instance"),
           "PROMETHEUS_MULTIPROC_DIR": str(metrics), "GUNICORN_BIND": "127.0.0.1:0"}
    env.pop("DATABASE_URL", None)
    started = subprocess.run([BIN / "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert started.returncode != 0
    assert "PROMETHEUS_MULTIPROC_DIR" in started.stderr and "moderation.sqlite3" in started.stderr
    assert (metrics / "moderation.sqlite3").read_text() == "the database"
    # The master's own metrics files, made as the preloaded app was built, are gone too.
    assert sorted(p.name for p in metrics.iterdir()) == ["counter_12345.db",
                                                           "moderation.sqlite3"]


def test_a_metrics_folder_of_its_own_is_emptied_of_old_counters(tmp_path):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    # And what earlier versions left: locks, and the marks of counted rules errors (a
    # folder kept by `make run` holding one refused to start, found by a review).
    left = ["counter_12345.db", "archive.lock", "rules_errors.lock", "rules_error_0123456789abcdef"]
    for name in left:
        (metrics / name).write_bytes(b"")
    with gunicorn(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(metrics)):
        assert not any((metrics / name).exists() for name in left[:1] + left[3:])


def _children(pid: int) -> set[int]:
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.add(int(entry.name))
    return children


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_whose_master_was_killed_leave_even_under_load(tmp_path):
    """The sync worker looks for its master only when idle: killed with SIGKILL, the
    master left workers serving for as long as requests came, holding the port (found by
    fault injection). They now leave after the request they are serving."""
    import signal

    with gunicorn(tmp_path) as base:
        # The master is this process's child (gunicorn() started it); its workers, its.
        [master] = [pid for pid in _children(os.getpid()) if _alive(pid)
                    and _cmdline(pid).endswith("wsgi:app")]
        workers = _children(master)
        assert len(workers) == 2
        # Clients enough that one always waits in the backlog: the load that kept them.
        done = threading.Event()

        def load() -> None:
            while not done.is_set():
                with contextlib.suppress(OSError):
                    call(base + "/healthz")

        clients = [threading.Thread(target=load, daemon=True) for _ in range(8)]
        for client in clients:
            client.start()
        time.sleep(0.5)
        os.kill(master, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.1)
        done.set()
        left = [pid for pid in workers if _alive(pid)]
        for client in clients:
            client.join(timeout=30)
        assert left == []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def test_a_get_with_a_content_length_and_no_body_is_answered_at_once(tmp_path):
    """The body was read ahead for every method: a GET announcing a body it never sent
    waited the read timeout, then got a 408 (found by a review). Only POST, PUT and PATCH
    bodies are read ahead; no route reads another's."""
    with gunicorn(tmp_path, "--timeout", "6") as base:  # reads wait 2 s
        started = time.monotonic()
        status, _, _ = _raw(base, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                  b"Content-Length: 10\r\n\r\n")
        assert status == 200 and time.monotonic() - started < 1.5
