"""A strict reader for the TOML subset that dbx writes to config.toml; anything else is left to tomllib.

Importing tomllib compiles its regular expressions (~4 ms, on every `dbx` command). config.toml as written by
config_file.py uses only bare keys, `[table]` headers and one-line values (strings without escapes, integers,
booleans, arrays of such strings), so `read_subset` parses that shape directly. It returns None — "ask
tomllib" — for every line outside the subset (comments inside lines, floats, dates, escapes, inline tables,
indentation, duplicate keys or tables…), so tomllib still decides every other document and reports its errors.
"""

from __future__ import annotations

from typing import Any

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_MAX_DIGITS = 18  # always inside TOML's 64-bit integer range


def _is_bare_key(text: str) -> bool:
    return bool(text) and all(ch in _BARE for ch in text)


def _plain_text(text: str) -> bool:
    """No control character other than newline and tab (TOML forbids most; tomllib reports them)."""
    return not any((ch < " " and ch not in "\n\t") or ch == "\x7f" for ch in text)


def _string(text: str) -> str | None:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        inner = text[1:-1]
        if '"' not in inner and "\\" not in inner:
            return inner
    return None


def _integer(text: str) -> int | None:
    digits = text[1:] if text[:1] == "-" else text
    if not digits or len(digits) > _MAX_DIGITS or not (digits.isascii() and digits.isdigit()):
        return None
    if len(digits) > 1 and digits[0] == "0":
        return None
    return int(text)


def _string_array(text: str) -> list[str] | None:
    if len(text) < 2 or text[0] != "[" or text[-1] != "]":
        return None
    inner = text[1:-1].strip(" \t")
    if not inner:
        return []
    items = [item.strip(" \t") for item in inner.split(",")]
    if items[-1] == "":
        items.pop()  # one trailing comma
    values = [_string(item) for item in items]
    if not values or any(value is None for value in values):
        return None
    return [value for value in values if value is not None]


def _value(text: str) -> Any:
    """The value of a one-line `key = value`, or None when it is outside the subset."""
    if text in ("true", "false"):
        return text == "true"
    if text[:1] == '"':
        return _string(text)
    if text[:1] == "[":
        return _string_array(text)
    return _integer(text)


def _open_table(root: dict[str, Any], header: str, defined: set[str]) -> dict[str, Any] | None:
    """The table a `[a.b]` header opens (creating missing ones); None for anything TOML or the subset rejects."""
    parts = header.split(".")
    if header in defined or not all(_is_bare_key(part) for part in parts):
        return None
    table = root
    for part in parts:
        child = table.setdefault(part, {})
        if not isinstance(child, dict):
            return None
        table = child
    defined.add(header)
    return table


def read_subset(text: str) -> dict[str, Any] | None:
    """The document tomllib would return for `text`, when `text` lies in dbx's subset; else None."""
    if not _plain_text(text):
        return None
    root: dict[str, Any] = {}
    table: dict[str, Any] | None = root
    defined: set[str] = set()
    for line in text.split("\n"):
        line = line.rstrip(" \t")
        if not line or line[0] == "#":
            continue
        if line[0] == "[":
            if line[-1] != "]" or line.startswith("[["):
                return None
            table = _open_table(root, line[1:-1], defined)
        else:
            key, eq, rest = line.partition("=")
            key = key.rstrip(" \t")
            value = _value(rest.strip(" \t")) if eq else None
            if value is None or not _is_bare_key(key) or table is None or key in table:
                return None
            table[key] = value
        if table is None:
            return None
    return root
