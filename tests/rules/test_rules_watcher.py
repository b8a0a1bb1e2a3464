"""Hot reload: edits are picked up in every process, broken edits keep the last good rules."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import pytest

from moderation.rules import RulesError, RulesWatcher, Submission, evaluate
from tests.conftest import wait_for

GOOD = "version: 1\nrules: [{{id: WORDS, type: terms, terms: [{word}], outcome: spam}}]\n"
BROKEN = "version: 1\nrules: [{id: WORDS, type: regex, pattern: 'oops(', score: 1}]\n"


def write(path: Path, text: str) -> None:
    """Replace the file as editors and deploy tools do: write aside, then rename."""
    aside = path.with_suffix(".tmp")
    aside.write_text(text, "utf-8")
    os.replace(aside, path)



def outcome(watcher: RulesWatcher, content: str) -> str:
    submission = Submission("default", "t", "Ann", "a@b.org", content=content)
    return evaluate(watcher.current, submission).outcome


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    write(path, GOOD.format(word="casino"))
    return path


def test_an_edit_is_in_force_without_a_restart(rules_file: Path) -> None:
    """The watcher sets the new rules, then its time and then tells on_reload: the test
    waits for the last of these, not the first (seeing the new version, it read the
    callback's list before the thread had called it, and failed now and then)."""
    reloaded: list[str] = []
    watcher = RulesWatcher(
        rules_file, interval=0.1, on_reload=lambda rs: reloaded.append(rs.version)
    )
    watcher.start()
    try:
        first, loaded_at = watcher.current.version, watcher.loaded_at
        write(rules_file, GOOD.format(word="lottery"))
        assert wait_for(lambda: reloaded != [], timeout=10)
        assert reloaded == [watcher.current.version] and watcher.current.version != first
        assert outcome(watcher, "lottery") == "spam"
        assert outcome(watcher, "casino") == "pending"
        assert watcher.loaded_at > loaded_at
    finally:
        watcher.stop()


def test_a_broken_edit_keeps_the_last_good_rules_until_fixed(rules_file: Path) -> None:
    errors: list[str] = []
    watcher = RulesWatcher(rules_file, interval=0.1, on_error=errors.append)
    watcher.start()
    try:
        good = watcher.current.version
        write(rules_file, BROKEN)
        assert wait_for(lambda: watcher.last_error is not None)
        assert "rule WORDS: pattern: missing ): oops(" in (watcher.last_error or "")
        assert wait_for(lambda: errors == [watcher.last_error])
        time.sleep(0.3)
        assert len(errors) == 1  # reported once, not on every check
        assert watcher.current.version == good
        assert outcome(watcher, "casino") == "spam"
        write(rules_file, GOOD.format(word="lottery"))
        assert wait_for(lambda: watcher.last_error is None)
        assert outcome(watcher, "lottery") == "spam"
    finally:
        watcher.stop()


def test_an_edit_in_place_that_keeps_size_and_modification_time_reloads(
        rules_file: Path) -> None:
    """`cp -p`, `rsync -a` and `tar` write the new content in place and put the source's
    modification time back; with the same size, the watcher saw no change (an audit)."""
    watcher = RulesWatcher(rules_file, interval=0.1)
    watcher.start()
    try:
        first = watcher.current.version
        before = rules_file.stat()
        edited = GOOD.format(word="roulet")  # "casino" and "roulet": the same size
        assert len(edited) == before.st_size
        rules_file.write_text(edited, "utf-8")  # in place: the same inode
        os.utime(rules_file, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert rules_file.stat().st_mtime_ns == before.st_mtime_ns
        assert wait_for(lambda: watcher.current.version != first, timeout=10)
        assert outcome(watcher, "roulet") == "spam"
    finally:
        watcher.stop()


def test_editing_a_list_file_reloads(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("casino\n", "utf-8")
    rules = tmp_path / "rules.yaml"
    write(rules, "version: 1\nrules: [{id: W, type: terms, terms: 'file:words.txt', score: 9}]")
    watcher = RulesWatcher(rules, interval=60)
    assert watcher.check_now() is False
    write(words, "lottery\n")
    assert watcher.check_now() is True
    assert outcome(watcher, "lottery") == "spam"


def test_a_list_edited_while_the_rules_load_is_loaded_at_the_next_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lists were stat'ed after the load had read them: an edit landing in between
    was taken as seen, and the old list stayed in force until some file changed again."""
    from moderation.rules import watcher as watcher_module

    words = tmp_path / "words.txt"
    words.write_text("casino\n", "utf-8")
    rules = tmp_path / "rules.yaml"
    write(rules, "version: 1\nrules: [{id: W, type: terms, terms: 'file:words.txt', score: 9}]")
    watcher = RulesWatcher(rules, interval=60)
    load = watcher_module.load_rules

    def load_then_edited(path: Path) -> Any:
        loaded = load(path)
        write(words, "casino\nlottery\n")  # after the loader read it
        return loaded

    monkeypatch.setattr(watcher_module, "load_rules", load_then_edited)
    write(words, "casino\nbingo\n")
    assert watcher.check_now() is True and outcome(watcher, "lottery") != "spam"
    monkeypatch.setattr(watcher_module, "load_rules", load)
    assert watcher.check_now() is True
    assert outcome(watcher, "lottery") == "spam"


def test_a_list_file_only_the_broken_edit_names_is_seen_once_it_exists(tmp_path: Path) -> None:
    """The watcher stats the rules in force's files: a list file that an edit names but
    that is missing, created afterwards, went unseen until the rules file was touched."""
    from moderation.rules.watcher import RETRY_BROKEN_EVERY

    rules = tmp_path / "rules.yaml"
    write(rules, GOOD.format(word="casino"))
    errors: list[str] = []
    watcher = RulesWatcher(rules, interval=60, on_error=errors.append)
    write(rules, "version: 1\nrules: [{id: W, type: terms, terms: 'file:new.txt', score: 9}]")
    assert watcher.check_now() is False and watcher.last_error and len(errors) == 1
    (tmp_path / "new.txt").write_text("lottery\n", "utf-8")
    checks = [watcher.check_now() for _ in range(RETRY_BROKEN_EVERY)]
    assert checks[-1] is True and not any(checks[:-1])
    assert watcher.last_error is None and outcome(watcher, "lottery") == "spam"
    assert len(errors) == 1  # the retries while it stayed broken reported nothing again


def test_a_broken_file_retried_unchanged_is_reported_once(rules_file: Path) -> None:
    from moderation.rules.watcher import RETRY_BROKEN_EVERY

    errors: list[str] = []
    watcher = RulesWatcher(rules_file, interval=60, on_error=errors.append)
    write(rules_file, BROKEN)
    for _ in range(3 * RETRY_BROKEN_EVERY + 1):
        assert watcher.check_now() is False
    assert len(errors) == 1 and outcome(watcher, "casino") == "spam"


def test_reading_the_rules_costs_no_stat_call(
    rules_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watcher = RulesWatcher(rules_file, interval=60)

    def no_stat(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("stat on the request path")

    monkeypatch.setattr(Path, "stat", no_stat)
    assert outcome(watcher, "casino") == "spam"


def test_start_is_idempotent_and_restarts_after_a_fork(rules_file: Path) -> None:
    watcher = RulesWatcher(rules_file, interval=0.1)
    watcher.start()
    try:
        thread = watcher._thread
        watcher.start()
        assert watcher._thread is thread
        watcher._pid = -1  # as seen from a child process after fork
        watcher.start()
        assert watcher._thread is not thread and watcher._thread is not None
        assert watcher._thread.is_alive()
    finally:
        watcher.stop()


def test_a_first_load_that_fails_raises(tmp_path: Path) -> None:
    broken = tmp_path / "rules.yaml"
    write(broken, BROKEN)
    with pytest.raises(RulesError, match="rule WORDS: pattern"):
        RulesWatcher(broken)


def worker(path: str, commands: Any, answers: Any) -> None:
    """One 'gunicorn worker': its own watcher, answering what it decides on request."""
    watcher = RulesWatcher(path, interval=0.1)
    watcher.start()
    answers.put(("ready", watcher.current.version))
    while (command := commands.get()) != "stop":
        kind, argument = command
        if kind == "await_version":
            wait_for(lambda version=argument: watcher.current.version == version, timeout=2.0)
        else:
            wait_for(lambda: watcher.last_error is not None, timeout=2.0)
        answers.put((watcher.current.version, watcher.last_error, outcome(watcher, "lottery")))
    watcher.stop()


def test_two_worker_processes_both_follow_edits(rules_file: Path, tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    pipes = [(context.Queue(), context.Queue()) for _ in range(2)]
    workers = [
        context.Process(target=worker, args=(str(rules_file), commands, answers), daemon=True)
        for commands, answers in pipes
    ]
    for process in workers:
        process.start()
    try:
        first = {answers.get(timeout=60)[1] for _, answers in pipes}
        assert len(first) == 1

        write(rules_file, GOOD.format(word="lottery"))
        new = RulesWatcher(rules_file).current.version
        for commands, _ in pipes:
            commands.put(("await_version", new))
        assert [answers.get(timeout=10) for _, answers in pipes] == [(new, None, "spam")] * 2

        write(rules_file, BROKEN)
        for commands, _ in pipes:
            commands.put(("await_error", ""))
        for _, answers in pipes:
            version, error, decided = answers.get(timeout=10)
            assert (version, decided) == (new, "spam")
            assert error is not None and "rule WORDS: pattern" in error
    finally:
        for commands, _ in pipes:
            commands.put("stop")
        for process in workers:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        for commands, answers in pipes:
            commands.close()
            answers.close()
            commands.join_thread()
            answers.join_thread()
    assert [process.exitcode for process in workers] == [0, 0]


def test_a_forked_child_checks_the_files_before_serving(rules_file: Path) -> None:
    """As in a worker forked from a preloaded master: the rules it inherited are stale."""
    watcher = RulesWatcher(rules_file, interval=60)  # its thread would not look for a minute
    watcher.start()
    try:
        write(rules_file, GOOD.format(word="lottery"))
        watcher._pid = -1  # as seen from a child process after fork
        watcher.start()
        assert outcome(watcher, "lottery") == "spam"
    finally:
        watcher.stop()
