"""Socket reads (control-socket.md §4): hidden types/fields and token scopes filtered before paging; JSON replies."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from eventdbx.control.peers import may_read
from eventdbx.errors import AggregateNotFoundError

if TYPE_CHECKING:
    from eventdbx.auth.records import VerifiedToken
    from eventdbx.domain.records import AggregateState
    from eventdbx.schema.model import Schema

REPLY_CAP_BYTES = 32 * 1024 * 1024
SCAN_CHUNK = 1000


def json_array(items: Iterable[bytes], cap: int = REPLY_CAP_BYTES) -> bytes:
    """A compact JSON array of pre-encoded items, stopping before it would exceed `cap` (≥ 1 item if any)."""
    parts: list[bytes] = []
    size = 2
    for item in items:
        add = len(item) + (1 if parts else 0)
        if parts and size + add > cap:
            break
        parts.append(item)
        size += add
    return b"[" + b",".join(parts) + b"]"


class ReadView:
    """Runs on reader threads; every method is blocking."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def schema(self, aggregate_type: str) -> Schema | None:
        """The schema of a type, or None."""
        schema: Schema | None = self.service.schema(aggregate_type)
        return schema

    def _visible(
        self, aggregate_type: str, aggregate_id: str, scope: VerifiedToken | None
    ) -> Schema | None:
        """The schema (None if none) of a readable aggregate; AggregateNotFoundError when hidden/out of scope."""
        if not may_read(scope, aggregate_type, aggregate_id):
            raise AggregateNotFoundError()
        schema = self.schema(aggregate_type)
        if schema is not None and schema.hidden:
            raise AggregateNotFoundError()
        return schema

    @staticmethod
    def _state_json(state: AggregateState, schema: Schema | None) -> bytes:
        data = state.to_dict()
        if schema is not None and schema.hidden_fields:
            hidden = set(schema.hidden_fields)
            data["state"] = {k: v for k, v in data["state"].items() if k not in hidden}
        return orjson.dumps(data)

    def _scan(self) -> Iterator[AggregateState]:
        """Every aggregate in (type, id) order, fetched in chunks."""
        skip = 0
        while True:
            chunk = self.service.list_aggregates(skip=skip, take=SCAN_CHUNK)
            yield from chunk
            if len(chunk) < SCAN_CHUNK:
                return
            skip += len(chunk)

    def list_aggregates(self, skip: int, take: int, scope: VerifiedToken | None) -> bytes:
        """`aggregatesJson` for one page."""
        if take <= 0:
            return b"[]"
        schemas: dict[str, Schema | None] = {}

        def visible() -> Iterator[bytes]:
            skipped = 0
            for state in self._scan():
                t = state.aggregate_type
                if not may_read(scope, t, state.aggregate_id):
                    continue
                if t not in schemas:
                    schemas[t] = self.schema(t)
                schema = schemas[t]
                if schema is not None and schema.hidden:
                    continue
                if skipped < skip:
                    skipped += 1
                    continue
                yield self._state_json(state, schema)

        out: list[bytes] = []
        for item in visible():
            out.append(item)
            if len(out) >= take:
                break
        return json_array(out)

    def get_aggregate(
        self, aggregate_type: str, aggregate_id: str, scope: VerifiedToken | None
    ) -> bytes | None:
        """`aggregateJson`, or None when missing, hidden or out of scope."""
        if not may_read(scope, aggregate_type, aggregate_id):
            return None
        schema, state = self.service.read_aggregate(aggregate_type, aggregate_id)
        if state is None or (schema is not None and schema.hidden):
            return None
        return self._state_json(state, schema)

    def list_events(
        self,
        aggregate_type: str,
        aggregate_id: str,
        skip: int,
        take: int,
        scope: VerifiedToken | None,
    ) -> bytes:
        """`eventsJson` (payloads unfiltered); AggregateNotFoundError when missing, hidden or out of scope."""
        if not may_read(scope, aggregate_type, aggregate_id):
            raise AggregateNotFoundError()
        schema, events = self.service.read_events(
            aggregate_type, aggregate_id, skip=skip, take=max(take, 0)
        )
        if events is None or (schema is not None and schema.hidden):
            raise AggregateNotFoundError()
        return json_array(orjson.dumps(e.to_dict()) for e in events)

    def verify(self, aggregate_type: str, aggregate_id: str, scope: VerifiedToken | None) -> str:
        """The recomputed Merkle root; AggregateNotFoundError when missing, hidden or out of scope."""
        self._visible(aggregate_type, aggregate_id, scope)
        root: str = self.service.verify(aggregate_type, aggregate_id)
        return root
