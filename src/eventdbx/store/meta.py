"""The meta table of event_store.db: small named values such as `last_event_id` and `dek_check`."""

from __future__ import annotations

import sqlite3

LAST_EVENT_ID = "last_event_id"
DEK_CHECK = "dek_check"


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
