"""jsontext: §4 number parsing/printing, §1 escaping and canonical dumps, reference error messages."""

from __future__ import annotations

import json
import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventdbx.domain.jsontext import (
    dumps_canonical,
    format_number,
    load_canonical,
    parse_json,
    to_compact,
    to_pretty,
)
from eventdbx.errors import JsonSyntaxError

PRINT_TABLE = [
    ("-0", "-0.0"),
    ("0.0", "0.0"),
    ("1E2", "100.0"),
    ("1e2", "100.0"),
    ("3.0", "3.0"),
    ("1e15", "1000000000000000.0"),
    ("2.50", "2.5"),
    ("123456789.123", "123456789.123"),
    ("0.00001", "0.00001"),
    ("0.0001", "0.0001"),
    ("1e16", "1e16"),
    ("1e20", "1e20"),
    ("1e21", "1e21"),
    ("0.000001", "1e-6"),
    ("1e-7", "1e-7"),
    ("1.5e-7", "1.5e-7"),
    ("18446744073709551616", "1.8446744073709552e19"),
    ("2.5e300", "2.5e300"),
    ("123456789012345678901234", "1.2345678901234567e23"),
    ("-9223372036854775809", "-9.223372036854776e18"),
    ("-9223372036854775808", "-9223372036854775808"),
    ("18446744073709551615", "18446744073709551615"),
    ("12", "12"),
    ("-12", "-12"),
    ("1.7976931348623157e308", "1.7976931348623157e308"),
    ("5e-324", "5e-324"),
    ("1e-400", "0.0"),
    ("-1e-400", "-0.0"),
    ("0e999999999999", "0.0"),
    ("1e-99999999999", "0.0"),
]


@pytest.mark.parametrize(("token", "printed"), PRINT_TABLE)
def test_number_table(token: str, printed: str) -> None:
    assert dumps_canonical(parse_json(token)) == printed
    assert format_number(parse_json(token)) == printed  # type: ignore[arg-type]
    assert dumps_canonical(parse_json(f"[{token}]")) == f"[{printed}]"
    assert dumps_canonical(parse_json(f'{{"k": {token}}}')) == f'{{"k":{printed}}}'


def test_exact_not_correctly_rounded() -> None:
    value = parse_json("123456789012345678901234")
    assert value == 1.2345678901234567e23
    assert value != float("123456789012345678901234")  # one ulp below correct rounding


def test_integer_kinds() -> None:
    assert parse_json("18446744073709551615") == 2**64 - 1
    assert isinstance(parse_json("18446744073709551615"), int)
    assert isinstance(parse_json("18446744073709551616"), float)
    assert isinstance(parse_json("-9223372036854775808"), int)
    assert isinstance(parse_json("-9223372036854775809"), float)
    neg_zero = parse_json("-0")
    assert isinstance(neg_zero, float) and math.copysign(1.0, neg_zero) == -1.0
    assert parse_json('"-0"') == "-0"
    assert parse_json('["x-0", -0]') == ["x-0", -0.0]


def test_long_integer_then_fraction_quirk() -> None:
    # Integer digits past u64 are dropped (e += 1 each); a later fraction digit may still fit.
    assert parse_json("18446744073709551619.5") == float(18446744073709551615)


@pytest.mark.parametrize("k", [0, 1, 5, 22, 23, 100, 308])
def test_powers_of_ten(k: int) -> None:
    assert parse_json(f"1e{k}") == float(f"1e{k}")
    assert parse_json(f"1e-{k}") == 1.0 / float(f"1e{k}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{1:2}", "key must be a string at line 1 column 2"),
        ("", "EOF while parsing a value at line 1 column 0"),
        ("   ", "EOF while parsing a value at line 1 column 3"),
        ("x", "expected value at line 1 column 1"),
        ("NaN", "expected value at line 1 column 1"),
        ("Infinity", "expected value at line 1 column 1"),
        ("-Infinity", "invalid number at line 1 column 2"),
        ("[1,2", "EOF while parsing a list at line 1 column 4"),
        ('{"a":1', "EOF while parsing an object at line 1 column 6"),
        ('{"a"', "EOF while parsing an object at line 1 column 4"),
        ('"abc', "EOF while parsing a string at line 1 column 4"),
        ("[1 2]", "expected `,` or `]` at line 1 column 4"),
        ('{"a":1 "b":2}', "expected `,` or `}` at line 1 column 8"),
        ('{"a" 1}', "expected `:` at line 1 column 6"),
        ("1 2", "trailing characters at line 1 column 3"),
        ("{}x", "trailing characters at line 1 column 3"),
        ("01", "invalid number at line 1 column 2"),
        ("1.", "EOF while parsing a value at line 1 column 2"),
        ("1.x", "invalid number at line 1 column 3"),
        ("1e", "EOF while parsing a value at line 1 column 2"),
        ("1e+x", "invalid number at line 1 column 4"),
        ("-", "EOF while parsing a value at line 1 column 1"),
        ("-a", "invalid number at line 1 column 2"),
        ("1e400", "number out of range at line 1 column 5"),
        ("[1e309]", "number out of range at line 1 column 6"),
        ("1e99999999999", "number out of range at line 1 column 12"),
        ('"\\x"', "invalid escape at line 1 column 3"),
        ('"\\u12G4"', "invalid escape at line 1 column 7"),
        (
            '"a\x01"',
            "control character (\\u0000-\\u001F) found while parsing a string at line 1 column 3",
        ),
        ('"\\udc00"', "lone leading surrogate in hex escape at line 1 column 7"),
        ('"\\ud800"', "unexpected end of hex escape at line 1 column 8"),
        ("[1,]", "trailing comma at line 1 column 4"),
        ('{"a":1,}', "trailing comma at line 1 column 8"),
        ("nul", "EOF while parsing a value at line 1 column 3"),
        ("nulx", "expected ident at line 1 column 4"),
        ('{\n  "a": 1,\n  "b" 2\n}', "expected `:` at line 3 column 7"),
        ('{"é":1 x', "expected `,` or `}` at line 1 column 9"),
        ('"\\é"', "invalid escape at line 1 column 3"),
        ('"\\u1é"', "invalid escape at line 1 column 7"),
        ('"\\u1é', "EOF while parsing a string at line 1 column 6"),
        ('"\\u12', "EOF while parsing a string at line 1 column 5"),
        ("nué", "expected ident at line 1 column 3"),
        ("-é", "invalid number at line 1 column 2"),
        ("1eé", "invalid number at line 1 column 3"),
        ("[1,é]", "expected value at line 1 column 4"),
        ('{"a":1}é', "trailing characters at line 1 column 8"),
        ('"\\ud800\\é"', "unexpected end of hex escape at line 1 column 9"),
        ('"\\ud800é"', "unexpected end of hex escape at line 1 column 8"),
        ('"\\ud800\\u0041"', "lone leading surrogate in hex escape at line 1 column 13"),
        ("[\n  1,\n  2\n  3]", "expected `,` or `]` at line 4 column 3"),
        (
            '"a\nb"',
            "control character (\\u0000-\\u001F) found while parsing a string at line 2 column 0",
        ),
        ("1.\n", "invalid number at line 2 column 0"),
        ("[" * 128 + "]" * 128, "recursion limit exceeded at line 1 column 128"),
        ('{"a":' * 128 + "1" + "}" * 128, "recursion limit exceeded at line 1 column 636"),
    ],
)
def test_error_messages(text: str, message: str) -> None:
    with pytest.raises(JsonSyntaxError) as info:
        parse_json(text)
    assert str(info.value) == message


def test_depth_127_accepted() -> None:
    assert parse_json("[" * 127 + "]" * 127) is not None
    deep = parse_json('{"a":' * 127 + "1" + "}" * 127)
    assert isinstance(deep, dict)


def test_very_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(JsonSyntaxError, match="recursion limit exceeded"):
        parse_json("[" * 100_000)


def test_duplicate_keys_last_wins() -> None:
    assert parse_json('{"a":1,"a":2}') == {"a": 2}


def test_surrogate_pairs() -> None:
    assert parse_json('"\\ud83d\\ude00"') == "\U0001f600"
    assert parse_json('"\\\\ud800"') == "\\ud800"  # escaped backslash, not an escape


def test_escaping() -> None:
    text = dumps_canonical('"\\\b\f\n\r\t\x00\x1f\x7f/é\u2028\U0001f600')
    assert text == '"\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u001f\x7f/é\u2028\U0001f600"'


def test_keys_sorted_by_code_point_at_every_depth() -> None:
    value = parse_json('{"b":{"z":1,"a":2},"a":[{"y":1,"x":2}],"\\uffff":0,"\\ud800\\udc00":0}')
    assert dumps_canonical(value) == (
        '{"a":[{"x":2,"y":1}],"b":{"a":2,"z":1},"\uffff":0,"\U00010000":0}'
    )


def test_compact_and_pretty_with_fragments() -> None:
    record = {"z": 1, "payload": orjson.Fragment('{"b":[1,1e16,{}],"a":[]}'), "e": {}}
    assert to_compact(record) == '{"z":1,"payload":{"b":[1,1e16,{}],"a":[]},"e":{}}'
    pretty = to_pretty(record, sort_keys=True)
    expected = json.dumps(
        {"e": {}, "payload": {"a": [], "b": [1, 12345, {}]}, "z": 1}, indent=2, sort_keys=True
    ).replace("12345", "1e16")
    assert pretty == expected
    assert to_pretty({"x": orjson.Fragment("1.5e-7")}) == '{\n  "x": 1.5e-7\n}'


def test_load_canonical_keeps_numbers_verbatim() -> None:
    text = '{"a":1e16,"b":-0.0,"c":[100.0,18446744073709551615],"d":"s"}'
    assert to_compact(load_canonical(text)) == text


# m * 10^-k (m < 1e15, k <= 22) print with <= 15 digits and re-parse exactly: dumps are a fixed point.
exact_floats = st.builds(
    lambda m, e: float(f"{m}e{e}"), st.integers(-(10**15) + 1, 10**15 - 1), st.integers(-22, 0)
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | exact_floats | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_canonical_roundtrip_is_stable(value: object) -> None:
    once = dumps_canonical(value)  # type: ignore[arg-type]
    again = dumps_canonical(parse_json(once))
    assert again == once
    assert to_compact(load_canonical(once)) == once


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_load_canonical_is_lossless_for_any_double(value: float) -> None:
    once = dumps_canonical({"v": [value]})
    assert to_compact(load_canonical(once)) == once
    assert to_pretty(load_canonical(once)) == to_pretty(orjson.Fragment(once))


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_format_float_matches_ryu_layout(value: float) -> None:
    text = format_number(value)
    assert text == orjson.dumps(value).decode().replace("e+", "e")
    assert float(text) == value
    # §4 parsing is not correctly rounded: re-parsing the printed text may land a few ulps away.
    reparsed = parse_json(text)
    assert isinstance(reparsed, float)
    assert math.isclose(reparsed, value, rel_tol=1e-15) or abs(value) < 1e-290


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_parse_matches_stdlib_on_valid_strings(s: str) -> None:
    s = s.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    assert parse_json(json.dumps(s)) == s
    assert parse_json(json.dumps(s, ensure_ascii=False)) == s


def test_format_number_of_python_ints() -> None:
    assert format_number(2**64) == "1.8446744073709552e19"
    assert format_number(-(2**63) - 1) == "-9.223372036854776e18"
    assert dumps_canonical([2**64, -(2**63)]) == "[1.8446744073709552e19,-9223372036854775808]"
    with pytest.raises(ValueError):
        format_number(10**400)
    with pytest.raises(ValueError):
        format_number(10**5000)
    with pytest.raises(TypeError):
        format_number(True)
