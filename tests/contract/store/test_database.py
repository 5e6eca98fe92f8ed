"""Database: open/create rules, pragmas, permissions, transactions, busy retries, per-thread connections."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

from eventdbx.errors import StorageError
from eventdbx.store import database
from eventdbx.store.database import Database
from eventdbx.store.meta import last_event_id, set_last_event_id


def test_missing_store_without_create_is_pinned_error(tmp_path: Path) -> None:
    path = tmp_path / "event_store.db"
    with pytest.raises(StorageError) as info:
        Database.open(path, "normal", create=False)
    assert str(info.value) == f"storage error: event store not initialised at {path}"
    assert not path.exists()


def test_create_sets_modes_wal_and_version(tmp_path: Path) -> None:
    path = tmp_path / "data" / "event_store.db"
    with Database.open(path, "fsync", create=True) as db:
        conn = db.connection()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"events", "aggregates", "snapshots", "schemas", "staged_events", "meta", "tokens",
            "revocations", "token_usage"} <= tables
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(path.parent).st_mode & 0o777 == 0o700
    with Database.open(path, "normal", create=False) as db:
        assert db.connection().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_write_commits_and_rolls_back(tmp_path: Path) -> None:
    with Database.open(tmp_path / "e.db", "normal", create=True) as db:
        with db.write() as conn:
            set_last_event_id(conn, 7)
        with pytest.raises(RuntimeError), db.write() as conn:
            set_last_event_id(conn, 9)
            raise RuntimeError("boom")
        with db.read() as conn:
            assert last_event_id(conn) == 7


def test_sqlite_errors_become_storage_errors(tmp_path: Path) -> None:
    with Database.open(tmp_path / "e.db", "normal", create=True) as db:
        with pytest.raises(StorageError), db.write() as conn:
            conn.execute("INSERT INTO nope VALUES (1)")
        with pytest.raises(StorageError), db.write(), db.write():
            pass


def test_data_version_sees_other_connections(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    with Database.open(path, "normal", create=True) as db, Database.open(path, "normal", create=False) as other:
        before = db.data_version()
        with other.write() as conn:
            set_last_event_id(conn, 1)
        assert db.data_version() != before


def test_write_waits_for_a_foreign_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A busy timeout far below the lock's lifetime: the retry loop, not SQLite's handler, must wait.
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 20)
    path = tmp_path / "e.db"
    with Database.open(path, "normal", create=True) as db:
        blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        blocker.execute("BEGIN IMMEDIATE")
        released = threading.Timer(0.3, lambda: blocker.execute("COMMIT"))
        released.start()
        with db.write() as conn:
            set_last_event_id(conn, 3)
        released.join()
        blocker.close()
        with db.read() as conn:
            assert last_event_id(conn) == 3


def test_connections_are_per_thread(tmp_path: Path) -> None:
    with Database.open(tmp_path / "e.db", "normal", create=True) as db:
        seen: list[sqlite3.Connection] = []
        t = threading.Thread(target=lambda: seen.append(db.connection()))
        t.start()
        t.join()
        assert seen[0] is not db.connection()


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    Database.open(path, "normal", create=True).close()
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version=999")
    raw.close()
    with pytest.raises(StorageError, match="newer than this build"):
        Database.open(path, "normal", create=False)


def test_a_non_waiting_write_fails_fast_and_stays_non_waiting(tmp_path: Path) -> None:
    from eventdbx.errors import WriteBusy

    with Database.open(tmp_path / "event_store.db", "normal", create=True) as db:
        with db.write(wait=False) as conn:
            set_last_event_id(conn, 1)
        holder = sqlite3.connect(db.path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(WriteBusy), db.write(wait=False) as conn:
                set_last_event_id(conn, 2)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        db.checkpoint("RESTART", busy_ms=5)  # its own bounded wait, then the connection's own again
        conn = db.connection()
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        with db.read() as reader:
            assert last_event_id(reader) == 1


def test_checkpoint_reports_whether_it_could_rewind_the_log(tmp_path: Path) -> None:
    with Database.open(tmp_path / "event_store.db", "normal", create=True) as db:
        with db.write() as conn:
            set_last_event_id(conn, 1)
        holder = sqlite3.connect(db.path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another writer: RESTART cannot finish
        try:
            assert db.checkpoint("RESTART", busy_ms=5) is False
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert db.checkpoint("RESTART", busy_ms=5) is True
        with db.read() as reader:
            assert last_event_id(reader) == 1
