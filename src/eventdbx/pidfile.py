"""The daemon's pid file (`{"pid":N,"started_at":"<ts>"}`) and its single-instance lock."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass(frozen=True, slots=True, kw_only=True)
class PidInfo:
    """What the pid file says about a daemon."""

    pid: int
    started_at: str | None


def read_pid_file(path: Path) -> PidInfo | None:
    """Read the pid file (JSON or a bare integer); None when missing or unreadable."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError:
        return None
    if not text:
        return None
    if text.isdigit():
        return PidInfo(pid=int(text), started_at=None)
    try:
        data = json.loads(text)
        pid = int(data["pid"])
    except (ValueError, KeyError, TypeError):
        return None
    started = data.get("started_at")
    return PidInfo(pid=pid, started_at=started if isinstance(started, str) else None)


def write_pid_file(path: Path, info: PidInfo) -> None:
    """Write the pid file atomically, mode 0600."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"pid": info.pid, "started_at": info.started_at}, handle, separators=(",", ":"))
    os.replace(tmp, path)


def remove_pid_file(path: Path, *, only_pid: int | None = None) -> None:
    """Delete the pid file; with `only_pid`, only when it still names that process."""
    if only_pid is not None:
        info = read_pid_file(path)
        if info is None or info.pid != only_pid:
            return
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def process_alive(pid: int) -> bool:
    """True when a process with this pid exists (and is not a zombie)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class InstanceLock:
    """An exclusive flock on `<data_dir>/eventdbx.lock`: only one daemon per data dir."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another process holds it."""
        handle = open(self.path, "a+")  # noqa: SIM115 - held for the daemon's lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        """Drop the lock."""
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
