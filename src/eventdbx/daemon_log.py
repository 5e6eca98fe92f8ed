"""Daemon logging: `<RFC 3339> <LEVEL> <logger>: <message>` lines, rotated daily to gzip, 14 kept."""

from __future__ import annotations

import gzip
import logging
import logging.handlers
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

TRACE = 5
KEEP = 14
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "warn": logging.WARNING, "error": logging.ERROR, "trace": TRACE}


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


class DailyGzipHandler(logging.handlers.TimedRotatingFileHandler):
    """Rotates `eventdbx.log` at midnight UTC into `eventdbx_YYYY-MM-DD_HH-MM-SS[-n].log.gz`."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory / "eventdbx.log", when="midnight", utc=True, backupCount=0,
                         encoding="utf-8", delay=False)
        self.directory = directory

    def doRollover(self) -> None:
        if self.stream:
            self.stream.close()
            self.stream = None
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S", time.gmtime())
        target = self.directory / f"eventdbx_{stamp}.log.gz"
        n = 1
        while target.exists():
            target = self.directory / f"eventdbx_{stamp}-{n}.log.gz"
            n += 1
        source = Path(self.baseFilename)
        if source.exists():
            with source.open("rb") as src, gzip.open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            source.unlink()
        old = sorted(self.directory.glob("eventdbx_*.log.gz"), key=lambda p: p.stat().st_mtime)
        for stale in old[:-KEEP]:
            stale.unlink(missing_ok=True)
        self.stream = self._open()
        self.rolloverAt = self.computeRollover(int(time.time()))


def configure_logging(logs_dir: Path, *, also_stderr: bool, rotate: bool = True) -> None:
    """Send every `eventdbx.*` record to the log file (and stderr in the foreground), never stdout.

    `rotate=False` is for a helper process writing beside the daemon: it reopens the file after the daemon rotated it.
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
        DailyGzipHandler(logs_dir)
        if rotate
        else logging.handlers.WatchedFileHandler(logs_dir / "eventdbx.log", encoding="utf-8")
    )
    file_handler.setFormatter(formatter)
    root.addHandler(file_handler)
    if also_stderr:
        stream = logging.StreamHandler()
        stream.setFormatter(formatter)
        root.addHandler(stream)
