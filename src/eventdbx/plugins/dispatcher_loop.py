"""One plugin's delivery loop: claims due jobs (or the circuit probe), runs at most `concurrency`
deliveries, records outcomes, and on stop releases what did not finish within the grace period.

One task cycles: each cycle writes every attempt that finished since the last one and claims, in one
transaction and one worker-thread hop (SQLite work never runs on the loop). A job is marked done only after
its sink acknowledged it; a crash before the write redelivers it (at-least-once).

Claim-ahead: while the endpoint answers fast, a cycle claims up to 2 x `concurrency` jobs beyond the free
slots into `ready`, and a finishing delivery starts the next ready job at once, so slots do not sit idle during
the write transaction and each transaction carries more jobs. Never more than `concurrency` deliveries run;
ready jobs are heads (aggregate mode), so ordering holds. Ready jobs that may no longer start (circuit
open, stopping, lease too short) are unclaimed: pending again, attempt given back, no history entry.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eventdbx.clock import Clock
from eventdbx.errors import DeliveryError
from eventdbx.plugins.circuit import CircuitBreaker, CircuitSnapshot
from eventdbx.plugins.dispatcher_flight import CycleWrite, Finished, Flight, write_cycle
from eventdbx.plugins.dispatcher_outcome import (
    OutcomeRecorder,
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
WRITE_DELAY_SECS = 0.005  # the longest a finished attempt waits to be written while slots are busy
AHEAD_FACTOR = 2  # ready jobs per slot: covers a write transaction that is slow on a busy machine
FAST_SECS = 0.05  # a success answered within this keeps claim-ahead on; anything else turns it off
LEASE_SLACK_SECS = 1.0  # a ready job starts only if its lease outlasts a full timeout plus this


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatcherTiming:
    """Intervals of the dispatcher; the defaults are the spec's (plugins.md §4)."""

    poll_secs: float = 1.0
    sweep_secs: float = 5.0
    reload_secs: float = 1.0
    lease_margin_secs: float = 30.0


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
        self.in_flight: dict[int, Flight] = {}
        self.last_finished = clock.monotonic()
        self.stall_reported = False
        self._writes: list[Finished] = []
        self._ready: collections.deque[Job] = collections.deque()  # claimed ahead, not started
        self._unclaims: list[tuple[int, str]] = []
        self._fast = False  # the last attempt succeeded within FAST_SECS: claim ahead
        self._start_within = self.lease - timing.lease_margin_secs + LEASE_SLACK_SECS
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
        if len(self.in_flight) + len(self._ready) >= self.definition.concurrency + self._window():
            return False
        return not self.circuit.is_open or self.circuit.probe_due()

    def _window(self) -> int:
        """How many jobs may be claimed beyond the free slots now."""
        if self._fast and not self.circuit.is_open:
            return AHEAD_FACTOR * self.definition.concurrency
        return 0

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
        self._drop_ready()
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
        if any(job.id in job_ids for job in self._ready):
            self._ready = collections.deque(j for j in self._ready if j.id not in job_ids)
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
        """Write finished attempts and claim, in one hop; True to cycle again at once."""
        if self.circuit.is_open:
            self._drop_ready()
        else:
            self._fill()
        limit, flush = self._decide()
        if flush:
            claimed = await self._flush(limit)
            self._ready.extend(claimed)
            self._fill()
            if limit:
                held = len(self.in_flight) + len(self._ready)
                return len(claimed) == limit and held < self.definition.concurrency + self._window()
        if self.circuit.is_open and self.circuit.probe_due():
            probe = await asyncio.to_thread(
                self.queue.claim_probe, self.name, now=self.clock.time(), lease_secs=self.lease,
                ordering=self.definition.ordering,
            )  # fmt: skip
            if probe is not None:
                self.circuit.begin_probe()
                self._launch(probe, probe=True)
        return False

    def _decide(self) -> tuple[int, bool]:
        """(claim limit, whether to write now): claims wait until a few slots (or ready places) are
        free so one transaction serves several jobs; finished attempts wait for company up to
        WRITE_DELAY_SECS while deliveries are running."""
        concurrency, window = self.definition.concurrency, self._window()
        busy = bool(self.in_flight)
        free = concurrency - len(self.in_flight)
        room = free + window - len(self._ready)
        batch = max(self._claim_batch, window // 2)
        limit = 0
        if not self.circuit.is_open and room > 0:
            if free > 0 and not self._ready:
                if not (busy and free < self._claim_batch):
                    limit = room
            elif room >= batch:
                limit = room  # top up the ready jobs
        writes = len(self._writes)
        if limit or self._unclaims:
            return limit, True
        if not writes:
            return 0, False
        overdue = asyncio.get_running_loop().time() - self._first_write_at >= WRITE_DELAY_SECS
        return 0, not busy or self.circuit.is_open or overdue or writes >= batch

    def _fill(self) -> None:
        """Start ready jobs in the free slots (lowest id first); unclaim those whose lease ran short."""
        if self._stopping or self.circuit.is_open:
            return
        ready, concurrency = self._ready, self.definition.concurrency
        while ready and len(self.in_flight) < concurrency:
            job = ready.popleft()
            expires = job.lease_expires_at
            if expires is not None and expires - self.clock.time() < self._start_within:
                self._unclaims.append((job.id, job.claim_token or ""))
                continue
            self._launch(job, probe=False)

    def _drop_ready(self) -> None:
        """Ready jobs may not start (circuit open, stopping): unclaim them at the next write."""
        ready = self._ready
        if ready:
            self._unclaims.extend((job.id, job.claim_token or "") for job in ready)
            ready.clear()

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
        flight = Flight(job=job, started_at=self.clock.time(), probe=probe)
        flight.task = asyncio.create_task(self._deliver(flight))
        self.in_flight[job.id] = flight

    async def _deliver(self, flight: Flight) -> None:
        began = asyncio.get_running_loop().time()
        try:
            status = await self.sink.deliver(DeliveryJob.from_job(flight.job))
        except DeliveryError as exc:
            write = Finished(flight=flight, error=exc)
        except Exception as exc:  # a sink bug: retryable, never endpoint-level
            kind = self.definition.kind
            detail = f"{kind} plugin delivery failed: {type(exc).__name__}: {exc}"
            write = Finished(flight=flight, error=DeliveryError(detail))
        else:
            write = Finished(flight=flight, status=status)
        if self.in_flight.get(flight.job.id) is not flight:
            return  # taken back by the lease sweep meanwhile
        del self.in_flight[flight.job.id]
        self._plan(write)
        self._fast = write.error is None and asyncio.get_running_loop().time() - began < FAST_SECS
        if self._ready:
            self._fill()  # the freed slot goes to the next ready job now, not after the next write
        first = not self._writes
        if first:
            self._first_write_at = asyncio.get_running_loop().time()
        self._writes.append(write)
        self.last_finished = self.clock.monotonic()
        self.stall_reported = False
        # wake the cycle only when it has something to do (or to arm the write delay): not per delivery
        if first or write.error is not None or self._decide() != (0, False):
            self._signal.set()

    def _plan(self, write: Finished) -> None:
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
        """Write every finished attempt, unclaims and a changed circuit, and claim up to `claim_limit` jobs."""
        writes, self._writes = self._writes, []
        unclaims, self._unclaims = self._unclaims, []
        snapshot = self.circuit.snapshot()
        persist = snapshot if snapshot != self._persisted else None
        if not writes and not unclaims and persist is None and claim_limit <= 0:
            return []
        cycle = CycleWrite(
            finished=writes,
            unclaim=unclaims,
            circuit=persist,
            now=self.clock.time(),
            claim_limit=claim_limit,
        )
        try:
            claimed = await asyncio.to_thread(
                write_cycle, self.queue, self.recorder, cycle, plugin=self.name,
                lease_secs=self.lease, ordering=self.definition.ordering,
            )  # fmt: skip
        except Exception:
            log.exception("recording outcomes for plugin %s failed", self.definition.label)
            return []
        self._persisted = snapshot
        return claimed
