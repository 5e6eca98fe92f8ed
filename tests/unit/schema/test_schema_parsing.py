"""Malformed rule objects, tolerant event forms, and the RFC 3339 / date / number text parsers."""

from __future__ import annotations

from typing import Any

import pytest

from eventdbx.errors import InvalidSchemaError
from eventdbx.schema import EventDefinition, Schema
from eventdbx.schema.coerce import parse_date, parse_decimal, parse_f64, parse_i64, parse_rfc3339

EPOCH_2025 = 1_735_689_600 * 10**9  # 2025-01-01T00:00:00Z in ns


def _column(rules: Any) -> Schema:
    return Schema.from_dict({"aggregate": "a", "column_types": {"f": rules}, "events": {"e": {}}})


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (5, "column f must be a type name or an object"),
        ({"type": 5}, "column f must declare a type"),
        ({"type": "text", "required": "yes"}, "rule required for field f must be a boolean"),
        ({"type": "text", "contains": "a"}, "rule contains for field f must be a list of strings"),
        ({"type": "text", "regex": [1]}, "rule regex for field f must be a list of strings"),
        ({"type": "text", "length": 5}, "rule length for field f must be an object with min and max"),
        ({"type": "text", "length": {"min": -1}}, "length min for field f must be a non-negative integer"),
        ({"type": "text", "length": {"max": "5"}}, "length max for field f must be a non-negative integer"),
        ({"type": "integer", "range": {"min": True}}, "range min for field f must be a string"),
        ({"type": "integer", "range": {"max": [1]}}, "range max for field f must be a string"),
        ({"type": "text", "must_match": 1}, "rule must_match for field f must be a string"),
        ({"type": "object", "properties": []}, "properties for field f must be an object"),
        ({"type": "object", "properties": {"g": {"type": "nope"}}}, "invalid column type 'nope'"),
    ],
)  # fmt: skip
def test_malformed_rules(rules: Any, message: str) -> None:
    with pytest.raises(InvalidSchemaError) as info:
        _column(rules)
    assert info.value.detail == message


def test_numeric_range_bounds_are_kept_as_text() -> None:
    column = _column({"type": "float", "range": {"min": 1, "max": 2.5}}).column_types["f"]
    assert column.range is not None
    assert (column.range.min, column.range.max) == ("1", "2.5")


def test_unknown_rule_keys_are_ignored_when_reading_stored_schemas() -> None:
    column = _column({"type": "text", "reference": {"integrity": "weak"}}).column_types["f"]
    assert column.to_json() == "text"


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ({"e": 5}, "event e must be an object"),
        ({"e": {"fields": "a"}}, "fields of event e must be a list of strings"),
        ({"e": {"notes": 5}}, "notes of event e must be a string"),
        (5, "events must be an object"),
    ],
)
def test_malformed_events(events: Any, message: str) -> None:
    with pytest.raises(InvalidSchemaError) as info:
        Schema.from_dict({"aggregate": "a", "events": events})
    assert info.value.detail == message


def test_tolerant_event_forms() -> None:
    schema = Schema.from_dict(
        {"aggregate": "a", "events": {"x": None, "y": {"fields": None}}, "updated_at": "T"}
    )
    assert schema.events == {"x": EventDefinition(), "y": EventDefinition()}
    assert schema.created_at == schema.updated_at == "T"
    listed = Schema.from_dict({"aggregate": "a", "events": ["b", "a"]})
    assert list(listed.events) == ["a", "b"]
    with pytest.raises(InvalidSchemaError, match="created_at must be a string"):
        Schema.from_dict({"aggregate": "a", "created_at": 5})


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("2025-01-01T00:00:00Z", EPOCH_2025),
        ("2025-01-01T01:00:00+01:00", EPOCH_2025),
        ("2024-12-31T19:00:00-05:00", EPOCH_2025),
        ("2025-01-01 00:00:00z", EPOCH_2025),
        ("2025-01-01T00:00:00.5Z", EPOCH_2025 + 500_000_000),
        ("2025-01-01T00:00:00.123456789Z", EPOCH_2025 + 123_456_789),
        ("2025-01-01T00:00:00.1234567891Z", EPOCH_2025 + 123_456_789),
        ("2024-12-31T23:59:60Z", EPOCH_2025),  # leap second folds forward
        ("2025-01-01T00:00:00", None),
        ("2025-01-01T00:00:00.Z", None),
        ("2025-01-01T00:00:00+24:00", None),
        ("2025-01-01T24:00:00Z", None),
        ("2025-02-30T00:00:00Z", None),
        ("0000-01-01T00:00:00Z", None),
        (" 2025-01-01T00:00:00Z", None),
    ],
)
def test_parse_rfc3339(text: str, nanos: int | None) -> None:
    assert parse_rfc3339(text) == nanos


def test_small_parsers() -> None:
    assert parse_date("2025-01-31") is not None and parse_date("2025-1-31") is None
    assert parse_i64("-9223372036854775808") == -(2**63)
    assert parse_i64("9223372036854775808") is None
    assert parse_i64("1e3") is None
    assert parse_f64("-Infinity") == float("-inf") and parse_f64("1.") == 1.0
    assert parse_f64(".") is None and parse_f64("0x10") is None
    assert str(parse_decimal(".50")) == "0.50" and parse_decimal("1e2") is None
