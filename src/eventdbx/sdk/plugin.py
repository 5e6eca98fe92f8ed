"""The process-plugin SDK: read PluginEnvelope frames from stdin, call handlers, ack or nack on stdout."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import BinaryIO, TypeVar

from eventdbx.control.plugin_codec import (
    Reply,
    body_length,
    decode_incoming,
    encode_reply,
    frame_length,
    take_frames,
)
from eventdbx.sdk.plugin_events import Event, Init, event_from_frame, init_from_frame

__all__ = ["Event", "Init", "Plugin", "Reject", "Retry"]

InitHandler = Callable[[Init], object]
EventHandler = Callable[[Event], object]
H = TypeVar("H", bound=Callable[..., object])
READ_CHUNK = 1 << 16
ACK_FLUSH_SECS = 0.01


class Retry(Exception):
    """Raise from a handler to ask for redelivery later (PluginError, retryable)."""


class Reject(Exception):
    """Raise from a handler to refuse an event for good (PluginError `permanent: …`)."""


def read_frame(stream: BinaryIO) -> bytes | None:
    """One framed message from a binary stream; None at a clean EOF."""
    head = stream.read(4)
    if not head:
        return None
    if len(head) < 4:
        raise EOFError("truncated frame header")
    table_len, segments = frame_length(head)
    table = stream.read(table_len)
    if len(table) < table_len:
        raise EOFError("truncated segment table")
    size = body_length(table, segments)
    body = stream.read(size)
    if len(body) < size:
        raise EOFError("truncated frame body")
    return head + table + body


class Plugin:
    """A process plugin: decorate handlers with `on_init`/`on_event`, then call `run()`."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or os.environ.get("EVENTDBX_PLUGIN_NAME", "plugin")
        self.ack = os.environ.get("EVENTDBX_PLUGIN_ACK", "0").strip() == "1"
        self.log = logging.getLogger(f"eventdbx.plugin.{self.name}")
        self._init_handlers: list[InitHandler] = []
        self._event_handlers: list[EventHandler] = []
        self._runner: asyncio.Runner | None = None

    def on_init(self, handler: H) -> H:
        """Register a handler for the init frame (plain or async)."""
        self._init_handlers.append(handler)
        return handler

    def on_event(self, handler: H) -> H:
        """Register a handler for events (plain or async); handlers run one at a time, in order."""
        self._event_handlers.append(handler)
        return handler

    def _call(self, handler: Callable[..., object], arg: object) -> None:
        result = handler(arg)
        if inspect.isawaitable(result):
            if self._runner is None:
                self._runner = asyncio.Runner()
            awaitable: Awaitable[object] = result
            self._runner.run(_as_coroutine(awaitable))

    def _handle_event(self, event: Event) -> Reply:
        try:
            for handler in self._event_handlers:
                self._call(handler, event)
        except Reject as exc:
            self.log.warning("event %s rejected: %s", event.event_id, exc)
            return Reply(sequence=event.sequence, message=f"permanent: {exc}")
        except Exception as exc:  # a handler failure becomes a nack, never a crash
            self.log.warning("event %s failed: %s", event.event_id, exc)
            return Reply(sequence=event.sequence, message=str(exc) or type(exc).__name__)
        return Reply(sequence=event.sequence)

    def run(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Process frames until EOF on stdin."""
        if not logging.getLogger().handlers:
            logging.basicConfig(
                stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
            )
        source = stdin if stdin is not None else sys.stdin.buffer
        sink = stdout if stdout is not None else sys.stdout.buffer
        if stdout is None:
            sys.stdout = sys.stderr  # a stray print() must not corrupt the frames
        try:
            self._loop(source, sink)
        finally:
            if self._runner is not None:
                self._runner.close()

    def _loop(self, source: BinaryIO, sink: BinaryIO) -> None:
        # Read whatever has arrived, handle every complete frame in it, then write their acks together:
        # one read and one write per burst instead of per event. Acks still go out at least every
        # ACK_FLUSH_SECS so a slow handler does not hold back the acks of events already handled.
        read = getattr(source, "read1", source.read)
        buffer = bytearray()
        while chunk := read(READ_CHUNK):
            buffer += chunk
            replies: list[bytes] = []
            started = time.monotonic()
            for frame in take_frames(buffer, max_bytes=sys.maxsize):  # the daemon bounds its frames
                reply = self._handle(frame)
                if reply is not None and self.ack:
                    replies.append(encode_reply(reply))
                    if time.monotonic() - started > ACK_FLUSH_SECS:
                        _write(sink, replies)
                        replies, started = [], time.monotonic()
            _write(sink, replies)
        if buffer:
            raise EOFError("truncated frame at end of input")

    def _handle(self, frame: bytes) -> Reply | None:
        incoming = decode_incoming(frame)
        if incoming.init is not None:
            init = init_from_frame(incoming.init)
            for handler in self._init_handlers:
                self._call(handler, init)
        elif incoming.event is not None:
            return self._handle_event(event_from_frame(incoming.sequence, incoming.event))
        return None


def _write(sink: BinaryIO, replies: list[bytes]) -> None:
    if replies:
        sink.write(b"".join(replies))
        sink.flush()


async def _as_coroutine(awaitable: Awaitable[object]) -> object:
    return await awaitable
