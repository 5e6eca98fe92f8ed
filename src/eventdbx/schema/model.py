"""The aggregate schema record (data-model.md §11): fields, §11 dict form, and creation with §9 name rules.

Pure: no I/O; persistence belongs to `store/schemas.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from eventdbx.domain.validation import check_type_name
from eventdbx.errors import InvalidSchemaError
from eventdbx.schema.column_types import ColumnType

__all__ = [
    "ColumnType",
    "EventDefinition",
    "Schema",
    "check_event_names",
    "new_schema",
]

EPOCH = "1970-01-01T00:00:00Z"


def sorted_unique(values: Sequence[str]) -> tuple[str, ...]:
    """Sorted, de-duplicated tuple (the §11 list form)."""
    return tuple(sorted(set(values)))


@dataclass(frozen=True, slots=True, kw_only=True)
class EventDefinition:
    """An event of a schema: its permitted field set (empty = any) and default note."""

    fields: tuple[str, ...] = ()
    notes: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", sorted_unique(self.fields))

    def to_dict(self) -> dict[str, Any]:
        """`{"fields": [...], "notes": ...}` with `notes` omitted when unset."""
        out: dict[str, Any] = {"fields": list(self.fields)}
        if self.notes is not None:
            out["notes"] = self.notes
        return out

    @classmethod
    def from_dict(cls, data: Any, *, event: str = "") -> EventDefinition:
        """Parse an event definition; missing keys take their defaults."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise InvalidSchemaError(f"event {event} must be an object")
        fields = data.get("fields") or []
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise InvalidSchemaError(f"fields of event {event} must be a list of strings")
        notes = data.get("notes")
        if notes is not None and not isinstance(notes, str):
            raise InvalidSchemaError(f"notes of event {event} must be a string")
        return cls(fields=tuple(fields), notes=notes)


@dataclass(frozen=True, slots=True, kw_only=True)
class Schema:
    """An aggregate's schema. Lists are kept sorted and unique, maps sorted by key."""

    aggregate: str
    snapshot_threshold: int | None = None
    locked: bool = False
    field_locks: tuple[str, ...] = ()
    hidden: bool = False
    hidden_fields: tuple[str, ...] = ()
    column_types: Mapping[str, ColumnType] = field(default_factory=dict)
    events: Mapping[str, EventDefinition] = field(default_factory=dict)
    created_at: str = EPOCH
    updated_at: str = EPOCH

    def __post_init__(self) -> None:
        object.__setattr__(self, "field_locks", sorted_unique(self.field_locks))
        object.__setattr__(self, "hidden_fields", sorted_unique(self.hidden_fields))
        # read-only views: parsed schemas are cached and shared (store/schemas.py)
        columns = MappingProxyType(dict(sorted(self.column_types.items())))
        object.__setattr__(self, "column_types", columns)
        object.__setattr__(self, "events", MappingProxyType(dict(sorted(self.events.items()))))

    def to_dict(self) -> dict[str, Any]:
        """The §11 JSON object, keys in spec order."""
        return {
            "aggregate": self.aggregate,
            "snapshot_threshold": self.snapshot_threshold,
            "locked": self.locked,
            "field_locks": list(self.field_locks),
            "hidden": self.hidden,
            "hidden_fields": list(self.hidden_fields),
            "column_types": {name: col.to_json() for name, col in self.column_types.items()},
            "events": {name: ev.to_dict() for name, ev in self.events.items()},
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        """Parse the §11 object; every key but `aggregate` may be missing (defaults apply)."""
        if not isinstance(data, Mapping):
            raise InvalidSchemaError("schema must be a JSON object")
        aggregate = data.get("aggregate")
        if not isinstance(aggregate, str) or not aggregate.strip():
            raise InvalidSchemaError("aggregate name must be provided")
        created_at = _text(data, "created_at", data.get("updated_at") or EPOCH)
        return cls(
            aggregate=aggregate,
            snapshot_threshold=check_threshold(data.get("snapshot_threshold")),
            locked=_flag(data, "locked"),
            field_locks=_names(data, "field_locks"),
            hidden=_flag(data, "hidden"),
            hidden_fields=_names(data, "hidden_fields"),
            column_types=_columns(data.get("column_types")),
            events=_events(data.get("events")),
            created_at=created_at,
            updated_at=_text(data, "updated_at", created_at),
        )


def _text(data: Mapping[str, Any], key: str, default: str) -> str:
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidSchemaError(f"{key} must be a string")
    return value


def _flag(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidSchemaError(f"{key} must be a boolean")
    return value


def check_threshold(value: Any) -> int | None:
    """A snapshot threshold: None or a non-negative integer."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidSchemaError("snapshot_threshold must be a non-negative integer")
    return value


def _names(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidSchemaError(f"{key} must be a list of strings")
    return tuple(value)


def _columns(value: Any) -> dict[str, ColumnType]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidSchemaError("column_types must be an object")
    return {str(name): ColumnType.from_json(col, path=str(name)) for name, col in value.items()}


def _events(value: Any) -> dict[str, EventDefinition]:
    if value is None:
        return {}
    if isinstance(value, list):  # tolerate a bare list of event names
        return {str(name): EventDefinition() for name in value}
    if not isinstance(value, Mapping):
        raise InvalidSchemaError("events must be an object")
    return {str(name): EventDefinition.from_dict(ev, event=str(name)) for name, ev in value.items()}


def check_event_names(events: Sequence[str]) -> None:
    """Blank event names and the §9 name rule, in order."""
    for event in events:
        if not event.strip():
            raise InvalidSchemaError("event names cannot be empty")
        check_type_name("event_type", event)


def new_schema(
    aggregate: str, events: Sequence[str], snapshot_threshold: int | None, now: str
) -> Schema:
    """A fresh schema for `schema create`, raising the cli.md §5 / data-model §9 errors."""
    if not aggregate.strip():
        raise InvalidSchemaError("aggregate name must be provided")
    if not events:
        raise InvalidSchemaError("at least one event must be provided")
    check_type_name("aggregate_type", aggregate)
    check_event_names(events)
    return Schema(
        aggregate=aggregate,
        snapshot_threshold=check_threshold(snapshot_threshold),
        events={event: EventDefinition() for event in events},
        created_at=now,
        updated_at=now,
    )
