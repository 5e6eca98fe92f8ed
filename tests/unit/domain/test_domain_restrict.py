"""restrict: §10 words, case-insensitivity, TOML bools and defaults."""

from __future__ import annotations

import pytest

from eventdbx.domain.restrict import RestrictMode, parse_restrict

OFF_WORDS = ("off", "false", "0", "no", "none", "unrestricted", "dev", "OFF", "Dev")
DEFAULT_WORDS = ("default", "true", "1", "yes", "on", "prod", "restricted", "hybrid", "ON")
STRICT_WORDS = ("strict", "all", "enforced", "STRICT", "Enforced")


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        *[(w, RestrictMode.OFF) for w in OFF_WORDS],
        *[(w, RestrictMode.DEFAULT) for w in DEFAULT_WORDS],
        *[(w, RestrictMode.STRICT) for w in STRICT_WORDS],
        ("bogus", RestrictMode.DEFAULT),
        ("", RestrictMode.DEFAULT),
        (None, RestrictMode.DEFAULT),
        (True, RestrictMode.DEFAULT),
        (False, RestrictMode.OFF),
    ],
)
def test_parse_restrict(value: str | bool | None, mode: RestrictMode) -> None:
    assert parse_restrict(value) is mode


def test_values_are_strings() -> None:
    assert [m.value for m in RestrictMode] == ["off", "default", "strict"]
    assert str(RestrictMode.STRICT) == "strict"
