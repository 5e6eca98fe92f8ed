"""SQLite implementation of the store Protocols: a session wraps one connection inside one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from itertools import count
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from eventdbx.domain.records import AggregateRow, EventRecord, Snapshot
from eventdbx.store import events, meta, schemas, snapshots, staging, tokens
from eventdbx.store.database import Database, WriteTransaction

if TYPE_CHECKING:
    from eventdbx.schema.model import Schema
    from eventdbx.store.staging import StagedEntry

_savepoints = count(1)


class SqliteSession:
    """Every event-store table through one connection (the caller owns the transaction)."""

    __slots__ = ("conn", "dek")

    def __init__(self, conn: sqlite3.Connection, dek: str | None = None) -> None:
        self.conn = conn
        self.dek = dek

    # -- EventLog
    def head_seq(self) -> int:
        """Highest committed seq."""
        return events.head_seq(self.conn)

    def events_after(self, seq: int, limit: int) -> list[tuple[int, EventRecord]]:
        """Events after seq in commit order."""
        return events.events_after(self.conn, seq, limit, dek=self.dek)

    def events_of(
        self, aggregate_type: str, aggregate_id: str, *, up_to: int | None = None, after: int = 0
    ) -> list[EventRecord]:
        """An aggregate's events in (after, up_to]."""
        return events.events_of(
            self.conn, aggregate_type, aggregate_id, up_to=up_to, after=after, dek=self.dek
        )

    def events_page(
        self, aggregate_type: str, aggregate_id: str, *, skip: int = 0, take: int | None = None
    ) -> list[EventRecord]:
        """A page of an aggregate's events."""
        return events.events_page(
            self.conn, aggregate_type, aggregate_id, skip=skip, take=take, dek=self.dek
        )

    def count_events(self, aggregate_type: str, aggregate_id: str) -> int:
        """Committed events of an aggregate."""
        return events.count_events(self.conn, aggregate_type, aggregate_id)

    def insert_event(self, record: EventRecord) -> int:
        """Append one event."""
        return events.insert_event(self.conn, record, dek=self.dek)

    def insert_events(self, records: Sequence[EventRecord]) -> None:
        """Append events in order."""
        events.insert_events(self.conn, records, dek=self.dek)

    # -- AggregateStore
    def load_aggregate(self, aggregate_type: str, aggregate_id: str) -> AggregateRow | None:
        """An aggregate row."""
        return events.load_aggregate(self.conn, aggregate_type, aggregate_id, dek=self.dek)

    def list_aggregates(self, *, skip: int = 0, take: int | None = None) -> list[AggregateRow]:
        """Rows in (type, id) order."""
        return events.list_aggregates(self.conn, skip=skip, take=take, dek=self.dek)

    def save_aggregate(self, row: AggregateRow) -> None:
        """Upsert a row."""
        events.save_aggregate(self.conn, row, dek=self.dek)

    def save_aggregates(self, rows: Sequence[AggregateRow]) -> None:
        """Upsert rows."""
        events.save_aggregates(self.conn, rows, dek=self.dek)

    def set_archived(
        self,
        aggregate_type: str,
        aggregate_id: str,
        *,
        archived: bool,
        archived_at: str | None,
        comment: str | None,
    ) -> bool:
        """Set or clear archive fields."""
        return events.set_archived(
            self.conn,
            aggregate_type,
            aggregate_id,
            archived=archived,
            archived_at=archived_at,
            comment=comment,
        )

    # -- SnapshotStore
    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store a snapshot."""
        snapshots.save_snapshot(self.conn, snapshot, dek=self.dek)

    def latest_snapshot(
        self, aggregate_type: str, aggregate_id: str, *, up_to: int | None = None
    ) -> Snapshot | None:
        """Newest snapshot at or below a version."""
        return snapshots.latest_snapshot(
            self.conn, aggregate_type, aggregate_id, up_to=up_to, dek=self.dek
        )

    def list_snapshots(self, aggregate_type: str, aggregate_id: str) -> list[Snapshot]:
        """An aggregate's snapshots."""
        return snapshots.list_snapshots(self.conn, aggregate_type, aggregate_id, dek=self.dek)

    # -- SchemaStore
    def load_schema(self, aggregate: str) -> Schema | None:
        """A schema or None."""
        return schemas.load_schema(self.conn, aggregate)

    def list_schemas(self) -> list[Schema]:
        """All schemas."""
        return schemas.list_schemas(self.conn)

    def save_schema(self, schema: Schema) -> None:
        """Upsert a schema."""
        schemas.save_schema(self.conn, schema)

    def delete_schema(self, aggregate: str) -> bool:
        """Delete a schema."""
        return schemas.delete_schema(self.conn, aggregate)

    # -- StagingStore
    def add_staged(self, entry: StagedEntry) -> StagedEntry:
        """Stage an entry."""
        return staging.add_staged(self.conn, entry, dek=self.dek)

    def list_staged(
        self, aggregate_type: str | None = None, aggregate_id: str | None = None
    ) -> list[StagedEntry]:
        """Staged entries."""
        return staging.list_staged(self.conn, aggregate_type, aggregate_id, dek=self.dek)

    def clear_staged(
        self, aggregate_type: str | None = None, aggregate_id: str | None = None
    ) -> int:
        """Drop staged entries."""
        return staging.clear_staged(self.conn, aggregate_type, aggregate_id)

    # -- CounterStore
    def last_event_id(self) -> int | None:
        """Last allocated event id."""
        return meta.last_event_id(self.conn)

    def set_last_event_id(self, event_id: int) -> None:
        """Record the last event id."""
        meta.set_last_event_id(self.conn, event_id)

    def events_written(self, jti: str) -> int:
        """A token's written-events count."""
        return tokens.events_written(self.conn, jti)

    def add_events_written(self, jti: str, count: int) -> None:
        """Add to a token's written-events count."""
        tokens.add_events_written(self.conn, jti, count)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """SAVEPOINT … RELEASE; ROLLBACK TO on error (the outer transaction goes on)."""
        name = f"sp{next(_savepoints)}"
        self.conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.conn.execute(f"ROLLBACK TO {name}")
            self.conn.execute(f"RELEASE {name}")
            raise
        self.conn.execute(f"RELEASE {name}")


class WritingSession:
    """`SqliteStore.writing()`'s context manager: the database's write transaction seen as a session."""

    __slots__ = ("dek", "transaction")

    def __init__(self, transaction: WriteTransaction, dek: str | None) -> None:
        self.transaction = transaction
        self.dek = dek

    def __enter__(self) -> SqliteSession:
        return SqliteSession(self.transaction.__enter__(), self.dek)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.transaction.__exit__(kind, exc, tb)


class SqliteStore:
    """The Store Protocol over one event_store.db."""

    def __init__(self, db: Database, dek: str | None = None) -> None:
        self.db = db
        self.dek = dek or None

    @classmethod
    def open(
        cls, path: Path, durability: str = "normal", *, create: bool, dek: str | None = None
    ) -> SqliteStore:
        """Open (or create) the event store; with `dek`, refuse a key other than the store's."""
        db = Database.open(path, durability, create=create)
        try:
            with db.read() as conn:
                meta.check_dek(conn, dek)
        except BaseException:
            db.close()
            raise
        return cls(db, dek)

    @contextmanager
    def reading(self) -> Iterator[SqliteSession]:
        """A read snapshot."""
        with self.db.read() as conn:
            yield SqliteSession(conn, self.dek)

    def writing(self, *, wait: bool = True) -> WritingSession:
        """A write transaction (`wait=False`: raise WriteBusy at once if the lock is held)."""
        return WritingSession(self.db.write(wait=wait), self.dek)

    def data_version(self) -> int:
        """PRAGMA data_version of this thread's connection."""
        return self.db.data_version()

    def change_token(self) -> Hashable:
        """Inside a write transaction: equal values mean no write happened in between (any connection)."""
        return self.db.change_token()

    def token_after_commit(self, token: Hashable) -> Hashable:
        """The change token after the transaction `token` was read in commits."""
        assert isinstance(token, tuple)
        return self.db.token_after_commit(token)

    def checkpoint(self) -> bool:
        """Checkpoint and rewind the WAL from this thread (for writers that never checkpoint); False: try again soon.

        RESTART, not PASSIVE: a passive checkpoint copied every frame but the loop's writer never rewound
        the log (5 GB of WAL after 200k socket appends); RESTART waits for readers so the next commit starts
        the WAL from its beginning. It holds off writers while it runs, so it waits at most 100 ms, and under
        a steady stream of commits it sometimes gives up (frames copied, log not rewound): the caller retries sooner.
        """
        return self.db.checkpoint("RESTART", busy_ms=100)

    def close(self) -> None:
        """Close the database."""
        self.db.close()


__all__ = ["SqliteSession", "SqliteStore"]
