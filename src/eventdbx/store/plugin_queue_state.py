"""Per-plugin rows of plugin_queue.db: cursors, delivery times, circuit breaker and process-worker state.

Private to the plugin queue store: callers go through `PluginQueue`. Every function runs inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from eventdbx.store.plugin_queue_jobs import ms, secs
from eventdbx.store.plugin_queue_model import PluginState

_STATE_COLUMNS = (
    "name, cursor, last_attempt_at, last_success_at, last_failure_at, last_error, circuit,"
    " consecutive_failures, circuit_opened_at, next_probe_at, probe_failures, worker_desired,"
    " worker_actual, worker_pid, worker_detail, worker_updated_at, created_at"
)
_NOW_MS = "CAST(strftime('%s', 'now') AS INTEGER) * 1000"


def _row_to_state(row: Sequence[Any]) -> PluginState:
    (name, cursor, attempt, success, failure, error, circuit, failures, opened, probe,
     probe_failures, desired, actual, pid, detail, updated, created) = row
    return PluginState(
        name=str(name), cursor=None if cursor is None else int(cursor),
        last_attempt_at=secs(attempt), last_success_at=secs(success),
        last_failure_at=secs(failure), last_error=None if error is None else str(error),
        circuit=str(circuit), consecutive_failures=int(failures),
        circuit_opened_at=secs(opened), next_probe_at=secs(probe),
        probe_failures=int(probe_failures),
        worker_desired=None if desired is None else str(desired),
        worker_actual=None if actual is None else str(actual),
        worker_pid=None if pid is None else int(pid),
        worker_detail=None if detail is None else str(detail),
        worker_updated_at=secs(updated), created_at=secs(created),
    )


def ensure_row(conn: sqlite3.Connection, name: str) -> None:
    """Create the plugin's row (without a cursor) if missing."""
    conn.execute(
        f"INSERT INTO plugin_state (name, created_at) VALUES (?, {_NOW_MS}) ON CONFLICT (name) DO NOTHING",
        (name,),
    )


def get_state(conn: sqlite3.Connection, name: str) -> PluginState | None:
    """The plugin's row, if any."""
    row = conn.execute(f"SELECT {_STATE_COLUMNS} FROM plugin_state WHERE name = ?", (name,)).fetchone()
    return None if row is None else _row_to_state(row)


def list_states(conn: sqlite3.Connection) -> list[PluginState]:
    """Every plugin row, by name."""
    return [_row_to_state(r) for r in conn.execute(f"SELECT {_STATE_COLUMNS} FROM plugin_state ORDER BY name")]


def get_cursor(conn: sqlite3.Connection, name: str) -> int | None:
    """The plugin's cursor (global sequence of the last accounted event), or None."""
    row = conn.execute("SELECT cursor FROM plugin_state WHERE name = ?", (name,)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def set_cursor(conn: sqlite3.Connection, name: str, seq: int) -> None:
    """Move (or create) the plugin's cursor."""
    conn.execute(
        f"INSERT INTO plugin_state (name, cursor, created_at) VALUES (?, ?, {_NOW_MS})"
        " ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor", (name, seq),
    )


def delete_state(conn: sqlite3.Connection, name: str) -> None:
    """Forget the plugin (cursor and all bookkeeping)."""
    conn.execute("DELETE FROM plugin_state WHERE name = ?", (name,))


def record_attempt(
    conn: sqlite3.Connection, name: str, *, now: float, success: bool, error: str | None
) -> None:
    """Update the last attempt/success/failure times and the last error (one upsert)."""
    if success:
        conn.execute(
            f"INSERT INTO plugin_state (name, created_at, last_attempt_at, last_success_at)"
            f" VALUES (:name, {_NOW_MS}, :now, :now) ON CONFLICT (name) DO UPDATE SET"
            " last_attempt_at = :now, last_success_at = :now", {"name": name, "now": ms(now)},
        )
    else:
        conn.execute(
            f"INSERT INTO plugin_state (name, created_at, last_attempt_at, last_failure_at, last_error)"
            f" VALUES (:name, {_NOW_MS}, :now, :now, :error) ON CONFLICT (name) DO UPDATE SET"
            " last_attempt_at = :now, last_failure_at = :now, last_error = :error",
            {"name": name, "now": ms(now), "error": error},
        )


def set_circuit(
    conn: sqlite3.Connection, name: str, *, circuit: str, consecutive_failures: int,
    opened_at: float | None, next_probe_at: float | None, probe_failures: int,
) -> None:
    """Persist the circuit breaker of a plugin."""
    ensure_row(conn, name)
    conn.execute(
        "UPDATE plugin_state SET circuit = ?, consecutive_failures = ?, circuit_opened_at = ?,"
        " next_probe_at = ?, probe_failures = ? WHERE name = ?",
        (circuit, consecutive_failures, None if opened_at is None else ms(opened_at),
         None if next_probe_at is None else ms(next_probe_at), probe_failures, name),
    )


def set_worker_desired(conn: sqlite3.Connection, name: str, desired: str | None) -> None:
    """What the operator wants for a process worker (`running`, `stopped` or None)."""
    ensure_row(conn, name)
    conn.execute("UPDATE plugin_state SET worker_desired = ? WHERE name = ?", (desired, name))


def set_worker_actual(
    conn: sqlite3.Connection, name: str, actual: str | None, *, pid: int | None,
    detail: str | None, now: float,
) -> None:
    """What the supervisor reports for a process worker."""
    ensure_row(conn, name)
    conn.execute(
        "UPDATE plugin_state SET worker_actual = ?, worker_pid = ?, worker_detail = ?,"
        " worker_updated_at = ? WHERE name = ?", (actual, pid, detail, ms(now), name),
    )
