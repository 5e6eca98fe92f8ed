"""The store seams the service depends on: small Protocols, one contract suite (tests/contract/store/).

A session is one transaction's view of every table; `Store.reading()`/`writing()` hand one out. The SQLite
implementation is store/session.py; a PostgreSQL one would pass the same suite.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from eventdbx.domain.records import AggregateRow, EventRecord, Snapshot

if TYPE_CHECKING:
    from eventdbx.schema.model import Schema
    from eventdbx.store.staging import StagedEntry


class EventLog(Protocol):
    """The append-only global log of committed events."""

    def head_seq(self) -> int:
        """Highest committed seq (0 when empty)."""
        ...

    def events_after(self, seq: int, limit: int) -> list[tuple[int, EventRecord]]:
        """Events with seq > `seq` in commit order."""
        ...

    def events_of(
        self, aggregate_type: str, aggregate_id: str, *, up_to: int | None = None, after: int = 0
    ) -> list[EventRecord]:
        """An aggregate's events with versions in (after, up_to], in version order."""
        ...

    def events_page(
        self, aggregate_type: str, aggregate_id: str, *, skip: int = 0, take: int | None = None
    ) -> list[EventRecord]:
        """A page of an aggregate's events in version order."""
        ...

    def count_events(self, aggregate_type: str, aggregate_id: str) -> int:
        """How many committed events the aggregate has."""
        ...

    def insert_event(self, record: EventRecord) -> int:
        """Append one event; returns its seq."""
        ...

    def insert_events(self, records: Sequence[EventRecord]) -> None:
        """Append events in the given order (a batch of `insert_event`)."""
        ...


class AggregateStore(Protocol):
    """Per-aggregate rows: version, state, Merkle root and frontier, archive fields."""

    def load_aggregate(self, aggregate_type: str, aggregate_id: str) -> AggregateRow | None:
        """The row, or None when the aggregate has no committed event."""
        ...

    def list_aggregates(self, *, skip: int = 0, take: int | None = None) -> list[AggregateRow]:
        """Rows in (type, id) binary order."""
        ...

    def save_aggregate(self, row: AggregateRow) -> None:
        """Insert or replace a row."""
        ...

    def save_aggregates(self, rows: Sequence[AggregateRow]) -> None:
        """Insert or replace several rows (a batch of `save_aggregate`)."""
        ...

    def set_archived(
        self,
        aggregate_type: str,
        aggregate_id: str,
        *,
        archived: bool,
        archived_at: str | None,
        comment: str | None,
    ) -> bool:
        """Set or clear the archive fields; False when the aggregate does not exist."""
        ...


class SnapshotStore(Protocol):
    """Saved states, never overwritten."""

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store a snapshot."""
        ...

    def latest_snapshot(
        self, aggregate_type: str, aggregate_id: str, *, up_to: int | None = None
    ) -> Snapshot | None:
        """The snapshot with the highest version ≤ up_to."""
        ...

    def list_snapshots(self, aggregate_type: str, aggregate_id: str) -> list[Snapshot]:
        """An aggregate's snapshots in creation order."""
        ...


class SchemaStore(Protocol):
    """One schema per aggregate type."""

    def load_schema(self, aggregate: str) -> Schema | None:
        """The schema, or None."""
        ...

    def list_schemas(self) -> list[Schema]:
        """All schemas by aggregate name."""
        ...

    def save_schema(self, schema: Schema) -> None:
        """Insert or replace a schema."""
        ...

    def delete_schema(self, aggregate: str) -> bool:
        """Remove a schema; False when absent."""
        ...


class StagingStore(Protocol):
    """Entries waiting for `commit`."""

    def add_staged(self, entry: StagedEntry) -> StagedEntry:
        """Store an entry; returns it with its id."""
        ...

    def list_staged(
        self, aggregate_type: str | None = None, aggregate_id: str | None = None
    ) -> list[StagedEntry]:
        """Entries in staging order (all or one aggregate's)."""
        ...

    def clear_staged(
        self, aggregate_type: str | None = None, aggregate_id: str | None = None
    ) -> int:
        """Delete entries (all or one aggregate's); returns how many."""
        ...


class CounterStore(Protocol):
    """The snowflake high-water mark and per-token write counters."""

    def last_event_id(self) -> int | None:
        """Last allocated event id."""
        ...

    def set_last_event_id(self, event_id: int) -> None:
        """Record the last allocated event id."""
        ...

    def events_written(self, jti: str) -> int:
        """Events a token has written so far."""
        ...

    def add_events_written(self, jti: str, count: int) -> None:
        """Add to a token's written-events counter."""
        ...


class StoreSession(
    EventLog, AggregateStore, SnapshotStore, SchemaStore, StagingStore, CounterStore, Protocol
):
    """Every table as seen by one transaction."""

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested unit that rolls back alone when its block raises."""
        ...


class Store(Protocol):
    """A backend: read snapshots and serialised write transactions."""

    def reading(self) -> AbstractContextManager[StoreSession]:
        """A consistent read-only session."""
        ...

    def writing(self, *, wait: bool = True) -> AbstractContextManager[StoreSession]:
        """A write transaction, committed when the block exits cleanly; `wait=False` raises WriteBusy
        at once instead of waiting for a lock another connection holds."""
        ...

    def checkpoint(self) -> bool:
        """Housekeeping for writers that wrote with `wait=False` (e.g. fold the WAL back); waits briefly at most.

        False when it could not finish (others were writing or reading): worth retrying soon.
        """
        ...

    def data_version(self) -> int:
        """Changes whenever another connection commits."""
        ...

    def change_token(self) -> Hashable:
        """Read inside a write transaction: equal tokens mean nothing was written in between (lets the
        service keep aggregate rows and schemas across its own transactions; return a fresh object to opt out)."""
        ...

    def token_after_commit(self, token: Hashable) -> Hashable:
        """The token that `change_token()` returns once the transaction `token` was read in has committed."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


__all__ = [
    "AggregateStore",
    "CounterStore",
    "EventLog",
    "SchemaStore",
    "SnapshotStore",
    "StagingStore",
    "Store",
    "StoreSession",
]
