"""One plugin's delivery loop: claims due jobs (or the circuit probe), runs at most `concurrency`
deliveries, records outcomes, and on stop releases what did not finish within the grace period.

SQLite work runs on a worker thread, batched: each turn records every finished attempt and claims into the
freed slots in one hop, so the event loop never blocks on disk and the queue sees few transactions.
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
from eventdbx.plugins.dispatcher_outcome import (
    OutcomeRecorder,
    Verdict,
    VerdictKind,
    circuit_wait,
    decide,
)
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


@dataclass(slots=True)
class _Finished:
    flight: _InFlight
    finished_at: float
    status: int | None = None
    error: DeliveryError | None = None


@dataclass(slots=True)
class _Write:
    """One outcome to write: success (verdict None) or a failure with its verdict."""

    finished: _Finished
    verdict: Verdict | None = None
    probe_retry_at: float | None = None


def lease_secs(definition: PluginDefinition, margin: float) -> float:
    """`timeout_secs` (5 for log) + 30 s."""
    timeout = getattr(definition.config, "timeout_secs", LOG_SINK_TIMEOUT_SECS)
    return float(timeout) + margin


class PluginLoop:
    """Delivers one plugin's jobs until stopped."""

    def __init__(
        self,
        definition: PluginDefinition,
        sink: Sink,
        queue: PluginQueue,
        *,
        clock: Clock,
        max_attempts: int,
        timing: DispatcherTiming,
    ) -> None:
        self.definition = definition
        self.sink = sink
        self.queue = queue
        self.clock = clock
        self.timing = timing
        self.name = definition.name
        self.circuit = CircuitBreaker(definition.label, clock)
        self.recorder = OutcomeRecorder(
            queue=queue, label=definition.label, max_attempts=max_attempts
        )
        self.lease = lease_secs(definition, timing.lease_margin_secs)
        self.in_flight: dict[int, _InFlight] = {}
        self.last_finished = clock.monotonic()
        self.stall_reported = False
        self._finished: list[_Finished] = []
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
        running = [f.task for f in self.in_flight.values() if not f.task.done()]
        if running:
            await asyncio.wait(running, timeout=max(grace, 0.0))
        await self._release_unfinished()
        try:
            await self.sink.aclose()
        except Exception:  # a sink that fails to close must not stop the shutdown
            log.exception("closing the sink of plugin %s failed", self.definition.label)

    async def _release_unfinished(self) -> None:
        """Cancel what is still running; record what finished meanwhile; release the rest."""
        tasks = [f.task for f in self.in_flight.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._turn(claim=False)
        left = list(self.in_flight.values())
        self.in_flight.clear()
        if not left:
            return
        now = self.clock.time()

        def release() -> None:
            for flight in left:
                self.recorder.released(flight.job, started_at=flight.started_at, now=now)

        await asyncio.to_thread(release)

    def cancel_expired(self, job_ids: set[int]) -> None:
        """The lease sweep took these jobs back: cancel their hung calls (no outcome is written)."""
        for job_id in job_ids & self.in_flight.keys():
            flight = self.in_flight.pop(job_id)
            if flight.probe:
                self.circuit.abandon_probe()
            flight.task.cancel()
        self._signal.set()

    # -- the loop --------------------------------------------------------------------------------

    async def _run(self) -> None:
        await self._restore_circuit()
        while not self._stopping:
            self._signal.clear()
            claimed_all = True
            try:
                claimed_all = await self._turn(claim=True)
            except Exception:
                log.exception("dispatching jobs for plugin %s failed", self.definition.label)
                claimed_all = False
            if self._stopping:
                break
            timeout = await self._wait_timeout(claimed_all)
            if timeout > 0:
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
            self.circuit.restore(
                CircuitSnapshot(
                    circuit=state.circuit,
                    consecutive_failures=state.consecutive_failures,
                    opened_at=state.circuit_opened_at,
                    next_probe_at=state.next_probe_at,
                    probe_failures=state.probe_failures,
                )
            )

    async def _turn(self, *, claim: bool) -> bool:
        """Record finished attempts and claim into the free slots, in one thread hop.

        Returns True when every free slot got a job (more may be due)."""
        finished, self._finished = self._finished, []
        circuit_before = self.circuit.snapshot()
        writes = [self._plan(f) for f in finished]
        snapshot = self.circuit.snapshot()
        persist = snapshot if snapshot != circuit_before else None
        pending = {f.flight.job.id for f in finished}
        free = self.definition.concurrency - sum(1 for i in self.in_flight if i not in pending)
        mode = self._claim_mode(free) if claim else None
        if not writes and persist is None and mode is None:
            return claim and free <= 0
        now = self.clock.time()
        try:
            claimed = await asyncio.to_thread(self._io, writes, persist, mode, free, now)
        finally:
            for f in finished:
                if self.in_flight.get(f.flight.job.id) is f.flight:
                    del self.in_flight[f.flight.job.id]
        for job in claimed:
            probe = mode == "probe"
            if probe:
                self.circuit.begin_probe()
            self._launch(job, probe=probe)
        return mode == "claim" and len(claimed) == free

    def _claim_mode(self, free: int) -> str | None:
        if free <= 0:
            return None
        if not self.circuit.is_open:
            return "claim"
        return "probe" if self.circuit.probe_due() else None

    def _plan(self, finished: _Finished) -> _Write:
        """Decide a finished attempt's outcome and update the circuit (pure; the write comes later)."""
        flight, error = finished.flight, finished.error
        if error is None:
            self.circuit.record_success()
            return _Write(finished=finished)
        verdict = decide(
            attempts=flight.job.attempts,
            error=error,
            max_attempts=self.recorder.max_attempts,
            probe=flight.probe,
        )
        if verdict.kind is VerdictKind.PROBE_FAILED:
            self.circuit.record_probe_failure(error.message, retry_after=error.retry_after)
            return _Write(
                finished=finished, verdict=verdict, probe_retry_at=self.circuit.next_probe_at
            )
        if flight.probe:  # the endpoint answered: the outage is over, whatever this job's own fate
            self.circuit.record_success()
        else:
            self.circuit.record_failure(
                error.message,
                endpoint=error.endpoint_failure,
                retry_after=circuit_wait(verdict, error),
            )
        return _Write(finished=finished, verdict=verdict)

    def _io(
        self,
        writes: list[_Write],
        persist: CircuitSnapshot | None,
        mode: str | None,
        free: int,
        now: float,
    ) -> list[Job]:
        """Worker thread: write outcomes, persist the circuit, claim. Never raises for one bad write."""
        self._write_outcomes(writes, now)
        if persist is not None:
            self.queue.set_circuit(
                self.name,
                circuit=persist.circuit,
                consecutive_failures=persist.consecutive_failures,
                opened_at=persist.opened_at,
                next_probe_at=persist.next_probe_at,
                probe_failures=persist.probe_failures,
            )
        if mode == "claim":
            return self.queue.claim(
                self.name,
                now=now,
                limit=free,
                lease_secs=self.lease,
                ordering=self.definition.ordering,
            )
        if mode == "probe":
            probe = self.queue.claim_probe(
                self.name, now=now, lease_secs=self.lease, ordering=self.definition.ordering
            )
            return [] if probe is None else [probe]
        return []

    def _write_outcomes(self, writes: list[_Write], now: float) -> None:
        successes = [w.finished for w in writes if w.verdict is None]
        if successes:
            self.recorder.delivered_many(
                [(f.flight.job, f.flight.started_at, f.status) for f in successes], now=now
            )
        for write in writes:
            if write.verdict is None:
                continue
            flight, error = write.finished.flight, write.finished.error
            assert error is not None
            try:
                self.recorder.failed(
                    flight.job,
                    write.verdict,
                    error,
                    started_at=flight.started_at,
                    now=now,
                    probe_retry_at=write.probe_retry_at,
                )
            except Exception:
                log.exception(
                    "recording a failed attempt for plugin %s failed", self.definition.label
                )

    async def _wait_timeout(self, claimed_all: bool) -> float:
        poll = self.timing.poll_secs
        if self._finished:
            return 0.0
        if claimed_all and len(self.in_flight) < self.definition.concurrency:
            return 0.0
        now = self.clock.time()
        if self.circuit.is_open:
            at = self.circuit.next_probe_at
            if self.circuit.probing or at is None:
                return poll
            if at > now:
                return min(poll, at - now)
            # the probe is due but nothing was claimable: wait for a job to come due
        elif len(self.in_flight) >= self.definition.concurrency:
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
        flight = _InFlight(job=job, task=None, started_at=started, probe=probe)  # type: ignore[arg-type]
        flight.task = asyncio.create_task(self._deliver(flight))
        self.in_flight[job.id] = flight

    async def _deliver(self, flight: _InFlight) -> None:
        job = flight.job
        try:
            status = await self.sink.deliver(DeliveryJob.from_job(job))
        except DeliveryError as exc:
            done = _Finished(flight=flight, finished_at=self.clock.time(), error=exc)
        except Exception as exc:  # a sink bug: retryable, never endpoint-level
            detail = f"{self.definition.kind} plugin delivery failed: {type(exc).__name__}: {exc}"
            done = _Finished(
                flight=flight, finished_at=self.clock.time(), error=DeliveryError(detail)
            )
        else:
            done = _Finished(flight=flight, finished_at=self.clock.time(), status=status)
        self._finished.append(done)
        self.last_finished = self.clock.monotonic()
        self.stall_reported = False
        self._signal.set()
