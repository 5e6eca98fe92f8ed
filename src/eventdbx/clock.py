"""Time sources (real and fake) and snowflake event/job id arithmetic; no I/O beyond reading the clock."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

SNOWFLAKE_EPOCH_MS = 1735689600000  # 2025-01-01T00:00:00Z
MAX_WORKER_ID = 1023
_SEQ_BITS = 12
_WORKER_BITS = 10
_SEQ_MASK = (1 << _SEQ_BITS) - 1


class Clock(Protocol):
    """What code needs to know about "now"."""

    def time(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    def monotonic(self) -> float:
        """A monotonic reading in seconds, for durations and deadlines."""
        ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        """Seconds since the Unix epoch."""
        return time.time()

    def monotonic(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()


@dataclass(slots=True)
class FakeClock:
    """A clock tests move by hand."""

    now: float = 1761480000.0
    mono: float = 1000.0

    def time(self) -> float:
        """The fake wall time."""
        return self.now

    def monotonic(self) -> float:
        """The fake monotonic time."""
        return self.mono

    def advance(self, seconds: float) -> None:
        """Move both readings forward."""
        self.now += seconds
        self.mono += seconds


def now_ms(clock: Clock) -> int:
    """Milliseconds since the Unix epoch."""
    return int(clock.time() * 1000)


def utc_datetime(clock: Clock) -> datetime:
    """Now as an aware UTC datetime (microsecond precision)."""
    return datetime.fromtimestamp(clock.time(), tz=UTC)


def compose_snowflake(ms: int, worker_id: int, sequence: int) -> int:
    """Pack milliseconds (Unix), worker and sequence into a snowflake id."""
    return ((ms - SNOWFLAKE_EPOCH_MS) << (_WORKER_BITS + _SEQ_BITS)) | (worker_id << _SEQ_BITS) | sequence


def snowflake_ms(snowflake: int) -> int:
    """The Unix milliseconds encoded in a snowflake id."""
    return (snowflake >> (_WORKER_BITS + _SEQ_BITS)) + SNOWFLAKE_EPOCH_MS


def next_snowflake(now_unix_ms: int, last_id: int | None, worker_id: int) -> int:
    """The next id after `last_id` (data-model.md §7): never blocks on clock steps, always increasing."""
    if last_id is None or last_id <= 0:
        return compose_snowflake(max(now_unix_ms, SNOWFLAKE_EPOCH_MS), worker_id, 0)
    last_ms = snowflake_ms(last_id)
    last_seq = last_id & _SEQ_MASK
    ms = max(now_unix_ms, last_ms)
    if ms > last_ms:
        return compose_snowflake(ms, worker_id, 0)
    if last_seq + 1 > _SEQ_MASK:
        return compose_snowflake(last_ms + 1, worker_id, 0)
    return compose_snowflake(ms, worker_id, last_seq + 1)
