"""One plugin's delivery loop: claims due jobs (or the circuit probe), runs at most `concurrency`
deliveries, records outcomes, and on stop releases what did not finish within the grace period.

One task cycles: each cycle writes every attempt that finished since the last one and claims into the free
slots, in one transaction and one worker-thread hop (SQLite work never runs on the loop). A job is marked
done only after its sink acknowledged it; a crash before the write redelivers it (at-least-once).
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
WRITE_DELAY_SECS = (
    0.005  # the longest a finished attempt waits to be written while slots are still busy
)


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
    started_at: float
    probe: bool
    task: asyncio.Task[None] | None = None


@dataclass(slots=True)
class _Write:
    """A finished attempt waiting to be written: success (verdict None) or a failure and its verdict."""

    flight: _InFlight
    status: int | None = None
    error: DeliveryError | None = None
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
        self._writes: list[_Write] = []
        self._claim_batch = max(1, definition.concurrency // 8)
        self._persisted = self.circuit.snapshot()
        self._signal = asyncio.Event()
        self._first_write_at = 0.0  # loop time of the oldest finished attempt not yet written
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery loop as a task."""
        self._task = asyncio.create_task(self._run(), name=f"dispatch {self.definition.label}")

    def wake(self) -> None:
        """New jobs or changed state: claim again now."""
        self._signal.set()

    def can_use_wake(self) -> bool:
        """Whether new jobs could be claimed now (read from any thread): not while every slot is busy
        (each completion cycles anyway) nor while the circuit is open before its probe is due (a timer
        covers that). With a dead sink this keeps appends from waking the loop for nothing."""
        if len(self.in_flight) >= self.definition.concurrency:
            return False
        return not self.circuit.is_open or self.circuit.probe_due()

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
        running = [f.task for f in self.in_flight.values() if f.task is not None]
        if running:
            await asyncio.wait(running, timeout=max(grace, 0.0))
        await self._release_unfinished()
        try:
            await self.sink.aclose()
        except Exception:  # a sink that fails to close must not stop the shutdown
            log.exception("closing the sink of plugin %s failed", self.definition.label)

    async def _release_unfinished(self) -> None:
        """Cancel what still runs, write what finished meanwhile, release the rest."""
        tasks = [f.task for f in self.in_flight.values() if f.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._flush()
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
            if flight.task is not None:
                flight.task.cancel()
        self._signal.set()

    # -- claiming --------------------------------------------------------------------------------

    async def _run(self) -> None:
        await self._restore_circuit()
        while not self._stopping:
            self._signal.clear()
            try:
                more = await self._cycle()
            except Exception:
                log.exception("claiming jobs for plugin %s failed", self.definition.label)
                more = False
            if self._stopping:
                break
            timeout = await self._wait_timeout(more)
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
            self._persisted = self.circuit.snapshot()

    async def _cycle(self) -> bool:
        """Write finished attempts and claim into the free slots in one hop; True to cycle again at once."""
        free = self.definition.concurrency - len(self.in_flight)
        busy = bool(self.in_flight)
        limit = 0
        if not self.circuit.is_open and free > 0 and not (busy and free < self._claim_batch):
            limit = free  # while busy, wait until a few slots are free so one claim fills several
        writes = len(self._writes)
        overdue = (
            writes and asyncio.get_running_loop().time() - self._first_write_at >= WRITE_DELAY_SECS
        )
        if limit or (
            writes and (not busy or self.circuit.is_open or overdue or writes >= self._claim_batch)
        ):
            claimed = await self._flush(limit)
            for job in claimed:
                self._launch(job, probe=False)
            if limit:
                return len(claimed) == limit and len(self.in_flight) < self.definition.concurrency
        if self.circuit.is_open and self.circuit.probe_due():
            probe = await asyncio.to_thread(
                self.queue.claim_probe, self.name, now=self.clock.time(), lease_secs=self.lease,
                ordering=self.definition.ordering,
            )  # fmt: skip
            if probe is not None:
                self.circuit.begin_probe()
                self._launch(probe, probe=True)
        return False

    async def _wait_timeout(self, more: bool) -> float:
        """How long to wait for a signal: completions and `wake()` signal; timers cover retries."""
        if more:
            return 0.0
        if self._writes:
            return WRITE_DELAY_SECS
        poll, now = self.timing.poll_secs, self.clock.time()
        if self.circuit.is_open:
            at = self.circuit.next_probe_at
            if self.circuit.probing or at is None:
                return poll
            if at > now:
                return min(poll, at - now)
            # the probe is due but nothing was claimable: wait for a job to come due
        elif self.in_flight:
            return poll  # every finished delivery signals; the poll covers retries coming due
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
        flight = _InFlight(job=job, started_at=self.clock.time(), probe=probe)
        flight.task = asyncio.create_task(self._deliver(flight))
        self.in_flight[job.id] = flight

    async def _deliver(self, flight: _InFlight) -> None:
        try:
            status = await self.sink.deliver(DeliveryJob.from_job(flight.job))
        except DeliveryError as exc:
            write = _Write(flight=flight, error=exc)
        except Exception as exc:  # a sink bug: retryable, never endpoint-level
            kind = self.definition.kind
            detail = f"{kind} plugin delivery failed: {type(exc).__name__}: {exc}"
            write = _Write(flight=flight, error=DeliveryError(detail))
        else:
            write = _Write(flight=flight, status=status)
        if self.in_flight.get(flight.job.id) is not flight:
            return  # taken back by the lease sweep meanwhile
        del self.in_flight[flight.job.id]
        self._plan(write)
        if not self._writes:
            self._first_write_at = asyncio.get_running_loop().time()
        self._writes.append(write)
        self.last_finished = self.clock.monotonic()
        self.stall_reported = False
        self._signal.set()

    def _plan(self, write: _Write) -> None:
        """Decide a finished attempt's outcome and update the circuit (pure; the write comes later)."""
        flight, error = write.flight, write.error
        if error is None:
            self.circuit.record_success()
            return
        write.verdict = verdict = decide(
            attempts=flight.job.attempts,
            error=error,
            max_attempts=self.recorder.max_attempts,
            probe=flight.probe,
        )
        if verdict.kind is VerdictKind.PROBE_FAILED:
            self.circuit.record_probe_failure(error.message, retry_after=error.retry_after)
            write.probe_retry_at = self.circuit.next_probe_at
        elif flight.probe:  # the endpoint answered: the outage is over, whatever this job's fate
            self.circuit.record_success()
        else:
            self.circuit.record_failure(
                error.message,
                endpoint=error.endpoint_failure,
                retry_after=circuit_wait(verdict, error),
            )

    # -- recording -------------------------------------------------------------------------------

    async def _flush(self, claim_limit: int = 0) -> list[Job]:
        """Write every finished attempt and a changed circuit, and claim up to `claim_limit` jobs."""
        writes, self._writes = self._writes, []
        snapshot = self.circuit.snapshot()
        persist = snapshot if snapshot != self._persisted else None
        if not writes and persist is None and claim_limit <= 0:
            return []
        try:
            claimed = await asyncio.to_thread(
                self._write_io, writes, persist, self.clock.time(), claim_limit
            )
        except Exception:
            log.exception("recording outcomes for plugin %s failed", self.definition.label)
            return []
        self._persisted = snapshot
        return claimed

    def _write_io(
        self, writes: list[_Write], persist: CircuitSnapshot | None, now: float, claim_limit: int
    ) -> list[Job]:
        """Worker thread: successes and the claim in one transaction, then failures and the circuit.

        One bad failure write never stops the others.
        """
        claimed: list[Job] = []
        successes = [w for w in writes if w.verdict is None]
        if successes or claim_limit > 0:
            _, claimed = self.queue.deliver_and_claim(
                [(w.flight.job.id, w.flight.job.claim_token or "", w.flight.started_at, w.status)
                 for w in successes],
                now=now, plugin=self.name, limit=claim_limit, lease_secs=self.lease,
                ordering=self.definition.ordering,
            )  # fmt: skip
        for write in writes:
            if write.verdict is None or write.error is None:
                continue
            try:
                self.recorder.failed(
                    write.flight.job,
                    write.verdict,
                    write.error,
                    started_at=write.flight.started_at,
                    now=now,
                    probe_retry_at=write.probe_retry_at,
                )
            except Exception:
                log.exception("recording a failed attempt of %s failed", self.definition.label)
        if persist is not None:
            try:
                self.queue.set_circuit(
                    self.name,
                    circuit=persist.circuit,
                    consecutive_failures=persist.consecutive_failures,
                    opened_at=persist.opened_at,
                    next_probe_at=persist.next_probe_at,
                    probe_failures=persist.probe_failures,
                )
            except Exception:  # the claimed jobs must still be delivered
                log.exception("saving the circuit of plugin %s failed", self.definition.label)
        return claimed
