"""Records and enums of plugin_queue.db (jobs, history, per-plugin state, stats, prune policy); no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from eventdbx.domain.timefmt import format_epoch_millis


class JobStatus(StrEnum):
    """Where a job is in its life."""

    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    DEAD = "dead"


class Resolution(StrEnum):
    """How a done job got done."""

    DELIVERED = "delivered"
    SKIPPED = "skipped"
    EMPTY = "empty"


class Outcome(StrEnum):
    """History entry outcomes (plugins.md §3)."""

    DELIVERED = "delivered"
    FAILED = "failed"
    PERMANENT = "permanent"
    INTERRUPTED = "interrupted"
    RELEASED = "released"
    PROBE_FAILED = "probe-failed"
    RETRIED = "retried"
    SKIPPED = "skipped"


def ts(seconds: float | None) -> str | None:
    """RFC 3339 UTC with milliseconds and `Z`, or None."""
    return None if seconds is None else format_epoch_millis(seconds)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewJob:
    """A job about to be inserted by the enqueuer (envelope None = empty: stored as done/empty)."""

    plugin_name: str
    label: str
    aggregate_type: str
    aggregate_id: str
    event_type: str
    event_id: int
    version: int
    event_created_at: str
    envelope: str | None
    replay: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One stored job."""

    id: int
    plugin_name: str
    label: str
    status: JobStatus
    resolution: Resolution | None
    replay: bool
    attempts: int
    last_error: str | None
    created_at: float
    next_retry_at: float | None
    completed_at: float | None
    lease_expires_at: float | None
    claim_token: str | None
    aggregate_type: str
    aggregate_id: str
    event_type: str
    event_id: int
    version: int
    event_created_at: str
    envelope: str

    def shown_retry_at(self, now: float | None = None) -> float | None:
        """`next_retry_at` as §3 shows it: only while a pending job backs off (null once due at `now`)."""
        if self.status is not JobStatus.PENDING or self.next_retry_at is None:
            return None
        return None if now is not None and self.next_retry_at <= now else self.next_retry_at

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        """The §3 record in key order (next_retry_at as of `now`); `payload` is the stored envelope, verbatim."""
        return {
            "id": str(self.id),
            "plugin": self.label,
            "plugin_name": self.plugin_name,
            "status": self.status.value,
            "resolution": None if self.resolution is None else self.resolution.value,
            "replay": self.replay,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "created_at": ts(self.created_at),
            "next_retry_at": ts(self.shown_retry_at(now)),
            "completed_at": ts(self.completed_at),
            "aggregate_type": self.aggregate_type,
            "aggregate_id": self.aggregate_id,
            "event_type": self.event_type,
            "event_id": str(self.event_id),
            "version": self.version,
            "payload": orjson.Fragment(self.envelope),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    """One attempt or operator action on a job."""

    attempt: int | None
    started_at: float
    finished_at: float
    outcome: Outcome
    error: str | None
    http_status: int | None

    def to_dict(self) -> dict[str, Any]:
        """`{attempt, started_at, finished_at, outcome, error, http_status}`."""
        return {
            "attempt": self.attempt,
            "started_at": ts(self.started_at),
            "finished_at": ts(self.finished_at),
            "outcome": self.outcome.value,
            "error": self.error,
            "http_status": self.http_status,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class JobDetail:
    """What `dbx queue show` prints."""

    job: Job
    blocked_by: int | None
    held_back: tuple[int, ...]
    history: tuple[HistoryEntry, ...]

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        """§3 record plus lease_expires_at, blocked_by, held_back and history."""
        out = self.job.to_dict(now)
        out["lease_expires_at"] = ts(self.job.lease_expires_at)
        out["blocked_by"] = None if self.blocked_by is None else str(self.blocked_by)
        out["held_back"] = [str(i) for i in self.held_back]
        out["history"] = [h.to_dict() for h in self.history]
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueCounts:
    """Jobs per status."""

    pending: int = 0
    processing: int = 0
    done: int = 0
    dead: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginState:
    """Per-plugin bookkeeping: cursor, delivery times, circuit breaker, process worker."""

    name: str
    cursor: int | None
    last_attempt_at: float | None = None
    last_success_at: float | None = None
    last_failure_at: float | None = None
    last_error: str | None = None
    circuit: str = "closed"
    consecutive_failures: int = 0
    circuit_opened_at: float | None = None
    next_probe_at: float | None = None
    probe_failures: int = 0
    worker_desired: str | None = None
    worker_actual: str | None = None
    worker_pid: int | None = None
    worker_detail: str | None = None
    worker_updated_at: float | None = None
    created_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginStats:
    """Per-plugin figures for `dbx queue` (the `state` column is derived by the CLI, plugins.md §12)."""

    name: str
    cursor: int | None
    unqueued: int
    pending: int
    processing: int
    dead: int
    blocked: int
    blocked_aggregates: int
    due: int
    oldest_pending_secs: float | None
    last_attempt_at: float | None
    last_success_at: float | None
    last_failure_at: float | None
    last_error: str | None
    circuit: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PrunePolicy:
    """`[plugin_queue.prune]` (plugins.md §6)."""

    done_ttl_secs: float = 86400
    max_done_jobs: int | None = None
    dead_ttl_secs: float = 0

    @classmethod
    def from_settings(cls, prune: object) -> PrunePolicy:
        """Read `done_ttl_secs`, `max_done_jobs`, `dead_ttl_secs` from a settings object."""
        cap = getattr(prune, "max_done_jobs", None)
        return cls(
            done_ttl_secs=float(getattr(prune, "done_ttl_secs", 86400) or 0),
            max_done_jobs=None if cap is None else int(cap),
            dead_ttl_secs=float(getattr(prune, "dead_ttl_secs", 0) or 0),
        )

    @property
    def enabled(self) -> bool:
        """False only when all three rules are off."""
        return self.done_ttl_secs > 0 or self.max_done_jobs is not None or self.dead_ttl_secs > 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneResult:
    """Rows deleted by one prune pass, per rule."""

    done_expired: int = 0
    done_capped: int = 0
    dead_expired: int = 0
