"""Schema model: type names, §11 dict form, from_dict tolerance, new_schema name rules, round trips."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventdbx.errors import InvalidColumnTypeError, InvalidSchemaError
from eventdbx.schema import (
    ColumnType,
    EventDefinition,
    FieldFormat,
    LengthRule,
    RangeRule,
    Schema,
    new_schema,
    parse_type_name,
)

NOW = "2025-10-26T12:00:00Z"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("integer", "integer"),
        ("INT", "integer"),
        ("Float", "float"),
        ("double", "float"),
        ("decimal(10,2)", "decimal(10,2)"),
        ("NUMERIC( 5 , 0 )", "decimal(5,0)"),
        ("boolean", "boolean"),
        ("Bool", "boolean"),
        ("text", "text"),
        ("STRING", "text"),
        ("timestamp", "timestamp"),
        ("Date", "date"),
        ("json", "json"),
        ("binary", "binary"),
        ("BYTES", "binary"),
        ("object", "object"),
        ("  text  ", "text"),
    ],
)
def test_type_names_any_case_in_canonical_out(text: str, canonical: str) -> None:
    assert parse_type_name(text) == canonical


@pytest.mark.parametrize(
    "text", ["varchar", "", "decimal", "decimal(10)", "decimal(1,2,3)", "decimal(a,b)", "int8"]
)
def test_unknown_type_names(text: str) -> None:
    with pytest.raises(InvalidColumnTypeError) as info:
        parse_type_name(text)
    assert str(info.value) == f"invalid column type '{text}'"  # unprefixed, as cli.md §5
    assert isinstance(info.value, InvalidSchemaError)
    assert info.value.code == "invalid_schema"


def test_minimal_dict_gets_defaults() -> None:
    schema = Schema.from_dict(
        {"aggregate": "patient", "events": {"patient-updated": {"fields": ["status", "comment"]}}}
    )
    assert schema.to_dict() == {
        "aggregate": "patient",
        "snapshot_threshold": None,
        "locked": False,
        "field_locks": [],
        "hidden": False,
        "hidden_fields": [],
        "column_types": {},
        "events": {"patient-updated": {"fields": ["comment", "status"]}},
        "created_at": "1970-01-01T00:00:00Z",
        "updated_at": "1970-01-01T00:00:00Z",
    }


def test_to_dict_key_order_and_sorted_lists() -> None:
    schema = Schema(
        aggregate="order",
        snapshot_threshold=5,
        field_locks=("b", "a", "b"),
        hidden_fields=("z", "y"),
        column_types={
            "total": ColumnType(type="decimal(10,2)", range=RangeRule(min="0")),
            "name": ColumnType(type="text"),
        },
        events={
            "order_shipped": EventDefinition(fields=("b", "a", "a"), notes="ship it"),
            "order_created": EventDefinition(),
        },
        created_at=NOW,
        updated_at=NOW,
    )
    data = schema.to_dict()
    assert list(data) == [
        "aggregate",
        "snapshot_threshold",
        "locked",
        "field_locks",
        "hidden",
        "hidden_fields",
        "column_types",
        "events",
        "created_at",
        "updated_at",
    ]
    assert data["field_locks"] == ["a", "b"]
    assert data["hidden_fields"] == ["y", "z"]
    assert list(data["column_types"]) == ["name", "total"]
    assert data["column_types"]["name"] == "text"
    assert data["column_types"]["total"] == {
        "type": "decimal(10,2)",
        "range": {"min": "0", "max": None},
    }
    assert list(data["events"]) == ["order_created", "order_shipped"]
    assert data["events"]["order_created"] == {"fields": []}
    assert data["events"]["order_shipped"] == {"fields": ["a", "b"], "notes": "ship it"}


def test_rules_dict_order() -> None:
    column = ColumnType(
        type="text",
        required=True,
        contains=("a",),
        does_not_contain=("b",),
        regex=("^x",),
        length=LengthRule(min=1, max=9),
        range=RangeRule(max="z"),
        format=FieldFormat.EMAIL,
        must_match="other",
        properties={"n": ColumnType(type="integer")},
    )
    assert list(column.to_json()) == [
        "type",
        "required",
        "contains",
        "does_not_contain",
        "regex",
        "length",
        "range",
        "format",
        "must_match",
        "properties",
    ]


def test_column_types_from_dict_accept_aliases_and_rules() -> None:
    schema = Schema.from_dict(
        {
            "aggregate": "person",
            "column_types": {
                "age": "INT",
                "email": {"type": "String", "format": "email", "required": True},
                "address": {
                    "type": "object",
                    "properties": {"zip": {"type": "text", "length": {"min": 5}}, "city": "text"},
                },
                "score": {"type": "float", "range": {"min": 0, "max": 1.5}},
            },
            "events": {"person_created": {}},
        }
    )
    assert schema.column_types["age"] == ColumnType(type="integer")
    assert schema.column_types["email"].format is FieldFormat.EMAIL
    zip_column = schema.column_types["address"].properties["zip"]
    assert zip_column.length == LengthRule(min=5, max=None)
    assert schema.column_types["score"].range == RangeRule(min="0", max="1.5")
    assert schema.to_dict()["column_types"]["age"] == "integer"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "invalid schema: aggregate name must be provided"),
        ({"aggregate": "a", "locked": "yes"}, "invalid schema: locked must be a boolean"),
        ({"aggregate": "a", "field_locks": "x"}, "invalid schema: field_locks must be a list of strings"),
        ({"aggregate": "a", "column_types": {"f": "varchar"}}, "invalid column type 'varchar'"),
        ({"aggregate": "a", "column_types": {"f": {"format": "email"}}}, "invalid schema: column f must declare a type"),
        (
            {"aggregate": "a", "column_types": {"f": {"type": "text", "format": "phone"}}},
            "invalid schema: unsupported format 'phone' for field f",
        ),
        ({"aggregate": "a", "snapshot_threshold": -1}, "invalid schema: snapshot_threshold must be a non-negative integer"),
    ],
)  # fmt: skip
def test_from_dict_rejects_malformed(data: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSchemaError) as info:
        Schema.from_dict(data)
    assert str(info.value) == message


def test_new_schema() -> None:
    schema = new_schema("order", ["order_created", "order_shipped", "order_created"], 10, NOW)
    assert schema.aggregate == "order"
    assert list(schema.events) == ["order_created", "order_shipped"]
    assert schema.snapshot_threshold == 10
    assert schema.created_at == schema.updated_at == NOW
    assert not schema.locked and not schema.hidden and not schema.column_types


@pytest.mark.parametrize(
    ("aggregate", "events", "message"),
    [
        ("", ["a_created"], "invalid schema: aggregate name must be provided"),
        ("   ", ["a_created"], "invalid schema: aggregate name must be provided"),
        ("order", [], "invalid schema: at least one event must be provided"),
        ("Order", ["a"], "invalid schema: aggregate_type must be lowercase snake_case"),
        ("order-x", ["a"], "invalid schema: aggregate_type must be lowercase snake_case"),
        ("o" * 129, ["a"], "invalid schema: aggregate_type cannot exceed 128 characters"),
        ("order", ["ok", " "], "invalid schema: event names cannot be empty"),
        ("order", [""], "invalid schema: event names cannot be empty"),
        ("order", ["Order-Created"], "invalid schema: event_type must be lowercase snake_case"),
        ("order", ["e" * 129], "invalid schema: event_type cannot exceed 128 characters"),
    ],
)
def test_new_schema_errors(aggregate: str, events: list[str], message: str) -> None:
    with pytest.raises(InvalidSchemaError) as info:
        new_schema(aggregate, events, None, NOW)
    assert str(info.value) == message


def test_128_char_names_are_fine() -> None:
    assert new_schema("a" * 128, ["e" * 128], None, NOW).aggregate == "a" * 128


# --- round trips -------------------------------------------------------------------------------

_names = st.text(alphabet="abcdefghij_", min_size=1, max_size=8)
_texts = st.text(max_size=6)
_types = st.sampled_from(
    ["integer", "float", "decimal(10,2)", "boolean", "text", "timestamp", "date", "json", "binary"]
)


def _columns(depth: int) -> st.SearchStrategy[ColumnType]:
    props: st.SearchStrategy[dict[str, ColumnType]] = (
        st.dictionaries(_names, _columns(depth - 1), max_size=2) if depth > 0 else st.just({})
    )
    return st.builds(
        ColumnType,
        type=_types if depth == 0 else st.sampled_from(["object", "text"]),
        required=st.booleans(),
        contains=st.lists(_texts, max_size=2, unique=True).map(tuple),
        does_not_contain=st.lists(_texts, max_size=2, unique=True).map(tuple),
        regex=st.lists(_texts, max_size=2, unique=True).map(tuple),
        length=st.none() | st.builds(LengthRule, min=st.none() | st.integers(0, 9), max=st.none() | st.integers(0, 9)),
        range=st.none() | st.builds(RangeRule, min=st.none() | _texts, max=st.none() | _texts),
        format=st.none() | st.sampled_from(list(FieldFormat)),
        must_match=st.none() | _names,
        properties=props,
    )  # fmt: skip


_schemas = st.builds(
    Schema,
    aggregate=_names,
    snapshot_threshold=st.none() | st.integers(0, 1000),
    locked=st.booleans(),
    field_locks=st.lists(_names).map(tuple),
    hidden=st.booleans(),
    hidden_fields=st.lists(_names).map(tuple),
    column_types=st.dictionaries(_names, _columns(1), max_size=3),
    events=st.dictionaries(
        _names,
        st.builds(EventDefinition, fields=st.lists(_names).map(tuple), notes=st.none() | _texts),
        min_size=1,
        max_size=3,
    ),
    created_at=st.just(NOW),
    updated_at=st.just("2025-10-27T00:00:00.5Z"),
)


@given(_schemas)
def test_any_schema_round_trips_through_dicts_and_json(schema: Schema) -> None:
    data = schema.to_dict()
    assert Schema.from_dict(data) == schema
    assert Schema.from_dict(json.loads(json.dumps(data))) == schema
    assert Schema.from_dict(data).to_dict() == data
