"""plugin_queue.db: connection pragmas, DDL and forward migrations keyed by `PRAGMA user_version`."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from eventdbx.errors import StorageError

BUSY_TIMEOUT_SECS = 10.0
WAL_CHECKPOINT_PAGES = 4000
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024

# `head` = 1 on the earliest not-done job of its (plugin, aggregate): the only job aggregate ordering may claim.
_V1 = """
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY,
  plugin TEXT NOT NULL,
  label TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'done', 'dead')),
  resolution TEXT,
  replay INTEGER NOT NULL DEFAULT 0,
  head INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  next_retry_at INTEGER,
  completed_at INTEGER,
  lease_expires_at INTEGER,
  claim_token TEXT,
  probed_at INTEGER,
  history_seq INTEGER NOT NULL DEFAULT 0,
  aggregate_type TEXT NOT NULL,
  aggregate_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  event_id INTEGER NOT NULL,
  version INTEGER NOT NULL,
  event_created_at TEXT NOT NULL,
  envelope TEXT NOT NULL
);
CREATE UNIQUE INDEX jobs_live_event ON jobs (plugin, event_id) WHERE replay = 0;
CREATE INDEX jobs_fresh ON jobs (plugin, id) WHERE status = 'pending' AND next_retry_at IS NULL;
CREATE INDEX jobs_fresh_head ON jobs (plugin, id)
  WHERE status = 'pending' AND next_retry_at IS NULL AND head = 1;
CREATE INDEX jobs_retry ON jobs (plugin, next_retry_at) WHERE status = 'pending' AND next_retry_at IS NOT NULL;
CREATE INDEX jobs_open ON jobs (plugin, aggregate_type, aggregate_id, id) WHERE status <> 'done';
CREATE INDEX jobs_leases ON jobs (plugin, lease_expires_at) WHERE status = 'processing';
CREATE INDEX jobs_done ON jobs (completed_at, id) WHERE status = 'done';
CREATE INDEX jobs_status ON jobs (status, plugin, id);
CREATE TABLE history (
  job_id INTEGER NOT NULL,
  n INTEGER NOT NULL,
  attempt INTEGER,
  started_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  error TEXT,
  http_status INTEGER,
  PRIMARY KEY (job_id, n)
) WITHOUT ROWID;
CREATE TABLE plugin_state (
  name TEXT PRIMARY KEY,
  cursor INTEGER,
  last_attempt_at INTEGER,
  last_success_at INTEGER,
  last_failure_at INTEGER,
  last_error TEXT,
  circuit TEXT NOT NULL DEFAULT 'closed',
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  circuit_opened_at INTEGER,
  next_probe_at INTEGER,
  probe_failures INTEGER NOT NULL DEFAULT 0,
  worker_desired TEXT,
  worker_actual TEXT,
  worker_pid INTEGER,
  worker_detail TEXT,
  worker_updated_at INTEGER
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""



def _run_script(script: str) -> Callable[[sqlite3.Connection], None]:
    """A migration step running `script` statement by statement (executescript would COMMIT early)."""

    def step(conn: sqlite3.Connection) -> None:
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(statement)

    return step


# v2: when each plugin row was created (the enqueuer never purges a row a `plugin config` has just written).
_V2 = "ALTER TABLE plugin_state ADD COLUMN created_at INTEGER"

MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_run_script(_V1), _run_script(_V2))
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path, *, durability: str, create: bool) -> sqlite3.Connection:
    """Open plugin_queue.db (WAL, synchronous per `durability`, busy timeout), migrated to the current version."""
    if not path.exists():
        if not create:
            raise StorageError(f"plugin queue not found at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_SECS, isolation_level=None, check_same_thread=False
        )
        if int(conn.execute("PRAGMA page_count").fetchone()[0]) == 0:
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # lets pruning hand pages back (only before tables)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'fsync' else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys=OFF")
        # Dispatcher transactions rewrite the same index and state pages over and over: checkpointing every
        # 4,000 WAL pages instead of 1,000 copies each of them back a quarter as often (~-12% CPU per
        # delivered job). The limit trims a WAL that grew while a reader held back checkpoints.
        conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
        migrate(conn)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open plugin queue {path}: {exc}") from exc
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the forward migrations this file does not have yet, each in its own write transaction."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"plugin queue schema version {version} is newer than this build ({SCHEMA_VERSION})"
        )
    while version < SCHEMA_VERSION:
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if current == version:
                MIGRATIONS[version](conn)
                conn.execute(f"PRAGMA user_version={version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
