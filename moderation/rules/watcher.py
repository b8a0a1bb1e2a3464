"""Hot reload: a background thread notices a changed rules file and swaps the rules in.

Requests read ``watcher.current``, a plain attribute: no stat call per request. The
thread stats the file (and its ``file:`` lists) every ``interval`` seconds; every worker
process runs its own thread, so every worker sees an edit within about one interval.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from .config import RulesError, load_rules
from .ruleset import FileSignature, RuleSet, file_signature

__all__ = ["RulesWatcher"]

log = logging.getLogger(__name__)
# While the file is broken, it is loaded again every this many checks even if unchanged.
RETRY_BROKEN_EVERY = 10


def _signature(paths: list[Path]) -> tuple[FileSignature, ...]:
    return tuple(file_signature(path) for path in paths)


class RulesWatcher:
    """Holds the rules in force and reloads them when their files change.

    A file that fails to load leaves the last good rules in force; the failure is kept
    in ``last_error`` (and passed to ``on_error``) until a later version loads.
    """

    def __init__(
        self,
        path: str | Path,
        interval: float = 1.0,
        on_error: Callable[[str], None] | None = None,
        on_reload: Callable[[RuleSet], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.interval = interval
        self.on_error = on_error
        self.on_reload = on_reload
        self.last_error: str | None = None
        self._checks_while_broken = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        # Each file is stat'ed before it is read (the lists by the loader): an edit made
        # while loading is then seen on the next check rather than lost.
        before = _signature([self.path])
        self.current: RuleSet = load_rules(self.path)
        self.loaded_at = datetime.now(UTC)
        self._signature = before + self.current.dependency_signatures

    def start(self) -> None:
        """Start watching in a daemon thread, once per process (call it again after fork)."""
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
                return
            # A thread started before a fork does not exist in the child: start another.
            # A child forked from a preloaded master (gunicorn's preload_app) holds the
            # rules as the master loaded them, maybe long ago: check the files now rather
            # than serve those until the thread's first check.
            self.check_now()
            self._pid = os.getpid()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, name="rules-watcher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the watching thread and wait for it to end."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=self.interval + 5)

    def check_now(self) -> bool:
        """Reload if the files changed since the last check; True if new rules are in force."""
        before = _signature([self.path])
        signature = before + _signature(list(self.current.dependencies))
        unchanged = signature == self._signature
        if unchanged:
            if self.last_error is None:
                return False
            # The files watched are those of the rules in force: a list file that only
            # the broken edit names (missing, say, then created) changes unseen, so a
            # broken file is loaded again every RETRY_BROKEN_EVERY checks.
            self._checks_while_broken += 1
            if self._checks_while_broken < RETRY_BROKEN_EVERY:
                return False
        self._checks_while_broken = 0
        try:
            ruleset = load_rules(self.path)
        except RulesError as exc:
            # A broken file is reported once, not on every check: its signature is kept
            # too. Kept only now, after the load: a process forked while this thread was
            # loading (gunicorn's master runs one) then sees the change and loads it itself.
            self._signature = signature
            if not (unchanged and str(exc) == self.last_error):
                self._failed(str(exc))
            return False
        # The rules first, then the files' signature: a process forked between the two
        # (gunicorn's master runs this thread) sees the files as changed, and loads them
        # again; the other way round it would have kept the old rules as up to date.
        self.current = ruleset
        # The new rules may read other list files: watch those from now on, as each was
        # just before it was read (stat'ed after, an edit made meanwhile was lost).
        self._signature = before + ruleset.dependency_signatures
        self.loaded_at = datetime.now(UTC)
        self.last_error = None
        log.info("rules reloaded from %s, version %s", self.path, ruleset.version[:12])
        if self.on_reload is not None:
            self.on_reload(ruleset)
        return True

    def _failed(self, message: str) -> None:
        self.last_error = message
        log.error(
            "rules file %s not reloaded, keeping version %s: %s",
            self.path,
            self.current.version[:12],
            message,
        )
        if self.on_error is not None:
            self.on_error(message)

    def _run(self) -> None:
        stop = self._stop
        while not stop.wait(self.interval):
            try:
                self.check_now()
            except Exception:  # the watcher must outlive any one bad reload
                log.exception("rules watcher check failed")
