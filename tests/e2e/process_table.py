"""Process-table checks for daemon e2e tests: which processes a test's daemon and plugins left behind.

A test's daemon runs with the test's private HOME, and every plugin it spawns inherits it, so
`/proc/<pid>/environ` identifies them (grandchildren included). Zombies have no readable environ, so
every pid and process group seen is remembered, and a leftover is any process whose pid, parent or
group is one of them.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ProcEntry:
    """One line of the process table."""

    pid: int
    ppid: int
    pgid: int
    state: str
    command: str


def read_proc(pid: int) -> ProcEntry | None:
    """The /proc/<pid>/stat fields we need, or None if the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm is in parentheses and may contain spaces or ')': split at the last ')'.
    command = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    return ProcEntry(pid, int(fields[1]), int(fields[2]), fields[0], command)


def process_table() -> list[ProcEntry]:
    """Every process currently visible."""
    entries = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            entry = read_proc(int(name))
            if entry is not None:
                entries.append(entry)
    return entries


def _has_home(pid: int, marker: bytes) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return marker in environ.split(b"\0")


@dataclass
class ProcessWatch:
    """Remembers the processes started under one test HOME and asserts none outlive the test."""

    home: Path
    pids: set[int] = field(default_factory=set)
    groups: set[int] = field(default_factory=set)

    def scan(self) -> list[ProcEntry]:
        """Record (and return) the live processes that carry this HOME or belong to a known one."""
        marker = f"HOME={self.home}".encode()
        own = os.getpid()
        found = []
        for entry in process_table():
            if entry.pid == own:
                continue
            if (
                _has_home(entry.pid, marker)
                or entry.pid in self.pids
                or entry.ppid in self.pids
                or entry.pgid in self.groups
            ):
                found.append(entry)
                self.pids.add(entry.pid)
                if entry.pgid != os.getpgid(0):
                    self.groups.add(entry.pgid)
        return found

    def track(self, pid: int) -> None:
        """Remember a pid learnt from a pid file or `dbx plugin status`."""
        self.pids.add(pid)
        entry = read_proc(pid)
        if entry is not None and entry.pgid != os.getpgid(0):
            self.groups.add(entry.pgid)

    def zombies(self) -> list[ProcEntry]:
        """Unreaped children of the daemon or of its plugins (the daemon's own parent is init)."""
        self.scan()
        return [
            e
            for e in process_table()
            if e.state == "Z" and e.ppid in self.pids and e.pid != os.getpid()
        ]

    def assert_no_zombies(self) -> None:
        """Fail if a tracked process has an unreaped child right now."""
        zombies = self.zombies()
        assert not zombies, f"zombie processes: {zombies}"

    def leftovers(self) -> list[ProcEntry]:
        """Processes still alive (or unreaped) that this test started."""
        return self.scan()

    def assert_clean(self, timeout: float = 20.0) -> None:
        """Wait until nothing this test started remains in the process table; fail with what is left."""
        deadline = time.monotonic() + timeout
        left = self.leftovers()
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = self.leftovers()
        assert not left, f"processes left behind: {left}"

    def kill_leftovers(self) -> None:
        """Last-resort cleanup so a failed test does not leak processes into the next one."""
        for entry in self.leftovers():
            if entry.state == "Z":
                continue
            try:
                os.kill(entry.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@contextmanager
def no_leftover_processes(home: Path, stop: Callable[[], object]) -> Iterator[ProcessWatch]:
    """Watch processes under `home`; on exit call `stop` (e.g. `dbx stop`) and assert nothing remains.

    Leftovers are SIGKILLed afterwards even when the assertion fails, so one bad test cannot leak
    processes into the next.
    """
    watch = ProcessWatch(home)
    try:
        yield watch
        watch.assert_no_zombies()
    finally:
        try:
            stop()
            watch.assert_clean()
        finally:
            watch.kill_leftovers()
