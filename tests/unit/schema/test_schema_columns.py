"""§11 column types (coercion) and rules: every message of the type and rule tables."""

from __future__ import annotations

from typing import Any

import pytest

from eventdbx.domain.json_value import JSONValue
from eventdbx.domain.jsontext import parse_json
from eventdbx.errors import SchemaViolationError
from eventdbx.schema import Schema, validate_payload


def _schema(columns: dict[str, Any]) -> Schema:
    return Schema.from_dict({"aggregate": "thing", "column_types": columns, "events": {"e": {}}})


def _check(column: Any, value: JSONValue) -> str | None:
    """None when `{"f": value}` passes, else the violation text without the prefix."""
    try:
        validate_payload(_schema({"f": column}), "e", {"f": value})
    except SchemaViolationError as exc:
        assert str(exc).startswith("schema violation: ")
        return exc.detail
    return None


OK = None


@pytest.mark.parametrize(
    ("type_name", "value", "expected"),
    [
        ("integer", 5, OK),
        ("integer", -(2**63), OK),
        ("integer", 2**63 - 1, OK),
        ("integer", " 42 ", OK),
        ("integer", "+7", OK),
        ("integer", 2**63, "field f exceeds signed integer range"),
        ("integer", 2**64 - 1, "field f exceeds signed integer range"),
        ("integer", 1.0, "field f must be an integer"),
        ("integer", "1.5", "field f must be an integer"),
        ("integer", "1_000", "field f must be an integer"),
        ("integer", "9223372036854775808", "field f must be an integer"),
        ("integer", True, "field f must be an integer"),
        ("integer", None, "field f must be an integer"),
        ("float", 1, OK),
        ("float", 1.5, OK),
        ("float", " 2.5e3 ", OK),
        ("float", "inf", OK),
        ("float", "abc", "field f must be a float"),
        ("float", "1_0", "field f must be a float"),
        ("float", False, "field f must be a float"),
        ("float", [1], "field f must be a float"),
        ("decimal(5,2)", "123.45", OK),
        ("decimal(5,2)", 1.5, OK),
        ("decimal(5,2)", 12, OK),
        ("decimal(5,2)", " -1.50 ", OK),
        ("decimal(5,2)", "1.234", "field f must have at most 2 decimal places"),
        ("decimal(5,2)", "12345.6", "field f must have precision <= 5"),
        ("decimal(5,2)", "0.5", OK),
        ("decimal(2,1)", "0.5", OK),
        ("decimal(1,1)", "0.5", "field f must have precision <= 1"),
        ("decimal(5,0)", 1e2, "field f must have at most 0 decimal places"),  # §4 text "100.0"
        ("decimal(5,2)", "abc", "field f must be a decimal value"),
        ("decimal(5,2)", "1e2", "field f must be a decimal value"),
        ("decimal(5,2)", True, "field f must be a decimal value"),
        ("decimal(5,2)", None, "field f must be a decimal value"),
        ("boolean", True, OK),
        ("boolean", 0, OK),
        ("boolean", 1, OK),
        ("boolean", " TRUE ", OK),
        ("boolean", "False", OK),
        ("boolean", "0", OK),
        ("boolean", 2, "field f must be a boolean"),
        ("boolean", 1.0, "field f must be a boolean"),
        ("boolean", "yes", "field f must be a boolean"),
        ("boolean", None, "field f must be a boolean"),
        ("text", "hello", OK),
        ("text", "", OK),
        ("text", 5, "field f must be a string"),
        ("text", None, "field f must be a string"),
        ("timestamp", "2025-10-26T12:00:00Z", OK),
        ("timestamp", "2025-10-26T12:00:00.123456789+02:00", OK),
        ("timestamp", "2025-10-26t12:00:00z", OK),
        ("timestamp", "2025-10-26", "field f must be an RFC3339 timestamp"),
        ("timestamp", "2025-10-26T12:00:00", "field f must be an RFC3339 timestamp"),
        ("timestamp", "2025-13-26T12:00:00Z", "field f must be an RFC3339 timestamp"),
        ("timestamp", 1700000000, "field f must be an RFC3339 timestamp"),
        ("date", "2024-02-29", OK),
        ("date", "2023-02-29", "field f must be a date formatted as YYYY-MM-DD"),
        ("date", "2024-2-1", "field f must be a date formatted as YYYY-MM-DD"),
        ("date", "2024-02-01T00:00:00Z", "field f must be a date formatted as YYYY-MM-DD"),
        ("date", 20240201, "field f must be a date formatted as YYYY-MM-DD"),
        ("binary", "aGVsbG8=", OK),
        ("binary", "", OK),
        ("binary", "aGVsbG8", "field f must be base64 encoded"),
        ("binary", "aGVs bG8=", "field f must be base64 encoded"),
        ("binary", "aGVsbG8_", "field f must be base64 encoded"),
        ("binary", 5, "field f must be base64 encoded"),
        ("object", {"a": 1}, OK),
        ("object", [], "field f must be a JSON object"),
        ("object", "{}", "field f must be a JSON object"),
        ("json", None, OK),
        ("json", [1, {"a": 2}], OK),
    ],
)
def test_types(type_name: str, value: JSONValue, expected: str | None) -> None:
    assert _check(type_name, value) == expected


def test_missing_required_and_optional() -> None:
    schema = _schema({"a": {"type": "text", "required": True}, "b": "integer"})
    with pytest.raises(SchemaViolationError) as info:
        validate_payload(schema, "e", {"b": 1})
    assert str(info.value) == "schema violation: field a is required"
    validate_payload(schema, "e", {"a": "x"})


def test_columns_are_checked_in_name_order() -> None:
    schema = _schema({"b": "integer", "a": "integer"})
    with pytest.raises(SchemaViolationError) as info:
        validate_payload(schema, "e", {"a": "x", "b": "y"})
    assert str(info.value) == "schema violation: field a must be an integer"


def test_payload_numbers_follow_section_4() -> None:
    schema = _schema({"f": "decimal(4,1)"})
    validate_payload(schema, "e", parse_json('{"f": 1.50}'))  # "1.5"
    validate_payload(schema, "e", parse_json('{"f": 1e2}'))  # "100.0": 4 digits, scale 1
    with pytest.raises(SchemaViolationError) as info:
        validate_payload(schema, "e", parse_json('{"f": 12345}'))
    assert str(info.value) == "schema violation: field f must have precision <= 4"
