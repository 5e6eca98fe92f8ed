"""Read use cases over a store session: aggregate state as of a version, integrity verification.

Pure functions of a session; the service opens the read transaction. States as of an earlier version start
from the nearest snapshot at or below it and fold only the events after it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventdbx.domain.integrity import EMPTY_ROOT, event_hash, frontier_append, frontier_root
from eventdbx.domain.records import AggregateRow, AggregateState
from eventdbx.domain.state import stored_payload_map
from eventdbx.errors import AggregateNotFoundError, StorageError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from eventdbx.domain.records import EventRecord
    from eventdbx.store.protocols import StoreSession

PAGE = 1000


def _events(session: StoreSession, t: str, i: str, after: int, up_to: int) -> Iterator[EventRecord]:
    """Versions (after, up_to] in pages, so long histories never sit in memory at once."""
    while after < up_to:
        page = session.events_of(t, i, after=after, up_to=min(up_to, after + PAGE))
        if not page:
            return
        yield from page
        after = page[-1].version


def require_row(session: StoreSession, aggregate_type: str, aggregate_id: str) -> AggregateRow:
    """The aggregate's row, or `aggregate not found`."""
    row = session.load_aggregate(aggregate_type, aggregate_id)
    if row is None:
        raise AggregateNotFoundError()
    return row


def state_as_of(session: StoreSession, row: AggregateRow, version: int | None) -> AggregateState:
    """State, version and root as of min(version, current); 0 → empty state and the empty root."""
    if version is None or version >= row.version:
        return row.as_state()
    t, i = row.aggregate_type, row.aggregate_id
    if version <= 0:
        return AggregateState(
            aggregate_type=t, aggregate_id=i, version=0, state={}, merkle_root=EMPTY_ROOT,
            archived=row.archived,
        )
    snapshot = session.latest_snapshot(t, i, up_to=version)
    state: dict[str, str] = dict(snapshot.state) if snapshot else {}
    root = snapshot.merkle_root if snapshot else EMPTY_ROOT
    for record in _events(session, t, i, snapshot.version if snapshot else 0, version):
        state.update(stored_payload_map(record.payload_json))
        root = record.merkle_root
    return AggregateState(
        aggregate_type=t, aggregate_id=i, version=version, state=state, merkle_root=root,
        archived=row.archived,
    )


def verify_aggregate(session: StoreSession, row: AggregateRow) -> str:
    """Recompute every hash and root from stored payloads; the root, or a storage error naming the version."""
    t, i = row.aggregate_type, row.aggregate_id
    prefix = f"integrity check failed for {t}::{i}"
    frontier: list[str | None] = []
    count = 0
    for record in _events(session, t, i, 0, 1 << 62):
        count += 1
        if record.version != count:
            raise StorageError(f"{prefix}: missing version {count}")
        digest = event_hash(t, i, record.version, record.event_type, stored_payload_map(record.payload_json))
        if digest != record.hash:
            raise StorageError(f"{prefix}: hash mismatch at version {record.version}")
        frontier = frontier_append(frontier, digest)
        if frontier_root(frontier) != record.merkle_root:
            raise StorageError(f"{prefix}: merkle root mismatch at version {record.version}")
    root = frontier_root(frontier)
    if root != row.merkle_root or count != row.version:
        raise StorageError(f"{prefix}: aggregate merkle root mismatch")
    return root
