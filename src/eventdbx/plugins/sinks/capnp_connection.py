"""One persistent Cap'n Proto plugin connection: framed PluginEnvelope events, sequences, optional acks."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

from eventdbx.control.plugin_codec import Reply, decode_reply, take_frames
from eventdbx.errors import DeliveryError, SerializationError
from eventdbx.plugins.sinks.coalescing_writer import WRITE_ERRORS, CoalescingWriter

MAX_REPLY_BYTES = 1 << 20
IDLE_CLOSE_SECS = 300.0


def _fmt(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


class CapnpConnection:
    """Sends `PluginEnvelope{event}` frames over one TCP connection; reconnects after any error."""

    def __init__(
        self, host: str, port: int, *, ack: bool, timeout: float, kind: str = "capnp"
    ) -> None:
        self.host, self.port, self.ack, self.timeout, self.kind = host, port, ack, timeout, kind
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reply_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._sequence = 0
        self._lock = asyncio.Lock()
        self._last_used = 0.0
        self._out: CoalescingWriter | None = None

    def _error(self, text: str, *, endpoint: bool = True, retryable: bool = True) -> DeliveryError:
        return DeliveryError(
            f"{self.kind} plugin {text}", retryable=retryable, endpoint_failure=endpoint
        )

    async def _connect(self) -> None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout
            )
        except (OSError, TimeoutError) as exc:
            cause = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            raise self._error(f"connect to {self.host}:{self.port} failed: {cause}") from exc
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._reader, self._writer, self._sequence = reader, writer, 0
        self._out = CoalescingWriter(writer)
        self._reply_task = asyncio.create_task(self._read_replies(reader))

    async def send(self, frame_for: Callable[[int], bytes]) -> None:
        """Write one frame (built for its sequence) and, in ack mode, wait for its reply.

        Frames sent in the same event-loop turn go out in one write: on loopback a write per frame costs
        a syscall and a receiver wake-up each, which dominated delivery.
        """
        loop = asyncio.get_running_loop()
        if self._writer is None or loop.time() - self._last_used > IDLE_CLOSE_SECS:
            async with self._lock:
                if self._writer is not None and loop.time() - self._last_used > IDLE_CLOSE_SECS:
                    await self.close()
                if self._writer is None:
                    await self._connect()
        self._last_used = loop.time()
        out = self._out
        if out is None:  # reset while this send waited for the connect of another
            raise self._error("connection reset")
        sequence = self._sequence
        self._sequence += 1
        replied: asyncio.Future[None] | None = None
        if self.ack:
            replied = loop.create_future()
            self._pending[sequence] = replied
        written = out.write(frame_for(sequence))
        acking = False
        try:
            async with asyncio.timeout(self.timeout):  # one deadline for the write and its ack
                await written
                if replied is None:
                    return
                acking = True
                await replied
        except TimeoutError as exc:
            self._pending.pop(sequence, None)
            if acking:
                await self._reset(self._error("connection reset"))
                raise self._error(f"ack timed out after {_fmt(self.timeout)}s") from exc
            await self._reset(None)
            raise self._error("write failed: timed out") from exc
        except WRITE_ERRORS as exc:
            self._pending.pop(sequence, None)
            await self._reset(None)
            raise self._error(f"write failed: {exc}") from exc

    async def _read_replies(self, reader: asyncio.StreamReader) -> None:
        buffer = bytearray()
        try:
            # whatever arrived is split into frames at once: acks come in bursts, one read serves many
            while chunk := await reader.read(1 << 16):
                buffer += chunk
                for frame in take_frames(buffer, max_bytes=MAX_REPLY_BYTES):
                    self._settle(decode_reply(frame))
            raise ConnectionError("end of stream")
        except ConnectionError:
            await self._reset(self._error("connection closed by peer"), from_reader=True)
        except SerializationError as exc:
            await self._reset(
                self._error(f"protocol error: {exc.detail}", endpoint=False), from_reader=True
            )

    def _settle(self, reply: Reply) -> None:
        future = self._pending.pop(reply.sequence, None)
        if future is None:
            raise SerializationError(f"unknown sequence {reply.sequence}")
        if future.done():
            return
        if reply.message is None:
            future.set_result(None)
        else:
            permanent = reply.message.startswith("permanent:")
            future.set_exception(
                DeliveryError(
                    f"{self.kind} plugin receiver error: {reply.message}", retryable=not permanent
                )
            )

    async def _reset(self, error: DeliveryError | None, *, from_reader: bool = False) -> None:
        writer, task = self._writer, self._reply_task
        self._reader = self._writer = self._reply_task = None
        self._out = None
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(error or self._error("connection reset"))
        if task is not None and not from_reader:
            task.cancel()
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

    async def close(self) -> None:
        """Close the connection; unanswered frames fail as reset."""
        await self._reset(None)
