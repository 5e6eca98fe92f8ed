"""event_store.db tables (data-model.md §15) and their forward-only migrations keyed by `PRAGMA user_version`."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from eventdbx.errors import StorageError

# staged_events.entry is the §14 entry JSON; payload/metadata repeat its canonical text verbatim (numbers
# are not re-parsed). The (type, id, version) UNIQUE constraint doubles as the per-aggregate read index; event_id's UNIQUE
# index serves look-ups by id. No other index on events keeps the file near 400 bytes per small event.
_V1: tuple[str, ...] = (
    """CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id INTEGER NOT NULL UNIQUE,
  aggregate_type TEXT NOT NULL,
  aggregate_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  event_type TEXT NOT NULL,
  payload TEXT NOT NULL,
  extensions TEXT,
  created_at TEXT NOT NULL,
  issued_by_group TEXT,
  issued_by_user TEXT,
  note TEXT,
  hash TEXT NOT NULL,
  merkle_root TEXT NOT NULL,
  UNIQUE (aggregate_type, aggregate_id, version))""",
    """CREATE TABLE aggregates (
  aggregate_type TEXT NOT NULL,
  aggregate_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  state TEXT NOT NULL,
  merkle_root TEXT NOT NULL,
  merkle_frontier TEXT NOT NULL,
  archived INTEGER NOT NULL DEFAULT 0,
  archived_at TEXT,
  archive_comment TEXT,
  PRIMARY KEY (aggregate_type, aggregate_id)) WITHOUT ROWID""",
    """CREATE TABLE snapshots (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  aggregate_type TEXT NOT NULL,
  aggregate_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  state TEXT NOT NULL,
  merkle_root TEXT NOT NULL,
  created_at TEXT NOT NULL,
  comment TEXT)""",
    "CREATE INDEX snapshots_by_aggregate ON snapshots (aggregate_type, aggregate_id, version)",
    "CREATE TABLE schemas (aggregate TEXT PRIMARY KEY, schema TEXT NOT NULL)",
    """CREATE TABLE staged_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  aggregate_type TEXT NOT NULL,
  aggregate_id TEXT NOT NULL,
  entry TEXT NOT NULL,
  payload TEXT NOT NULL,
  metadata TEXT,
  token_jti TEXT)""",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

# The ledger tables of contracts.md; store/tokens.py owns them and its DDL wins once it exists.
_TOKENS_FALLBACK: tuple[str, ...] = (
    "CREATE TABLE tokens (jti TEXT PRIMARY KEY, record TEXT NOT NULL)",
    "CREATE TABLE revocations (jti TEXT PRIMARY KEY, revoked_at TEXT NOT NULL, reason TEXT, expires_at TEXT)",
    "CREATE TABLE token_usage (jti TEXT PRIMARY KEY, events_written INTEGER NOT NULL DEFAULT 0)",
)


def _token_ddl() -> Sequence[str]:
    try:
        from eventdbx.store import tokens
    except ImportError:
        return _TOKENS_FALLBACK
    ddl = getattr(tokens, "DDL", None)
    if isinstance(ddl, str):
        return tuple(s for s in ddl.split(";") if s.strip())
    return tuple(ddl) if ddl else _TOKENS_FALLBACK


def _v1(conn: sqlite3.Connection) -> None:
    for statement in (*_V1, *_token_ddl()):
        conn.execute(statement)


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1,)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a database forward to SCHEMA_VERSION; call inside a write transaction."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"event store schema version {version} is newer than this build supports ({SCHEMA_VERSION})"
        )
    while version < SCHEMA_VERSION:
        MIGRATIONS[version](conn)
        version += 1
        conn.execute(f"PRAGMA user_version={version}")
