"""How one delivery attempt ends: the verdict (pure) and its recording in plugin_queue.db with the §12 lines.

The verdict follows plugins.md §5: success → done; retryable → pending with backoff, or dead at the maximum;
permanent → dead at once; a failed circuit probe → pending without counting the attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, TypedDict

from eventdbx.errors import DeliveryError
from eventdbx.plugins import dispatcher_log
from eventdbx.plugins.backoff import effective_max_attempts, is_dead, retry_delay

if TYPE_CHECKING:
    from eventdbx.store.plugin_queue import PluginQueue
    from eventdbx.store.plugin_queue_model import Job


class VerdictKind(StrEnum):
    """What happens to a job after a failed attempt."""

    RETRY = "retry"
    DEAD = "dead"
    PROBE_FAILED = "probe-failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The decision for one failed attempt."""

    kind: VerdictKind
    permanent: bool = False
    wait: float | None = None


def decide(
    *,
    attempts: int,
    error: DeliveryError,
    max_attempts: int,
    probe: bool,
) -> Verdict:
    """Pure: the verdict for a failure at `attempts` (already counting this attempt)."""
    if not error.retryable:
        return Verdict(kind=VerdictKind.DEAD, permanent=True)
    if probe and error.endpoint_failure:
        return Verdict(kind=VerdictKind.PROBE_FAILED)
    if is_dead(attempts, max_attempts):
        return Verdict(kind=VerdictKind.DEAD)
    return Verdict(kind=VerdictKind.RETRY, wait=retry_delay(attempts, error.retry_after))


def circuit_wait(verdict: Verdict, error: DeliveryError) -> float | None:
    """How long a Retry-After keeps the circuit open: the job's wait (max(backoff, Retry-After))."""
    if error.retry_after is None:
        return None
    return verdict.wait if verdict.wait is not None else error.retry_after


def aggregate_text(job: Job) -> str:
    """`<type>::<id>` as in the log lines."""
    return f"{job.aggregate_type}::{job.aggregate_id}"


class _JobFields(TypedDict):
    """How the §12 delivery-failed and job-dead lines name their job (after `plugin=`)."""

    job: int
    event: int
    aggregate: str
    version: int


def _job_fields(job: Job) -> _JobFields:
    """`job`'s fields for the §12 lines that name a job."""
    return _JobFields(
        job=job.id, event=job.event_id, aggregate=aggregate_text(job), version=job.version
    )


@dataclass(slots=True)
class OutcomeRecorder:
    """Writes attempt outcomes for one plugin (synchronous: call it from a worker thread)."""

    queue: PluginQueue
    label: str
    max_attempts: int

    def delivered(
        self, job: Job, *, started_at: float, now: float, http_status: int | None
    ) -> bool:
        """Mark done/delivered; False if the claim was lost (lease expired meanwhile)."""
        return self.queue.mark_delivered(
            job.id, _token(job), started_at=started_at, now=now, http_status=http_status
        )

    def delivered_many(self, items: list[tuple[Job, float, int | None]], *, now: float) -> None:
        """Mark several jobs done in one transaction when the queue offers it, else one by one."""
        batch = getattr(self.queue, "mark_delivered_many", None)
        if batch is not None and len(items) > 1:
            batch(
                [(job.id, _token(job), started, status) for job, started, status in items], now=now
            )
            return
        for job, started, status in items:
            self.delivered(job, started_at=started, now=now, http_status=status)

    def failed(
        self,
        job: Job,
        verdict: Verdict,
        error: DeliveryError,
        *,
        started_at: float,
        now: float,
        probe_retry_at: float | None = None,
    ) -> bool:
        """Record a failed attempt per its verdict and write the WARN/ERROR line."""
        token, message, status = _token(job), error.message, error.http_status
        if verdict.kind is VerdictKind.PROBE_FAILED:
            return self.queue.mark_probe_failed(
                job.id,
                token,
                started_at=started_at,
                now=now,
                error=message,
                next_retry_at=probe_retry_at if probe_retry_at is not None else now,
                http_status=status,
            )
        if verdict.kind is VerdictKind.RETRY:
            wait = verdict.wait if verdict.wait is not None else 0.0
            ok = self.queue.mark_retry(
                job.id,
                token,
                started_at=started_at,
                now=now,
                error=message,
                next_retry_at=now + wait,
                http_status=status,
            )
            if ok:
                dispatcher_log.delivery_failed(
                    self.label,
                    **_job_fields(job),
                    attempt=job.attempts,
                    max_attempts=effective_max_attempts(self.max_attempts),
                    retry_in=wait,
                    error=message,
                )
            return ok
        ok = self.queue.mark_dead(
            job.id,
            token,
            started_at=started_at,
            now=now,
            error=message,
            permanent=verdict.permanent,
            http_status=status,
        )
        if ok:
            self.log_dead(job, reason=message, permanent=verdict.permanent)
        return ok

    def log_dead(self, job: Job, *, reason: str, permanent: bool) -> None:
        """The ERROR line for a job that went dead (reads how many jobs it holds back)."""
        dispatcher_log.job_dead(
            self.label,
            **_job_fields(job),
            attempts=job.attempts,
            permanent=permanent,
            held_back=self.queue.held_back_count(job.id),
            reason=reason,
        )

    def released(self, job: Job, *, started_at: float, now: float) -> bool:
        """Give a cancelled attempt back (pending, attempts−1, history `released`)."""
        return self.queue.mark_released(job.id, _token(job), started_at=started_at, now=now)


def _token(job: Job) -> str:
    return job.claim_token or ""
