"""Consistent copies of SQLite database files through the SQLite online backup API (used by `dbx backup`).

Works while other processes (the daemon) read and write the source; never modifies the source's content.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from eventdbx.errors import StorageError

SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_SECS = 10.0


def is_sqlite_file(path: Path) -> bool:
    """Whether `path` is a regular file starting with the SQLite header."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def copy_database(source: Path, target: Path) -> None:
    """Copy the committed content of database `source` into a new file `target` (0600, rollback journal)."""
    if target.exists():
        target.unlink()
    fd = os.open(target, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
    os.close(fd)
    src: sqlite3.Connection | None = None
    dst: sqlite3.Connection | None = None
    try:
        src = sqlite3.connect(source, timeout=BUSY_TIMEOUT_SECS, isolation_level=None)
        dst = sqlite3.connect(target, isolation_level=None)
        src.backup(dst)
        # The copy inherits WAL mode from the page header; make it a self-contained single file.
        dst.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as exc:
        raise StorageError(f"cannot back up {source}: {exc}") from exc
    finally:
        if dst is not None:
            dst.close()
        if src is not None:
            src.close()
    os.chmod(target, 0o600)
