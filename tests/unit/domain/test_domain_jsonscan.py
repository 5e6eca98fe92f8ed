"""The fast parse path and the precise scanner agree; §4 numbers match a literal reading of the spec."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from eventdbx.domain.jsonnumbers import POW10, NumberOutOfRange, number_from_token
from eventdbx.domain.jsonscan import Scanner
from eventdbx.domain.jsontext import parse_json
from eventdbx.errors import JsonSyntaxError

U64_MAX = 2**64 - 1


def _scale(f: float, s: int, e: int) -> float:
    while True:
        if 0 <= e <= 308:
            f *= POW10[e]
            if math.isinf(f):
                raise NumberOutOfRange
            return f
        if -308 <= e < 0:
            return f / POW10[-e]
        if e > 308:
            if s != 0:
                raise NumberOutOfRange
            return f
        if f == 0:
            return f
        f /= 1e308
        e += 308


def spec_number(token: str) -> int | float:
    """§4 transcribed digit by digit (independent of the implementation under test)."""
    negative = token.startswith("-")
    body = token[1:] if negative else token
    mantissa, _, exp_text = body.replace("E", "e").partition("e")
    int_digits, _, frac_digits = mantissa.partition(".")
    if not exp_text and "." not in mantissa:
        value = int(int_digits)
        if negative and value == 0:
            return -0.0
        if (not negative and value <= U64_MAX) or (negative and value <= 2**63):
            return -value if negative else value
    s, e, overflowed = 0, 0, False
    for ch in int_digits:
        if overflowed or s * 10 + int(ch) > U64_MAX:
            overflowed = True
            e += 1
        else:
            s = s * 10 + int(ch)
    for ch in frac_digits:
        if s * 10 + int(ch) > U64_MAX:
            break
        s = s * 10 + int(ch)
        e -= 1
    if exp_text:
        explicit = int(exp_text)
        if abs(explicit) > 2**31 - 1:
            if s != 0 and explicit > 0:
                raise NumberOutOfRange
            return -0.0 if negative else 0.0
        e += explicit
    f = _scale(float(s), s, e)
    return -f if negative else f


digits = st.text(alphabet="0123456789", min_size=1, max_size=30)
tokens = st.builds(
    lambda sign, i, frac, exp: sign + (i.lstrip("0") or "0") + frac + exp,
    st.sampled_from(["", "-"]),
    digits,
    st.one_of(st.just(""), digits.map(lambda d: "." + d)),
    st.one_of(
        st.just(""),
        st.builds(
            lambda e, s, d: e + s + d,
            st.sampled_from("eE"),
            st.sampled_from(["", "+", "-"]),
            st.text(alphabet="0123456789", min_size=1, max_size=4),
        ),
    ),
)


def _outcome(fn: object, arg: str) -> str:
    try:
        return repr(fn(arg))  # type: ignore[operator]
    except (NumberOutOfRange, JsonSyntaxError) as exc:
        return f"error {type(exc).__name__}"


@settings(max_examples=1500, deadline=None)
@given(tokens)
@example("123456789012345678901234")
@example("18446744073709551619.5")
@example("0.000000000000000000000000000001e-300")
@example("99999999999999999999e-330")
def test_numbers_follow_the_spec_literally(token: str) -> None:
    expected = _outcome(spec_number, token)
    assert _outcome(number_from_token, token) == expected
    parsed = _outcome(parse_json, token)
    scanned = _outcome(lambda t: Scanner(t).parse(), token)
    assert parsed == scanned
    if not expected.startswith("error"):
        assert parsed == expected
    else:
        assert parsed == "error JsonSyntaxError"


json_chars = st.text(alphabet='{}[]:,"\\ \n\t01-.eE+aufnltrsx\x01é\\u', max_size=24)
json_like = st.recursive(
    st.sampled_from(
        [
            "1",
            "-0",
            "1e400",
            "0.5",
            '"s"',
            '"\\ud800"',
            '"\\ud83d\\ude00"',
            "true",
            "null",
            "NaN",
            "1.",
            "01",
            '"\\x"',
            "[]",
            "{}",
        ]
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: "[" + ",".join(xs) + "]"),
        st.lists(st.tuples(st.sampled_from(['"a"', '"b"', "1", "a"]), inner), max_size=3).map(
            lambda kv: "{" + ",".join(f"{k}:{v}" for k, v in kv) + "}"
        ),
    ),
    max_leaves=8,
)


@settings(max_examples=1500, deadline=None)
@given(
    st.one_of(
        json_chars, json_like, json_like.map(lambda t: t[:-1]), json_like.map(lambda t: t + " x")
    )
)
def test_fast_path_agrees_with_scanner(text: str) -> None:
    def scan(t: str) -> object:
        return Scanner(t).parse()

    expected = _outcome(scan, text)
    got = _outcome(parse_json, text)
    assert got == expected
    if expected.startswith("error"):
        with pytest.raises(JsonSyntaxError) as a:
            parse_json(text)
        with pytest.raises(JsonSyntaxError) as b:
            scan(text)
        assert str(a.value) == str(b.value)


def test_lone_surrogate_in_text_is_rejected() -> None:
    with pytest.raises(JsonSyntaxError) as info:
        parse_json('"a\udc80"')
    assert str(info.value) == "invalid unicode code point at line 1 column 2"


TRICKY = [
    "[01]",
    "[1,]",
    '{"a":1,}',
    "[-]",
    "[- 1]",
    "[1 ]",
    " 1",
    "\ufeff1",
    "1\ufeff",
    '"\\u0000"',
    "[+1]",
    "[1.]",
    "[.5]",
    "[1e]",
    "[1e+]",
    "[0x1]",
    "[1_000]",
    "[Infinity]",
    "[-Infinity]",
    "[NaN]",
    "[nan]",
    '{"a" : 1 , "b" : [ ] }',
    '{"a":1}{"b":2}',
    "[]]",
    "[[]",
    "{,}",
    '{"a":}',
    '{"a"}',
    "[,1]",
    '"\x7f"',
    "\x0c1",
    "[\v1]",
    "[1\xa0]",
    '"\\/"',
    '"\\U0041"',
    "tru",
    "True",
    "null0",
    "[true false]",
    "-01",
    "18446744073709551615",
    "-9223372036854775808",
    "[18446744073709551616, -9223372036854775809]",
    "[-0, 0, -0.0, 0e0]",
    '{"-0":"-0"}',
    '["1.5", 2]',
    "[1" + "0" * 30 + "]",
]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_inputs_agree(text: str) -> None:
    def scan(t: str) -> object:
        return Scanner(t).parse()

    assert _outcome(parse_json, text) == _outcome(scan, text)


int_docs = st.recursive(
    st.integers(-(2**64), 2**65).map(str) | st.sampled_from(['"s"', "true", "null", '"-0"', "-0"]),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: "[" + ",".join(xs) + "]"),
        st.lists(st.tuples(st.sampled_from(['"a"', '"b"']), inner), max_size=3).map(
            lambda kv: "{" + ",".join(f"{k}:{v}" for k, v in kv) + "}"
        ),
    ),
    max_leaves=10,
)


@settings(max_examples=500, deadline=None)
@given(int_docs)
def test_integer_documents_agree(text: str) -> None:
    assert _outcome(parse_json, text) == _outcome(lambda t: Scanner(t).parse(), text)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_scanner_decodes_strings_like_stdlib(s: str) -> None:
    s = s.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    for text in (json.dumps(s), json.dumps(s, ensure_ascii=False), json.dumps({s: [s]})):
        assert Scanner(text).parse() == json.loads(text)


MUTATION_CHARS = '{}[]:,"\\ \n0123456789-+.eEtrufalsn\x00\x1fé\U0001f600'


@settings(max_examples=800, deadline=None)
@given(json_like | int_docs, st.data())
def test_mutated_documents_agree(text: str, data: st.DataObject) -> None:
    pos = data.draw(st.integers(0, len(text)))
    kind = data.draw(st.sampled_from(["insert", "delete", "replace"]))
    char = data.draw(st.sampled_from(MUTATION_CHARS))
    if kind == "insert":
        text = text[:pos] + char + text[pos:]
    elif kind == "delete":
        text = text[:pos] + text[pos + 1 :]
    else:
        text = text[:pos] + char + text[pos + 1 :]
    assert _outcome(parse_json, text) == _outcome(lambda t: Scanner(t).parse(), text)
