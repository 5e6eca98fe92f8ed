"""§11 rule failures: string rules, formats, length, range (typed bounds), nested properties, must_match."""

from __future__ import annotations

from typing import Any

import pytest

from eventdbx.domain.json_value import JSONValue
from eventdbx.errors import SchemaViolationError
from eventdbx.schema import Schema, validate_payload
from eventdbx.schema.formats import is_credit_card, is_email, is_url
from eventdbx.schema.rules import format_f64


def _violation(columns: dict[str, Any], payload: JSONValue) -> str | None:
    schema = Schema.from_dict({"aggregate": "thing", "column_types": columns, "events": {"e": {}}})
    try:
        validate_payload(schema, "e", payload)
    except SchemaViolationError as exc:
        return exc.detail
    return None


def _one(rules: dict[str, Any], value: JSONValue) -> str | None:
    return _violation({"f": rules}, {"f": value})


OK = None
T = {"type": "text"}


@pytest.mark.parametrize(
    ("rules", "value", "expected"),
    [
        ({**T, "contains": ["@", "."]}, "a@b.c", OK),
        ({**T, "contains": ["@", "."]}, "a@b", "field f must contain '.'"),
        ({**T, "does_not_contain": ["x"]}, "abc", OK),
        ({**T, "does_not_contain": ["b"]}, "abc", "field f must not contain 'b'"),
        ({**T, "regex": ["b+"]}, "abbc", OK),  # unanchored search
        ({**T, "regex": ["^b"]}, "abc", "field f must match pattern ^b"),
        ({**T, "regex": ["a", "("]}, "abc", None),  # replaced below: invalid regex message
        ({**T, "format": "email"}, "a.b+c@example.com", OK),
        ({**T, "format": "email"}, "not-an-email", "field f must be a valid email address"),
        ({**T, "format": "url"}, "https://example.com/x?y=1", OK),
        ({**T, "format": "url"}, "example.com", "field f must be a valid URL"),
        ({**T, "format": "credit_card"}, "4111 1111-1111 1111", OK),
        ({**T, "format": "credit_card"}, "4111111111111112", "field f must be a valid credit card number"),
        ({"type": "integer", "contains": ["1"]}, 1, "field f must be a string"),
        ({"type": "integer", "format": "email"}, 1, "field f must be a string"),
        ({"type": "binary", "regex": ["x"]}, "eA==", "field f must be a string"),
        ({**T, "length": {"min": 2, "max": 3}}, "ab", OK),
        ({**T, "length": {"min": 2}}, "é", "field f must have length >= 2"),  # chars, not bytes
        ({**T, "length": {"max": 3}}, "éééé", "field f must have length <= 3"),
        ({**T, "length": {"min": 2}, "contains": ["a"]}, "a", "field f must have length >= 2"),
        ({**T, "length": {"min": 9}, "contains": ["z"]}, "a", "field f must contain 'z'"),
        ({"type": "binary", "length": {"max": 2}}, "aGk=", OK),  # 2 bytes
        ({"type": "binary", "length": {"max": 2}}, "aGVsbG8=", "field f must have length <= 2"),
        ({"type": "integer", "length": {"max": 2}}, 5, "field f does not support length validation"),
        ({"type": "integer", "range": {"min": "1", "max": " 10 "}}, 10, OK),
        ({"type": "integer", "range": {"min": "1"}}, 0, "field f must be >= 1"),
        ({"type": "integer", "range": {"max": " 10 "}}, "11", "field f must be <= 10"),
        ({"type": "integer", "range": {"min": "1.5"}}, 1, "field f range minimum '1.5' is not a valid integer"),
        ({"type": "integer", "range": {"max": "x"}}, 1, "field f range maximum 'x' is not a valid integer"),
        ({"type": "float", "range": {"min": "0.5"}}, 0.25, "field f must be >= 0.5"),
        ({"type": "float", "range": {"max": "5.0"}}, 6, "field f must be <= 5"),
        ({"type": "float", "range": {"max": "1e20"}}, 1e21, "field f must be <= 100000000000000000000"),
        ({"type": "float", "range": {"min": "abc"}}, 1, "field f range minimum 'abc' is not a valid float"),
        ({"type": "decimal(10,2)", "range": {"min": "1.50"}}, "1.49", "field f must be >= 1.50"),
        ({"type": "decimal(10,2)", "range": {"max": "2"}}, "2.00", OK),
        ({"type": "decimal(10,2)", "range": {"max": "two"}}, "1", "field f range maximum 'two' is not a valid decimal"),
        ({"type": "timestamp", "range": {"min": "2025-01-01T00:00:00Z"}}, "2025-01-01T01:00:00+01:00", OK),
        ({"type": "timestamp", "range": {"min": "2025-01-01T00:00:00Z"}}, "2024-12-31T23:59:59Z", "field f must be >= 2025-01-01T00:00:00Z"),
        ({"type": "timestamp", "range": {"max": "2025-01-01T00:00:00Z"}}, "2025-01-01T00:00:00.000000001Z", "field f must be <= 2025-01-01T00:00:00Z"),
        ({"type": "timestamp", "range": {"max": "tomorrow"}}, "2025-01-01T00:00:00Z", "field f range boundary 'tomorrow' is not a valid RFC3339 timestamp"),
        ({"type": "date", "range": {"min": "2025-01-01", "max": "2025-12-31"}}, "2025-06-01", OK),
        ({"type": "date", "range": {"min": "2025-01-01"}}, "2024-12-31", "field f must be on or after 2025-01-01"),
        ({"type": "date", "range": {"max": "2025-12-31"}}, "2026-01-01", "field f must be on or before 2025-12-31"),
        ({"type": "date", "range": {"min": "2025/01/01"}}, "2025-06-01", "field f range boundary '2025/01/01' is not a valid date (YYYY-MM-DD)"),
        ({**T, "range": {"min": "a"}}, "b", "field f does not support range validation"),
        ({"type": "boolean", "range": {"min": "0"}}, True, "field f does not support range validation"),
        ({"type": "json", "range": {"min": "0"}}, 1, "field f does not support range validation"),
        ({"type": "integer", "properties": {"x": "text"}}, 1, "field f cannot define nested properties on non-object type"),
        ({"type": "json", "properties": {"x": "text"}}, 1, OK),
    ],
)  # fmt: skip
def test_rules(rules: dict[str, Any], value: JSONValue, expected: str | None) -> None:
    if rules.get("regex") == ["a", "("]:
        message = _one(rules, value)
        assert message is not None
        assert message.startswith("field f has invalid regex '(': ")
        return
    assert _one(rules, value) == expected


def test_missing_column_skips_its_rules() -> None:
    assert _one({"type": "text", "length": {"min": 5}}, "abcdef") is None
    assert _violation({"f": {"type": "text", "length": {"min": 5}}}, {}) is None


def test_nested_properties_use_dot_paths() -> None:
    columns = {
        "address": {
            "type": "object",
            "required": True,
            "properties": {
                "zip": {"type": "text", "length": {"min": 5}},
                "geo": {
                    "type": "object",
                    "properties": {"lat": {"type": "float", "required": True}},
                },
            },
        }
    }
    assert _violation(columns, {"address": {"zip": "12345", "geo": {"lat": 1}}}) is None
    assert (
        _violation(columns, {"address": {"zip": "123"}})
        == "field address.zip must have length >= 5"
    )
    assert _violation(columns, {"address": {"geo": {}}}) == "field address.geo.lat is required"
    assert (
        _violation(columns, {"address": {"geo": {"lat": "x"}}})
        == "field address.geo.lat must be a float"
    )
    assert _violation(columns, {"address": {"geo": 1}}) == "field address.geo must be a JSON object"
    assert _violation(columns, {}) == "field address is required"


MATCH = {
    "password": {"type": "text"},
    "confirm": {"type": "text", "must_match": "password"},
}


@pytest.mark.parametrize(
    ("columns", "payload", "expected"),
    [
        (MATCH, {"password": "s3cret", "confirm": "s3cret"}, OK),
        (MATCH, {"password": "s3cret", "confirm": "other"}, "field confirm must match password"),
        (
            MATCH,
            {"confirm": "s3cret"},
            "field confirm must match password, but password is missing",
        ),
        (MATCH, {"password": "s3cret"}, "field confirm is required but missing"),
        (MATCH, {}, OK),
        (
            {"confirm": {"type": "text", "must_match": "password"}},
            {"confirm": "x", "password": "x"},
            "field confirm must match password, but password is not defined in schema",
        ),
        (
            {"password": "integer", "confirm": {"type": "text", "must_match": "password"}},
            {"confirm": "1", "password": 1},
            "field confirm must match password, but their types differ",
        ),
        (
            {"a": "integer", "b": {"type": "integer", "must_match": "a"}},
            {"a": 5, "b": "5"},
            OK,  # compared after coercion
        ),
        (
            {"a": "decimal(5,2)", "b": {"type": "decimal(5,2)", "must_match": "a"}},
            {"a": "1.5", "b": "1.50"},
            OK,
        ),
        (
            {"a": "json", "b": {"type": "json", "must_match": "a"}},
            {"a": {"x": [1, 2]}, "b": {"x": [1, 2]}},
            OK,
        ),
        (
            {"a": "json", "b": {"type": "json", "must_match": "a"}},
            {"a": {"x": 1}, "b": {"x": 2}},
            "field b must match a",
        ),
        (
            {
                "user": {"type": "object", "properties": {"email": "text"}},
                "contact": {
                    "type": "object",
                    "properties": {"email": {"type": "text", "must_match": "user.email"}},
                },
            },
            {"user": {"email": "a@b.c"}, "contact": {"email": "x@y.z"}},
            "field contact.email must match user.email",
        ),
        (
            {
                "user": {"type": "object", "properties": {"email": "text"}},
                "copy": {"type": "text", "must_match": "user.email"},
            },
            {"user": {"email": "a@b.c"}, "copy": "a@b.c"},
            OK,
        ),
    ],
)
def test_must_match(columns: dict[str, Any], payload: JSONValue, expected: str | None) -> None:
    assert _violation(columns, payload) == expected


def test_type_errors_win_over_must_match() -> None:
    columns = {"a": "integer", "b": {"type": "integer", "must_match": "a"}}
    assert _violation(columns, {"a": 1, "b": "x"}) == "field b must be an integer"


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("user@example.com", True),
        ("first.last+tag@sub.example.co.uk", True),
        ("user@[127.0.0.1]", True),
        ("user@localhost", True),
        ("user@", False),
        ("@example.com", False),
        ("user@exa mple.com", False),
        ("user@-example.com", False),
        ("a" * 65 + "@example.com", False),
        ("user@bücher.de", True),
    ],
)
def test_email(text: str, ok: bool) -> None:
    assert is_email(text) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("http://example.com", True),
        ("https://user:pw@example.com:8080/p?q#f", True),
        ("http://[::1]:80/", True),
        ("mailto:someone@example.com", True),
        ("ftp://files.example.com", True),
        ("http://", False),
        ("http://exa mple.com", False),
        ("http://example.com:99999", False),
        ("example.com", False),
        ("/relative/path", False),
        ("", False),
    ],
)
def test_url(text: str, ok: bool) -> None:
    assert is_url(text) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("4111111111111111", True),
        ("4111-1111-1111-1111", True),
        ("378282246310005", True),  # 15 digits (Amex test number)
        ("4111111111111112", False),  # Luhn
        ("41111111111", False),  # 11 digits
        ("4" * 20, False),
        ("4111 1111 1111 111a", False),
        ("", False),
    ],
)
def test_credit_card(text: str, ok: bool) -> None:
    assert is_credit_card(text) is ok


@pytest.mark.parametrize(
    ("value", "text"),
    [(5.0, "5"), (0.5, "0.5"), (1e20, "100000000000000000000"), (-0.0, "-0"), (1e-7, "0.0000001")],
)
def test_rust_float_display(value: float, text: str) -> None:
    assert format_f64(value) == text
