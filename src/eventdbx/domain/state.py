"""Aggregate state as a flat string → string map (data-model.md §3): payload maps and folding. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from eventdbx.domain.json_value import JSONValue
from eventdbx.domain.jsontext import dumps_canonical, format_number, parse_canonical


def map_value(value: JSONValue) -> str:
    """§3 text of one value: string raw, null "", bool true/false, number §4, container compact canonical."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return format_number(value)
    return dumps_canonical(value)


def payload_map(payload: JSONValue) -> dict[str, str]:
    """The payload map of §3: object → per-key text; null → {}; anything else → {"_value": text}."""
    if isinstance(payload, dict):
        return {key: map_value(value) for key, value in payload.items()}
    if payload is None:
        return {}
    return {"_value": map_value(payload)}


def stored_payload_map(payload_json: str) -> dict[str, str]:
    """Payload map of a stored (canonical) payload text; equals payload_map of the value appended."""
    return payload_map(parse_canonical(payload_json))


def fold_state(state: Mapping[str, str], payload_map: Mapping[str, str]) -> dict[str, str]:
    """New state: `state` merged with `payload_map` (overwrite; keys are never removed)."""
    merged = dict(state)
    merged.update(payload_map)
    return merged
