"""state: the §3 payload map table and folding."""

from __future__ import annotations

import pytest

from eventdbx.domain.jsontext import parse_json
from eventdbx.domain.state import fold_state, payload_map


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ('{"s":"raw \\"text\\"","n":null,"t":true,"f":false}',
         {"s": 'raw "text"', "n": "", "t": "true", "f": "false"}),
        ('{"i":5,"d":1e2,"z":-0,"big":1e16,"small":0.000001}',
         {"i": "5", "d": "100.0", "z": "-0.0", "big": "1e16", "small": "1e-6"}),
        ('{"o":{"b":1,"a":[1,"x",null]},"l":[],"e":{}}',
         {"o": '{"a":[1,"x",null],"b":1}', "l": "[]", "e": "{}"}),
        ("null", {}),
        ('"hello"', {"_value": "hello"}),
        ("42", {"_value": "42"}),
        ("1E2", {"_value": "100.0"}),
        ("true", {"_value": "true"}),
        ("[3,{\"b\":1,\"a\":2}]", {"_value": '[3,{"a":2,"b":1}]'}),
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
