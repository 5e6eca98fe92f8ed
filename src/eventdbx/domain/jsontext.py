"""JSON text with the spec's exact numbers (data-model.md §1, §4): parse, canonical dump, compact/pretty output.

Fast paths: orjson (integer-only documents) or stdlib json with §4 number hooks for parsing, orjson for
dumping; the precise scanner (jsonscan) only runs to produce the reference error message or when the fast
path cannot be trusted (escaped surrogates, deep nesting). Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from eventdbx.domain.json_value import JSONValue
from eventdbx.domain.jsonnumbers import (
    I64_MIN,
    U64_MAX,
    NumberOutOfRange,
    format_float,
    format_number,
    parse_float_token,
    parse_int_token,
)
from eventdbx.domain.jsonscan import MAX_DEPTH, Scanner, position
from eventdbx.errors import JsonSyntaxError

__all__ = [
    "JSONValue",
    "dumps_canonical",
    "format_number",
    "load_canonical",
    "parse_canonical",
    "parse_json",
    "to_compact",
    "to_pretty",
]

# An escaped surrogate needs the precise scanner (serde rejects lone surrogates; stdlib accepts them).
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
# Tokens orjson would not parse the §4 way: any fraction/exponent (orjson rounds correctly, §4 does
# not), `-0` (orjson gives int 0) and 19+ digit integers. Strings may match too: that only costs speed.
# (Three simple searches: CPython's re is much slower on one alternation of them.)
_FRACTION_OR_EXPONENT = re.compile(r"[0-9][.eE]")
_LONG_DIGITS = re.compile(r"[0-9]{19}")


class _Rejected(Exception):
    """Raised by hooks: the fast path must hand over to the precise scanner."""


def _reject_constant(token: str) -> Any:
    raise _Rejected(token)


def _safe_float(token: str) -> float:
    try:
        return parse_float_token(token)
    except NumberOutOfRange:
        raise _Rejected(token) from None


def _safe_int(token: str) -> int | float:
    try:
        return parse_int_token(token)
    except NumberOutOfRange:
        raise _Rejected(token) from None


_HOOKED = json.JSONDecoder(
    parse_float=_safe_float, parse_int=_safe_int, parse_constant=_reject_constant
)


def _fast_parse(text: str) -> JSONValue:
    """orjson when every number token is a plain u64/i64 integer, else stdlib json with §4 hooks."""
    if (
        "-0" not in text
        and _FRACTION_OR_EXPONENT.search(text) is None
        and _LONG_DIGITS.search(text) is None
    ):
        try:
            return orjson.loads(text)  # type: ignore[no-any-return]
        except orjson.JSONDecodeError:
            raise _Rejected(text) from None
    return _HOOKED.decode(text)  # type: ignore[no-any-return]


def _too_deep(value: JSONValue) -> bool:
    """True when containers nest MAX_DEPTH levels or more (iterative, only visits containers)."""
    stack: list[tuple[dict[str, JSONValue] | list[JSONValue], int]] = []
    if isinstance(value, (dict, list)):
        stack.append((value, 1))
    while stack:
        node, depth = stack.pop()
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, (dict, list)):
                if depth + 1 >= MAX_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False


def _check_encodable(text: str) -> None:
    """Reject lone surrogate code points in the text itself (they are not UTF-8; serde never sees them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line, column = position(text, exc.start, False)
        raise JsonSyntaxError(
            f"invalid unicode code point at line {line} column {column}"
        ) from None


def parse_json(text: str) -> JSONValue:
    """Parse JSON text per §1/§4; raises JsonSyntaxError('<reference msg> at line L column C').

    Fast path: orjson for integer-only documents, else stdlib json with §4 number hooks. It defers to
    the precise scanner for escaped surrogates (serde rejects lone ones), NaN/Infinity, out-of-range
    numbers, deep nesting and every syntax error, so it never accepts what the reference rejects.
    """
    if not text.isascii():
        _check_encodable(text)
    if "\\u" not in text or _ESCAPED_SURROGATE.search(text) is None:
        try:
            value = _fast_parse(text)
        except (ValueError, _Rejected, RecursionError):
            pass
        else:
            if text.count("[") + text.count("{") < MAX_DEPTH or not _too_deep(value):
                return value
    return Scanner(text).parse()


# -- dumping ----------------------------------------------------------------------------------------------


def _fragmentize(value: Any) -> Any:
    """Copy of value with floats (and out-of-range ints) replaced by Fragments of their §4 text."""
    if isinstance(value, float):
        return orjson.Fragment(format_float(value))
    if isinstance(value, dict):
        return {k: _fragmentize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_fragmentize(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not I64_MIN <= value <= U64_MAX:
        return orjson.Fragment(format_number(value))
    return value


def _dumps(obj: Any, option: int) -> bytes:
    """orjson dump with §4 numbers: orjson's float layout differs only by `e+`, so redo only then."""
    try:
        out = orjson.dumps(obj, option=option)
    except orjson.JSONEncodeError:
        return orjson.dumps(_fragmentize(obj), option=option)
    if b"e+" in out:
        return orjson.dumps(_fragmentize(obj), option=option)
    return out


def dumps_canonical(value: JSONValue) -> str:
    """Compact JSON, keys sorted at every depth, §4 numbers, §1 string escaping."""
    return _dumps(value, orjson.OPT_SORT_KEYS).decode()


def to_compact(obj: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON of obj; orjson.Fragment values are inserted verbatim."""
    return _dumps(obj, orjson.OPT_SORT_KEYS if sort_keys else 0).decode()


def _expand(obj: Any) -> Any:
    """Replace Fragments by their lossless parse so the pretty printer can indent them."""
    if isinstance(obj, orjson.Fragment):
        return load_canonical(orjson.dumps(obj).decode())
    if isinstance(obj, dict):
        return {k: _expand(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_expand(v) for v in obj]
    return obj


def to_pretty(obj: Any, *, sort_keys: bool = False) -> str:
    """2-space indented JSON (layout of json.dumps(indent=2)); Fragments are expanded and indented too."""
    option = orjson.OPT_INDENT_2 | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    return _dumps(_expand(obj), option).decode()


def _verbatim_number(token: str) -> Any:
    return orjson.Fragment(token)


_LOSSLESS = json.JSONDecoder(
    parse_float=_verbatim_number, parse_int=_verbatim_number, parse_constant=_reject_constant
)


def load_canonical(text: str) -> Any:
    """Re-read canonical JSON text; numbers stay verbatim (orjson.Fragment) so re-printing never changes them."""
    return _LOSSLESS.decode(text)


def parse_canonical(text: str) -> JSONValue:
    """Re-read stored canonical text (our own output) to plain values, without §4 re-parse drift.

    Canonical numbers are shortest round-trip texts, so a correctly rounding parser (orjson) gives back
    the very doubles that were printed: dumps_canonical(parse_canonical(t)) == t. Use this, not
    parse_json, to fold stored payloads; parse_json would re-apply the inexact §4 algorithm.
    """
    return orjson.loads(text)  # type: ignore[no-any-return]
