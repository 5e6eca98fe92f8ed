"""Property tests: validation only ever fails with a schema violation; coercions accept their own kinds."""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eventdbx.domain.json_value import JSONValue
from eventdbx.domain.restrict import RestrictMode
from eventdbx.domain.state import payload_map
from eventdbx.errors import SchemaViolationError
from eventdbx.schema import Schema, validate_append, validate_payload
from eventdbx.schema.formats import is_credit_card

RICH = Schema.from_dict(
    {
        "aggregate": "thing",
        "column_types": {
            "i": {"type": "integer", "range": {"min": "-5", "max": "5"}},
            "f": {"type": "float", "range": {"min": "0.5"}},
            "d": {"type": "decimal(6,2)", "range": {"max": "100.5"}},
            "b": "boolean",
            "t": {"type": "text", "contains": ["a"], "regex": ["^[a-z]+$"], "length": {"max": 5}},
            "e": {"type": "text", "format": "email"},
            "u": {"type": "text", "format": "url"},
            "c": {"type": "text", "format": "credit_card"},
            "ts": {"type": "timestamp", "range": {"min": "2000-01-01T00:00:00Z"}},
            "dt": {"type": "date", "range": {"max": "2030-01-01"}},
            "bin": {"type": "binary", "length": {"min": 1}},
            "o": {"type": "object", "properties": {"n": {"type": "integer", "required": True}}},
            "j": {"type": "json", "must_match": "j2"},
            "j2": "json",
            "m": {"type": "integer", "must_match": "i"},
        },
        "events": {"e": {}},
    }
)

_json: st.SearchStrategy[JSONValue] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)
_field_values = st.one_of(
    _json,
    st.sampled_from(
        ["1", " 2 ", "1.5", "abc", "a@b.co", "http://x.y", "4111111111111111", "2024-02-29",
         "2025-01-01T00:00:00Z", "aGk=", "true", "nan", "inf", "1e400"]
    ),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(RICH.column_types)), _field_values, max_size=6))
def test_validation_only_raises_schema_violations(payload: dict[str, Any]) -> None:
    try:
        validate_payload(RICH, "e", payload)
    except SchemaViolationError as exc:
        assert str(exc).startswith("schema violation: field ")


@given(_json)
def test_any_payload_shape_is_handled(payload: JSONValue) -> None:
    try:
        validate_append(RICH, RestrictMode.STRICT, "thing", "e", payload, payload_map(payload))
    except SchemaViolationError:
        pass


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_every_i64_is_an_integer_as_number_and_text(value: int) -> None:
    schema = Schema.from_dict({"aggregate": "a", "column_types": {"n": "int"}, "events": {"e": {}}})
    validate_payload(schema, "e", {"n": value})
    validate_payload(schema, "e", {"n": f" {value} "})


@given(st.binary(max_size=32))
def test_base64_of_any_bytes_is_binary(data: bytes) -> None:
    schema = Schema.from_dict(
        {"aggregate": "a", "column_types": {"b": "bytes"}, "events": {"e": {}}}
    )
    validate_payload(schema, "e", {"b": base64.b64encode(data).decode()})


def _luhn_complete(digits: str) -> str:
    for check in "0123456789":
        if is_credit_card(digits + check):
            return digits + check
    raise AssertionError("no Luhn check digit")


@given(st.text(alphabet="0123456789", min_size=11, max_size=18))
def test_luhn_has_exactly_one_check_digit(digits: str) -> None:
    complete = _luhn_complete(digits)
    valid = [d for d in "0123456789" if is_credit_card(digits + d)]
    assert valid == [complete[-1]]
