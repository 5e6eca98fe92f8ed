"""What a plugin loop tracks per attempt (`Flight`, `Finished`) and the one worker-thread write that records
finished attempts, gives back unstarted claims and claims the next jobs (`write_cycle`).

It decides nothing: verdicts come from `dispatcher_outcome.decide`, the circuit from the loop.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eventdbx.errors import DeliveryError
from eventdbx.plugins.circuit import CircuitSnapshot
from eventdbx.plugins.dispatcher_outcome import OutcomeRecorder, Verdict

if TYPE_CHECKING:
    from eventdbx.domain.payload_mode import Ordering
    from eventdbx.store.plugin_queue import PluginQueue
    from eventdbx.store.plugin_queue_model import Job

log = logging.getLogger("eventdbx.plugin")


@dataclass(slots=True)
class Flight:
    """One attempt being delivered."""

    job: Job
    started_at: float
    probe: bool
    task: asyncio.Task[None] | None = None


@dataclass(slots=True)
class Finished:
    """A finished attempt waiting to be written: success (verdict None) or a failure and its verdict."""

    flight: Flight
    status: int | None = None
    error: DeliveryError | None = None
    verdict: Verdict | None = None
    probe_retry_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CycleWrite:
    """Everything one dispatcher cycle writes: outcomes, unstarted claims to give back, the circuit."""

    finished: list[Finished]
    unclaim: list[tuple[int, str]]
    circuit: CircuitSnapshot | None
    now: float
    claim_limit: int


def write_cycle(
    queue: PluginQueue,
    recorder: OutcomeRecorder,
    write: CycleWrite,
    *,
    plugin: str,
    lease_secs: float,
    ordering: Ordering,
) -> list[Job]:
    """Worker thread: successes, unclaims and the claim in one transaction, then failures and the circuit.

    One bad failure write never stops the others. Returns the claimed jobs.
    """
    claimed: list[Job] = []
    now = write.now
    successes = [
        (f.flight.job.id, f.flight.job.claim_token or "", f.flight.started_at, f.status)
        for f in write.finished
        if f.verdict is None
    ]
    if successes or write.unclaim or write.claim_limit > 0:
        _, claimed = queue.deliver_and_claim(
            successes, now=now, plugin=plugin, limit=write.claim_limit, lease_secs=lease_secs,
            ordering=ordering, unclaim=write.unclaim,
        )  # fmt: skip
    for finished in write.finished:
        if finished.verdict is None or finished.error is None:
            continue
        try:
            recorder.failed(
                finished.flight.job,
                finished.verdict,
                finished.error,
                started_at=finished.flight.started_at,
                now=now,
                probe_retry_at=finished.probe_retry_at,
            )
        except Exception:
            log.exception("recording a failed attempt of %s failed", recorder.label)
    persist = write.circuit
    if persist is not None:
        try:
            queue.set_circuit(
                plugin,
                circuit=persist.circuit,
                consecutive_failures=persist.consecutive_failures,
                opened_at=persist.opened_at,
                next_probe_at=persist.next_probe_at,
                probe_failures=persist.probe_failures,
            )
        except Exception:  # the claimed jobs must still be delivered
            log.exception("saving the circuit of plugin %s failed", recorder.label)
    return claimed
