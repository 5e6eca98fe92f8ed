"""Typed views of what a process plugin receives: Init, Event and its State."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
    return json.loads(text)


def init_from_fields(body: Mapping[str, Any]) -> Init:
    """Build an Init from a decoded PluginInit."""
    return Init(plugin_name=str(body.get("pluginName", "")), version=str(body.get("version", "")),
                target=str(body.get("target", "")), transport=str(body.get("transport", "")))


def event_from_fields(body: Mapping[str, Any]) -> Event:
    """Build an Event from a decoded PluginEvent (capnp field names)."""
    has_event = bool(body.get("hash"))
    state: State | None = None
    if body.get("stateMerkleRoot"):
        entries = {str(e.get("key", "")): str(e.get("value", "")) for e in body.get("stateEntries", [])}
        state = State(version=int(body.get("stateVersion", 0)), archived=bool(body.get("stateArchived")),
                      merkle_root=str(body["stateMerkleRoot"]), entries=entries)
    micros = int(body.get("createdAtEpochMicros", 0))
    return Event(
        sequence=int(body.get("sequence", 0)),
        aggregate_type=str(body.get("aggregateType", "")),
        aggregate_id=str(body.get("aggregateId", "")),
        event_type=str(body.get("eventType", "")),
        version=int(body.get("eventVersion", 0)),
        event_id=str(body.get("eventId", "")),
        created_at=_EPOCH + timedelta(microseconds=micros),
        payload=_json_or_none(str(body.get("payloadJson", "null"))) if has_event else None,
        metadata=_json_or_none(str(body.get("metadataJson", "null"))) if has_event else None,
        extensions=_json_or_none(str(body.get("extensionsJson", "null"))) if has_event else None,
        hash=str(body["hash"]) if has_event else None,
        merkle_root=str(body.get("merkleRoot", "")) if has_event else None,
        state=state,
        schema=_json_or_none(str(body.get("schemaJson", "null"))),
    )
