"""The token ledger in event_store.db (auth.md §4): tokens, revocations, usage counts and a change counter.

Functions take a sqlite3.Connection; the caller owns the transaction (`db.write()` for changes).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from eventdbx.errors import ConfigError, StorageError

if TYPE_CHECKING:
    from eventdbx.auth.records import TokenRecord

# auth.records (dataclasses, enums) loads on first use: an append without a token never needs it.

DDL: tuple[str, ...] = (
    "CREATE TABLE tokens (jti TEXT PRIMARY KEY, record TEXT NOT NULL)",
    "CREATE TABLE revocations (jti TEXT PRIMARY KEY, revoked_at TEXT NOT NULL, reason TEXT, expires_at TEXT)",
    "CREATE TABLE token_usage (jti TEXT PRIMARY KEY, events_written INTEGER NOT NULL DEFAULT 0)",
)
COUNTER_KEY = "token_ledger_version"
BLOB_PREFIX = "ENCv1:"
NO_KEY = "data encryption key must be configured to read encrypted events"
WRONG_KEY = "data encryption key does not match this data directory"


def _aes(dek: str) -> tuple[object, bytes]:
    import base64

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = base64.b64decode(dek)
    return AESGCM(key), key


def dek_check(dek: str) -> str:
    """`meta.dek_check`: first 16 hex digits of sha256(`eventdbx-dek-check` ‖ key) (data-model.md §15)."""
    import hashlib

    return hashlib.sha256(b"eventdbx-dek-check" + _aes(dek)[1]).hexdigest()[:16]


def _seal(conn: sqlite3.Connection, dek: str, text: str) -> str:
    import base64
    import os

    aes, _ = _aes(dek)
    nonce = os.urandom(12)
    sealed: bytes = aes.encrypt(nonce, text.encode("utf-8"), None)  # type: ignore[attr-defined]
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('dek_check', ?)", (dek_check(dek),)
    )
    return BLOB_PREFIX + base64.b64encode(nonce + sealed).decode("ascii")


def _open(value: str, dek: str | None) -> str:
    if not value.startswith(BLOB_PREFIX):
        return value
    if not dek:
        raise ConfigError(NO_KEY)
    import base64
    import binascii

    from cryptography.exceptions import InvalidTag

    try:
        raw = base64.b64decode(value[len(BLOB_PREFIX) :], validate=True)
        aes, _ = _aes(dek)
        plain: bytes = aes.decrypt(raw[:12], raw[12:], None)  # type: ignore[attr-defined]
    except (InvalidTag, binascii.Error, ValueError):
        raise ConfigError(WRONG_KEY) from None
    return plain.decode("utf-8")


def _record(text: str, revoked: bool, dek: str | None, *, open_token: bool = True) -> TokenRecord:
    """Decode a stored record; `open_token=False` leaves a sealed token value as stored (verification path)."""
    from eventdbx.auth.records import TokenRecord, TokenStatus

    try:
        data = json.loads(text)
        if open_token:
            data["token"] = _open(str(data["token"]), dek)
        record = TokenRecord.from_dict(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise StorageError(f"corrupt token record: {exc}") from exc
    return record.revoked() if revoked and record.status is not TokenStatus.REVOKED else record


def _dump(conn: sqlite3.Connection, record: TokenRecord, dek: str | None) -> str:
    data = record.to_dict()
    if dek:
        data["token"] = _seal(conn, dek, record.token)
    return json.dumps(data, separators=(",", ":"))


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


def insert_token(conn: sqlite3.Connection, record: TokenRecord, *, dek: str | None = None) -> None:
    """Store a new (or replace an existing) ledger record; with a data key the token value is sealed."""
    conn.execute(
        "INSERT OR REPLACE INTO tokens (jti, record) VALUES (?, ?)",
        (record.jti, _dump(conn, record, dek)),
    )
    _bump(conn)


def get_token(
    conn: sqlite3.Connection,
    jti: str,
    *,
    dek: str | None = None,
    open_token: bool = True,
) -> TokenRecord | None:
    """The record of `jti`; status revoked when a revocation row exists (token value opened with `dek`)."""
    row = conn.execute(
        "SELECT t.record, r.jti IS NOT NULL FROM tokens t LEFT JOIN revocations r ON r.jti = t.jti "
        "WHERE t.jti = ?",
        (jti,),
    ).fetchone()
    return _record(row[0], bool(row[1]), dek, open_token=open_token) if row else None


def find_token(
    conn: sqlite3.Connection, token_or_jti: str, *, dek: str | None = None
) -> TokenRecord | None:
    """Look a record up by jti or by the full token text."""
    value = token_or_jti.strip()
    if "." not in value:
        return get_token(conn, value, dek=dek)
    from eventdbx.auth.tokens import token_claims
    from eventdbx.errors import InvalidTokenError

    try:
        jti = token_claims(value).get("jti")
    except InvalidTokenError:
        return None
    record = get_token(conn, jti, dek=dek) if isinstance(jti, str) else None
    return record if record is not None and record.token == value else None


def list_tokens(conn: sqlite3.Connection, *, dek: str | None = None) -> list[TokenRecord]:
    """Every record in issue order."""
    rows = conn.execute(
        "SELECT t.record, r.jti IS NOT NULL FROM tokens t LEFT JOIN revocations r ON r.jti = t.jti "
        "ORDER BY t.rowid"
    ).fetchall()
    return [_record(text, bool(revoked), dek) for text, revoked in rows]


def revoke(
    conn: sqlite3.Connection,
    jti: str,
    reason: str | None,
    now: str,
    *,
    dek: str | None = None,
) -> TokenRecord | None:
    """Mark `jti` revoked in its record and in `revocations` (caller's transaction); None if unknown."""
    row = conn.execute("SELECT record FROM tokens WHERE jti = ?", (jti,)).fetchone()
    if row is None:
        return None
    from eventdbx.auth.records import TokenStatus

    data = json.loads(row[0])
    data["status"] = str(
        TokenStatus.REVOKED
    )  # the stored (possibly sealed) token value is kept as is
    text = json.dumps(data, separators=(",", ":"))
    conn.execute("UPDATE tokens SET record = ? WHERE jti = ?", (text, jti))
    sealed_without_key = not dek and str(data.get("token", "")).startswith(BLOB_PREFIX)
    record = _record(text, True, dek, open_token=not sealed_without_key)
    conn.execute(
        "INSERT OR REPLACE INTO revocations (jti, revoked_at, reason, expires_at) VALUES (?, ?, ?, ?)",
        (jti, now, reason, record.expires_at),
    )
    _bump(conn)
    return record


def purge_expired_revocations(conn: sqlite3.Connection, now: float) -> int:
    """Delete revocation rows of tokens that have expired anyway (their records stay revoked); returns the count."""
    from eventdbx.domain.timefmt import to_epoch_micros

    rows = conn.execute(
        "SELECT jti, expires_at FROM revocations WHERE expires_at IS NOT NULL"
    ).fetchall()
    stale = [(jti,) for jti, expires_at in rows if to_epoch_micros(expires_at) < now * 1_000_000]
    conn.executemany("DELETE FROM revocations WHERE jti = ?", stale)
    return len(stale)


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
    """TokenLedger over event_store.db; caches records until the change counter moves.

    Records it returns keep a sealed token value sealed: verification needs only jti, status and root.
    """

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
            record = get_token(conn, jti, open_token=False)
        with self._lock:
            if self._counter == counter:
                if len(self._cache) >= self._cache_size:
                    self._cache.clear()
                self._cache[jti] = record
        return record
