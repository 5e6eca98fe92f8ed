"""Following the daemon log by name like `tail -F`, across the daemon's rotations (rename + new file) and truncation."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

FOLLOW_POLL_SECS = 0.2
# Polls a rotated-away log is still read while a writer may be inside it (the compressor also holds its lock).
MOVED_WAIT_POLLS = 25


def follow_log(
    follower: LogFollower,
    emit: Callable[[str], None],
    stop: threading.Event,
    interval: float = FOLLOW_POLL_SECS,
) -> None:
    """Pass each line `follower` finds to `emit`, polling every `interval` s until `stop` is set; then close it."""
    try:
        while not stop.is_set():
            for line in follower.poll():
                emit(line)
            stop.wait(interval)
    finally:
        follower.close()


class LogFollower:
    """Follows a log by name like `tail -F`: from its end, then across rotations (rename + new file) and truncation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._partial = b""
        self._moved_polls = 0
        self._file = self._open()
        if self._file is not None:
            self._file.seek(0, os.SEEK_END)

    def close(self) -> None:
        """Close the file being read; a partial last line is dropped."""
        if self._file is not None:
            self._file.close()
        self._file, self._partial, self._moved_polls = None, b"", 0

    def poll(self) -> list[str]:
        """The complete lines written since the last poll, finishing the old file before moving to a new one."""
        lines: list[str] = []
        if self._file is not None:
            moved = self._moved(self._file)
            lines = self._read(self._file)
            if moved:
                if self._partial:
                    lines.append(self._partial.decode("utf-8", errors="replace"))
                self.close()
        if self._file is None:
            self._file = self._open()  # a file that appears under the name is read from its start
            if self._file is not None:
                lines += self._read(self._file)
        return lines

    def _open(self) -> BinaryIO | None:
        try:
            return self.path.open("rb")
        except FileNotFoundError:
            return None

    def _read(self, file: BinaryIO) -> list[str]:
        *complete, self._partial = (self._partial + file.read()).split(b"\n")
        return [line.decode("utf-8", errors="replace") for line in complete]

    def _moved(self, file: BinaryIO) -> bool:
        """True once the name points at another file and no line can still land in `file`; rewinds it if truncated."""
        try:
            named = self.path.stat()
        except FileNotFoundError:
            return False  # between a rollover's rename and its new file
        held = os.fstat(file.fileno())
        if (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino):
            if named.st_size < file.tell():
                file.seek(0)
                self._partial = b""
            return False
        self._moved_polls += 1
        return _writers_done(file) or self._moved_polls > MOVED_WAIT_POLLS


def _writers_done(file: BinaryIO) -> bool:
    # Daemon log writers append under a shared flock after checking that the name still points at their file
    # (daemon_log.SharedFileHandler), so once the name has moved and an exclusive lock is free, no line can land here.
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(file.fileno(), fcntl.LOCK_UN)
    return True
