"""The `process` sink: hands jobs to the supervised worker of a process plugin (plugins.md §8.5)."""

from __future__ import annotations

from collections.abc import Callable

from eventdbx.control.plugin_codec import encode_event
from eventdbx.errors import DeliveryError
from eventdbx.plugins.process_worker import ProcessWorker
from eventdbx.plugins.sink import DeliveryJob
from eventdbx.plugins.sinks.capnp import frame_fields


class ProcessSink:
    """Delivers through whatever worker the supervisor currently runs for this plugin."""

    def __init__(self, name: str, worker: Callable[[], ProcessWorker | None]) -> None:
        self.name = name
        self._worker = worker

    async def deliver(self, job: DeliveryJob) -> int | None:
        """Write one event frame to the worker's stdin; with acks, wait for its reply."""
        worker = self._worker()
        if worker is None:
            raise DeliveryError(f"process plugin '{self.name}' is not running", retryable=True)
        fields = frame_fields(job)
        await worker.deliver(str(job.job_id), lambda sequence: encode_event(fields, sequence))
        return None

    async def check_ready(self) -> None:
        """Ready when the supervisor has a running worker."""
        worker = self._worker()
        if worker is None or not worker.running.is_set():
            raise DeliveryError(f"process plugin '{self.name}' is not running", retryable=True)

    async def aclose(self) -> None:
        """Nothing to close: the supervisor owns the process."""
