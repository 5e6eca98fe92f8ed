"""The events and aggregates tables: the global log (by seq), per-aggregate reads and the aggregate rows.

Functions take an open connection (inside `Database.read()`/`write()`); they never open transactions.
Merkle frontiers are stored as the levels' hex roots joined by "," (an empty level is "", as in
AggregateRow.merkle_frontier).
With a data key (`dek`), payload, extensions and state are sealed at rest (data-model.md §15); values that
are not `ENCv1:` blobs are plaintext and read as they are.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import orjson

from eventdbx.domain.records import AggregateRow, EventRecord, IssuedBy
from eventdbx.store.meta import SEALED_PREFIX, open_value, seal_value

_COLS = (
    "seq, event_id, aggregate_type, aggregate_id, version, event_type, payload, extensions, created_at,"
    " issued_by_group, issued_by_user, note, hash, merkle_root"
)
_AGG_COLS = (
    "aggregate_type, aggregate_id, version, state, merkle_root, merkle_frontier, archived, archived_at,"
    " archive_comment"
)
_Row = tuple[
    int,
    int,
    str,
    str,
    int,
    str,
    str,
    "str | None",
    str,
    "str | None",
    "str | None",
    "str | None",
    str,
    str,
]


def _record(row: _Row, dek: str | None = None) -> EventRecord:
    group, user = row[9], row[10]
    payload, extensions = row[6], row[7]
    if payload.startswith(SEALED_PREFIX):
        payload = open_value(payload, dek)
    if extensions is not None and extensions.startswith(SEALED_PREFIX):
        extensions = open_value(extensions, dek)
    return EventRecord(
        aggregate_type=row[2],
        aggregate_id=row[3],
        event_type=row[5],
        payload_json=payload,
        extensions_json=extensions,
        event_id=row[1],
        created_at=row[8],
        issued_by=None if group is None or user is None else IssuedBy(group=group, user=user),
        note=row[11],
        version=row[4],
        hash=row[12],
        merkle_root=row[13],
    )


def head_seq(conn: sqlite3.Connection) -> int:
    """The highest committed seq (0 for an empty log)."""
    row = conn.execute("SELECT max(seq) FROM events").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def events_after(
    conn: sqlite3.Connection, seq: int, limit: int, *, dek: str | None = None
) -> list[tuple[int, EventRecord]]:
    """Up to `limit` events with seq > `seq`, in commit order, with their seq."""
    rows = conn.execute(
        f"SELECT {_COLS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
    )
    return [(row[0], _record(row, dek)) for row in rows]


def events_of(
    conn: sqlite3.Connection,
    aggregate_type: str,
    aggregate_id: str,
    *,
    up_to: int | None = None,
    after: int = 0,
    dek: str | None = None,
) -> list[EventRecord]:
    """An aggregate's events in version order: versions in (after, up_to]."""
    upper = (1 << 62) if up_to is None else up_to
    rows = conn.execute(
        f"SELECT {_COLS} FROM events WHERE aggregate_type = ? AND aggregate_id = ? AND version > ?"
        " AND version <= ? ORDER BY version",
        (aggregate_type, aggregate_id, after, upper),
    )
    return [_record(row, dek) for row in rows]


def events_page(
    conn: sqlite3.Connection,
    aggregate_type: str,
    aggregate_id: str,
    *,
    skip: int = 0,
    take: int | None = None,
    dek: str | None = None,
) -> list[EventRecord]:
    """A page of an aggregate's events in version order."""
    rows = conn.execute(
        f"SELECT {_COLS} FROM events WHERE aggregate_type = ? AND aggregate_id = ?"
        " ORDER BY version LIMIT ? OFFSET ?",
        (aggregate_type, aggregate_id, -1 if take is None else take, max(skip, 0)),
    )
    return [_record(row, dek) for row in rows]


def event_by_id(
    conn: sqlite3.Connection, event_id: int, *, dek: str | None = None
) -> EventRecord | None:
    """One event by its snowflake id."""
    row = conn.execute(f"SELECT {_COLS} FROM events WHERE event_id = ?", (event_id,)).fetchone()
    return None if row is None else _record(row, dek)


def count_events(conn: sqlite3.Connection, aggregate_type: str, aggregate_id: str) -> int:
    """How many committed events an aggregate has."""
    row = conn.execute(
        "SELECT count(*) FROM events WHERE aggregate_type = ? AND aggregate_id = ?",
        (aggregate_type, aggregate_id),
    ).fetchone()
    return int(row[0])


_INSERT = (
    "INSERT INTO events (event_id, aggregate_type, aggregate_id, version, event_type, payload, extensions,"
    " created_at, issued_by_group, issued_by_user, note, hash, merkle_root)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _event_params(
    conn: sqlite3.Connection, record: EventRecord, dek: str | None
) -> tuple[object, ...]:
    issued = record.issued_by
    payload, extensions = record.payload_json, record.extensions_json
    if dek:
        payload = seal_value(conn, payload, dek)
        extensions = None if extensions is None else seal_value(conn, extensions, dek)
    return (
        record.event_id,
        record.aggregate_type,
        record.aggregate_id,
        record.version,
        record.event_type,
        payload,
        extensions,
        record.created_at,
        None if issued is None else issued.group,
        None if issued is None else issued.user,
        record.note,
        record.hash,
        record.merkle_root,
    )


def insert_event(conn: sqlite3.Connection, record: EventRecord, *, dek: str | None = None) -> int:
    """Append one event to the log; returns its seq."""
    cur = conn.execute(_INSERT, _event_params(conn, record, dek))
    return int(cur.lastrowid or 0)


def insert_events(
    conn: sqlite3.Connection, records: Sequence[EventRecord], *, dek: str | None = None
) -> None:
    """Append events to the log in order (one prepared statement run for all of them)."""
    if len(records) == 1:
        conn.execute(_INSERT, _event_params(conn, records[0], dek))
    else:
        conn.executemany(_INSERT, [_event_params(conn, record, dek) for record in records])


def encode_frontier(frontier: Sequence[str | None]) -> str:
    """Stored text of a Merkle frontier: levels joined by ',' (an empty level is empty text)."""
    return ",".join([node or "" for node in frontier])


def decode_frontier(text: str) -> list[str]:
    """AggregateRow form of a stored frontier ("" for an empty level)."""
    return text.split(",") if text else []


def _aggregate(
    row: tuple[str, str, int, str, str, str, int, str | None, str | None], dek: str | None = None
) -> AggregateRow:
    return AggregateRow(
        aggregate_type=row[0],
        aggregate_id=row[1],
        version=row[2],
        state=orjson.loads(open_value(row[3], dek)),
        merkle_root=row[4],
        merkle_frontier=decode_frontier(row[5]),
        archived=bool(row[6]),
        archived_at=row[7],
        archive_comment=row[8],
    )


def load_aggregate(
    conn: sqlite3.Connection, aggregate_type: str, aggregate_id: str, *, dek: str | None = None
) -> AggregateRow | None:
    """The stored row of an aggregate, or None when it has no committed event."""
    row = conn.execute(
        f"SELECT {_AGG_COLS} FROM aggregates WHERE aggregate_type = ? AND aggregate_id = ?",
        (aggregate_type, aggregate_id),
    ).fetchone()
    return None if row is None else _aggregate(row, dek)


def list_aggregates(
    conn: sqlite3.Connection, *, skip: int = 0, take: int | None = None, dek: str | None = None
) -> list[AggregateRow]:
    """Aggregates in (type, id) binary order."""
    rows = conn.execute(
        f"SELECT {_AGG_COLS} FROM aggregates ORDER BY aggregate_type, aggregate_id LIMIT ? OFFSET ?",
        (-1 if take is None else take, max(skip, 0)),
    )
    return [_aggregate(row, dek) for row in rows]


_SAVE_AGGREGATE = (
    f"INSERT OR REPLACE INTO aggregates ({_AGG_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _aggregate_params(
    conn: sqlite3.Connection, row: AggregateRow, dek: str | None
) -> tuple[object, ...]:
    state = orjson.dumps(row.state, option=orjson.OPT_SORT_KEYS).decode()
    return (
        row.aggregate_type,
        row.aggregate_id,
        row.version,
        seal_value(conn, state, dek),
        row.merkle_root,
        encode_frontier(row.merkle_frontier),
        int(row.archived),
        row.archived_at,
        row.archive_comment,
    )


def save_aggregate(conn: sqlite3.Connection, row: AggregateRow, *, dek: str | None = None) -> None:
    """Insert or replace an aggregate row (version, state, root, frontier, archive fields)."""
    conn.execute(_SAVE_AGGREGATE, _aggregate_params(conn, row, dek))


def save_aggregates(
    conn: sqlite3.Connection, rows: Sequence[AggregateRow], *, dek: str | None = None
) -> None:
    """Insert or replace several aggregate rows (one prepared statement run for all of them)."""
    if len(rows) == 1:
        conn.execute(_SAVE_AGGREGATE, _aggregate_params(conn, rows[0], dek))
    else:
        conn.executemany(_SAVE_AGGREGATE, [_aggregate_params(conn, row, dek) for row in rows])


def set_archived(
    conn: sqlite3.Connection,
    aggregate_type: str,
    aggregate_id: str,
    *,
    archived: bool,
    archived_at: str | None,
    comment: str | None,
) -> bool:
    """Set or clear the archive fields; False when the aggregate does not exist."""
    cur = conn.execute(
        "UPDATE aggregates SET archived = ?, archived_at = ?, archive_comment = ?"
        " WHERE aggregate_type = ? AND aggregate_id = ?",
        (int(archived), archived_at, comment, aggregate_type, aggregate_id),
    )
    return cur.rowcount > 0
