"""The `capnp` sink: one PluginEnvelope event frame per job over a persistent TCP connection (plugins.md §8.3)."""

from __future__ import annotations

import asyncio
import contextlib

from eventdbx.control.plugin_codec import encode_event
from eventdbx.domain.envelope import PluginEventFields, plugin_event_fields
from eventdbx.errors import DeliveryError
from eventdbx.plugins.sink import DeliveryJob
from eventdbx.plugins.sinks.capnp_connection import CapnpConnection


def frame_fields(job: DeliveryJob) -> PluginEventFields:
    """The PluginEvent fields of a job, from its stored envelope (every payload mode maps, §7)."""
    return plugin_event_fields(
        job.envelope,
        aggregate_type=job.aggregate_type,
        aggregate_id=job.aggregate_id,
        event_type=job.event_type,
        version=job.version,
        event_id=job.event_id,
        created_at=job.event_created_at,
    )


class CapnpSink:
    """Delivers jobs as Cap'n Proto frames; acks optional."""

    def __init__(self, *, host: str, port: int, ack: bool, timeout_secs: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout_secs
        self.connection = CapnpConnection(host, port, ack=ack, timeout=timeout_secs)

    async def deliver(self, job: DeliveryJob) -> int | None:
        """Send one frame (and wait for its ack in ack mode)."""
        fields = frame_fields(job)
        await self.connection.send(lambda sequence: encode_event(fields, sequence))
        return None

    async def check_ready(self) -> None:
        """Ready when a TCP connect succeeds within the timeout."""
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout
            )
        except (OSError, TimeoutError) as exc:
            cause = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            raise DeliveryError(
                f"capnp plugin connect to {self.host}:{self.port} failed: {cause}"
            ) from exc
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    async def aclose(self) -> None:
        """Close the connection."""
        await self.connection.close()
