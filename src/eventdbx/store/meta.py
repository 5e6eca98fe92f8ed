"""The meta table of event_store.db: small named values such as `last_event_id` and `dek_check`."""

from __future__ import annotations

import sqlite3

LAST_EVENT_ID = "last_event_id"
DEK_CHECK = "dek_check"
SEALED_PREFIX = "ENCv1:"  # = plugin_queue_cipher.PREFIX (imported lazily: cryptography is slow to load)


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    """The value stored under `key`, or None."""
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Store `value` under `key` (insert or overwrite)."""
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def last_event_id(conn: sqlite3.Connection) -> int | None:
    """The last allocated snowflake event id, or None before the first event."""
    value = get_meta(conn, LAST_EVENT_ID)
    return None if value is None else int(value)


def set_last_event_id(conn: sqlite3.Connection, event_id: int) -> None:
    """Record the last allocated snowflake event id."""
    set_meta(conn, LAST_EVENT_ID, str(event_id))


def seal_value(conn: sqlite3.Connection, text: str, dek: str | None) -> str:
    """Encrypt a value at rest when a data key is set (data-model.md §15), recording `dek_check` once."""
    if not dek:
        return text
    from eventdbx.store.plugin_queue_cipher import seal
    from eventdbx.store.tokens import dek_check

    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (DEK_CHECK, dek_check(dek)))
    return seal(text, dek)


def open_value(text: str, dek: str | None) -> str:
    """Plaintext of a stored value: `ENCv1:` blobs are decrypted with `dek`, anything else is returned as is."""
    if not text.startswith(SEALED_PREFIX):
        return text
    from eventdbx.store.plugin_queue_cipher import unseal

    return unseal(text, dek)


def check_dek(conn: sqlite3.Connection, dek: str | None) -> None:
    """Refuse a data key other than the one this store's blobs were sealed with."""
    stored = get_meta(conn, DEK_CHECK)
    if dek and stored is not None:
        from eventdbx.errors import ConfigError
        from eventdbx.store.plugin_queue_cipher import WRONG_KEY
        from eventdbx.store.tokens import dek_check

        if dek_check(dek) != stored:
            raise ConfigError(WRONG_KEY)
