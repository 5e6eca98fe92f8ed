"""JSON Patch appends (data-model.md §8): RFC 6902 add/replace over the current state, giving the new payload.

Pure: takes the state map and the parsed patch, returns `{touched top-level key: patched value}`.
"""

from __future__ import annotations

from collections.abc import Mapping

from eventdbx.domain.json_value import JSONValue
from eventdbx.domain.jsontext import parse_json
from eventdbx.errors import InvalidSchemaError, JsonSyntaxError

_SUPPORTED = ("add", "replace")


class _PointerError(Exception):
    """The json-patch crate's `path is invalid`."""


def decode_segment(segment: str) -> str:
    """Unescape one pointer segment like the reference's top-level key decoder (`~0`→`~`, `~1`→`/`)."""
    if "~" not in segment:
        return segment
    out: list[str] = []
    chars = iter(segment)
    for ch in chars:
        if ch != "~":
            out.append(ch)
            continue
        nxt = next(chars, None)
        if nxt == "0":
            out.append("~")
        elif nxt == "1":
            out.append("/")
        else:
            out.append("~" if nxt is None else "~" + nxt)
    return "".join(out)


def _unescape(token: str) -> str:
    """RFC 6901 unescape as serde_json/json-patch do it (`~1` first, then `~0`)."""
    return token.replace("~1", "/").replace("~0", "~")


def _top_level_key(path: str) -> str:
    if not path.startswith("/"):
        raise InvalidSchemaError(f"patch path '{path}' must start with '/'")
    rest = path[1:]
    if not rest:
        raise InvalidSchemaError("patch operations targeting the document root are not supported")
    return decode_segment(rest.split("/", 1)[0])


def touched_keys(patch: JSONValue) -> list[str]:
    """Validate the patch shape (§8 step 1) and return its sorted, de-duplicated top-level keys."""
    if not isinstance(patch, list):
        raise InvalidSchemaError("patch must be provided as a JSON array")
    keys: set[str] = set()
    for entry in patch:
        op = entry.get("op") if isinstance(entry, dict) else None
        if not isinstance(op, str):
            raise InvalidSchemaError("patch entry is missing 'op'")
        if op not in _SUPPORTED:
            raise InvalidSchemaError(f"unsupported patch operation '{op}'")
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str):
            raise InvalidSchemaError("patch entry is missing 'path'")
        keys.add(_top_level_key(path))
    if not keys:
        raise InvalidSchemaError("patch must modify at least one path")
    return sorted(keys)


def state_document(state: Mapping[str, str]) -> dict[str, JSONValue]:
    """The patch document: each state value re-parsed as JSON when it parses, else kept as a string."""
    document: dict[str, JSONValue] = {}
    for key, raw in state.items():
        try:
            document[key] = parse_json(raw)
        except JsonSyntaxError:
            document[key] = raw
    return document


def _copy(value: JSONValue) -> JSONValue:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _index(token: str, length: int) -> int:
    """Array index per RFC 6901 (no sign, no leading zeros), required to be < length."""
    if not token.isascii() or not token.isdigit() or (token.startswith("0") and len(token) != 1):
        raise _PointerError
    index = int(token)
    if index >= length:
        raise _PointerError
    return index


def _resolve(doc: JSONValue, pointer: str) -> JSONValue:
    """serde_json `pointer_mut`: the value at pointer, or _PointerError."""
    if pointer == "":
        return doc
    if not pointer.startswith("/"):
        raise _PointerError
    node = doc
    for raw in pointer[1:].split("/"):
        token = _unescape(raw)
        if isinstance(node, dict):
            if token not in node:
                raise _PointerError
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(token, len(node))]
        else:
            raise _PointerError
    return node


def _add(doc: JSONValue, path: str, value: JSONValue) -> None:
    cut = path.rfind("/")
    if cut < 0:
        raise _PointerError
    parent = _resolve(doc, path[:cut])
    last = path[cut + 1 :]
    if isinstance(parent, dict):
        parent[_unescape(last)] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            parent.insert(_index(last, len(parent) + 1), value)
    else:
        raise _PointerError


def _replace(doc: JSONValue, path: str, value: JSONValue) -> None:
    cut = path.rfind("/")
    _resolve(doc, path)  # the target must exist
    parent = _resolve(doc, path[:cut])
    last = path[cut + 1 :]
    if isinstance(parent, dict):
        parent[_unescape(last)] = value
    elif isinstance(parent, list):
        parent[_index(last, len(parent))] = value


def apply_patch(document: dict[str, JSONValue], patch: list[JSONValue]) -> None:
    """Apply add/replace operations in place; errors read like the json-patch crate's."""
    for entry in patch:
        assert isinstance(entry, dict)
        if "value" not in entry:
            raise InvalidSchemaError("failed to parse patch: missing field `value`")
    for number, entry in enumerate(patch):
        assert isinstance(entry, dict)
        op, path = entry["op"], entry["path"]
        assert isinstance(path, str)
        value = _copy(entry["value"])
        try:
            (_add if op == "add" else _replace)(document, path, value)
        except _PointerError:
            raise InvalidSchemaError(
                f"failed to apply patch: operation '/{number}' failed at path '{path}': "
                "path is invalid"
            ) from None


def patched_payload(state: Mapping[str, str], patch: JSONValue) -> dict[str, JSONValue]:
    """§8: validate the patch, apply it to the state document, return {touched key: patched value}."""
    keys = touched_keys(patch)
    assert isinstance(patch, list)
    document = state_document(state)
    apply_patch(document, patch)
    payload: dict[str, JSONValue] = {}
    for key in keys:
        if key not in document:
            raise InvalidSchemaError(f"patch removed key '{key}' and removals are not supported")
        payload[key] = document[key]
    return payload
