"""Per-plugin health for `dbx queue` (plugins.md §12): lagging or stuck, and compact age text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthInputs:
    """What the state rules look at for one plugin."""

    enabled: bool
    emit_events: bool
    daemon_running: bool
    worker_down: bool
    pending: int
    processing: int
    due: int
    blocked: int
    last_attempt_at: float | None
    last_success_at: float | None
    last_failure_at: float | None
    now: float
    stall_after_secs: float


def plugin_state(h: HealthInputs) -> str:
    """The first matching row of the §12 table."""
    if not h.emit_events:
        return "no-events"
    if not h.enabled:
        return "paused"
    if not h.daemon_running:
        return "no-dispatcher"
    if h.worker_down:
        return "stopped"
    if h.pending == 0 and h.processing == 0:
        return "idle"
    window = h.stall_after_secs
    if h.due > 0 and (h.last_attempt_at is None or h.now - h.last_attempt_at > window):
        return "stalled"
    if h.last_success_at is not None and h.now - h.last_success_at <= window:
        return "flowing"
    if h.last_failure_at is not None and (
        h.last_success_at is None or h.last_failure_at >= h.last_success_at
    ):
        return "retrying"
    if h.pending > 0 and h.blocked >= h.pending:
        return "blocked"
    return "flowing"


def format_age(seconds: float | None) -> str:
    """`45s`, `4m12s`, `2h05m`, `3d04h`; `-` when unknown."""
    if seconds is None:
        return "-"
    total = max(0, int(seconds))
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    if total < 86400:
        return f"{total // 3600}h{(total % 3600) // 60:02d}m"
    return f"{total // 86400}d{(total % 86400) // 3600:02d}h"
