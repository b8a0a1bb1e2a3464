"""The rules in force for this process, reloaded from the admin's file without a restart."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, g

from moderation.errors import Invalid, error_response, log
from moderation.metrics import RULES_RELOAD_ERRORS
from moderation.rules import (
    RulesError,
    RuleSet,
    RulesWatcher,
    Submission,
    Verdict,
    default_rules_path,
    evaluate,
    parse_rules,
)

EXTENSION = "moderation.rules"
# Seconds a client should wait when this process has no rules: the file must be fixed and
# the process restarted, which takes an operator longer than a database restart.
RULES_RETRY_AFTER = 30


class RulesNotLoaded(RulesError):
    """Asked for the rules in force in a process that started without them (the
    `moderation` command's app, while the file is broken). A RulesError still, so the
    command line names the file's errors; a request answers 503 (below), not a 500."""


def _rules_not_loaded(error: RulesNotLoaded) -> Response:
    log.error("request refused: the rules file in force did not load")
    g.retry_after = RULES_RETRY_AFTER  # not the database's short wait (limits.py)
    return error_response(
        503,
        "The service cannot judge comments now: its rules file does not load.",
        headers={"Retry-After": str(RULES_RETRY_AFTER)},
    )


# Whether this process counts refused rules files where processes share a metrics folder.
# A process that serves does (gunicorn's workers, `moderation run`); gunicorn's master and
# the other `moderation` commands say they don't, as their metrics files are never read
# (the master's is emptied at start, a command's removed as it exits), and a command that
# took the counting lock would keep the workers from counting.
_counts_in_shared_folder = True
# The lock that makes one worker at a time the one that counts (kept open while it lives).
RELOAD_ERRORS_LOCK = "rules_errors.lock"
_counter_lock: int | None = None


def count_reload_errors_here(counts: bool = True) -> None:
    """Whether this process serves requests, and so may count refused rules files."""
    global _counts_in_shared_folder
    _counts_in_shared_folder = counts


def _the_counting_worker(folder: str) -> bool:
    """Whether this worker is the one that counts: the first to ask, while it lives."""
    global _counter_lock
    if _counter_lock is not None:
        return True
    descriptor = os.open(os.path.join(folder, RELOAD_ERRORS_LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return False
    _counter_lock = descriptor
    return True


def _reload_failed(message: str) -> None:
    """Count a refused rules file once, however many workers refused it.

    Every worker watches the file, and each counted the same broken edit: one edit read
    as 3 errors under 3 workers (found by an audit). One worker counts them, the one that
    holds the folder's lock; the others see the same file and say nothing. A mark per
    broken version of the file, tried first, missed a list file deleted a second time
    (the same mark), and a command that saw the error first made it and then removed its
    count (a review). The watcher has logged the error, with the file and version kept.
    """
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        if not _counts_in_shared_folder:
            return
        try:
            if not _the_counting_worker(folder):
                return
        except OSError:
            pass  # a folder that takes no lock: counted here, as before
    RULES_RELOAD_ERRORS.inc()


def init_rules(app: Flask) -> None:
    """Load the rules file now (a broken file stops start-up) and watch it from then on.

    The `moderation` command (RULES_REQUIRED false) starts without them: while the file in
    force is broken, the service keeps its last good rules and runs on, and so must the
    purge from cron, a backup or an export, which never read them. A command that does
    read them fails then, naming the file's errors.
    """
    path = Path(app.config["RULES_FILE"] or default_rules_path())
    try:
        watcher: RulesWatcher | RulesNotLoaded = RulesWatcher(
            path,
            interval=float(app.config["RULES_RELOAD_INTERVAL"]),
            on_error=_reload_failed,
        )
    except RulesError as error:
        if app.config.get("RULES_REQUIRED", True):
            raise
        watcher = RulesNotLoaded(error.messages)
        app.register_error_handler(RulesNotLoaded, _rules_not_loaded)
    app.extensions[EXTENSION] = watcher


def watcher() -> RulesWatcher:
    """This app's watcher; its thread starts lazily so that it runs in every forked worker."""
    rules_watcher: RulesWatcher | RulesNotLoaded = current_app.extensions[EXTENSION]
    if isinstance(rules_watcher, RulesNotLoaded):
        raise rules_watcher  # the command line's app, started without them (above)
    rules_watcher.start()
    return rules_watcher


def current_rules() -> RuleSet:
    """The last good rules: a plain attribute read, no file access on the request path."""
    return watcher().current


def state() -> dict[str, Any]:
    """What GET /api/v1/admin/rules reports."""
    current = watcher()
    return {
        "version": current.current.version,
        "loaded_at": current.loaded_at,
        "source": str(current.current.source),
        "last_error": current.last_error,
    }


def dry_run(comment: dict[str, Any], rules_yaml: str | None) -> Verdict:
    """The verdict for a comment under given rules (or those in force); nothing is stored.

    An unknown site is a 404, as at intake: judged anyway, a misspelt slug would quietly
    leave out that site's overrides.
    """
    from moderation.services import trust
    from moderation.services.identity import email_hash
    from moderation.services.sites import get_site

    site = get_site(comment["site"])
    ruleset = current_rules()
    if rules_yaml is not None:
        try:
            # `file:` lists resolve beside the rules file in force, as they would in production.
            ruleset = parse_rules(rules_yaml, "<request>", Path(ruleset.source).parent
                                  if ruleset.source != "<string>" else None)
        except RulesError as error:
            raise Invalid(str(error), {"rules": error.messages or [str(error)]}) from None
    submission = Submission(
        site=comment["site"],
        thread=comment["thread"],
        author_name=comment["author_name"],
        author_email=comment["author_email"],
        author_url=comment["author_url"] or "",
        content=comment["content"],
        ip=comment["ip"] or "",
        user_agent=comment["user_agent"] or "",
    )
    context = trust.context_for(
        email_hash(comment["author_email"]), site.id, honeypot_filled=False,
        form_token_problem=None,
    )
    return evaluate(ruleset, submission, context)
