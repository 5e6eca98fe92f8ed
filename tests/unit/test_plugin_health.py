"""Plugin health states (plugins.md §12) and age text."""

from __future__ import annotations

from dataclasses import replace

import pytest

from eventdbx.plugins.health import HealthInputs, format_age, plugin_state

BASE = HealthInputs(
    enabled=True,
    emit_events=True,
    daemon_running=True,
    worker_down=False,
    pending=3,
    processing=0,
    due=3,
    blocked=0,
    last_attempt_at=990.0,
    last_success_at=990.0,
    last_failure_at=None,
    now=1000.0,
    stall_after_secs=60,
)


@pytest.mark.parametrize(
    ("changes", "state"),
    [
        ({"emit_events": False, "enabled": False}, "no-events"),
        ({"enabled": False, "daemon_running": False}, "paused"),
        ({"daemon_running": False}, "no-dispatcher"),
        ({"worker_down": True}, "stopped"),
        ({"pending": 0, "due": 0}, "idle"),
        ({"last_attempt_at": 900.0, "last_success_at": 900.0}, "stalled"),
        ({"last_attempt_at": None, "last_success_at": None}, "stalled"),
        ({}, "flowing"),
        ({"last_success_at": 800.0, "last_failure_at": 990.0}, "retrying"),
        ({"due": 0, "blocked": 3, "last_success_at": 800.0, "last_attempt_at": 800.0}, "blocked"),
    ],
)
def test_first_matching_row_wins(changes: dict[str, object], state: str) -> None:
    assert plugin_state(replace(BASE, **changes)) == state  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0, "0s"),
        (45, "45s"),
        (252, "4m12s"),
        (7500, "2h05m"),
        (273600, "3d04h"),
    ],
)
def test_ages(seconds: float | None, text: str) -> None:
    assert format_age(seconds) == text
