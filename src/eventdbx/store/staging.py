"""The staged_events table and the StagedEntry record (data-model.md §14): entries awaiting `commit`."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson

from eventdbx.domain.records import IssuedBy
from eventdbx.store.meta import open_value, seal_value

if TYPE_CHECKING:
    from dataclasses import dataclass
else:  # dataclass fields without import-time code generation (dbx start-up)
    from eventdbx.frozen import frozen_record as dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class StagedEntry:
    """One staged event: resolved canonical payload, metadata, issuer, note, expected version, token jti."""

    id: int
    aggregate_type: str
    aggregate_id: str
    event_type: str
    payload_json: str
    metadata_json: str | None
    issued_by: IssuedBy | None
    note: str | None
    expected_version: int | None = None
    token_jti: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Entry JSON of §14 (payload/metadata as raw canonical Fragments); `expected_version` only when set."""
        out: dict[str, Any] = {
            "aggregate": self.aggregate_type,
            "aggregate_id": self.aggregate_id,
            "event": self.event_type,
            "payload": orjson.Fragment(self.payload_json),
            "metadata": None if self.metadata_json is None else orjson.Fragment(self.metadata_json),
            "issued_by": None if self.issued_by is None else self.issued_by.to_dict(),
            "note": self.note,
        }
        if self.expected_version is not None:
            out["expected_version"] = self.expected_version
        return out

    def to_json(self) -> str:
        """Compact entry JSON."""
        return orjson.dumps(self.to_dict()).decode()


_COLS = "id, entry, payload, metadata, token_jti"


def _entry(row: tuple[int, str, str, str | None, str | None], dek: str | None) -> StagedEntry:
    data = orjson.loads(open_value(row[1], dek))
    issued = data.get("issued_by")
    return StagedEntry(
        id=row[0], aggregate_type=data["aggregate"], aggregate_id=data["aggregate_id"],
        event_type=data["event"], payload_json=open_value(row[2], dek),
        metadata_json=None if row[3] is None else open_value(row[3], dek),
        issued_by=None if issued is None else IssuedBy(group=issued["group"], user=issued["user"]),
        note=data.get("note"), expected_version=data.get("expected_version"), token_jti=row[4],
    )


def add_staged(conn: sqlite3.Connection, entry: StagedEntry, *, dek: str | None = None) -> StagedEntry:
    """Store an entry (its `id` is ignored); returns it with the assigned id."""
    cur = conn.execute(
        "INSERT INTO staged_events (aggregate_type, aggregate_id, entry, payload, metadata, token_jti)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            entry.aggregate_type, entry.aggregate_id, seal_value(conn, entry.to_json(), dek),
            seal_value(conn, entry.payload_json, dek),
            None if entry.metadata_json is None else seal_value(conn, entry.metadata_json, dek),
            entry.token_jti,
        ),
    )
    return replace(entry, id=int(cur.lastrowid or 0))


def list_staged(
    conn: sqlite3.Connection, aggregate_type: str | None = None, aggregate_id: str | None = None, *,
    dek: str | None = None,
) -> list[StagedEntry]:
    """Staged entries in staging order (all, or those of one aggregate)."""
    if aggregate_type is None or aggregate_id is None:
        rows = conn.execute(f"SELECT {_COLS} FROM staged_events ORDER BY id")
    else:
        rows = conn.execute(
            f"SELECT {_COLS} FROM staged_events WHERE aggregate_type = ? AND aggregate_id = ?"
            " ORDER BY id",
            (aggregate_type, aggregate_id),
        )
    return [_entry(row, dek) for row in rows]


def clear_staged(
    conn: sqlite3.Connection, aggregate_type: str | None = None, aggregate_id: str | None = None
) -> int:
    """Delete staged entries (all, or those of one aggregate); returns how many."""
    if aggregate_type is None or aggregate_id is None:
        cur = conn.execute("DELETE FROM staged_events")
    else:
        cur = conn.execute(
            "DELETE FROM staged_events WHERE aggregate_type = ? AND aggregate_id = ?",
            (aggregate_type, aggregate_id),
        )
    return cur.rowcount
