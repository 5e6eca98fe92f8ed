"""A column's rules applied to a coerced value (data-model.md §11 rule failures). Pure.

Order: string rules (contains, does_not_contain, regex, format), length, range, nested-properties type check.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache

from eventdbx.schema.coerce import (
    Coerced,
    parse_date,
    parse_decimal,
    parse_f64,
    parse_i64,
    parse_rfc3339,
    violation,
)
from eventdbx.schema.column_types import ColumnType, RangeRule
from eventdbx.schema.formats import FORMAT_CHECKS


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str] | str:
    try:
        return re.compile(pattern)
    except re.error as exc:
        return str(exc)


def _string_rules(column: ColumnType, coerced: Coerced, path: str) -> None:
    if not (column.contains or column.does_not_contain or column.regex or column.format):
        return
    if coerced.kind != "text":
        raise violation(path, "must be a string")
    text = str(coerced.value)
    for needle in column.contains:
        if needle not in text:
            raise violation(path, f"must contain '{needle}'")
    for needle in column.does_not_contain:
        if needle in text:
            raise violation(path, f"must not contain '{needle}'")
    for pattern in column.regex:
        compiled = _compile(pattern)
        if isinstance(compiled, str):
            raise violation(path, f"has invalid regex '{pattern}': {compiled}")
        if compiled.search(text) is None:
            raise violation(path, f"must match pattern {pattern}")
    if column.format is not None:
        check, message = FORMAT_CHECKS[column.format]
        if not check(text):
            raise violation(path, message)


def _length_rule(column: ColumnType, coerced: Coerced, path: str) -> None:
    if column.length is None:
        return
    if coerced.kind == "text":
        size = len(str(coerced.value))
    elif coerced.kind == "binary":
        assert isinstance(coerced.value, bytes)
        size = len(coerced.value)
    else:
        raise violation(path, "does not support length validation")
    if column.length.min is not None and size < column.length.min:
        raise violation(path, f"must have length >= {column.length.min}")
    if column.length.max is not None and size > column.length.max:
        raise violation(path, f"must have length <= {column.length.max}")


def format_f64(value: float) -> str:
    """Rust `f64` Display: plain decimal notation, no exponent, no trailing `.0`."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


_Bound = tuple[Callable[[str], object], Callable[[object], str], str]
_NUMERIC_BOUNDS: dict[str, _Bound] = {
    "integer": (lambda raw: parse_i64(raw.strip()), str, "is not a valid integer"),
    "float": (
        lambda raw: parse_f64(raw.strip()),
        lambda bound: format_f64(float(bound)),  # type: ignore[arg-type]
        "is not a valid float",
    ),
    "decimal": (
        lambda raw: parse_decimal(raw.strip()),
        lambda bound: format(bound, "f"),
        "is not a valid decimal",
    ),
}
_TEMPORAL_BOUNDS: dict[str, tuple[Callable[[str], object], str, str, str]] = {
    "timestamp": (
        lambda raw: parse_rfc3339(raw.strip()),
        "is not a valid RFC3339 timestamp",
        "must be >=",
        "must be <=",
    ),
    "date": (
        lambda raw: parse_date(raw.strip()),
        "is not a valid date (YYYY-MM-DD)",
        "must be on or after",
        "must be on or before",
    ),
}


def _less(left: object, right: object) -> bool:
    return left < right  # type: ignore[operator,no-any-return]


def _numeric_range(kind: str, value: object, rule: RangeRule, path: str) -> None:
    parse, show, invalid = _NUMERIC_BOUNDS[kind]
    for label, raw in (("minimum", rule.min), ("maximum", rule.max)):
        if raw is None:
            continue
        bound = parse(raw)
        if bound is None:
            raise violation(path, f"range {label} '{raw}' {invalid}")
        if label == "minimum" and _less(value, bound):
            raise violation(path, f"must be >= {show(bound)}")
        if label == "maximum" and _less(bound, value):
            raise violation(path, f"must be <= {show(bound)}")


def _temporal_range(kind: str, value: object, rule: RangeRule, path: str) -> None:
    parse, invalid, below, above = _TEMPORAL_BOUNDS[kind]
    for label, raw in (("minimum", rule.min), ("maximum", rule.max)):
        if raw is None:
            continue
        bound = parse(raw)
        if bound is None:
            raise violation(path, f"range boundary '{raw}' {invalid}")
        if label == "minimum" and _less(value, bound):
            raise violation(path, f"{below} {raw}")
        if label == "maximum" and _less(bound, value):
            raise violation(path, f"{above} {raw}")


def _range_rule(column: ColumnType, coerced: Coerced, path: str) -> None:
    if column.range is None:
        return
    if coerced.kind in _NUMERIC_BOUNDS:
        _numeric_range(coerced.kind, coerced.value, column.range, path)
    elif coerced.kind in _TEMPORAL_BOUNDS:
        _temporal_range(coerced.kind, coerced.value, column.range, path)
    else:
        raise violation(path, "does not support range validation")


def check_rules(column: ColumnType, coerced: Coerced, path: str) -> None:
    """Run `column`'s rules against its coerced value, raising the first `field P …` violation."""
    _string_rules(column, coerced, path)
    _length_rule(column, coerced, path)
    _range_rule(column, coerced, path)
    if column.properties and column.type not in ("object", "json"):
        raise violation(path, "cannot define nested properties on non-object type")
