"""The snapshots table: saved aggregate states (data-model.md §12); never overwritten, newest per version wins."""

from __future__ import annotations

import sqlite3

import orjson

from eventdbx.domain.records import Snapshot
from eventdbx.store.meta import open_value, seal_value

_COLS = "aggregate_type, aggregate_id, version, state, merkle_root, created_at, comment"


def _snapshot(row: tuple[str, str, int, str, str, str, str | None], dek: str | None) -> Snapshot:
    return Snapshot(
        aggregate_type=row[0], aggregate_id=row[1], version=row[2], state=orjson.loads(open_value(row[3], dek)),
        merkle_root=row[4], created_at=row[5], comment=row[6],
    )


def save_snapshot(conn: sqlite3.Connection, snapshot: Snapshot, *, dek: str | None = None) -> None:
    """Store a snapshot (a new row, even when one exists for the same version)."""
    state = orjson.dumps(snapshot.state, option=orjson.OPT_SORT_KEYS).decode()
    conn.execute(
        f"INSERT INTO snapshots ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            snapshot.aggregate_type, snapshot.aggregate_id, snapshot.version,
            seal_value(conn, state, dek), snapshot.merkle_root,
            snapshot.created_at, snapshot.comment,
        ),
    )


def latest_snapshot(
    conn: sqlite3.Connection, aggregate_type: str, aggregate_id: str, *, up_to: int | None = None,
    dek: str | None = None,
) -> Snapshot | None:
    """The snapshot with the highest version ≤ `up_to` (any version when None)."""
    row = conn.execute(
        f"SELECT {_COLS} FROM snapshots WHERE aggregate_type = ? AND aggregate_id = ? AND version <= ?"
        " ORDER BY version DESC, id DESC LIMIT 1",
        (aggregate_type, aggregate_id, (1 << 62) if up_to is None else up_to),
    ).fetchone()
    return None if row is None else _snapshot(row, dek)


def list_snapshots(
    conn: sqlite3.Connection, aggregate_type: str, aggregate_id: str, *, dek: str | None = None
) -> list[Snapshot]:
    """An aggregate's snapshots in creation order."""
    rows = conn.execute(
        f"SELECT {_COLS} FROM snapshots WHERE aggregate_type = ? AND aggregate_id = ? ORDER BY id",
        (aggregate_type, aggregate_id),
    )
    return [_snapshot(row, dek) for row in rows]
