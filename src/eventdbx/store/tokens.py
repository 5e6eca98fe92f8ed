"""The token ledger in event_store.db (auth.md §4): tokens, revocations, usage counts and a change counter.

Functions take a sqlite3.Connection; the caller owns the transaction (`db.write()` for changes).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

from eventdbx.auth.records import TokenRecord, TokenStatus
from eventdbx.errors import StorageError

DDL: tuple[str, ...] = (
    "CREATE TABLE tokens (jti TEXT PRIMARY KEY, record TEXT NOT NULL)",
    "CREATE TABLE revocations (jti TEXT PRIMARY KEY, revoked_at TEXT NOT NULL, reason TEXT, expires_at TEXT)",
    "CREATE TABLE token_usage (jti TEXT PRIMARY KEY, events_written INTEGER NOT NULL DEFAULT 0)",
)
COUNTER_KEY = "token_ledger_version"


def _record(text: str, revoked: bool) -> TokenRecord:
    try:
        record = TokenRecord.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise StorageError(f"corrupt token record: {exc}") from exc
    return record.revoked() if revoked and record.status is not TokenStatus.REVOKED else record


def _dump(record: TokenRecord) -> str:
    return json.dumps(record.to_dict(), separators=(",", ":"))


def _bump(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, '1') "
        "ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
        (COUNTER_KEY,),
    )


def change_counter(conn: sqlite3.Connection) -> int:
    """Bumped by every insert or revocation (meta row `token_ledger_version`)."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (COUNTER_KEY,)).fetchone()
    return int(row[0]) if row else 0


def insert_token(conn: sqlite3.Connection, record: TokenRecord) -> None:
    """Store a new (or replace an existing) ledger record."""
    conn.execute("INSERT OR REPLACE INTO tokens (jti, record) VALUES (?, ?)", (record.jti, _dump(record)))
    _bump(conn)


def get_token(conn: sqlite3.Connection, jti: str) -> TokenRecord | None:
    """The record of `jti`; status revoked when a revocation row exists."""
    row = conn.execute(
        "SELECT t.record, r.jti IS NOT NULL FROM tokens t LEFT JOIN revocations r ON r.jti = t.jti "
        "WHERE t.jti = ?", (jti,),
    ).fetchone()
    return _record(row[0], bool(row[1])) if row else None


def find_token(conn: sqlite3.Connection, token_or_jti: str) -> TokenRecord | None:
    """Look a record up by jti or by the full token text."""
    value = token_or_jti.strip()
    if "." not in value:
        return get_token(conn, value)
    from eventdbx.auth.tokens import token_claims
    from eventdbx.errors import InvalidTokenError

    try:
        jti = token_claims(value).get("jti")
    except InvalidTokenError:
        return None
    record = get_token(conn, jti) if isinstance(jti, str) else None
    return record if record is not None and record.token == value else None


def list_tokens(conn: sqlite3.Connection) -> list[TokenRecord]:
    """Every record in issue order."""
    rows = conn.execute(
        "SELECT t.record, r.jti IS NOT NULL FROM tokens t LEFT JOIN revocations r ON r.jti = t.jti "
        "ORDER BY t.rowid"
    ).fetchall()
    return [_record(text, bool(revoked)) for text, revoked in rows]


def revoke(conn: sqlite3.Connection, jti: str, reason: str | None, now: str) -> TokenRecord | None:
    """Mark `jti` revoked in its record and in `revocations` (caller's transaction); None if unknown."""
    record = get_token(conn, jti)
    if record is None:
        return None
    record = record.revoked()
    conn.execute("UPDATE tokens SET record = ? WHERE jti = ?", (_dump(record), jti))
    conn.execute(
        "INSERT OR REPLACE INTO revocations (jti, revoked_at, reason, expires_at) VALUES (?, ?, ?, ?)",
        (jti, now, reason, record.expires_at),
    )
    _bump(conn)
    return record


def events_written(conn: sqlite3.Connection, jti: str) -> int:
    """How many events this token has written (check 9 reads this inside the write transaction)."""
    row = conn.execute("SELECT events_written FROM token_usage WHERE jti = ?", (jti,)).fetchone()
    return int(row[0]) if row else 0


def add_events_written(conn: sqlite3.Connection, jti: str, n: int) -> None:
    """Count `n` more events for `jti` (inside the append's transaction)."""
    conn.execute(
        "INSERT INTO token_usage (jti, events_written) VALUES (?, ?) "
        "ON CONFLICT(jti) DO UPDATE SET events_written = events_written + excluded.events_written",
        (jti, n),
    )


ConnectionProvider = Callable[[], AbstractContextManager[sqlite3.Connection]]


class SqliteTokenLedger:
    """TokenLedger over event_store.db; caches records until the change counter moves."""

    def __init__(self, connection: ConnectionProvider, *, cache_size: int = 1024) -> None:
        self._connection = connection
        self._cache: dict[str, TokenRecord | None] = {}
        self._cache_size = cache_size
        self._counter: int | None = None
        self._lock = threading.Lock()

    def change_counter(self) -> int:
        """The ledger's current change counter."""
        with self._connection() as conn:
            return change_counter(conn)

    def get_token(self, jti: str) -> TokenRecord | None:
        """The record of `jti` (fresh whenever the ledger changed since the last look)."""
        with self._connection() as conn:
            counter = change_counter(conn)
            with self._lock:
                if counter != self._counter:
                    self._cache.clear()
                    self._counter = counter
                if jti in self._cache:
                    return self._cache[jti]
            record = get_token(conn, jti)
        with self._lock:
            if self._counter == counter:
                if len(self._cache) >= self._cache_size:
                    self._cache.clear()
                self._cache[jti] = record
        return record
