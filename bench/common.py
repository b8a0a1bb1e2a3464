"""Shared plumbing for the benchmark scripts: servers, wrk, machine facts, RESULTS.md.

Every server started here binds to 127.0.0.1, runs in its own process group and is
stopped (SIGTERM, then SIGKILL) when its `with` block ends, whatever happened inside.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / ".work"  # git-ignored: cached venvs, temp instances, logs
RESULTS = BENCH / "RESULTS.md"
GUNICORN_CONF = ROOT / "gunicorn.conf.py"
BIN = (
    ROOT / ".venv" / "bin"
    if (ROOT / ".venv" / "bin" / "gunicorn").exists()
    else Path(sys.executable).parent
)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    # Turn SIGTERM (run_all's time limit) into SystemExit, so `finally` blocks stop servers.
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _exit_on_sigterm)
PG_ADMIN_DSN = os.environ.get("BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


# --------------------------------------------------------------------------- machine


def machine() -> str:
    """Cores, memory, CPU model, OS and Python: the line every RESULTS section carries."""
    cores = os.cpu_count() or 0
    mem_gib = 0.0
    model = platform.processor() or "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 1024 / 1024
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cores} cores ({model}), {mem_gib:.1f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def header(command: str) -> str:
    now = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return f"- Date: {now}\n- Machine: {machine()}\n- Command: `{command}`\n"


def this_command() -> str:
    script = Path(sys.argv[0]).resolve()
    try:
        script_text = str(script.relative_to(ROOT))
    except ValueError:
        script_text = str(script)
    return " ".join([".venv/bin/python", script_text, *map(shlex.quote, sys.argv[1:])])


def write_section(title: str, body: str) -> None:
    """Replace the `## title` section of RESULTS.md (or append it), keeping the others."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    text = (
        RESULTS.read_text()
        if RESULTS.exists()
        else (
            "# Benchmark results\n\nWritten by the scripts in `bench/` (`make bench`). "
            "Each section says when, on what machine and by which command it was measured.\n"
        )
    )
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    skipping = False
    replaced = False
    heading = f"## {title}"
    new = f"{heading}\n\n{body.rstrip()}\n\n"
    for line in lines:
        if line.startswith("## "):
            if line.rstrip() == heading:
                skipping = True
                replaced = True
                out.append(new)
                continue
            skipping = False
        if not skipping:
            out.append(line)
    if not replaced:
        if out and not out[-1].endswith("\n\n"):
            out.append("\n")
        out.append(new)
    RESULTS.write_text("".join(out).rstrip() + "\n")


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], Any]:
    """A tiny HTTP client (stdlib): status, headers, parsed JSON (or text)."""
    data = None
    headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, hdrs, raw = resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as error:
        status, hdrs, raw = error.code, dict(error.headers), error.read()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return status, hdrs, parsed


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until something answers HTTP at url (any status)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            http("GET", url, timeout=2)
            return
        except (OSError, urllib.error.URLError) as error:
            last = error
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


def kill_group(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM the process group, wait, then SIGKILL what is left."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@contextmanager
def process(
    cmd: list[str],
    env: dict[str, str],
    log: Path,
    cwd: Path = ROOT,
    ready_url: str | None = None,
    ready_timeout: float = 60.0,
) -> Iterator[subprocess.Popen]:
    """Start cmd in its own session (process group), logging to `log`; always stop it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        if ready_url:
            wait_http(ready_url, ready_timeout, proc)
        yield proc
    finally:
        kill_group(proc)


def base_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MODERATION_", "GUNICORN_", "PROMETHEUS_")) and k != "DATABASE_URL"
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # The checkout first on the path: works whether or not the editable install maps it.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def gunicorn_cmd(app: str, gunicorn: Path | None = None) -> list[str]:
    return [str(gunicorn or BIN / "gunicorn"), "-c", str(GUNICORN_CONF), app]


def workers_of(master_pid: int) -> list[int]:
    """The gunicorn workers: the master's child processes."""
    pids: list[int] = []
    for task in Path(f"/proc/{master_pid}/task").glob("*"):
        with suppress(OSError):
            pids += [int(p) for p in (task / "children").read_text().split()]
    return sorted(set(pids))


# Clock ticks per second: the unit of /proc/<pid>/stat's CPU times.
TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def cpu_seconds(master_pid: int) -> float:
    """User + system CPU of the master's workers, live and reaped.

    Workers are replaced after max_requests, so the master's children-time (cutime,
    cstime) carries the CPU of those that have exited.
    """
    master = _stat(master_pid)
    total = int(master[13]) + int(master[14]) if master else 0
    for pid in workers_of(master_pid):
        fields = _stat(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the peak resident set size of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def current_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pss_mib(pid: int) -> float:
    """Proportional set size: resident pages, each shared page divided among its sharers.

    With the app preloaded in gunicorn's master, workers share its pages until they write
    to them, so RSS counts those pages once per worker while PSS splits them.
    """
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def moderation_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    """Run the `moderation` command; return its stdout (raise with stderr on failure)."""
    result = subprocess.run(
        [str(BIN / "moderation"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"moderation {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout


def last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1].strip()


def temp_dir(prefix: str) -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=WORK))


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- wrk


def ensure_wrk() -> str:
    """wrk from Debian; installed with apt-get when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: apt-get install -y wrk", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False, timeout=300)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, timeout=600)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk could not be installed")
    return found


def run_wrk(
    url: str,
    script: Path,
    args: list[str],
    duration: int,
    threads: int = 2,
    connections: int = 8,
    timeout_s: int = 10,
) -> dict[str, Any]:
    """One wrk run; the Lua script's done() prints a `WRKJSON {...}` line we parse."""
    cmd = [
        ensure_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(script),
        url,
        "--",
        *args,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    for line in result.stdout.splitlines():
        if line.startswith("WRKJSON "):
            data = json.loads(line[len("WRKJSON ") :])
            data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
            data["errors"] = (
                data["connect_errors"]
                + data["read_errors"]
                + data["write_errors"]
                + data["status_errors"]
                + data["timeouts"]
            )
            return data
    raise RuntimeError(f"wrk gave no result: {result.stdout}\n{result.stderr}")


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(round(q / 100 * len(ordered) + 0.5))))
    return ordered[rank - 1]


def fmt_ms(us: float) -> str:
    return f"{us / 1000:.1f}"


def lua_dir() -> Path:
    return BENCH / "lua"


def now_id() -> str:
    return re.sub(r"\W", "", f"{time.time():.3f}")
