"""Typed views of what a process plugin receives: Init, Event and its State."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from eventdbx.domain.envelope import PluginEventFields

if TYPE_CHECKING:
    from eventdbx.control.plugin_codec import InitFields

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Init:
    """The first frame after a spawn: who the plugin is."""

    plugin_name: str
    version: str
    target: str
    transport: str


@dataclass(frozen=True, slots=True, kw_only=True)
class State:
    """Aggregate state as of the event (present with `all` and `state-only`)."""

    version: int
    archived: bool
    merkle_root: str
    entries: Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One delivered event; parts the payload mode leaves out are None."""

    sequence: int
    aggregate_type: str
    aggregate_id: str
    event_type: str
    version: int
    event_id: str
    created_at: datetime
    payload: Any
    metadata: dict[str, Any] | None
    extensions: dict[str, Any] | None
    hash: str | None
    merkle_root: str | None
    state: State | None
    schema: dict[str, Any] | None


def _json_or_none(text: str) -> Any:
    if not text or text == "null":
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # e.g. integers beyond 64 bits, which json accepts
        return json.loads(text)


def init_from_frame(fields: InitFields) -> Init:
    """Build an Init from a decoded PluginInit."""
    return Init(
        plugin_name=fields.plugin_name,
        version=fields.version,
        target=fields.target,
        transport=fields.transport,
    )


def init_from_fields(body: Mapping[str, Any]) -> Init:
    """Build an Init from a PluginInit as a dict (capnp field names)."""
    return Init(
        plugin_name=str(body.get("pluginName", "")),
        version=str(body.get("version", "")),
        target=str(body.get("target", "")),
        transport=str(body.get("transport", "")),
    )


def event_from_frame(sequence: int, f: PluginEventFields) -> Event:
    """Build an Event from decoded PluginEvent fields; parts the payload mode left out become None."""
    has_event = bool(f.hash)
    state: State | None = None
    if f.state_merkle_root:
        state = State(
            version=f.state_version,
            archived=f.state_archived,
            merkle_root=f.state_merkle_root,
            entries=dict(f.state_entries),
        )
    return Event(
        sequence=sequence,
        aggregate_type=f.aggregate_type,
        aggregate_id=f.aggregate_id,
        event_type=f.event_type,
        version=f.event_version,
        event_id=f.event_id,
        created_at=_EPOCH + timedelta(microseconds=f.created_at_epoch_micros),
        payload=_json_or_none(f.payload_json) if has_event else None,
        metadata=_json_or_none(f.metadata_json) if has_event else None,
        extensions=_json_or_none(f.extensions_json) if has_event else None,
        hash=f.hash if has_event else None,
        merkle_root=f.merkle_root if has_event else None,
        state=state,
        schema=_json_or_none(f.schema_json),
    )


def event_from_fields(body: Mapping[str, Any]) -> Event:
    """Build an Event from a PluginEvent as a dict (capnp field names, as `to_dict()` gives)."""
    fields = PluginEventFields(
        aggregate_type=str(body.get("aggregateType", "")),
        aggregate_id=str(body.get("aggregateId", "")),
        event_type=str(body.get("eventType", "")),
        event_version=int(body.get("eventVersion", 0)),
        event_id=str(body.get("eventId", "")),
        created_at_epoch_micros=int(body.get("createdAtEpochMicros", 0)),
        payload_json=str(body.get("payloadJson", "null")),
        metadata_json=str(body.get("metadataJson", "null")),
        hash=str(body.get("hash", "")),
        merkle_root=str(body.get("merkleRoot", "")),
        state_version=int(body.get("stateVersion", 0)),
        state_archived=bool(body.get("stateArchived")),
        state_merkle_root=str(body.get("stateMerkleRoot", "")),
        state_entries=tuple(
            (str(e.get("key", "")), str(e.get("value", ""))) for e in body.get("stateEntries", [])
        ),
        schema_json=str(body.get("schemaJson", "null")),
        extensions_json=str(body.get("extensionsJson", "null")),
    )
    return event_from_frame(int(body.get("sequence", 0)), fields)
