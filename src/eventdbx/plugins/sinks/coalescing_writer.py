"""Frames queued in one event-loop turn go out in one write (capnp connections and process stdin pipes).

On loopback sockets and pipes each write is a syscall that also wakes the receiver; writing the frames of
several concurrent deliveries together cut that cost several-fold. Each frame still gets its own future,
resolved once its bytes are handed to the kernel (or failed with the write's error).
"""

from __future__ import annotations

import asyncio

WRITE_ERRORS = (OSError, RuntimeError)  # uvloop raises RuntimeError on a closed transport


def _settle(waiters: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for waiter in waiters:
        if waiter.done():
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)


class CoalescingWriter:
    """Buffers frames for the rest of the current loop turn, then writes them with one call."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._frames: list[bytes] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._drains: set[asyncio.Task[None]] = set()

    def write(self, frame: bytes) -> asyncio.Future[None]:
        """Queue one frame; the future resolves once it is written (flushed to the kernel)."""
        loop = asyncio.get_running_loop()
        if not self._frames:
            loop.call_soon(self._flush)
        waiter: asyncio.Future[None] = loop.create_future()
        self._frames.append(frame)
        self._waiters.append(waiter)
        return waiter

    def _flush(self) -> None:
        frames, waiters = self._frames, self._waiters
        self._frames, self._waiters = [], []
        transport = self._writer.transport
        try:
            # A transport that lost its connection drops writes silently (asyncio only logs), so a
            # closing transport is a failed write, as StreamWriter.drain() would report it.
            if transport.is_closing():
                raise ConnectionResetError("Connection lost")
            self._writer.write(b"".join(frames))
            if transport.is_closing():
                raise ConnectionResetError("Connection lost")
        except WRITE_ERRORS as exc:
            _settle(waiters, exc)
            return
        if transport.get_write_buffer_size() == 0:
            _settle(waiters, None)
            return
        drain = asyncio.ensure_future(self._drain(waiters))
        self._drains.add(drain)
        drain.add_done_callback(self._drains.discard)

    async def _drain(self, waiters: list[asyncio.Future[None]]) -> None:
        try:
            await self._writer.drain()
        except WRITE_ERRORS as exc:
            _settle(waiters, exc)
        else:
            _settle(waiters, None)
