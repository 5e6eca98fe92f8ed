"""validation: §9 rules and their exact messages."""

from __future__ import annotations

import pytest

from eventdbx.domain.json_value import JSONValue
from eventdbx.domain.jsontext import parse_json
from eventdbx.domain.validation import (
    check_aggregate_id,
    check_first_event,
    check_metadata,
    check_note,
    check_payload_size,
    check_type_name,
)
from eventdbx.errors import CommandError, InvalidSchemaError


@pytest.mark.parametrize("name", ["order", "order_created", "a1_b2", "x" * 128])
def test_type_names_ok(name: str) -> None:
    check_type_name("aggregate_type", name)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Order", "invalid schema: event_type must be lowercase snake_case"),
        ("1order", "invalid schema: event_type must be lowercase snake_case"),
        ("", "invalid schema: event_type must be lowercase snake_case"),
        ("order\n", "invalid schema: event_type must be lowercase snake_case"),
        ("order-x", "invalid schema: event_type must be lowercase snake_case"),
        ("x" * 129, "invalid schema: event_type cannot exceed 128 characters"),
    ],
)
def test_type_names_rejected(value: str, message: str) -> None:
    with pytest.raises(InvalidSchemaError) as info:
        check_type_name("event_type", value)
    assert str(info.value) == message


@pytest.mark.parametrize("value", ["order-1", "A", "a_b-C9", "x" * 128])
def test_aggregate_ids_ok(value: str) -> None:
    check_aggregate_id(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (" a", "aggregate_id cannot include leading or trailing whitespace"),
        ("a\t", "aggregate_id cannot include leading or trailing whitespace"),
        ("a\u3000", "aggregate_id cannot include leading or trailing whitespace"),
        ("", "aggregate_id must not be empty"),
        ("x" * 129, "aggregate_id cannot exceed 128 characters"),
        ("é" * 65, "aggregate_id cannot exceed 128 characters"),
        ("é", "aggregate_id may only contain letters, numbers, underscores, or hyphens"),
        ("-a", "aggregate_id may only contain letters, numbers, underscores, or hyphens"),
        ("a b", "aggregate_id may only contain letters, numbers, underscores, or hyphens"),
        ("a\n", "aggregate_id cannot include leading or trailing whitespace"),
        ("a\x1f", "aggregate_id may only contain letters, numbers, underscores, or hyphens"),
    ],
)
def test_aggregate_ids_rejected(value: str, message: str) -> None:
    with pytest.raises(InvalidSchemaError) as info:
        check_aggregate_id(value)
    assert str(info.value) == "invalid schema: " + message


def test_metadata_ok_returns_canonical() -> None:
    meta = parse_json('{"@z":1e2,"@a-b_c":{"y":1,"x":[true]}}')
    assert check_metadata(meta) == '{"@a-b_c":{"x":[true],"y":1},"@z":100.0}'
    assert check_metadata({}) == "{}"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "invalid schema: metadata must be a JSON object"),
        ("x", "invalid schema: metadata must be a JSON object"),
        (None, "invalid schema: metadata must be a JSON object"),
        (
            {"plugin": 1},
            "invalid schema: metadata key 'plugin' must start with '@' followed by "
            "letters, numbers, underscores, or hyphens",
        ),
        (
            {"@ok": 1, "@": 1},
            "invalid schema: metadata key '@' must start with '@' followed by "
            "letters, numbers, underscores, or hyphens",
        ),
        (
            {"@_x": 1},
            "invalid schema: metadata key '@_x' must start with '@' followed by "
            "letters, numbers, underscores, or hyphens",
        ),
        ({"@p": "x" * 65536}, "invalid schema: metadata exceeds maximum size of 65536 bytes"),
    ],
)
def test_metadata_rejected(value: JSONValue, message: str) -> None:
    with pytest.raises(InvalidSchemaError) as info:
        check_metadata(value)
    assert str(info.value) == message


def test_metadata_size_boundary() -> None:
    fits = {"@p": "x" * (65536 - len('{"@p":""}'))}
    check_metadata(fits)
    with pytest.raises(InvalidSchemaError):
        check_metadata({"@p": "x" * (65537 - len('{"@p":""}'))})


def test_payload_size() -> None:
    check_payload_size('"' + "x" * 262142 + '"')
    check_payload_size('"' + "é" * 131071 + '"')
    with pytest.raises(InvalidSchemaError) as info:
        check_payload_size('"' + "x" * 262143 + '"')
    assert str(info.value) == "invalid schema: payload_json exceeds maximum size of 262144 bytes"
    with pytest.raises(InvalidSchemaError):
        check_payload_size('"' + "é" * 131072 + '"')


def test_note() -> None:
    check_note("n" * 128, socket=False)
    check_note("é" * 128, socket=True)
    with pytest.raises(CommandError) as cli:
        check_note("n" * 129, socket=False)
    assert str(cli.value) == "note cannot exceed 128 characters"
    assert not isinstance(cli.value, InvalidSchemaError)
    with pytest.raises(InvalidSchemaError) as sock:
        check_note("n" * 129, socket=True)
    assert str(sock.value) == "invalid schema: event note cannot exceed 128 characters"


def test_first_event() -> None:
    check_first_event("order_created")
    with pytest.raises(InvalidSchemaError) as info:
        check_first_event("order_updated")
    assert str(info.value) == (
        "invalid schema: first event for a new aggregate must end with '_created'"
    )
