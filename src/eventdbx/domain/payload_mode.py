"""Plugin payload modes (which envelope parts a plugin receives) and per-plugin delivery ordering; pure values."""

from __future__ import annotations

from enum import StrEnum

from eventdbx.errors import ConfigError


class PayloadMode(StrEnum):
    """The `--payload` modes of plugins.md §7."""

    ALL = "all"
    EVENT_ONLY = "event-only"
    STATE_ONLY = "state-only"
    SCHEMA_ONLY = "schema-only"
    EVENT_AND_SCHEMA = "event-and-schema"
    EXTENSIONS_ONLY = "extensions-only"

    @property
    def has_event(self) -> bool:
        """Whether the envelope carries `event` (with a null payload in extensions-only)."""
        return self in _WITH_EVENT

    @property
    def has_state(self) -> bool:
        """Whether the envelope carries `state`."""
        return self in (PayloadMode.ALL, PayloadMode.STATE_ONLY)

    @property
    def has_schema(self) -> bool:
        """Whether the envelope carries `schema` (when one exists)."""
        return self in (PayloadMode.ALL, PayloadMode.SCHEMA_ONLY, PayloadMode.EVENT_AND_SCHEMA)


_WITH_EVENT = frozenset(
    {PayloadMode.ALL, PayloadMode.EVENT_ONLY, PayloadMode.EVENT_AND_SCHEMA, PayloadMode.EXTENSIONS_ONLY}
)


class Ordering(StrEnum):
    """Per-plugin delivery ordering (plugins.md §4)."""

    AGGREGATE = "aggregate"
    NONE = "none"


def parse_payload_mode(text: str) -> PayloadMode:
    """The mode named by `text` (trimmed, any case); ConfigError otherwise."""
    try:
        return PayloadMode(text.strip().lower())
    except ValueError:
        modes = ", ".join(m.value for m in PayloadMode)
        raise ConfigError(f"invalid payload mode '{text}' (expected one of {modes})") from None


def parse_ordering(text: str) -> Ordering:
    """The ordering named by `text` (trimmed, any case); ConfigError otherwise."""
    try:
        return Ordering(text.strip().lower())
    except ValueError:
        raise ConfigError(f"invalid ordering '{text}' (expected aggregate or none)") from None
