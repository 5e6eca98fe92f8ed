"""Pure schema edits behind the `schema` commands (cli.md §5): each returns a new Schema with updated_at=now.

`schema alter` lives in `alter.py` and is re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from eventdbx.errors import CommandError, InvalidSchemaError, SchemaViolationError
from eventdbx.schema.alter import SchemaAlteration, alter
from eventdbx.schema.model import EventDefinition, Schema, check_event_names

__all__ = [
    "MAX_NOTE_LENGTH",
    "SchemaAlteration",
    "add_events",
    "alter",
    "annotate_event",
    "hide_field",
    "remove_event",
]

MAX_NOTE_LENGTH = 128


def add_events(schema: Schema, events: Sequence[str], now: str) -> Schema:
    """`schema add`: define every missing event (existing ones are kept as they are)."""
    check_event_names(events)
    merged = dict(schema.events)
    for event in events:
        merged.setdefault(event, EventDefinition())
    return replace(schema, events=merged, updated_at=now)


def remove_event(schema: Schema, event: str, now: str) -> Schema:
    """`schema remove`: drop one event; the last event cannot be removed."""
    if event not in schema.events:
        raise SchemaViolationError(f"event {event} is not defined for aggregate {schema.aggregate}")
    if len(schema.events) == 1:
        raise SchemaViolationError(f"aggregate {schema.aggregate} must define at least one event")
    remaining = {name: ev for name, ev in schema.events.items() if name != event}
    return replace(schema, events=remaining, updated_at=now)


def annotate_event(schema: Schema, event: str, note: str | None, now: str) -> Schema:
    """`schema annotate`: set the event's default note, or clear it (`note=None`)."""
    definition = schema.events.get(event)
    if definition is None:
        raise SchemaViolationError(f"event {event} is not defined for aggregate {schema.aggregate}")
    if note is not None and len(note) > MAX_NOTE_LENGTH:
        raise CommandError(f"note cannot exceed {MAX_NOTE_LENGTH} characters")
    events = dict(schema.events)
    events[event] = replace(definition, notes=note)
    return replace(schema, events=events, updated_at=now)


def hide_field(schema: Schema, field: str, now: str) -> Schema:
    """`schema hide`: add `field` to hidden_fields (idempotent)."""
    if not field.strip():
        raise InvalidSchemaError("field name cannot be empty")
    return replace(schema, hidden_fields=(*schema.hidden_fields, field), updated_at=now)
