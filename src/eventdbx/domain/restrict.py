"""Restrict modes (data-model.md §10): how strictly schemas are enforced, parsed from config words. Pure."""

from __future__ import annotations

from enum import StrEnum


class RestrictMode(StrEnum):
    """Schema enforcement mode."""

    OFF = "off"
    DEFAULT = "default"
    STRICT = "strict"


_WORDS: dict[str, RestrictMode] = {
    **dict.fromkeys(("off", "false", "0", "no", "none", "unrestricted", "dev"), RestrictMode.OFF),
    **dict.fromkeys(
        ("default", "true", "1", "yes", "on", "prod", "restricted", "hybrid"), RestrictMode.DEFAULT
    ),
    **dict.fromkeys(("strict", "all", "enforced"), RestrictMode.STRICT),
}


def parse_restrict(value: str | bool | None) -> RestrictMode:
    """Mode of a config value: words case-insensitive, TOML bools, unknown words and None → default."""
    if value is None:
        return RestrictMode.DEFAULT
    if isinstance(value, bool):
        return RestrictMode.DEFAULT if value else RestrictMode.OFF
    return _WORDS.get(str(value).strip().lower(), RestrictMode.DEFAULT)
