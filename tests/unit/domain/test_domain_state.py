"""state: the §3 payload map table and folding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventdbx.domain.json_value import JSONValue
from eventdbx.domain.jsontext import dumps_canonical, parse_canonical, parse_json
from eventdbx.domain.state import fold_state, payload_map, stored_payload_map


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            '{"s":"raw \\"text\\"","n":null,"t":true,"f":false}',
            {"s": 'raw "text"', "n": "", "t": "true", "f": "false"},
        ),
        (
            '{"i":5,"d":1e2,"z":-0,"big":1e16,"small":0.000001}',
            {"i": "5", "d": "100.0", "z": "-0.0", "big": "1e16", "small": "1e-6"},
        ),
        (
            '{"o":{"b":1,"a":[1,"x",null]},"l":[],"e":{}}',
            {"o": '{"a":[1,"x",null],"b":1}', "l": "[]", "e": "{}"},
        ),
        ("null", {}),
        ('"hello"', {"_value": "hello"}),
        ("42", {"_value": "42"}),
        ("1E2", {"_value": "100.0"}),
        ("true", {"_value": "true"}),
        ('[3,{"b":1,"a":2}]', {"_value": '[3,{"a":2,"b":1}]'}),
        ("{}", {}),
    ],
)
def test_payload_map(payload: str, expected: dict[str, str]) -> None:
    assert payload_map(parse_json(payload)) == expected


def test_fold_merges_and_never_removes() -> None:
    state = {"a": "1", "b": "2"}
    assert fold_state(state, {"b": "3", "c": ""}) == {"a": "1", "b": "3", "c": ""}
    assert fold_state(state, {}) == state
    assert state == {"a": "1", "b": "2"}


def test_stored_payload_map_has_no_reparse_drift() -> None:
    value = {"x": 7.666063937599529e-16, "y": [2.1617277350753162e17]}
    stored = dumps_canonical(value)
    assert stored_payload_map(stored) == payload_map(value)
    # parse_json re-applies the inexact §4 algorithm, which may move a stored double by an ulp:
    assert payload_map(parse_json(stored)) != payload_map(value)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=3),
        st.floats(allow_nan=False, allow_infinity=False)
        | st.integers(-(2**63), 2**64 - 1)
        | st.lists(st.floats(allow_nan=False, allow_infinity=False)),
    )
)
def test_stored_payload_map_roundtrip(value: dict[str, JSONValue]) -> None:
    stored = dumps_canonical(value)
    assert stored_payload_map(stored) == payload_map(value)
    assert dumps_canonical(parse_canonical(stored)) == stored
