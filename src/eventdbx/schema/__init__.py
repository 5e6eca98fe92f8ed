"""JSON schemas for aggregates: model, parsing, validation and edits (pure, no I/O)."""

from __future__ import annotations

from eventdbx.schema.alter import (
    SchemaAlteration,
    alter,
    parse_column,
    parse_event_fields,
    parse_rules,
)
from eventdbx.schema.column_types import (
    ColumnType,
    FieldFormat,
    LengthRule,
    RangeRule,
    parse_type_name,
)
from eventdbx.schema.edit import add_events, annotate_event, hide_field, remove_event
from eventdbx.schema.model import EventDefinition, Schema, new_schema
from eventdbx.schema.validate import validate_append, validate_payload

__all__ = [
    "ColumnType",
    "EventDefinition",
    "FieldFormat",
    "LengthRule",
    "RangeRule",
    "Schema",
    "SchemaAlteration",
    "add_events",
    "alter",
    "annotate_event",
    "hide_field",
    "new_schema",
    "parse_column",
    "parse_event_fields",
    "parse_rules",
    "parse_type_name",
    "remove_event",
    "validate_append",
    "validate_payload",
]
