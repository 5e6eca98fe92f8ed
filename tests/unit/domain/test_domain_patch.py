"""patch: §8 shape errors, RFC 6902 add/replace over the re-parsed state, touched keys."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventdbx.domain.json_value import JSONValue
from eventdbx.domain.jsontext import parse_json
from eventdbx.domain.patch import decode_segment, patched_payload, state_document
from eventdbx.errors import InvalidSchemaError

STATE = {"name": "Ada", "n": "5", "obj": '{"a":[1,"x",null],"b":1}', "flag": "true", "raw": "{oops"}


def _patch(text: str) -> dict[str, JSONValue]:
    return patched_payload(STATE, parse_json(text))


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ('{"op":"add"}', "invalid schema: patch must be provided as a JSON array"),
        ("[]", "invalid schema: patch must modify at least one path"),
        ('[{"path":"/a","value":1}]', "invalid schema: patch entry is missing 'op'"),
        ('[{"op":1,"path":"/a","value":1}]', "invalid schema: patch entry is missing 'op'"),
        ("[1]", "invalid schema: patch entry is missing 'op'"),
        ('[{"op":"add","value":1}]', "invalid schema: patch entry is missing 'path'"),
        ('[{"op":"remove","path":"/a"}]', "invalid schema: unsupported patch operation 'remove'"),
        (
            '[{"op":"move","from":"/a","path":"/b"}]',
            "invalid schema: unsupported patch operation 'move'",
        ),
        (
            '[{"op":"add","path":"a","value":1}]',
            "invalid schema: patch path 'a' must start with '/'",
        ),
        ('[{"op":"add","path":"","value":1}]', "invalid schema: patch path '' must start with '/'"),
        (
            '[{"op":"add","path":"/","value":1}]',
            "invalid schema: patch operations targeting the document root are not supported",
        ),
        (
            '[{"op":"add","path":"/a"}]',
            "invalid schema: failed to parse patch: missing field `value`",
        ),
        (
            '[{"op":"replace","path":"/missing","value":1}]',
            "invalid schema: failed to apply patch: operation '/0' failed at path '/missing': "
            "path is invalid",
        ),
        (
            '[{"op":"add","path":"/x","value":1},{"op":"add","path":"/nope/deep","value":1}]',
            "invalid schema: failed to apply patch: operation '/1' failed at path '/nope/deep': "
            "path is invalid",
        ),
        (
            '[{"op":"add","path":"/obj/a/9","value":1}]',
            "invalid schema: failed to apply patch: operation '/0' failed at path '/obj/a/9': "
            "path is invalid",
        ),
        (
            '[{"op":"add","path":"/obj/a/01","value":1}]',
            "invalid schema: failed to apply patch: operation '/0' failed at path '/obj/a/01': "
            "path is invalid",
        ),
        (
            '[{"op":"add","path":"/name/x","value":1}]',
            "invalid schema: failed to apply patch: operation '/0' failed at path '/name/x': "
            "path is invalid",
        ),
    ],
)
def test_patch_errors(patch: str, message: str) -> None:
    with pytest.raises(InvalidSchemaError) as info:
        _patch(patch)
    assert str(info.value) == message


def test_state_document_reparses_values() -> None:
    assert state_document(STATE) == {
        "name": "Ada",
        "n": 5,
        "obj": {"a": [1, "x", None], "b": 1},
        "flag": True,
        "raw": "{oops",
    }


def test_add_replace_and_arrays() -> None:
    assert _patch('[{"op":"replace","path":"/n","value":6}]') == {"n": 6}
    assert _patch('[{"op":"add","path":"/new","value":{"k":1}}]') == {"new": {"k": 1}}
    assert _patch('[{"op":"add","path":"/obj/a/-","value":2}]') == {
        "obj": {"a": [1, "x", None, 2], "b": 1}
    }
    assert _patch('[{"op":"add","path":"/obj/a/0","value":0}]') == {
        "obj": {"a": [0, 1, "x", None], "b": 1}
    }
    assert _patch('[{"op":"add","path":"/obj/a/3","value":"end"}]') == {
        "obj": {"a": [1, "x", None, "end"], "b": 1}
    }
    assert _patch(
        '[{"op":"replace","path":"/obj/a/1","value":"y"},{"op":"add","path":"/obj/c","value":true}]'
    ) == {"obj": {"a": [1, "y", None], "b": 1, "c": True}}
    assert _patch('[{"op":"replace","path":"/raw","value":"fixed"}]') == {"raw": "fixed"}


def test_escaped_keys() -> None:
    assert _patch('[{"op":"add","path":"/a~1b","value":1}]') == {"a/b": 1}
    assert _patch('[{"op":"add","path":"/a~0b","value":1}]') == {"a~b": 1}
    assert decode_segment("~01") == "~1"
    assert decode_segment("a~") == "a~"
    assert decode_segment("~2") == "~2"


def test_new_aggregate_and_later_ops_see_earlier_ones() -> None:
    patch = parse_json(
        '[{"op":"add","path":"/p","value":{}},{"op":"add","path":"/p/q","value":[1]},'
        '{"op":"add","path":"/p/q/-","value":2}]'
    )
    assert patched_payload({}, patch) == {"p": {"q": [1, 2]}}
    assert patch == parse_json(
        '[{"op":"add","path":"/p","value":{}},'
        '{"op":"add","path":"/p/q","value":[1]},'
        '{"op":"add","path":"/p/q/-","value":2}]'
    )  # input untouched


keys = st.text(alphabet="ab~/01", min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, st.integers(), min_size=1, max_size=5))
def test_payload_keys_are_touched_keys(values: dict[str, int]) -> None:
    ops: list[JSONValue] = [
        {"op": "add", "path": "/" + k.replace("~", "~0").replace("/", "~1"), "value": v}
        for k, v in values.items()
    ]
    payload = patched_payload({"other": "1"}, ops)
    assert payload == values
