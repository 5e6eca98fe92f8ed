"""A test double behind the Sink interface: records deliveries in memory and fails on demand.

Shipped in the package so daemon, CLI and dispatcher tests can run the pipeline without a network.
"""

from __future__ import annotations

import asyncio
import collections

from eventdbx.errors import DeliveryError
from eventdbx.plugins.sink import DeliveryJob


class RecordingSink:
    """Keeps every delivered job; `fail_next` scripts failures; `hold()` makes deliveries wait."""

    def __init__(self) -> None:
        self.delivered: list[DeliveryJob] = []
        self.failures: collections.deque[DeliveryError] = collections.deque()
        self.down: DeliveryError | None = None
        self.closed = False
        self._gate: asyncio.Event | None = None

    def fail_next(self, *errors: DeliveryError) -> None:
        """Fail the next deliveries with these errors, in order."""
        self.failures.extend(errors)

    def hold(self) -> None:
        """Make deliveries wait until `release()`."""
        self._gate = asyncio.Event()

    def release(self) -> None:
        """Let held deliveries finish."""
        if self._gate is not None:
            self._gate.set()
        self._gate = None

    async def deliver(self, job: DeliveryJob) -> int | None:
        """Record the job, or raise the next scripted failure."""
        gate = self._gate
        if gate is not None:
            await gate.wait()
        if self.down is not None:
            raise self.down
        if self.failures:
            raise self.failures.popleft()
        self.delivered.append(job)
        return None

    async def check_ready(self) -> None:
        """Ready unless `down` is set."""
        if self.down is not None:
            raise self.down

    async def aclose(self) -> None:
        """Mark closed (idempotent)."""
        self.closed = True
