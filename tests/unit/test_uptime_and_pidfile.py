"""Uptime text (cli.md §2) and the pid file format."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from eventdbx.pidfile import InstanceLock, PidInfo, process_alive, read_pid_file, write_pid_file
from eventdbx.uptime import format_uptime


@pytest.mark.parametrize(("seconds", "text"), [
    (0.2, "under 1s"),
    (1, "1s"),
    (65, "1m 5s"),
    (3725, "1h 2m 5s"),
    (90061, "1d 1h 1m"),
    (86401, "1d 1s"),
    (7200, "2h"),
])
def test_uptime_parts(seconds: float, text: str) -> None:
    assert format_uptime(seconds) == text


def test_pid_file_round_trip_and_bare_integer(tmp_path: Path) -> None:
    path = tmp_path / "eventdbx.pid"
    write_pid_file(path, PidInfo(pid=42, started_at="2025-10-26T12:00:00+00:00"))
    assert path.read_text() == '{"pid":42,"started_at":"2025-10-26T12:00:00+00:00"}'
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_pid_file(path) == PidInfo(pid=42, started_at="2025-10-26T12:00:00+00:00")
    path.write_text("77\n")
    assert read_pid_file(path) == PidInfo(pid=77, started_at=None)
    path.write_text("garbage")
    assert read_pid_file(path) is None


def test_process_alive() -> None:
    assert process_alive(os.getpid())
    assert not process_alive(0)


def test_instance_lock_is_exclusive(tmp_path: Path) -> None:
    first, second = InstanceLock(tmp_path / "l"), InstanceLock(tmp_path / "l")
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()
