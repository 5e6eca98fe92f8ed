"""Plugin envelopes: the wire JSON of plugins.md §7 built at enqueue time, and its Cap'n Proto field mapping.

Pure: takes records and returns text or values. The stored envelope is the exact byte string the HTTP and TCP sinks send.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from eventdbx.domain.jsontext import load_canonical, to_compact
from eventdbx.domain.payload_mode import PayloadMode
from eventdbx.domain.records import AggregateState, EventRecord
from eventdbx.domain.timefmt import to_epoch_micros


def wire_json(value: Any) -> str:
    """Compact UTF-8 JSON with object keys sorted at every level (orjson Fragments are emitted verbatim)."""
    return to_compact(value, sort_keys=True)


def event_part(event: EventRecord, *, with_payload: bool = True) -> dict[str, Any]:
    """The `event` object: the EventRecord, with `payload` null when `with_payload` is false."""
    part = event.to_dict()
    if not with_payload:
        part["payload"] = None
    return part


def state_part(state: AggregateState) -> dict[str, Any]:
    """The `state` object: the AggregateState as of the event."""
    return state.to_dict()


def build_envelope(
    mode: PayloadMode,
    event: EventRecord,
    state: AggregateState | None,
    schema: Mapping[str, Any] | None,
) -> str | None:
    """The wire-JSON envelope for `mode`; None when it would be empty (schema-only without a schema).

    `state` must be the state as of `event` (required when the mode includes state); `schema` is the
    schema's `to_dict()` at enqueue time, or None. Absent parts are omitted, never null.
    """
    envelope: dict[str, Any] = {}
    if mode.has_event:
        envelope["event"] = event_part(event, with_payload=mode is not PayloadMode.EXTENSIONS_ONLY)
    if mode.has_state:
        if state is None:
            raise ValueError("the payload mode includes state but no state was given")
        envelope["state"] = state_part(state)
    if mode.has_schema and schema is not None:
        envelope["schema"] = dict(schema)
    if not envelope:
        return None
    return wire_json(envelope)


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginEventFields:
    """The PluginEvent fields of one job (plugins.md §7 mapping); same names as the codec's EventFrameFields."""

    aggregate_type: str
    aggregate_id: str
    event_type: str
    event_version: int
    event_id: str
    created_at_epoch_micros: int
    payload_json: str = "null"
    metadata_json: str = "null"
    hash: str = ""
    merkle_root: str = ""
    state_version: int = 0
    state_archived: bool = False
    state_merkle_root: str = ""
    state_entries: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    schema_json: str = "null"
    extensions_json: str = "null"


def _metadata_json(metadata: Mapping[str, Any]) -> str:
    ordered: dict[str, Any] = {
        "event_id": metadata.get("event_id"),
        "created_at": metadata.get("created_at"),
        "issued_by": metadata.get("issued_by"),
    }
    if "note" in metadata:
        ordered["note"] = metadata["note"]
    return orjson.dumps(ordered).decode()


def _event_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "payload_json": wire_json(event.get("payload")),
        "metadata_json": _metadata_json(event.get("metadata") or {}),
        "hash": str(event.get("hash", "")),
        "merkle_root": str(event.get("merkle_root", "")),
    }
    if "extensions" in event and event["extensions"] is not None:
        out["extensions_json"] = wire_json(event["extensions"])
    return out


def _state_fields(state: Mapping[str, Any]) -> dict[str, Any]:
    entries = state.get("state") or {}
    return {
        "state_version": int(orjson.loads(wire_json(state.get("version", 0)))),
        "state_archived": bool(state.get("archived", False)),
        "state_merkle_root": str(state.get("merkle_root", "")),
        "state_entries": tuple(sorted((str(k), str(v)) for k, v in entries.items())),
    }


def _exact_values(envelope_json: str) -> dict[str, Any]:
    """The envelope-derived fields via the exact-number parse: numbers are re-printed verbatim, any input."""
    doc = load_canonical(envelope_json)
    values: dict[str, Any] = {}
    if isinstance(doc.get("event"), dict):
        values.update(_event_fields(doc["event"]))
    if isinstance(doc.get("state"), dict):
        values.update(_state_fields(doc["state"]))
    if doc.get("schema") is not None:
        values["schema_json"] = wire_json(doc["schema"])
    return values


def _sorted_dump(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _fast_event(event: dict[str, Any], values: dict[str, Any]) -> bool:
    """Fill the event fields from an orjson-parsed event; False when a value needs _exact_values' semantics."""
    digest, root = event.get("hash", ""), event.get("merkle_root", "")
    metadata = event.get("metadata")
    if type(digest) is not str or type(root) is not str:
        return False
    if metadata is None:
        metadata = {}
    elif type(metadata) is not dict:
        return False
    values["payload_json"] = _sorted_dump(event.get("payload"))
    values["metadata_json"] = _metadata_json(metadata)
    values["hash"], values["merkle_root"] = digest, root
    extensions = event.get("extensions")
    if extensions is not None:
        values["extensions_json"] = _sorted_dump(extensions)
    return True


def _fast_state(state: dict[str, Any], values: dict[str, Any]) -> bool:
    """Fill the state fields from an orjson-parsed state; False when a value needs _exact_values' semantics."""
    version, archived = state.get("version", 0), state.get("archived", False)
    root, entries = state.get("merkle_root", ""), state.get("state")
    if type(version) is not int or type(archived) is not bool or type(root) is not str:
        return False
    if entries is None:
        entries = {}
    elif type(entries) is not dict:
        return False
    try:
        "".join(entries.values())  # the cheapest all-values-are-strings check
    except TypeError:
        return False
    values["state_version"] = version
    values["state_archived"] = archived
    values["state_merkle_root"] = root
    # Sorting is linear here: the proven-canonical wire text has its keys sorted already.
    values["state_entries"] = tuple(sorted(entries.items()))
    return True


def _fast_values(envelope_json: str) -> dict[str, Any] | None:
    """The fields via orjson when that is provably what _exact_values gives, else None.

    orjson.dumps(orjson.loads(t), sorted) == t proves the text is compact, key-sorted, orjson-escaped,
    free of duplicate keys and that every number token survives orjson's parse/print unchanged (this
    excludes -0, integers beyond 64 bits and floats orjson prints as `e+`); then every sub-document
    orjson prints is exactly the text the verbatim-number path prints.
    """
    try:
        doc = orjson.loads(envelope_json)
        canonical = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):  # invalid, or nested too deep to print
        return None
    if type(doc) is not dict or canonical != envelope_json.encode():
        return None
    values: dict[str, Any] = {}
    event, state, schema = doc.get("event"), doc.get("state"), doc.get("schema")
    if type(event) is dict and not _fast_event(event, values):
        return None
    if type(state) is dict and not _fast_state(state, values):
        return None
    if schema is not None:
        values["schema_json"] = _sorted_dump(schema)
    return values


# The layout timefmt.format_ts stores (fraction none, 3 or 6 digits, `Z`): datetime.fromisoformat reads it
# exactly as timefmt.parse_ts would (parse_ts pads the fraction to 6 digits and turns `Z` into `+00:00`).
_STORED_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{3}(?:[0-9]{3})?)?Z"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_micros(created_at: str) -> int:
    """to_epoch_micros(created_at), without its general RFC 3339 parse for the stored layout."""
    if _STORED_TIMESTAMP.fullmatch(created_at) is None:
        return to_epoch_micros(created_at)
    try:
        delta = datetime.fromisoformat(created_at) - _EPOCH
    except ValueError:
        return to_epoch_micros(created_at)  # raises its error for an impossible date
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def plugin_event_fields(
    envelope_json: str,
    *,
    aggregate_type: str,
    aggregate_id: str,
    event_type: str,
    version: int,
    event_id: int,
    created_at: str,
) -> PluginEventFields:
    """Map a stored envelope (plus the job's event columns) to PluginEvent fields; `sequence` is the sink's."""
    values = _fast_values(envelope_json)
    if values is None:
        values = _exact_values(envelope_json)
    return PluginEventFields(
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        event_type=event_type,
        event_version=version,
        event_id=str(event_id),
        created_at_epoch_micros=_epoch_micros(created_at),
        **values,
    )
