"""Coercion of payload values to a column's type (data-model.md §11 type table). Pure.

Each coercion returns a typed value for the rules to compare, or raises the table's `field P …` violation.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from eventdbx.domain.json_value import JSONValue
from eventdbx.domain.jsontext import format_number
from eventdbx.errors import SchemaViolationError
from eventdbx.schema.column_types import decimal_spec

I64_MIN = -(2**63)
I64_MAX = 2**63 - 1
U64_MAX = 2**64 - 1

_INT_TEXT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_FLOAT_TEXT = re.compile(
    r"[+-]?(?:inf|infinity|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?)", re.ASCII | re.I
)
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)", re.ASCII)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}", re.ASCII)


@dataclass(frozen=True, slots=True)
class Coerced:
    """A payload value coerced to a column kind: integer, float, decimal, boolean, text, timestamp,
    date, json, binary."""

    kind: str
    value: object


def violation(path: str, text: str) -> SchemaViolationError:
    """`schema violation: field P <text>`."""
    return SchemaViolationError(f"field {path} {text}")


def parse_i64(text: str) -> int | None:
    """Rust `str::parse::<i64>` of already-trimmed text."""
    if _INT_TEXT.fullmatch(text) is None:
        return None
    value = int(text)
    return value if I64_MIN <= value <= I64_MAX else None


def parse_f64(text: str) -> float | None:
    """Rust `str::parse::<f64>` of already-trimmed text (accepts inf/nan words)."""
    if _FLOAT_TEXT.fullmatch(text) is None:
        return None
    return float(text)


def parse_decimal(text: str) -> Decimal | None:
    """A plain decimal literal (sign, digits, optional fraction; no exponent)."""
    if _DECIMAL_TEXT.fullmatch(text) is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
        return None


def parse_rfc3339(text: str) -> int | None:
    """An RFC 3339 date-time (any offset, 0-9+ fraction digits) as nanoseconds since the epoch."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = (match.group(7) or "")[:9]
    leap = second == 60  # RFC 3339 admits a leap second; fold it into the next second
    try:
        offset = timedelta(0)
        if match.group(9):
            hours, mins = int(match.group(10)), int(match.group(11))
            if hours > 23 or mins > 59:
                return None
            offset = (-1 if match.group(9) == "-" else 1) * timedelta(hours=hours, minutes=mins)
        moment = datetime(
            year, month, day, hour, minute, 59 if leap else second, 0, timezone(offset)
        )
    except ValueError:
        return None
    seconds = (moment - _EPOCH) // timedelta(seconds=1) + (1 if leap else 0)
    return seconds * 1_000_000_000 + int(fraction.ljust(9, "0"))


def parse_date(text: str) -> date | None:
    """A `YYYY-MM-DD` calendar date."""
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def _integer(value: JSONValue, path: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        if I64_MIN <= value <= I64_MAX:
            return value
        if I64_MAX < value <= U64_MAX:
            raise violation(path, "exceeds signed integer range")
    elif isinstance(value, str):
        parsed = parse_i64(value.strip())
        if parsed is not None:
            return parsed
    raise violation(path, "must be an integer")


def _float(value: JSONValue, path: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        parsed = parse_f64(value.strip())
        if parsed is not None:
            return parsed
    raise violation(path, "must be a float")


def _decimal(value: JSONValue, path: str, type_name: str) -> Decimal:
    parsed: Decimal | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        parsed = parse_decimal(format_number(value))
    elif isinstance(value, str):
        parsed = parse_decimal(value.strip())
    if parsed is None:
        raise violation(path, "must be a decimal value")
    spec = decimal_spec(type_name)
    assert spec is not None
    precision, scale = spec
    exponent = parsed.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > scale:
        raise violation(path, f"must have at most {scale} decimal places")
    digits = sum(ch.isdigit() for ch in format(abs(parsed), "f"))
    if digits > precision:
        raise violation(path, f"must have precision <= {precision}")
    return parsed


def _boolean(value: JSONValue, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("true", "1"):
            return True
        if word in ("false", "0"):
            return False
    raise violation(path, "must be a boolean")


def _binary(value: JSONValue, path: str) -> bytes:
    if isinstance(value, str) and _BASE64.fullmatch(value) and len(value) % 4 == 0:
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            decoded = None
        # canonical encodings only (no stray bits in the padding), like a strict decoder
        if decoded is not None and base64.b64encode(decoded).decode("ascii") == value:
            return decoded
    raise violation(path, "must be base64 encoded")


def _string_kind(value: JSONValue, path: str, kind: str) -> Coerced:
    if kind == "text":
        if isinstance(value, str):
            return Coerced("text", value)
        raise violation(path, "must be a string")
    if kind == "timestamp":
        moment = parse_rfc3339(value) if isinstance(value, str) else None
        if moment is None:
            raise violation(path, "must be an RFC3339 timestamp")
        return Coerced("timestamp", moment)
    day = parse_date(value) if isinstance(value, str) else None
    if day is None:
        raise violation(path, "must be a date formatted as YYYY-MM-DD")
    return Coerced("date", day)


def coerce(type_name: str, value: JSONValue, path: str) -> Coerced:
    """Coerce `value` to `type_name` (canonical); `object` values are only checked to be objects."""
    if type_name == "integer":
        return Coerced("integer", _integer(value, path))
    if type_name == "float":
        return Coerced("float", _float(value, path))
    if type_name == "boolean":
        return Coerced("boolean", _boolean(value, path))
    if type_name in ("text", "timestamp", "date"):
        return _string_kind(value, path, type_name)
    if type_name == "binary":
        return Coerced("binary", _binary(value, path))
    if type_name == "object":
        if not isinstance(value, dict):
            raise violation(path, "must be a JSON object")
        return Coerced("json", value)
    if type_name == "json":
        return Coerced("json", value)
    return Coerced("decimal", _decimal(value, path, type_name))
