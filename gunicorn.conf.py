"""gunicorn settings for the moderation service; every value says why it is what it is."""

import atexit
import json
import math
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable

from gunicorn import glogging, util
from gunicorn.workers.sync import SyncWorker

# Loopback by default: put a TLS-terminating proxy in front; containers set 0.0.0.0:8000.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")



def _usable_cores(cpu_limit: str = "/sys/fs/cgroup/cpu.max") -> int:
    """The cores this process may use: in a container, its CPU limit, not the host's count.

    cpu_count() counts the host's CPUs. The affinity mask follows a cpuset (docker
    --cpuset-cpus), and cgroup v2's cpu.max holds a quota (docker --cpus=2: "200000 100000").
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        multiprocessing.cpu_count())
    try:
        with open(cpu_limit) as limit:
            quota, period = limit.read().split()
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 limit to read: the affinity mask it is
    return cores


def _default_workers() -> int:
    """One worker per core on SQLite; 2 x cores + 1 when the database is across a network.

    On SQLite (the default) a request never waits on the network, so workers beyond the
    cores only add context switches: bench/workers.py measured one per core fastest. With
    PostgreSQL a worker waits on each round trip, and the classic 2 x cores + 1 keeps the
    cores busy meanwhile.
    """
    cores = _usable_cores()
    try:
        from moderation.config import configured_database_url
    except ImportError:  # serving another app: the benchmarks' bare Flask and isso
        url = os.environ.get("DATABASE_URL")
    else:
        url = configured_database_url()  # the environment's, or the instance config's
    return cores * 2 + 1 if url and url.startswith("postgres") else cores


def _whole_number(name: str, default: int | Callable[[], int], least: int) -> int:
    """A count from the environment, or a one-line refusal to start: int() raised a
    traceback, and GUNICORN_WORKERS=0 served a socket that no worker ever answered.
    A callable default is worked out only when the environment gives none."""
    given = os.environ.get(name)
    if given is None:
        return default() if callable(default) else default
    try:
        number = int(given)
    except ValueError:
        number = least - 1
    if number < least:
        raise SystemExit(f"moderation: not starting, {name} must be a whole number from "
                         f"{least} up, not {given!r}")
    return number


workers = _whole_number("GUNICORN_WORKERS", _default_workers, 1)
# Sync workers: requests are short and mostly CPU-bound, and sync workers keep the
# pitfalls of async workers around SQLAlchemy sessions away.
# A sync worker closes each connection after its response (it has no keep-alive, so
# gunicorn's `keepalive` setting would do nothing here): run it behind a buffering
# proxy such as nginx, which keeps the clients' connections open itself.
# bench/worker_class.py measured gthread against it, with every connection closed as
# here: with 2 or 4 threads per worker, intake fell by a quarter to a third and p99 grew
# two to four times. Threads only overlap the commit's disk flush, and they then queue for
# the same write lock and the GIL.
# For that comparison (gunicorn runs gthread workers when threads > 1); leave it at 1.
threads = _whole_number("GUNICORN_THREADS", 1, 1)

# A request that takes longer than this is stuck (a hung database connection): the
# arbiter kills the worker so that it stops holding a slot. Database calls time out sooner.
timeout = _whole_number("GUNICORN_TIMEOUT", 30, 1)


class SyncWorkerWithReadTimeout(SyncWorker):
    """gunicorn's sync worker, reading each client with a timeout.

    A sync worker serves one client at a time, and gunicorn's reads the client without a
    timeout: a client that sent headers and part of a body, then nothing, held the worker
    until the arbiter killed it at `timeout`, and got a 500; two such clients held both
    workers, /healthz included, for 30 s at a time (found by an audit). A read now waits
    at most a third of `timeout` (10 s at most): the app answers a body that stops coming
    with 408 (moderation/body_limit.py), and headers that stop coming close the connection.
    A proxy in front (nginx's client_body_timeout) is still the first defence.
    """

    def accept(self, listener):
        client, addr = listener.accept()
        client.settimeout(max(0.5, min(10.0, self.cfg.timeout / 3)))
        util.close_on_exec(client)
        self.handle(listener, client, addr)
        # gunicorn's sync worker looks for its master only when no client is waiting: a
        # worker whose master was killed (SIGKILL, the OOM killer) went on serving for as
        # long as requests kept coming, holding the port, so a new gunicorn could not bind
        # it (found by fault injection). It now leaves after the request it is serving.
        if not self.is_parent_alive():
            self.alive = False


worker_class = SyncWorkerWithReadTimeout if threads == 1 else "sync"

# A thread key may be 512 characters, and a page reads its thread by the key in the
# query: 512 emoji are 6,144 bytes percent-encoded, past gunicorn's default of 4,094 for
# the request line. A comment on such a page was taken, and its thread could never be
# read (414; found by an audit). 8,190 is the most gunicorn allows (nginx's default
# buffers take as much).
limit_request_line = 8190

# On SIGTERM, let in-flight submissions finish before the worker exits, so no
# acknowledged comment is cut off mid-commit during a deploy.
graceful_timeout = 20

# Recycle workers now and then so a slow leak in any library cannot grow forever;
# the jitter keeps all workers from restarting at the same moment.
max_requests = 10_000
max_requests_jitter = 1_000

# Build the app once in the master and fork the workers from it. A worker recycled by
# max_requests (or killed) is then back at once, instead of after the second or so that
# importing and building the app takes: with workers loading the app themselves,
# bench/recycle.py measured requests stalling for up to that second at each recycling
# (evenly loaded workers reach max_requests within moments of each other, so all of them
# were loading at once). Forking is safe here: building the app opens no database
# connection (prometheus_client's values follow the pid); post_fork below drops any pooled
# connection all the same. The rules watcher runs in the master from when_ready and in
# each worker from post_fork (below), so that a worker forked later starts from the last
# good rules. GUNICORN_PRELOAD=false turns it off, for that comparison.
def _switch(name: str, default: bool) -> bool:
    """An on/off setting, spelt as the app's own switches are; any other word stops
    gunicorn (GUNICORN_PRELOAD=no was taken as on: only "false" turned it off)."""
    given = os.environ.get(name)
    if given is None:
        return default
    word = given.strip().lower()
    if word not in _TRUE | _FALSE:
        raise SystemExit(f"moderation: not starting, {name} must be true or false, "
                         f"not {given!r}")
    return word in _TRUE


# As moderation/config.py reads the MODERATION_* switches.
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
preload_app = _switch("GUNICORN_PRELOAD", True)

# Trust X-Forwarded-* only from these addresses (the proxy in front). The app's own
# ProxyFix hop count (MODERATION_PROXY_HOPS) decides which X-Forwarded-For entry is the client.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# gunicorn 27's control socket (for gunicornc) defaults to one path per user, so two
# instances on a machine would take each other's, and in the Docker image it would land
# in the data volume (the user's home). Nothing here uses it; signals still work.
control_socket_disable = True

# Our app logs one JSON line per request itself; gunicorn's access log would repeat it
# (and it names the client's IP and the query string).
accesslog = None
errorlog = "-"
loglevel = "info"


class PrivateLogger(glogging.Logger):
    """gunicorn's error log without the client's address or anything the client sent.

    Our own log lines hold no IP, email, comment text nor query string; gunicorn writes some
    of its own that the app never sees. Its workers' handle_error (gunicorn/workers/base.py,
    shared by the sync and gthread workers) logs a request it cannot parse as
    "Invalid request from ip=<client>: <error>", where the error quotes the request line
    (query and all) or a header; and a request aborted outside Flask (at the worker timeout)
    as "Error handling request <method> <URI>". At debug level, a client that hangs up
    mid-request leaves "No more data after: <what it sent>". These become the reason alone:
    the exception's class, the method, the traceback. tests/test_gunicorn.py sends each.
    """

    def warning(self, msg, *args, **kwargs):
        if isinstance(msg, str) and msg.startswith("Invalid request from ip="):
            # handle_error runs in the worker's `except` clause, so the exception is at hand;
            # its class names the reason (InvalidRequestLine, LimitRequestHeaders, ...).
            error = sys.exc_info()[1]
            msg, args = "Invalid request: %s", (type(error).__name__ if error else "?",)
        super().warning(msg, *args, **kwargs)

    def exception(self, msg, *args, **kwargs):
        if msg == "Socket error processing request." and isinstance(sys.exc_info()[1],
                                                                     TimeoutError):
            # A client that stopped sending its headers, or reading the answer, within the
            # read timeout (SyncWorkerWithReadTimeout): the client's doing, not a fault.
            return super().info("A client stopped sending or reading; connection closed.")
        if msg == "Error handling request %s %s":
            msg, args = "Error handling request %s", args[:1]  # the method, not the URI
        elif msg == "Error handling request %s":
            msg, args = "Error handling request", ()
        super().exception(msg, *args, **kwargs)

    def debug(self, msg, *args, **kwargs):
        if msg == "Ignored premature client disconnection. %s":
            msg, args = "Ignored premature client disconnection.", ()
        super().debug(msg, *args, **kwargs)


logger_class = PrivateLogger

# Prometheus multiprocess mode needs a folder shared by the workers, emptied at start.
# Without PROMETHEUS_MULTIPROC_DIR, /metrics would count only the worker that answers the
# scrape; a private temporary folder, removed on exit, serves instead. The workers (and a
# preloaded app) inherit the variable, set here before anything imports prometheus_client.
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
_metrics_dir_is_ours = not _metrics_dir
if _metrics_dir_is_ours:
    _metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
        prefix="moderation-metrics-"
    )
    _master = os.getpid()

    @atexit.register
    def _remove_metrics_dir() -> None:
        """Also when gunicorn never got going (a setting refused, a broken rules file),
        where on_exit does not run. In the master only: a worker leaving must not take
        the folder from the others (workers leave by os._exit, which skips this anyway)."""
        if os.getpid() == _master:
            shutil.rmtree(_metrics_dir, ignore_errors=True)


def _json_error(sock, status_int, reason, mesg):
    """gunicorn's own answer to a request it cannot parse, as the contract's JSON error.

    A malformed request line, a header that is not HTTP, a URI or headers too large: gunicorn
    answers these itself, before the app sees a request, with an HTML page. The contract
    says every error is JSON, and clients of a JSON API parse the body of every error.
    gunicorn has no setting for this page; its workers call util.write_error, replaced here
    in the master, before the workers are forked.
    """
    error = sys.exc_info()[1]
    retry_after = ""
    if isinstance(error, SystemExit) and status_int == 500:
        # The arbiter stopped the worker at `timeout` mid-request (what it had not
        # committed was rolled back with its database connection): the server's limit, not
        # the client's fault. It may have committed first, so a retry needs its key.
        status_int, reason, retry_after = 503, "Service Unavailable", "Retry-After: 5\r\n"
        mesg = ("The request took too long and was stopped. Retry shortly; a retry with the "
                "same Idempotency-Key never stores a comment twice.")
    else:
        # gunicorn's message quotes what the client sent (the request line with its query,
        # a header): the error's class names the fault without repeating it.
        mesg = f"{reason}: {type(error).__name__}" if error else reason
    body = json.dumps({"code": status_int, "status": reason, "message": mesg}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            "Content-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
            "X-Frame-Options: DENY\r\n"
            "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n"
            f"{retry_after}Content-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = _json_error


# prometheus_client's files in that folder: <type>_<pid>.db, a gauge's type naming its mode.
# Dead workers' counters and histograms are folded into <type>_archive.db (the ".new" one
# being written when the master stopped).
# archive.lock is the lock a scrape and the archiving share; rules_errors.lock the one
# the worker that counts refused rules files holds (moderation.services.rules). The
# rules_error_<digest> marks an earlier version left are removed as the others are.
_METRICS_FILE = re.compile(
    r"(?:counter|histogram|summary|gauge_[a-z]+)_(?:\d+|archive)\.db(?:\.new)?"
    r"|archive\.lock|rules_errors\.lock|rules_error_[0-9a-f]{16}"
)


def on_starting(server):
    """Start every run with an empty metrics folder, so old workers' counters do not linger.

    Only prometheus_client's own files go. A folder holding anything else is refused: named
    by mistake as the instance folder, it held the database and the secret key, which this
    deleted (found by an audit); and /metrics reads every *.db file there as metrics.
    """
    os.makedirs(_metrics_dir, exist_ok=True)
    names = os.listdir(_metrics_dir)
    foreign = sorted(name for name in names if not _METRICS_FILE.fullmatch(name))
    if foreign:
        # The preloaded app made this process's own files there already (importing the
        # metrics creates them): those go, as the folder was not ours to write in.
        for name in names:
            if _METRICS_FILE.fullmatch(name) and name.endswith(f"_{os.getpid()}.db"):
                os.remove(os.path.join(_metrics_dir, name))
        raise SystemExit(
            f"moderation: not starting, PROMETHEUS_MULTIPROC_DIR ({_metrics_dir}) holds "
            f"more than metrics ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''})."
            " Name a folder of its own: the metrics files in it are removed at each start."
        )
    for name in names:
        os.remove(os.path.join(_metrics_dir, name))


def when_ready(server):
    """Keep the preloaded app's rules current in the master too, for the workers it forks.

    A worker forked later (a recycling, a crash) starts with the rules the master holds.
    Loaded once at start, those were the rules of that moment: while the file was broken,
    a new worker kept them as its "last good" rules, undoing every good edit made since
    (found by an audit: two workers judging by two versions). With the watcher running in
    the master as well, a new worker starts from the last good rules, as the others hold.
    Forking beside this thread is safe: it holds no lock the workers need (logging's are
    reset at fork), and one forked mid-load has not yet marked the file as seen, so the
    worker loads it itself.
    """
    if not server.cfg.preload_app:
        return  # the master holds no app: each worker loads the file as it starts
    app = server.app.wsgi()
    if sys.modules.get("moderation.services.rules") is not None:
        # The master serves nothing and its metrics file is never read: the workers count
        # refused rules files (post_fork says each of them does).
        sys.modules["moderation.services.rules"].count_reload_errors_here(False)
    _follow_rules(app)


def _follow_rules(app):
    """Start the app's rules watcher in this process (a no-op where it runs already, or
    for another app: bench/ serves isso, from its own venv, under this config)."""
    if sys.modules.get("moderation.services.rules") is None:
        return  # another app: importing this package would only fill its workers' memory
    from moderation.services.rules import EXTENSION

    watcher = getattr(app, "extensions", {}).get(EXTENSION)
    if watcher is not None:
        watcher.start()


def on_exit(server):
    """Remove the temporary metrics folder made above (one named by the operator stays)."""
    if _metrics_dir_is_ours:
        shutil.rmtree(_metrics_dir, ignore_errors=True)


def post_fork(server, worker):
    """Drop pooled database connections a preloaded app may hold: a connection must never be
    shared by two processes. close=False leaves the master's own connections alone.

    And follow the rules file from the worker's first moment, as the master did until the
    fork: started at the worker's first request instead, the watcher of a worker that sat
    idle through a good edit and then a broken one found the file broken, and kept the
    rules it was forked with as its last good ones.

    And say that this process serves: of the processes sharing the metrics folder, only
    workers count refused rules files (moderation.services.rules).
    """
    try:
        from moderation.services import rules
    except ImportError:  # another app's venv (bench/ serves isso under this config)
        return
    rules.count_reload_errors_here()
    if not server.cfg.preload_app:
        return  # the worker is about to build its own app
    app = server.app.wsgi()
    if "sqlalchemy" in getattr(app, "extensions", {}):
        from moderation.extensions import db

        with app.app_context():
            for engine in db.engines.values():
                engine.dispose(close=False)
    _follow_rules(app)


def worker_exit(server, worker):
    """Leave at once, with the exit code gunicorn was leaving with.

    A worker leaving normally tears the interpreter down, freeing every object; in a worker
    forked from the preloaded master that writes to, and so copies, nearly every page it
    shares, and took about 0.36 s here, during which its slot served nothing (the master
    forks the replacement only once the old worker is gone): requests waited that long at
    each recycling (bench/recycle.py). Nothing needs that teardown: each request's
    transaction is over by now, logs are written line by line, metrics live in shared
    files, and the OS closes the sockets and database connections.
    """
    leaving = sys.exc_info()[1]  # the SystemExit gunicorn raised, with its code
    code = leaving.code if isinstance(leaving, SystemExit) else 0
    if code is not None and not isinstance(code, int):
        # A message, as wsgi.py leaves with when a worker that builds its own app
        # (GUNICORN_PRELOAD=false) finds the rules file broken: Python would print it on
        # its way out, which os._exit skips, and the worker left without a word.
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def child_exit(server, worker):
    """Tell the metrics registry a worker is gone, so its live gauges are dropped, and fold
    its counters and histograms into the archive files (recycled workers' files piled up
    and slowed every scrape)."""
    try:
        from prometheus_client import multiprocess

        from moderation.metrics import archive_dead_worker
    except ImportError:  # another app's venv (bench/ serves isso under this config)
        return

    # Anything raised here stops the master, and the service with it (an audit's damaged
    # file did): a metrics file is never worth that.
    try:
        multiprocess.mark_process_dead(worker.pid)
        archive_dead_worker(worker.pid)
    except Exception as error:  # noqa: BLE001 - a full disk, say: the files stay, as before
        server.log.warning("metrics of worker %s not archived: %s", worker.pid, error)
