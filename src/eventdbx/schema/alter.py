"""`schema alter` (cli.md §5): the parsed options as one record, and the pure edit that applies them.

Order of application: snapshot threshold, lock, field locks, hidden, unhide fields, column types, dropped
columns, rules, cleared rules, added event fields, removed event fields. Nothing is applied if any step fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace

from eventdbx.domain.json_value import JSONValue
from eventdbx.domain.jsontext import parse_json
from eventdbx.errors import CommandError, InvalidSchemaError
from eventdbx.schema.column_types import ColumnType, parse_type_name, with_rules
from eventdbx.schema.model import EventDefinition, Schema, check_event_names, check_threshold

EventFields = tuple[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaAlteration:
    """The options of one `schema alter` call (repeatable options as tuples, in command-line order)."""

    snapshot_threshold: int | None = None
    clear_snapshot_threshold: bool = False
    locked: bool | None = None
    lock_fields: tuple[str, ...] = ()
    unlock_fields: tuple[str, ...] = ()
    hidden: bool | None = None
    unhide_fields: tuple[str, ...] = ()
    add_fields: tuple[EventFields, ...] = ()
    remove_fields: tuple[EventFields, ...] = ()
    columns: tuple[tuple[str, str], ...] = ()
    drop_columns: tuple[str, ...] = ()
    rules: tuple[tuple[str, JSONValue], ...] = ()
    clear_rules: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        """True when no option was given."""
        # locked/hidden are tri-state: False (--unlock, --unhide) is a request, only None is "not given".
        return all(
            getattr(self, f.name) is None if f.name in ("locked", "hidden") else _unset(getattr(self, f.name))
            for f in fields(self)
        )


def _unset(value: object) -> bool:
    return value is None or value is False or value == ()


def _split(option: str, text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep:
        raise CommandError(f"invalid value '{text}' for '{option}': expected NAME=VALUE")
    return name.strip(), value


def parse_event_fields(text: str, *, option: str = "--add-fields") -> EventFields:
    """`E=f1,f2` → `("E", ("f1", "f2"))`; `E=` gives no fields."""
    event, value = _split(option, text)
    if not value.strip():
        return event, ()
    return event, tuple(part.strip() for part in value.split(","))


def parse_column(text: str) -> tuple[str, str]:
    """`F=TYPE` → `("F", canonical type)`; raises `invalid column type 'X'`."""
    field, value = _split("--column", text)
    return field, parse_type_name(value)


def parse_rules(text: str) -> tuple[str, JSONValue]:
    """`F=JSON` → `("F", parsed JSON)`; JSON errors propagate as JsonSyntaxError."""
    field, value = _split("--rules", text)
    return field, parse_json(value)


def _check_field(name: str) -> str:
    if not name.strip():
        raise InvalidSchemaError("field name cannot be empty")
    return name


def _settings(schema: Schema, change: SchemaAlteration) -> Schema:
    threshold = schema.snapshot_threshold
    if change.clear_snapshot_threshold:
        threshold = None
    elif change.snapshot_threshold is not None:
        threshold = check_threshold(change.snapshot_threshold)
    locks = set(schema.field_locks) | {_check_field(f) for f in change.lock_fields}
    locks -= {_check_field(f) for f in change.unlock_fields}
    hidden_fields = set(schema.hidden_fields) - {_check_field(f) for f in change.unhide_fields}
    return replace(
        schema,
        snapshot_threshold=threshold,
        locked=schema.locked if change.locked is None else change.locked,
        field_locks=tuple(locks),
        hidden=schema.hidden if change.hidden is None else change.hidden,
        hidden_fields=tuple(hidden_fields),
    )


def _new_rules(field: str, current: ColumnType, rules: JSONValue) -> ColumnType:
    if not isinstance(rules, dict):
        raise InvalidSchemaError(f"rules for field {field} must be a JSON object")
    updated = with_rules(current, rules, path=field)
    if "properties" not in rules:
        updated = replace(updated, properties=current.properties)
    return updated


def _columns(schema: Schema, change: SchemaAlteration) -> dict[str, ColumnType]:
    columns = dict(schema.column_types)
    for field, type_text in change.columns:
        type_name = parse_type_name(type_text)
        existing = columns.get(_check_field(field))
        columns[field] = (
            ColumnType(type=type_name) if existing is None else replace(existing, type=type_name)
        )
    for field in change.drop_columns:
        columns.pop(_check_field(field), None)
    for field, rules in change.rules:
        current = columns.get(_check_field(field))
        if current is None:
            raise InvalidSchemaError(f"cannot update rules for undefined field {field}")
        columns[field] = _new_rules(field, current, rules)
    for field in change.clear_rules:
        current = columns.get(_check_field(field))
        if current is None:
            raise InvalidSchemaError(f"cannot update rules for undefined field {field}")
        columns[field] = ColumnType(type=current.type)
    return columns


def _events(
    events: Mapping[str, EventDefinition], add: Sequence[EventFields], remove: Sequence[EventFields]
) -> dict[str, EventDefinition]:
    result = dict(events)
    for event, names in add:
        if event not in result:
            check_event_names([event])
        current = result.get(event, EventDefinition())
        new_fields = tuple(_check_field(name) for name in names)
        result[event] = replace(current, fields=(*current.fields, *new_fields))
    for event, names in remove:
        existing = result.get(event)
        if existing is not None:
            dropped = set(names)
            kept = tuple(f for f in existing.fields if f not in dropped)
            result[event] = replace(existing, fields=kept)
    return result


def alter(schema: Schema, change: SchemaAlteration, now: str) -> Schema:
    """`schema alter`: apply every requested change at once and stamp updated_at=now."""
    if change.is_empty():
        raise CommandError("no schema changes were requested")
    updated = _settings(schema, change)
    return replace(
        updated,
        column_types=_columns(updated, change),
        events=_events(updated.events, change.add_fields, change.remove_fields),
        updated_at=now,
    )
