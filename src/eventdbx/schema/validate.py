"""Schema enforcement on append (data-model.md §10 restrict modes, §11 validation steps 1-7). Pure.

Failures are `SchemaViolationError`s; the strict-mode "schema required" failure is `SchemaRequiredError`
(a `SchemaViolationError` whose CLI message is unprefixed; see errors.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from eventdbx.domain.json_value import JSONValue
from eventdbx.domain.jsontext import dumps_canonical
from eventdbx.domain.restrict import RestrictMode
from eventdbx.domain.state import payload_map as make_payload_map
from eventdbx.errors import SchemaRequiredError, SchemaViolationError
from eventdbx.schema.coerce import Coerced, coerce, violation
from eventdbx.schema.column_types import ColumnType
from eventdbx.schema.model import Schema
from eventdbx.schema.rules import check_rules

_MISSING = object()


def validate_append(
    schema: Schema | None,
    mode: RestrictMode,
    aggregate_type: str,
    event_type: str,
    payload: JSONValue,
    payload_map: Mapping[str, str],
) -> None:
    """Enforce `mode` for one append: off → nothing; default → validate if a schema exists;
    strict → a schema is required (`SchemaRequiredError`), then validate."""
    if mode == RestrictMode.OFF:
        return
    if schema is None:
        if mode == RestrictMode.STRICT:
            raise SchemaRequiredError(
                f"aggregate {aggregate_type} requires a schema before events can be appended "
                "when restrict=strict"
            )
        return
    _validate(schema, event_type, payload, payload_map)


def validate_payload(schema: Schema, event_type: str, payload: JSONValue) -> None:
    """`schema validate`: the §11 steps against `schema`, whatever the restrict mode."""
    _validate(schema, event_type, payload, make_payload_map(payload))


def _validate(
    schema: Schema, event_type: str, payload: JSONValue, payload_map: Mapping[str, str]
) -> None:
    aggregate = schema.aggregate
    if schema.locked:
        raise SchemaViolationError(f"aggregate {aggregate} is locked for updates")
    locks = set(schema.field_locks)
    for key in sorted(payload_map):
        if key in locks:
            raise SchemaViolationError(f"field {key} is locked for aggregate {aggregate}")
    event = schema.events.get(event_type)
    if event is None:
        raise SchemaViolationError(f"event {event_type} is not defined for aggregate {aggregate}")
    if event.fields:
        for name in event.fields:
            if name not in payload_map:
                raise SchemaViolationError(f"missing required field {name} for event {event_type}")
        permitted = set(event.fields)
        for key in sorted(payload_map):
            if key not in permitted:
                raise SchemaViolationError(f"field {key} is not permitted for event {event_type}")
    if schema.column_types:
        if not isinstance(payload, dict):
            raise SchemaViolationError(
                f"aggregate {aggregate} expects object payload for validation"
            )
        _check_columns(schema.column_types, payload, "")
        _check_must_match(schema.column_types, schema.column_types, payload, payload, "")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _check_columns(
    columns: Mapping[str, ColumnType], values: Mapping[str, JSONValue], prefix: str
) -> None:
    for name, column in columns.items():
        path = _join(prefix, name)
        if name not in values:
            if column.required:
                raise violation(path, "is required")
            continue
        value = values[name]
        coerced = coerce(column.type, value, path)
        if column.type == "object" and isinstance(value, dict):
            _check_columns(column.properties, value, path)
        check_rules(column, coerced, path)


def _lookup_column(columns: Mapping[str, ColumnType], target: str) -> ColumnType | None:
    column: ColumnType | None = None
    current = columns
    for part in target.split("."):
        column = current.get(part)
        if column is None:
            return None
        current = column.properties
    return column


def _lookup_value(payload: Mapping[str, JSONValue], target: str) -> object:
    current: object = payload
    for part in target.split("."):
        if not isinstance(current, dict) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _comparable(coerced: Coerced) -> object:
    if coerced.kind == "json":
        return dumps_canonical(coerced.value)  # type: ignore[arg-type]
    return (coerced.kind, coerced.value)


def _check_must_match(
    root_columns: Mapping[str, ColumnType],
    columns: Mapping[str, ColumnType],
    root: Mapping[str, JSONValue],
    values: Mapping[str, JSONValue],
    prefix: str,
) -> None:
    for name, column in columns.items():
        path = _join(prefix, name)
        value = values.get(name, _MISSING)
        if column.type == "object" and isinstance(value, dict) and column.properties:
            _check_must_match(root_columns, column.properties, root, value, path)
        if column.must_match is None:
            continue
        _match_one(root_columns, root, column, path, value)


def _match_one(
    root_columns: Mapping[str, ColumnType],
    root: Mapping[str, JSONValue],
    column: ColumnType,
    path: str,
    value: object,
) -> None:
    target = column.must_match
    assert target is not None
    target_column = _lookup_column(root_columns, target)
    if target_column is None:
        raise violation(path, f"must match {target}, but {target} is not defined in schema")
    if target_column.type != column.type:
        raise violation(path, f"must match {target}, but their types differ")
    target_value = _lookup_value(root, target)
    if value is _MISSING:
        if target_value is _MISSING:
            return
        raise violation(path, "is required but missing")
    if target_value is _MISSING:
        raise violation(path, f"must match {target}, but {target} is missing")
    mine = coerce(column.type, value, path)  # type: ignore[arg-type]
    theirs = coerce(target_column.type, target_value, target)  # type: ignore[arg-type]
    if _comparable(mine) != _comparable(theirs):
        raise violation(path, f"must match {target}")
