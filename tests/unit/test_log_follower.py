"""`dbx plugin start --foreground`'s log follower: from the end, across rollovers (rename + new file), truncation."""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eventdbx.cli.log_follower import MOVED_WAIT_POLLS, LogFollower, follow_log
from eventdbx.daemon_log import DailyGzipHandler

MIDNIGHT = datetime(2026, 3, 5, tzinfo=UTC).timestamp()


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "eventdbx.log"
    path.write_text("before 1\nbefore 2\n", encoding="utf-8")
    return path


@pytest.fixture
def follower(log: Path) -> Iterator[LogFollower]:
    follower = LogFollower(log)
    yield follower
    follower.close()


def _append(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.writelines(f"{line}\n" for line in lines)


def _rotate(path: Path, number: int) -> Path:
    rotated = path.with_name(f"eventdbx_2026-03-0{number}_00-00-00.log")
    path.rename(rotated)
    return rotated


def test_it_starts_at_the_end_and_returns_each_new_line_once(log: Path, follower: LogFollower) -> None:
    assert follower.poll() == []
    _append(log, "one", "two")
    assert follower.poll() == ["one", "two"]
    assert follower.poll() == []
    _append(log, "three")
    assert follower.poll() == ["three"]


def test_a_partial_line_waits_for_its_end(log: Path, follower: LogFollower) -> None:
    with log.open("a", encoding="utf-8") as out:
        out.write("half")
        out.flush()
        assert follower.poll() == []
        out.write(" and the rest, é\nnext\n")
    assert follower.poll() == ["half and the rest, é", "next"]


def test_after_a_rollover_it_finishes_the_old_file_then_reads_the_new_one_from_its_start(
    log: Path, follower: LogFollower
) -> None:
    _append(log, "old 1")
    assert follower.poll() == ["old 1"]
    _append(log, "old 2")
    rotated = _rotate(log, 1)
    _append(rotated, "old 3")  # a writer that checked the name just before the rename
    _append(log, "new 1", "new 2")
    assert follower.poll() == ["old 2", "old 3", "new 1", "new 2"]
    _append(rotated, "never: written after the switch")
    _append(log, "new 3")
    assert follower.poll() == ["new 3"]


def test_between_the_rename_and_the_new_file_it_keeps_reading_the_old_one(
    log: Path, follower: LogFollower
) -> None:
    rotated = _rotate(log, 1)
    _append(rotated, "old 1")
    assert follower.poll() == ["old 1"]
    _append(rotated, "old 2")
    _append(log, "new 1")
    assert follower.poll() == ["old 2", "new 1"]


def test_a_log_that_does_not_exist_yet_is_read_from_its_start(tmp_path: Path) -> None:
    follower = LogFollower(tmp_path / "eventdbx.log")
    try:
        assert follower.poll() == []
        _append(tmp_path / "eventdbx.log", "first", "second")
        assert follower.poll() == ["first", "second"]
    finally:
        follower.close()


def test_a_truncated_log_is_read_again_from_its_start(log: Path, follower: LogFollower) -> None:
    _append(log, "one", "two")
    assert follower.poll() == ["one", "two"]
    log.write_text("short\n", encoding="utf-8")
    assert follower.poll() == ["short"]


def test_it_stays_on_the_old_file_while_a_writer_holds_it(log: Path, follower: LogFollower) -> None:
    rotated = _rotate(log, 1)
    _append(log, "new 1")
    with rotated.open("a", encoding="utf-8") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_SH)  # a writer between its name check and its write
        assert follower.poll() == []
        writer.write("old late\n")
        writer.flush()
        fcntl.flock(writer.fileno(), fcntl.LOCK_UN)
    assert follower.poll() == ["old late", "new 1"]


def test_a_writer_that_never_lets_go_holds_the_switch_back_only_so_many_polls(
    log: Path, follower: LogFollower
) -> None:
    rotated = _rotate(log, 1)
    _append(log, "new 1")
    with rotated.open("a", encoding="utf-8") as writer:
        fcntl.flock(writer.fileno(), fcntl.LOCK_SH)
        seen = [follower.poll() for _ in range(MOVED_WAIT_POLLS)]
        assert seen == [[]] * MOVED_WAIT_POLLS
        assert follower.poll() == ["new 1"]


def _wait_for(lines: list[str], count: int, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(lines) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return list(lines)


def test_follow_log_sees_every_line_once_in_order_across_daemon_rollovers(tmp_path: Path) -> None:
    now = [MIDNIGHT - 30]
    handler = DailyGzipHandler(tmp_path, clock=lambda: now[0])
    daemon = logging.getLogger("log_follower_test.daemon")
    daemon.propagate = False
    daemon.addHandler(handler)
    daemon.setLevel(logging.INFO)
    daemon.info("before the follower")
    seen: list[str] = []
    stop = threading.Event()
    follower = threading.Thread(
        target=follow_log, args=(LogFollower(tmp_path / "eventdbx.log"), seen.append, stop, 0.01)
    )
    follower.start()
    expected: list[str] = []
    try:
        for day in range(3):
            for n in range(50):
                daemon.info("day %d line %d", day, n)
                expected.append(f"day {day} line {n}")
            # Half the day seen: the follower is on today's file, maybe with lines left when it rotates.
            assert _wait_for(seen, len(expected) - 25, 10)[: len(expected) - 25] == expected[:-25]
            now[0] += 86_400  # the next line rotates first
        assert _wait_for(seen, len(expected), 10) == expected
        assert handler.wait_idle(10)
        assert len(list(tmp_path.glob("eventdbx_*.log.gz"))) == 2
    finally:
        stop.set()
        follower.join(10)
        daemon.removeHandler(handler)
        handler.close()
    assert not follower.is_alive()
    assert seen == expected
