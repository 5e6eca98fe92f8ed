"""Per-plugin circuit breaker (plugins.md §5): counts endpoint failures, opens, schedules probes, closes.

A pure state machine over a `Clock` (wall seconds, as stored in plugin_queue.db). It never touches the queue:
the dispatcher asks it whether to claim or probe, reports outcomes, and persists `snapshot()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from eventdbx.clock import Clock
from eventdbx.plugins import dispatcher_log
from eventdbx.plugins.backoff import RETRY_AFTER_CAP

OPEN_AFTER_FAILURES = 5
PROBE_STEPS: tuple[float, ...] = (1.0, 2.0, 4.0, 10.0)


class CircuitState(StrEnum):
    """What `dbx queue` shows as `circuit=`."""

    CLOSED = "closed"
    OPEN = "open"


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitSnapshot:
    """The persisted fields (the keyword arguments of `PluginQueue.set_circuit`)."""

    circuit: str
    consecutive_failures: int
    opened_at: float | None
    next_probe_at: float | None
    probe_failures: int


def _probe_wait(probe_failures: int, retry_after: float | None) -> float:
    step = PROBE_STEPS[min(probe_failures, len(PROBE_STEPS) - 1)]
    if retry_after is None:
        return step
    return max(step, min(retry_after, RETRY_AFTER_CAP))


class CircuitBreaker:
    """Open after 5 consecutive endpoint failures (or a Retry-After); one probe at a time while open."""

    def __init__(self, label: str, clock: Clock, *, threshold: int = OPEN_AFTER_FAILURES) -> None:
        self.label = label
        self._clock = clock
        self._threshold = threshold
        self.state = CircuitState.CLOSED
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        self.next_probe_at: float | None = None
        self.probe_failures = 0
        self.probing = False

    @property
    def is_open(self) -> bool:
        """True while regular claims must stop."""
        return self.state is CircuitState.OPEN

    def probe_due(self) -> bool:
        """True when the circuit is open, no probe is out, and the probe time has come."""
        if not self.is_open or self.probing or self.next_probe_at is None:
            return False
        return self._clock.time() >= self.next_probe_at

    def begin_probe(self) -> None:
        """A probe job was claimed and is being delivered."""
        self.probing = True

    def abandon_probe(self) -> None:
        """The probe never ran or was released (no verdict): the next one may go at once."""
        self.probing = False

    def record_success(self) -> bool:
        """A delivery succeeded: reset the count and close. Returns True if persisted fields changed."""
        self.probing = False
        failures = self.consecutive_failures
        was_open = self.is_open
        if was_open:
            opened = self.opened_at if self.opened_at is not None else self._clock.time()
            dispatcher_log.circuit_closed(self.label, after=self._clock.time() - opened)
        if failures > 0:
            dispatcher_log.delivery_recovered(self.label, after_failures=failures)
        self._close()
        return was_open or failures > 0

    def record_failure(
        self, error: str, *, endpoint: bool, retry_after: float | None = None
    ) -> bool:
        """A regular delivery failed. Endpoint failures count; a Retry-After opens at once until then."""
        if not endpoint and retry_after is None:
            return False
        self.consecutive_failures += 1
        now = self._clock.time()
        if self.is_open:
            if retry_after is not None and self.next_probe_at is not None:
                self.next_probe_at = max(
                    self.next_probe_at, now + min(retry_after, RETRY_AFTER_CAP)
                )
            return True
        if retry_after is not None or self.consecutive_failures >= self._threshold:
            self._open(now, error, retry_after)
        return True

    def record_probe_failure(self, error: str, *, retry_after: float | None = None) -> None:
        """The probe failed at the endpoint: stay open and schedule the next probe (1, 2, 4, then 10 s)."""
        del error
        self.probing = False
        self.consecutive_failures += 1
        self.probe_failures += 1
        self.next_probe_at = self._clock.time() + _probe_wait(self.probe_failures, retry_after)

    def snapshot(self) -> CircuitSnapshot:
        """The fields to persist in plugin_queue.db."""
        return CircuitSnapshot(
            circuit=self.state.value,
            consecutive_failures=self.consecutive_failures,
            opened_at=self.opened_at,
            next_probe_at=self.next_probe_at,
            probe_failures=self.probe_failures,
        )

    def restore(self, snapshot: CircuitSnapshot) -> None:
        """Resume from persisted fields (daemon restart during an outage)."""
        self.state = CircuitState(snapshot.circuit)
        self.consecutive_failures = snapshot.consecutive_failures
        self.opened_at = snapshot.opened_at
        self.next_probe_at = snapshot.next_probe_at
        self.probe_failures = snapshot.probe_failures
        if self.is_open and self.next_probe_at is None:
            self.next_probe_at = self._clock.time()

    def _open(self, now: float, error: str, retry_after: float | None) -> None:
        self.state = CircuitState.OPEN
        self.opened_at = now
        self.probe_failures = 0
        self.next_probe_at = now + _probe_wait(0, retry_after)
        dispatcher_log.circuit_opened(
            self.label, consecutive_failures=self.consecutive_failures, error=error
        )

    def _close(self) -> None:
        self.state = CircuitState.CLOSED
        self.consecutive_failures = 0
        self.opened_at = None
        self.next_probe_at = None
        self.probe_failures = 0
