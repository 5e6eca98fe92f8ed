"""Enqueue-time job building: the envelope of an event for a plugin, with the state as of that event.

State is folded from the stored (canonical) payload texts with `stored_payload_map`, never re-parsed with the §4
parser, so a folded state holds exactly the number texts the write side stored.
"""

from __future__ import annotations

from typing import Any

from eventdbx.domain.envelope import build_envelope
from eventdbx.domain.records import AggregateState, EventRecord
from eventdbx.domain.state import fold_state, stored_payload_map
from eventdbx.plugins.registry import PluginDefinition
from eventdbx.store import events as store_events
from eventdbx.store.plugin_queue_model import NewJob
from eventdbx.store.schemas import load_schema

_CACHE_LIMIT = 10_000


class EnvelopeSource:
    """Builds jobs for events read from one event-store connection: state as of each event, schema at enqueue time.

    States are cached per plugin and aggregate across batches, so a backlog folds each aggregate once (O(N)) even
    when plugins at different positions interleave.
    """

    def __init__(self, dek: str | None = None) -> None:
        self.dek = dek
        self._states: dict[tuple[str, str, str], tuple[int, dict[str, str]]] = {}
        self._schemas: dict[str, dict[str, Any] | None] = {}

    def clear(self) -> None:
        """Forget cached schemas (call once per pass: schemas may change between passes)."""
        self._schemas.clear()

    def schema(self, conn: Any, aggregate_type: str) -> dict[str, Any] | None:
        """The aggregate type's schema as a dict, cached for the pass."""
        if aggregate_type not in self._schemas:
            schema = load_schema(conn, aggregate_type)
            self._schemas[aggregate_type] = None if schema is None else schema.to_dict()
        return self._schemas[aggregate_type]

    def state(self, conn: Any, event: EventRecord, lane: str = "") -> AggregateState:
        """The aggregate state as of `event`: stored state when current, else folded (cached per `lane`)."""
        key = (lane, event.aggregate_type, event.aggregate_id)
        cached = self._states.get(key)
        if cached is not None and cached[0] == event.version:
            folded = cached[1]
        elif cached is not None and cached[0] == event.version - 1:
            folded = fold_state(cached[1], stored_payload_map(event.payload_json))
        else:
            folded = self._load(conn, event)
        if len(self._states) >= _CACHE_LIMIT and key not in self._states:
            self._states.clear()
        self._states[key] = (event.version, folded)
        return AggregateState(
            aggregate_type=event.aggregate_type,
            aggregate_id=event.aggregate_id,
            version=event.version,
            state=folded,
            merkle_root=event.merkle_root,
            archived=False,
        )

    def _load(self, conn: Any, event: EventRecord) -> dict[str, str]:
        row = store_events.load_aggregate(
            conn, event.aggregate_type, event.aggregate_id, dek=self.dek
        )
        if row is not None and row.version == event.version:
            return dict(row.state)
        folded: dict[str, str] = {}
        for past in store_events.events_of(
            conn, event.aggregate_type, event.aggregate_id, up_to=event.version, dek=self.dek
        ):
            folded = fold_state(folded, stored_payload_map(past.payload_json))
        return folded

    def job(
        self, conn: Any, definition: PluginDefinition, event: EventRecord, *, replay: bool = False
    ) -> NewJob:
        """The job of `event` for `definition`, shaped by its current payload mode."""
        mode = definition.payload_mode
        state = self.state(conn, event, definition.name) if mode.has_state else None
        schema = self.schema(conn, event.aggregate_type) if mode.has_schema else None
        return NewJob(
            plugin_name=definition.name,
            label=definition.label,
            aggregate_type=event.aggregate_type,
            aggregate_id=event.aggregate_id,
            event_type=event.event_type,
            event_id=event.event_id,
            version=event.version,
            event_created_at=event.created_at,
            envelope=build_envelope(mode, event, state, schema),
            replay=replay,
        )
