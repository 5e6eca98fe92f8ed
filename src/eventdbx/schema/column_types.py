"""Column types and their rules (data-model.md §11): canonical type names, rule records, dict forms.

Pure values only; validation of payloads against these lives in `coerce`, `rules` and `validate`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from eventdbx.domain.jsontext import format_number
from eventdbx.errors import InvalidColumnTypeError, InvalidSchemaError

_SIMPLE_TYPES: dict[str, str] = {
    "integer": "integer",
    "int": "integer",
    "float": "float",
    "double": "float",
    "boolean": "boolean",
    "bool": "boolean",
    "text": "text",
    "string": "text",
    "timestamp": "timestamp",
    "date": "date",
    "json": "json",
    "binary": "binary",
    "bytes": "binary",
    "object": "object",
}
_DECIMAL = re.compile(r"(?:decimal|numeric)\(\s*(\d+)\s*,\s*(\d+)\s*\)", re.ASCII)
_U8_MAX = 255

RULE_KEYS = (
    "required",
    "contains",
    "does_not_contain",
    "regex",
    "length",
    "range",
    "format",
    "must_match",
    "properties",
)


class FieldFormat(StrEnum):
    """The `format` rule's values."""

    EMAIL = "email"
    URL = "url"
    CREDIT_CARD = "credit_card"


def parse_type_name(text: str) -> str:
    """Canonical type name of `text` (any case, surrounding blanks ignored) or `invalid column type 'X'`."""
    lower = text.strip().lower()
    simple = _SIMPLE_TYPES.get(lower)
    if simple is not None:
        return simple
    match = _DECIMAL.fullmatch(lower)
    if match is not None:
        precision, scale = int(match.group(1)), int(match.group(2))
        if precision <= _U8_MAX and scale <= _U8_MAX:
            return f"decimal({precision},{scale})"
    raise InvalidColumnTypeError(f"invalid column type '{text}'")


def decimal_spec(type_name: str) -> tuple[int, int] | None:
    """(precision, scale) of a canonical `decimal(p,s)` name, else None."""
    match = _DECIMAL.fullmatch(type_name)
    return None if match is None else (int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True, slots=True, kw_only=True)
class LengthRule:
    """`length` rule: inclusive bounds in characters (bytes for binary)."""

    min: int | None = None
    max: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RangeRule:
    """`range` rule: inclusive bounds kept as text and parsed by the column's type when checked."""

    min: str | None = None
    max: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnType:
    """A declared column: canonical type name plus its rules (defaults mean 'no rule')."""

    type: str
    required: bool = False
    contains: tuple[str, ...] = ()
    does_not_contain: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()
    length: LengthRule | None = None
    range: RangeRule | None = None
    format: FieldFormat | None = None
    must_match: str | None = None
    properties: Mapping[str, ColumnType] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sorted_properties = MappingProxyType(dict(sorted(self.properties.items())))
        object.__setattr__(self, "properties", sorted_properties)

    def has_rules(self) -> bool:
        """True when any rule differs from its default."""
        return bool(
            self.required
            or self.contains
            or self.does_not_contain
            or self.regex
            or self.length is not None
            or self.range is not None
            or self.format is not None
            or self.must_match is not None
            or self.properties
        )

    def rules_dict(self) -> dict[str, Any]:
        """The non-default rules in §11 order."""
        out: dict[str, Any] = {}
        if self.required:
            out["required"] = True
        for key in ("contains", "does_not_contain", "regex"):
            values: tuple[str, ...] = getattr(self, key)
            if values:
                out[key] = list(values)
        if self.length is not None:
            out["length"] = {"min": self.length.min, "max": self.length.max}
        if self.range is not None:
            out["range"] = {"min": self.range.min, "max": self.range.max}
        if self.format is not None:
            out["format"] = self.format.value
        if self.must_match is not None:
            out["must_match"] = self.must_match
        if self.properties:
            out["properties"] = {k: v.to_json() for k, v in self.properties.items()}
        return out

    def to_json(self) -> str | dict[str, Any]:
        """Bare type string when there are no rules, else `{"type": ..., <rules>}`."""
        if not self.has_rules():
            return self.type
        return {"type": self.type, **self.rules_dict()}

    @classmethod
    def from_json(cls, value: Any, *, path: str = "") -> ColumnType:
        """Parse a column from its JSON form (type string or object with `type` and rules)."""
        if isinstance(value, str):
            return cls(type=parse_type_name(value))
        if not isinstance(value, Mapping):
            raise InvalidSchemaError(f"column {path} must be a type name or an object")
        type_text = value.get("type")
        if not isinstance(type_text, str):
            raise InvalidSchemaError(f"column {path} must declare a type")
        return with_rules(cls(type=parse_type_name(type_text)), value, path=path, strict=False)


def _str_list(value: Any, key: str, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidSchemaError(f"rule {key} for field {path} must be a list of strings")
    return tuple(dict.fromkeys(value))


def _bound(value: Any, key: str, path: str, *, integer: bool) -> Any:
    if value is None:
        return None
    if integer:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidSchemaError(
                f"length {key} for field {path} must be a non-negative integer"
            )
        return value
    if isinstance(value, bool):
        raise InvalidSchemaError(f"range {key} for field {path} must be a string")
    if isinstance(value, int | float):
        return format_number(value)
    if not isinstance(value, str):
        raise InvalidSchemaError(f"range {key} for field {path} must be a string")
    return value


def _bounds(value: Any, key: str, path: str) -> tuple[Any, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidSchemaError(f"rule {key} for field {path} must be an object with min and max")
    integer = key == "length"
    return (
        _bound(value.get("min"), "min", path, integer=integer),
        _bound(value.get("max"), "max", path, integer=integer),
    )


def _format(value: Any, path: str) -> FieldFormat | None:
    if value is None:
        return None
    try:
        return FieldFormat(value)
    except ValueError:
        raise InvalidSchemaError(f"unsupported format '{value}' for field {path}") from None


def _properties(value: Any, path: str) -> dict[str, ColumnType]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidSchemaError(f"properties for field {path} must be an object")
    return {
        str(name): ColumnType.from_json(column, path=f"{path}.{name}" if path else str(name))
        for name, column in value.items()
    }


def with_rules(
    column: ColumnType, rules: Mapping[str, Any], *, path: str, strict: bool = True
) -> ColumnType:
    """`column` with its rules replaced by `rules` (a §11 rules object); `type` keys are ignored.

    With `strict`, unknown rule keys are an error (used for `schema alter --rules`); stored schemas
    are read tolerantly.
    """
    if strict:
        unknown = sorted(set(rules) - set(RULE_KEYS) - {"type"})
        if unknown:
            raise InvalidSchemaError(f"unknown rule '{unknown[0]}' for field {path}")
    required = rules.get("required", False)
    if not isinstance(required, bool):
        raise InvalidSchemaError(f"rule required for field {path} must be a boolean")
    must_match = rules.get("must_match")
    if must_match is not None and not isinstance(must_match, str):
        raise InvalidSchemaError(f"rule must_match for field {path} must be a string")
    length = _bounds(rules.get("length"), "length", path)
    range_ = _bounds(rules.get("range"), "range", path)
    return ColumnType(
        type=column.type,
        required=required,
        contains=_str_list(rules.get("contains"), "contains", path),
        does_not_contain=_str_list(rules.get("does_not_contain"), "does_not_contain", path),
        regex=_str_list(rules.get("regex"), "regex", path),
        length=None if length is None else LengthRule(min=length[0], max=length[1]),
        range=None if range_ is None else RangeRule(min=range_[0], max=range_[1]),
        format=_format(rules.get("format"), path),
        must_match=must_match or None,
        properties=_properties(rules.get("properties"), path),
    )
