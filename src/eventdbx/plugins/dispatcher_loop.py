"""One plugin's delivery loop: claims due jobs (or the circuit probe), runs at most `concurrency`
deliveries, records outcomes, and on stop releases what did not finish within the grace period.

SQLite calls run on worker threads so the event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eventdbx.clock import Clock
from eventdbx.errors import DeliveryError
from eventdbx.plugins.circuit import CircuitBreaker, CircuitSnapshot
from eventdbx.plugins.dispatcher_outcome import OutcomeRecorder, VerdictKind, circuit_wait, decide
from eventdbx.plugins.sink import DeliveryJob, Sink

if TYPE_CHECKING:
    from eventdbx.plugins.registry import PluginDefinition
    from eventdbx.store.plugin_queue import PluginQueue
    from eventdbx.store.plugin_queue_model import Job

log = logging.getLogger("eventdbx.plugin")
LOG_SINK_TIMEOUT_SECS = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatcherTiming:
    """Intervals of the dispatcher; the defaults are the spec's (plugins.md §4)."""

    poll_secs: float = 1.0
    sweep_secs: float = 5.0
    reload_secs: float = 1.0
    lease_margin_secs: float = 30.0


@dataclass(slots=True)
class _InFlight:
    job: Job
    task: asyncio.Task[None]
    started_at: float
    probe: bool


def lease_secs(definition: PluginDefinition, margin: float) -> float:
    """`timeout_secs` (5 for log) + 30 s."""
    timeout = getattr(definition.config, "timeout_secs", LOG_SINK_TIMEOUT_SECS)
    return float(timeout) + margin


class PluginLoop:
    """Delivers one plugin's jobs until stopped."""

    def __init__(
        self, definition: PluginDefinition, sink: Sink, queue: PluginQueue, *, clock: Clock,
        max_attempts: int, timing: DispatcherTiming,
    ) -> None:
        self.definition = definition
        self.sink = sink
        self.queue = queue
        self.clock = clock
        self.timing = timing
        self.name = definition.name
        self.circuit = CircuitBreaker(definition.label, clock)
        self.recorder = OutcomeRecorder(queue=queue, label=definition.label, max_attempts=max_attempts)
        self.lease = lease_secs(definition, timing.lease_margin_secs)
        self.in_flight: dict[int, _InFlight] = {}
        self.last_finished = clock.monotonic()
        self.stall_reported = False
        self._signal = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the claim loop as a task."""
        self._task = asyncio.create_task(self._run(), name=f"dispatch {self.definition.label}")

    def wake(self) -> None:
        """New jobs or changed state: claim again now."""
        self._signal.set()

    def set_max_attempts(self, max_attempts: int) -> None:
        """Live `plugin_max_attempts` change."""
        self.recorder.max_attempts = max_attempts

    async def stop(self, grace: float) -> None:
        """Stop claiming, give in-flight deliveries `grace` seconds, release the rest, close the sink."""
        self._stopping = True
        self._signal.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        tasks = [f.task for f in self.in_flight.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=max(grace, 0.0))
        await self._release_unfinished()
        try:
            await self.sink.aclose()
        except Exception:  # a sink that fails to close must not stop the shutdown
            log.exception("closing the sink of plugin %s failed", self.definition.label)

    async def _release_unfinished(self) -> None:
        left = list(self.in_flight.values())
        for flight in left:
            flight.task.cancel()
        if left:
            await asyncio.gather(*(f.task for f in left), return_exceptions=True)
        now = self.clock.time()
        for flight in left:
            await asyncio.to_thread(
                self.recorder.released, flight.job, started_at=flight.started_at, now=now
            )
        self.in_flight.clear()

    def cancel_expired(self, job_ids: set[int]) -> None:
        """The lease sweep took these jobs back: cancel their hung calls (no outcome is written)."""
        for job_id in job_ids & self.in_flight.keys():
            flight = self.in_flight.pop(job_id)
            if flight.probe:
                self.circuit.abandon_probe()
            flight.task.cancel()
        self._signal.set()

    # -- claiming --------------------------------------------------------------------------------

    async def _run(self) -> None:
        await self._restore_circuit()
        while not self._stopping:
            self._signal.clear()
            claimed_all = True
            try:
                claimed_all = await self._fill()
            except Exception:
                log.exception("claiming jobs for plugin %s failed", self.definition.label)
            if self._stopping:
                break
            timeout = await self._wait_timeout(claimed_all)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._signal.wait()

    async def _restore_circuit(self) -> None:
        try:
            state = await asyncio.to_thread(self.queue.get_state, self.name)
        except Exception:
            log.exception("reading the circuit of plugin %s failed", self.definition.label)
            return
        if state is not None and state.circuit == "open":
            self.circuit.restore(CircuitSnapshot(
                circuit=state.circuit, consecutive_failures=state.consecutive_failures,
                opened_at=state.circuit_opened_at, next_probe_at=state.next_probe_at,
                probe_failures=state.probe_failures,
            ))

    async def _fill(self) -> bool:
        """Claim into free slots; True when every free slot got a job (more may be due)."""
        free = self.definition.concurrency - len(self.in_flight)
        if free <= 0:
            return True
        ordering = self.definition.ordering
        if self.circuit.is_open:
            if not self.circuit.probe_due():
                return False
            probe = await asyncio.to_thread(
                self.queue.claim_probe, self.name, now=self.clock.time(), lease_secs=self.lease,
                ordering=ordering,
            )
            if probe is not None:
                self.circuit.begin_probe()
                self._launch(probe, probe=True)
            return False
        jobs = await asyncio.to_thread(
            self.queue.claim, self.name, now=self.clock.time(), limit=free, lease_secs=self.lease,
            ordering=ordering,
        )
        for job in jobs:
            self._launch(job, probe=False)
        return len(jobs) == free

    async def _wait_timeout(self, claimed_all: bool) -> float:
        poll = self.timing.poll_secs
        if claimed_all and len(self.in_flight) < self.definition.concurrency:
            return 0.0
        now = self.clock.time()
        if self.circuit.is_open:
            at = self.circuit.next_probe_at
            if self.circuit.probing or at is None:
                return poll
            return min(poll, max(at - now, 0.0))
        if len(self.in_flight) >= self.definition.concurrency:
            return poll
        try:
            at = await asyncio.to_thread(
                self.queue.next_wakeup, self.name, ordering=self.definition.ordering
            )
        except Exception:
            log.exception("reading the next wake-up of plugin %s failed", self.definition.label)
            return poll
        if at is None or at <= now:
            return poll
        return min(poll, at - now)

    # -- delivering ------------------------------------------------------------------------------

    def _launch(self, job: Job, *, probe: bool) -> None:
        started = self.clock.time()
        task = asyncio.create_task(self._deliver(job, started, probe))
        self.in_flight[job.id] = _InFlight(job=job, task=task, started_at=started, probe=probe)

    async def _deliver(self, job: Job, started: float, probe: bool) -> None:
        try:
            try:
                status = await self.sink.deliver(DeliveryJob.from_job(job))
            except DeliveryError as exc:
                await self._failed(job, exc, started, probe)
            except Exception as exc:  # a sink bug: retryable, never endpoint-level
                detail = f"{self.definition.kind} plugin delivery failed: {type(exc).__name__}: {exc}"
                await self._failed(job, DeliveryError(detail), started, probe)
            else:
                await self._delivered(job, status, started)
        except Exception:
            log.exception("recording an outcome for plugin %s failed", self.definition.label)
        finally:
            self._finish(job.id, asyncio.current_task())

    def _finish(self, job_id: int, task: asyncio.Task[object] | None) -> None:
        flight = self.in_flight.get(job_id)
        if flight is not None and flight.task is task:
            del self.in_flight[job_id]
        self.last_finished = self.clock.monotonic()
        self.stall_reported = False
        self._signal.set()

    async def _delivered(self, job: Job, status: int | None, started: float) -> None:
        await asyncio.to_thread(
            self.recorder.delivered, job, started_at=started, now=self.clock.time(), http_status=status
        )
        if self.circuit.record_success():
            await self._persist_circuit()

    async def _failed(self, job: Job, exc: DeliveryError, started: float, probe: bool) -> None:
        verdict = decide(
            attempts=job.attempts, error=exc, max_attempts=self.recorder.max_attempts, probe=probe
        )
        changed = False
        probe_retry_at: float | None = None
        if verdict.kind is VerdictKind.PROBE_FAILED:
            self.circuit.record_probe_failure(exc.message, retry_after=exc.retry_after)
            probe_retry_at, changed = self.circuit.next_probe_at, True
        elif probe:  # the endpoint answered: the outage is over, whatever this job's own fate
            changed = self.circuit.record_success()
        else:
            changed = self.circuit.record_failure(
                exc.message, endpoint=exc.endpoint_failure, retry_after=circuit_wait(verdict, exc)
            )
        await asyncio.to_thread(
            self.recorder.failed, job, verdict, exc, started_at=started, now=self.clock.time(),
            probe_retry_at=probe_retry_at,
        )
        if changed:
            await self._persist_circuit()

    async def _persist_circuit(self) -> None:
        snap = self.circuit.snapshot()
        await asyncio.to_thread(
            self.queue.set_circuit, self.name, circuit=snap.circuit,
            consecutive_failures=snap.consecutive_failures, opened_at=snap.opened_at,
            next_probe_at=snap.next_probe_at, probe_failures=snap.probe_failures,
        )
