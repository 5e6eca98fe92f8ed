"""The transactional half of an append (data-model.md §9 "Order", §5–§7, §12) inside one store session.

An Appender lives for one write transaction. It keeps the aggregates it touched in a working set so that
batches and staged commits see their own earlier events, allocates snowflake ids from `last_event_id`, and
extends each aggregate's Merkle frontier in O(log n): it never reloads an aggregate's events. Its writes are
collected and run by `finish()` (a few batched statements per transaction), so a rejected request leaves
nothing behind.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import replace
from typing import TYPE_CHECKING

from eventdbx.clock import Clock, next_snowflake, now_ms
from eventdbx.domain.integrity import EMPTY_ROOT, event_hash, frontier_append, frontier_root
from eventdbx.domain.json_value import JSONValue
from eventdbx.domain.jsontext import dumps_canonical
from eventdbx.domain.patch import patched_payload
from eventdbx.domain.records import AggregateRow, EventRecord, IssuedBy, Snapshot
from eventdbx.domain.restrict import RestrictMode
from eventdbx.domain.state import payload_map, stored_payload_map
from eventdbx.domain.validation import check_first_event, check_payload_size
from eventdbx.errors import AggregateArchivedError, VersionConflictError
from eventdbx.service_requests import AppendOutcome, Authorisation, PreparedAppend

if TYPE_CHECKING:
    from dataclasses import dataclass
else:  # dataclass fields without import-time code generation (dbx start-up)
    from eventdbx.frozen import frozen_record as dataclass

if TYPE_CHECKING:
    from eventdbx.auth.records import TokenRecord
    from eventdbx.schema.model import Schema
    from eventdbx.store.protocols import StoreSession
    from eventdbx.store.staging import StagedEntry

_Key = tuple[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendPolicy:
    """The live settings an append depends on."""

    restrict: RestrictMode
    snapshot_threshold: int | None
    worker_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """A request checked against the aggregate's current (or staged) state: the payload to store."""

    payload: JSONValue
    payload_json: str
    payload_map: dict[str, str]


class WriteCache:
    """Rows, schemas, token records and verdicts, usage counts and the last event id as of this connection's
    last append.

    Valid only while the store's change token says nothing was written since (by anyone, this connection
    included); the service checks the token inside each write transaction and clears the cache otherwise.
    """

    MAX_ROWS = 20_000

    def __init__(self) -> None:
        self.token: Hashable | None = None
        self.rows: dict[_Key, AggregateRow | None] = {}
        self.schemas: dict[str, Schema | None] = {}
        self.tokens: dict[str, TokenRecord | None] = {}
        self.accepted: dict[tuple[str, str], tuple[Authorisation, float]] = {}
        self.accepted_tokens: dict[str, tuple[Authorisation, float]] = {}  # the latest verdict of each token
        self.accepted_for: object = None
        self.usage: dict[str, int] = {}
        self.last_id: int | None = None
        self.has_last_id = False

    def clear(self) -> None:
        """Forget everything."""
        self.token = None
        self.rows.clear()
        self.schemas.clear()
        self.tokens.clear()
        self.accepted.clear()
        self.accepted_tokens.clear()
        self.usage.clear()
        self.last_id, self.has_last_id = None, False

    def adopt(self, appender: Appender, token: Hashable) -> None:
        """Take over what a committed transaction read and wrote."""
        if len(self.rows) + len(appender.rows) > self.MAX_ROWS:
            self.rows.clear()
        if max(len(self.tokens), len(self.accepted), len(self.usage)) > self.MAX_ROWS:
            self.tokens.clear()
            self.accepted.clear()
            self.accepted_tokens.clear()
            self.usage.clear()
        self.rows.update(appender.rows)
        self.schemas.update(appender.schemas)
        self.usage.update(appender.usage)
        if appender.id_loaded:
            self.last_id, self.has_last_id = appender.last_id, True
        self.token = token


class Appender:
    """Checks and writes appends within one write transaction."""

    def __init__(
        self,
        session: StoreSession,
        policy: AppendPolicy,
        clock: Clock,
        base: WriteCache | None = None,
    ) -> None:
        self.session = session
        self.policy = policy
        self.clock = clock
        self.base = base or WriteCache()
        self.rows: dict[_Key, AggregateRow | None] = {}
        self.schemas: dict[str, Schema | None] = {}
        self.usage: dict[str, int] = {}
        self.last_id: int | None = self.base.last_id
        self.id_loaded = self.base.has_last_id
        self._dirty_id = False
        # Writes wait for finish(): one statement run per table per transaction, and a request that fails
        # its checks has written nothing (no savepoint needed).
        self._events: list[EventRecord] = []
        self._changed: dict[_Key, AggregateRow] = {}
        self._snapshots: list[Snapshot] = []
        self._usage_added: dict[str, int] = {}

    # -- state of the transaction
    def row(self, aggregate_type: str, aggregate_id: str) -> AggregateRow | None:
        """The aggregate as of the events written so far in this transaction."""
        key = (aggregate_type, aggregate_id)
        rows = self.rows
        if key in rows:
            return rows[key]
        base = self.base.rows
        row = (
            base[key] if key in base else self.session.load_aggregate(aggregate_type, aggregate_id)
        )
        rows[key] = row
        return row

    def schema(self, aggregate_type: str) -> Schema | None:
        """The aggregate type's schema (read once per transaction; the write lock keeps it fixed)."""
        schemas = self.schemas
        if aggregate_type in schemas:
            return schemas[aggregate_type]
        base = self.base.schemas
        schema = (
            base[aggregate_type]
            if aggregate_type in base
            else self.session.load_schema(aggregate_type)
        )
        schemas[aggregate_type] = schema
        return schema

    def _events_written(self, jti: str) -> int:
        usage = self.usage
        if jti not in usage:
            base = self.base.usage
            usage[jti] = base[jti] if jti in base else self.session.events_written(jti)
        return usage[jti]

    # -- checks
    def resolve(self, prepared: PreparedAppend, row: AggregateRow | None) -> Resolved:
        """Archive, expected version, first event, patch, size, restrict/schema and write-limit checks."""
        t, i = prepared.aggregate_type, prepared.aggregate_id
        current = 0 if row is None else row.version
        if row is not None and row.archived:
            raise AggregateArchivedError()
        expected = prepared.expected_version
        if expected is not None and expected != current:
            raise VersionConflictError(
                f"expected version {expected} but {t}::{i} is at version {current}"
            )
        if row is None:
            check_first_event(prepared.event_type)
        payload = prepared.payload
        if prepared.is_patch:
            payload = patched_payload({} if row is None else row.state, prepared.patch)
        text = dumps_canonical(payload)
        check_payload_size(text)
        pmap = payload_map(payload)
        mode = self.policy.restrict
        schema = self.schema(t)
        if mode is not RestrictMode.OFF and (schema is not None or mode is RestrictMode.STRICT):
            from eventdbx.schema.validate import validate_append  # loaded only when there is work

            validate_append(schema, mode, t, prepared.event_type, payload, pmap)
        auth = prepared.auth
        if auth is not None and auth.jti is not None and auth.token is not None:
            from eventdbx.auth.tokens import check_write_limit

            check_write_limit(auth.token, self._events_written(auth.jti))
        return Resolved(payload=payload, payload_json=text, payload_map=pmap)

    # -- writes
    def append(self, prepared: PreparedAppend) -> AppendOutcome:
        """Check and write one event (plus its aggregate row, due snapshot and token usage)."""
        row = self.row(prepared.aggregate_type, prepared.aggregate_id)
        resolved = self.resolve(prepared, row)
        issued = None if prepared.auth is None else prepared.auth.issued_by
        jti = None if prepared.auth is None else prepared.auth.jti
        return self.write(prepared, row, resolved, issued, jti)

    def write(
        self,
        prepared: PreparedAppend,
        row: AggregateRow | None,
        resolved: Resolved,
        issued_by: IssuedBy | None,
        jti: str | None,
    ) -> AppendOutcome:
        """Allocate the id, hash, extend the frontier and store event, row, snapshot and usage."""
        t, i = prepared.aggregate_type, prepared.aggregate_id
        version = 1 if row is None else row.version + 1
        digest = event_hash(t, i, version, prepared.event_type, resolved.payload_map)
        frontier = frontier_append([n or None for n in row.merkle_frontier] if row else [], digest)
        root = frontier_root(frontier)
        event_id = self._next_id()
        now = timestamp(self.clock.time())
        record = EventRecord(
            aggregate_type=t,
            aggregate_id=i,
            event_type=prepared.event_type,
            payload_json=resolved.payload_json,
            extensions_json=prepared.metadata_json,
            event_id=event_id,
            created_at=now,
            issued_by=issued_by,
            note=prepared.note,
            version=version,
            hash=digest,
            merkle_root=root,
        )
        state = dict(row.state) if row else {}
        state.update(resolved.payload_map)
        new_row = AggregateRow(
            aggregate_type=t,
            aggregate_id=i,
            version=version,
            state=state,
            merkle_root=root,
            merkle_frontier=[n or "" for n in frontier],
            archived=False if row is None else row.archived,
            archived_at=None if row is None else row.archived_at,
            archive_comment=None if row is None else row.archive_comment,
        )
        self._events.append(record)
        self._changed[(t, i)] = new_row
        snapshot = self._due_snapshot(new_row, now)
        if snapshot is not None:
            self._snapshots.append(snapshot)
        if jti is not None:
            self.usage[jti] = self._events_written(jti) + 1
            self._usage_added[jti] = self._usage_added.get(jti, 0) + 1
        self.rows[(t, i)] = new_row
        return AppendOutcome(record=record, auto_snapshot=snapshot is not None)

    def _due_snapshot(self, row: AggregateRow, now: str) -> Snapshot | None:
        schema = self.schema(row.aggregate_type)
        threshold = (
            schema.snapshot_threshold if schema and schema.snapshot_threshold is not None else None
        )
        if threshold is None:
            threshold = self.policy.snapshot_threshold
        if not threshold or threshold <= 0 or row.version % threshold:
            return None
        return Snapshot(
            aggregate_type=row.aggregate_type,
            aggregate_id=row.aggregate_id,
            version=row.version,
            state=dict(row.state),
            merkle_root=row.merkle_root,
            created_at=now,
            comment=f"auto snapshot v{row.version}",
        )

    def _next_id(self) -> int:
        if not self.id_loaded:
            self.last_id = self.session.last_event_id()
            self.id_loaded = True
        self.last_id = next_snowflake(now_ms(self.clock), self.last_id, self.policy.worker_id)
        self._dirty_id = True
        return self.last_id

    def finish(self) -> None:
        """Write the events, rows, snapshots, usage counts and snowflake high-water mark (before the commit)."""
        session = self.session
        if self._events:
            session.insert_events(self._events)
            session.save_aggregates(list(self._changed.values()))
        for snapshot in self._snapshots:
            session.save_snapshot(snapshot)
        for jti, added in self._usage_added.items():
            session.add_events_written(jti, added)
        if self._dirty_id and self.last_id is not None:
            session.set_last_event_id(self.last_id)
        self._events, self._changed, self._snapshots, self._usage_added = [], {}, [], {}
        self._dirty_id = False


def staged_view(row: AggregateRow | None, entries: list[StagedEntry]) -> AggregateRow | None:
    """The aggregate as committed plus earlier staged entries (versions, state and archive flag only)."""
    for entry in entries:
        state = dict(row.state) if row else {}
        state.update(stored_payload_map(entry.payload_json))
        if row is None:
            row = AggregateRow(
                aggregate_type=entry.aggregate_type,
                aggregate_id=entry.aggregate_id,
                version=1,
                state=state,
                merkle_root=EMPTY_ROOT,
            )
        else:
            row = replace(row, version=row.version + 1, state=state)
    return row


_second_text: list[tuple[int, str]] = [(-1, "")]


def timestamp(unix_seconds: float) -> str:
    """RFC 3339 UTC like timefmt.format_epoch (fraction none/3/6 digits), formatting each second once."""
    whole = int(unix_seconds // 1)
    micros = round((unix_seconds - whole) * 1_000_000)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    cached = _second_text[0]
    if cached[0] == whole:
        prefix = cached[1]
    else:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second_text[0] = (whole, prefix)
    if micros == 0:
        return prefix + "Z"
    if micros % 1000 == 0:
        return f"{prefix}.{micros // 1000:03d}Z"
    return f"{prefix}.{micros:06d}Z"
