"""§10 restrict modes and §11 validation steps 1-7 (locks, events, field sets, object payloads)."""

from __future__ import annotations

from typing import Any

import pytest

from eventdbx.domain.json_value import JSONValue
from eventdbx.domain.restrict import RestrictMode
from eventdbx.domain.state import payload_map
from eventdbx.errors import SchemaRequiredError, SchemaViolationError
from eventdbx.schema import ColumnType, EventDefinition, Schema, validate_append, validate_payload

STRICT_TEXT = "aggregate order requires a schema before events can be appended when restrict=strict"


def _schema(**changes: Any) -> Schema:
    base: dict[str, Any] = {
        "aggregate": "order",
        "events": {
            "order_created": EventDefinition(fields=("customer", "total")),
            "order_noted": EventDefinition(),
        },
    }
    base.update(changes)
    return Schema(**base)


def _append(schema: Schema | None, mode: RestrictMode, event: str, payload: JSONValue) -> None:
    validate_append(schema, mode, "order", event, payload, payload_map(payload))


def _violation(schema: Schema | None, mode: RestrictMode, event: str, payload: JSONValue) -> str:
    with pytest.raises(SchemaViolationError) as info:
        _append(schema, mode, event, payload)
    return str(info.value)


def test_off_ignores_everything() -> None:
    locked = _schema(locked=True, field_locks=("customer",))
    _append(locked, RestrictMode.OFF, "undefined_event", [1, 2])
    _append(None, RestrictMode.OFF, "anything", None)


def test_default_without_schema_is_ok() -> None:
    _append(None, RestrictMode.DEFAULT, "anything", {"x": 1})


def test_strict_without_schema_requires_one() -> None:
    with pytest.raises(SchemaRequiredError) as info:
        _append(None, RestrictMode.STRICT, "order_created", {"x": 1})
    error = info.value
    assert isinstance(error, SchemaViolationError)
    assert error.code == "schema_violation"
    assert str(error) == STRICT_TEXT  # CLI: `Error: aggregate order requires ...` (pinned)
    assert error.message == STRICT_TEXT
    assert error.wire_message == f"schema violation: {STRICT_TEXT}"  # socket form


def test_other_violations_send_the_same_text_on_the_wire() -> None:
    error = SchemaViolationError("event x is not defined for aggregate order")
    assert error.wire_message == error.message == str(error)


@pytest.mark.parametrize("mode", [RestrictMode.DEFAULT, RestrictMode.STRICT])
def test_default_and_strict_validate_when_schema_exists(mode: RestrictMode) -> None:
    _append(_schema(), mode, "order_created", {"customer": "c", "total": 1})
    message = _violation(_schema(), mode, "order_shipped", {})
    assert message == "schema violation: event order_shipped is not defined for aggregate order"


@pytest.mark.parametrize(
    ("schema", "event", "payload", "message"),
    [
        (_schema(locked=True), "order_noted", {}, "aggregate order is locked for updates"),
        (
            _schema(locked=True),
            "undefined",
            {},
            "aggregate order is locked for updates",
        ),
        (
            _schema(field_locks=("total", "zeta")),
            "order_noted",
            {"zeta": 1, "total": 2},
            "field total is locked for aggregate order",
        ),
        (
            _schema(field_locks=("customer",)),
            "undefined",
            {"customer": 1},
            "field customer is locked for aggregate order",
        ),
        (_schema(), "order_paid", {}, "event order_paid is not defined for aggregate order"),
        (
            _schema(),
            "order_created",
            {"total": 1},
            "missing required field customer for event order_created",
        ),
        (
            _schema(),
            "order_created",
            {"customer": "c", "total": 1, "extra": 2, "another": 3},
            "field another is not permitted for event order_created",
        ),
        (_schema(), "order_created", None, "missing required field customer for event order_created"),
        (_schema(), "order_created", 5, "missing required field customer for event order_created"),
        (
            _schema(column_types={"total": ColumnType(type="integer")}),
            "order_noted",
            [1],
            "aggregate order expects object payload for validation",
        ),
        (
            _schema(column_types={"total": ColumnType(type="integer")}),
            "order_noted",
            None,
            "aggregate order expects object payload for validation",
        ),
    ],
)  # fmt: skip
def test_steps_in_order(schema: Schema, event: str, payload: JSONValue, message: str) -> None:
    assert (
        _violation(schema, RestrictMode.DEFAULT, event, payload) == f"schema violation: {message}"
    )


def test_empty_fields_allow_any_keys_and_non_object_payloads() -> None:
    schema = _schema()
    _append(schema, RestrictMode.DEFAULT, "order_noted", {"anything": [1, {"x": None}]})
    _append(schema, RestrictMode.DEFAULT, "order_noted", "plain")
    _append(schema, RestrictMode.DEFAULT, "order_noted", None)


def test_scalar_payload_uses_value_key() -> None:
    schema = _schema(events={"order_noted": EventDefinition(fields=("_value",))})
    _append(schema, RestrictMode.DEFAULT, "order_noted", 7)


def test_undeclared_columns_are_free_and_missing_optional_columns_skipped() -> None:
    schema = _schema(column_types={"total": ColumnType(type="integer")})
    _append(schema, RestrictMode.DEFAULT, "order_noted", {"other": "x"})


def test_validate_payload_ignores_restrict_mode() -> None:
    schema = _schema()
    validate_payload(schema, "order_created", {"customer": "c", "total": 1})
    with pytest.raises(SchemaViolationError) as info:
        validate_payload(schema, "order_paid", {})
    assert (
        str(info.value) == "schema violation: event order_paid is not defined for aggregate order"
    )
