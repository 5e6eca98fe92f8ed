"""The sink seam: what a delivery carries (`DeliveryJob`) and the one small interface every sink implements.

A sink only delivers. Retry policy, attempts, leases, the circuit and dead-lettering belong to the dispatcher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from eventdbx.store.plugin_queue_model import Job


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryJob:
    """One delivery attempt of a stored job: identity, attempt number and the exact wire bytes."""

    job_id: int
    event_id: int
    attempt: int
    replay: bool
    body: bytes
    aggregate_type: str
    aggregate_id: str
    event_type: str
    version: int
    event_created_at: str = ""

    @property
    def envelope(self) -> str:
        """The stored wire JSON as text."""
        return self.body.decode("utf-8")

    @classmethod
    def from_job(cls, job: Job) -> DeliveryJob:
        """The delivery for a claimed job (`attempts` already counts this attempt)."""
        return cls(
            job_id=job.id,
            event_id=job.event_id,
            attempt=max(job.attempts, 1),
            replay=job.replay,
            body=job.envelope.encode("utf-8"),
            aggregate_type=job.aggregate_type,
            aggregate_id=job.aggregate_id,
            event_type=job.event_type,
            version=job.version,
            event_created_at=job.event_created_at,
        )


@runtime_checkable
class Sink(Protocol):
    """Delivers jobs to one plugin's endpoint.

    `deliver` returns normally on success (optionally the HTTP status, for the history) and raises
    `eventdbx.errors.DeliveryError(detail, retryable=, retry_after=, endpoint_failure=, http_status=)` otherwise.
    `check_ready` raises `DeliveryError` with the cause when the endpoint is not ready (plugins.md §8).
    """

    async def deliver(self, job: DeliveryJob) -> int | None:
        """Deliver one job or raise DeliveryError."""
        ...

    async def check_ready(self) -> None:
        """Raise DeliveryError when the endpoint is not ready."""
        ...

    async def aclose(self) -> None:
        """Release connections; idempotent."""
        ...
