"""Daemon logging: `<RFC 3339> <LEVEL> <logger>: <message>` lines, rotated daily to gzip, 14 kept."""

from __future__ import annotations

import fcntl
import gzip
import logging
import logging.handlers
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

TRACE = 5
KEEP = 14
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "warn": logging.WARNING, "error": logging.ERROR, "trace": TRACE}
ROTATED = re.compile(r"eventdbx_(\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d)(?:-(\d+))?\.log(\.gz)?")
_REOPEN_TRIES = 5
_CLOSE_WAIT_SECS = 10.0


class _Formatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        level = {"WARNING": "WARN", "Level 5": "TRACE"}.get(record.levelname, record.levelname)
        line = f"{self.formatTime(record)} {level} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _order(path: Path) -> tuple[str, int]:
    match = ROTATED.fullmatch(path.name)
    return (match[1], int(match[2] or 0)) if match else ("", 0)


def _same_file(path: str, fd: int) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


class SharedFileHandler(logging.FileHandler):
    """Appends beside the rotating daemon: each line goes, under a shared flock, to the file the name points at now."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write the line to the file `eventdbx.log` names now, reopening the name after a rotation."""
        try:
            for _ in range(_REOPEN_TRIES):
                stream = self.stream = self.stream or self._open()
                if self._write_if_current(stream.fileno(), record):
                    return
                stream.close()
                self.stream = None
            logging.FileHandler.emit(self, record)  # the name keeps moving: write where it points
        except Exception:
            self.handleError(record)

    def _write_if_current(self, fd: int, record: logging.LogRecord) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # only the compressor locks exclusively, and only a file already rotated away
        try:
            if not _same_file(self.baseFilename, fd):
                return False
            logging.StreamHandler.emit(self, record)  # writes and flushes while the lock is held
            return True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


class DailyGzipHandler(logging.handlers.TimedRotatingFileHandler):
    """Rotates `eventdbx.log` at midnight UTC into `eventdbx_YYYY-MM-DD_HH-MM-SS[-n].log.gz`.

    Rollover renames the file (a line another process appends meanwhile lands in it) and reopens the name; a
    background thread gzips the renamed file once it holds its exclusive flock, which writers
    (`SharedFileHandler`) hold shared around each line after checking the name still points at their file.
    """

    def __init__(self, directory: Path, *, clock: Callable[[], float] = time.time,
                 lock_wait_secs: float = 60.0) -> None:
        self.directory = directory
        self.clock = clock
        self.lock_wait_secs = lock_wait_secs
        self._closing = threading.Event()
        self._workers: list[threading.Thread] = []
        existed = (directory / "eventdbx.log").exists()
        super().__init__(directory / "eventdbx.log", when="midnight", utc=True, backupCount=0,
                         encoding="utf-8", delay=False)
        if not existed:
            self.rolloverAt = self.computeRollover(int(clock()))
        for leftover in sorted(directory.glob("eventdbx_*.log"), key=_order):
            if ROTATED.fullmatch(leftover.name):
                self._compress_later(leftover)  # a rollover interrupted before its gzip finished

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        """True once the (injectable) clock has passed the next midnight UTC."""
        return self.clock() >= self.rolloverAt

    def doRollover(self) -> None:
        """Rename the file to its rotated name, reopen `eventdbx.log` and gzip the old one in the background."""
        if self.stream:
            self.stream.close()
            self.stream = None
        now = self.clock()
        source = Path(self.baseFilename)
        if source.exists():
            plain = self._free_name(time.strftime("%Y-%m-%d_%H-%M-%S", time.gmtime(now)))
            source.rename(plain)
            self._compress_later(plain)
        self.stream = self._open()
        self.rolloverAt = self.computeRollover(int(now))

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for pending compressions; True if none is left."""
        deadline = time.monotonic() + timeout
        for worker in list(self._workers):
            worker.join(max(0.0, deadline - time.monotonic()))
        return not any(worker.is_alive() for worker in self._workers)

    def close(self) -> None:
        """Close the file; a compression still waiting for its lock is left for the next start."""
        self._closing.set()
        self.wait_idle(_CLOSE_WAIT_SECS)
        super().close()

    def _free_name(self, stamp: str) -> Path:
        taken = {path.name for path in self.directory.iterdir()}
        # Each taken name blocks at most one suffix, so one of len(taken) + 1 candidates is free.
        stems = (f"eventdbx_{stamp}" + (f"-{n}" if n else "") for n in range(len(taken) + 1))
        stem = next(s for s in stems if f"{s}.log" not in taken and f"{s}.log.gz" not in taken)
        return self.directory / f"{stem}.log"

    def _compress_later(self, plain: Path) -> None:
        self._workers = [worker for worker in self._workers if worker.is_alive()]
        worker = threading.Thread(target=self._compress, args=(plain,), name="eventdbx-log-gzip", daemon=True)
        self._workers.append(worker)
        worker.start()

    def _compress(self, plain: Path) -> None:
        try:
            with plain.open("rb") as source:
                if not self._lock(source.fileno()) or not _same_file(str(plain), source.fileno()):
                    return  # still held (left for the next start), or another handler compressed it
                partial = plain.with_name(plain.name + ".gz.tmp")
                with gzip.open(partial, "wb") as target:
                    shutil.copyfileobj(source, target)
                os.replace(partial, plain.with_name(plain.name + ".gz"))
                plain.unlink()
            kept = sorted((p for p in self.directory.glob("eventdbx_*.log.gz") if ROTATED.fullmatch(p.name)),
                          key=_order)
            for stale in kept[:-KEEP]:
                stale.unlink(missing_ok=True)
        except OSError as exc:
            logging.getLogger("eventdbx.log").warning("could not compress %s: %s", plain.name, exc)

    def _lock(self, fd: int) -> bool:
        deadline = time.monotonic() + self.lock_wait_secs
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline or self._closing.wait(0.01):
                    return False


def configure_logging(logs_dir: Path, *, also_stderr: bool, rotate: bool = True) -> None:
    """Send every `eventdbx.*` record to the log file (and stderr in the foreground), never stdout.

    `rotate=False` is for a helper process writing beside the daemon: it follows the name when the daemon rotates.
    """
    logging.addLevelName(TRACE, "TRACE")
    logs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    level = LEVELS.get(os.environ.get("EVENTDBX_LOG_LEVEL", "info").strip().lower(), logging.INFO)
    root = logging.getLogger("eventdbx")
    root.setLevel(level)
    root.propagate = False
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    formatter = _Formatter()
    file_handler: logging.Handler = (
        DailyGzipHandler(logs_dir) if rotate else SharedFileHandler(logs_dir / "eventdbx.log", encoding="utf-8")
    )
    file_handler.setFormatter(formatter)
    root.addHandler(file_handler)
    if also_stderr:
        stream = logging.StreamHandler()
        stream.setFormatter(formatter)
        root.addHandler(stream)
