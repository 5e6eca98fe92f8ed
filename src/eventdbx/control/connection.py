"""One control-socket connection: framing, first-message dispatch, in-order replies, pipelined appends.

Appends are submitted to the group-commit writer as soon as they are decoded (directly from `data_received`
when the connection is otherwise idle) and their replies are written in request order as their commits deliver
their outcomes.
Every other request is handled by the connection's task after all earlier appends have been answered, so a
read sees the connection's own earlier writes and `authenticate` applies to everything after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from eventdbx.control import messages as msg
from eventdbx.control.framing import FrameDecoder, FrameError, root_struct
from eventdbx.control.peers import ConnectionAuth

if TYPE_CHECKING:
    from eventdbx.control.server import ControlServer

log = logging.getLogger("eventdbx.control")

MAX_QUEUED = 64
MAX_INFLIGHT_APPENDS = 256
WRITE_HIGH_WATER = 4 * 1024 * 1024
Item = bytes | msg.ListAggregates | msg.GetAggregate | msg.ListEvents | msg.AppendEvent | msg.VerifyAggregate \
    | msg.Authenticate | msg.RequestDecodeError


class Connection(asyncio.Protocol):
    """One client: frames in, replies out in request order."""

    def __init__(self, server: ControlServer) -> None:
        self.server = server
        self.handlers = server.handlers
        self.decoder = FrameDecoder(server.settings.socket.max_message_bytes)
        self.queue: deque[Item] = deque()
        self.inflight: deque[InflightAppend] = deque()
        self.wakeup = asyncio.Event()
        self.drained = asyncio.Event()
        self.drained.set()
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.auth = ConnectionAuth(trusted=False)
        self.kind: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.stall: asyncio.TimerHandle | None = None
        self.closed = False
        self.paused = False
        self.idle = False
        self.processing = False
        self.eof = False

    @property
    def busy(self) -> bool:
        """A request is being processed or an append awaits its commit."""
        return self.processing or bool(self.inflight)

    # ---- asyncio.Protocol ----
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = self.transport.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) and peer else None
        self.peer = f"{host}:{peer[1]}" if host is not None else str(peer)
        server = self.server
        limit = server.settings.socket.max_connections
        if len(server.connections) >= limit:
            log.warning("control socket: refusing %s: max_connections (%d) reached", self.peer, limit)
            self.closed = True
            self.transport.abort()
            return
        server.connections.add(self)
        self.auth = ConnectionAuth(trusted=server.policy.trusted(host))
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self.task = asyncio.get_running_loop().create_task(self.run())

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            frames = self.decoder.feed(data)
        except FrameError as exc:
            self.drop(f"framing error: {exc}")
            return
        if frames:
            if self.stall is not None:
                self.stall.cancel()
                self.stall = None
            for frame in frames:
                self._accept(frame)
        if self.decoder.pending and self.stall is None:
            self.stall = asyncio.get_running_loop().call_later(
                self.server.frame_stall_secs, self.drop, "frame not finished in time")

    def eof_received(self) -> bool:
        if self.decoder.pending:
            self.drop("EOF inside a frame")
            return False
        self.eof = True
        self.wakeup.set()
        return True  # keep the write side open until every reply is sent

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        if self.stall is not None:
            self.stall.cancel()
        self.can_write.set()
        self.drained.set()
        self.wakeup.set()
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    # ---- control ----
    def drop(self, reason: str) -> None:
        """Close without a reply (framing errors, stalls)."""
        if not self.closed:
            log.debug("control socket: closing %s: %s", self.peer, reason)
        self.abort()

    def abort(self) -> None:
        """Close now."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def stop_reading(self) -> None:
        """Shutdown: accept no further frames (appends already submitted still get their replies)."""
        if self.transport is not None and not self.closed:
            with contextlib.suppress(Exception):
                self.transport.pause_reading()
        self.queue.clear()
        self.eof = True
        self.wakeup.set()

    def send(self, data: bytes) -> None:
        """Write one reply."""
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    # ---- appends ----
    def _accept(self, frame: bytes) -> None:
        """A whole frame arrived: submit an append at once when nothing is ahead of it, else queue it."""
        item: Item = frame
        if self.kind == "control" and self.idle and not self.queue:
            try:
                item = msg.decode_request(frame)
            except msg.RequestDecodeError as exc:
                item = exc
            if (isinstance(item, msg.AppendEvent) and len(self.inflight) < MAX_INFLIGHT_APPENDS
                    and self.can_write.is_set()):
                self._submit(item)
                return
        self.queue.append(item)
        self.wakeup.set()
        if len(self.queue) >= MAX_QUEUED and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def _submit(self, request: msg.AppendEvent) -> None:
        entry = InflightAppend(self, request.id)
        self.inflight.append(entry)
        self.drained.clear()
        self.handlers.submit_append(request, self.auth, entry.deliver)

    def append_done(self) -> None:
        """Write every reply now due, in request order."""
        inflight = self.inflight
        while inflight and inflight[0].outcome is not _PENDING:
            entry = inflight.popleft()
            self.send(self.handlers.append_reply_now(entry.request_id, entry.outcome))
        if not inflight:
            self.drained.set()

    async def _drain(self) -> None:
        """Wait until every earlier append has been answered and the client reads again."""
        while self.inflight and not self.closed:
            await self.drained.wait()
        if not self.can_write.is_set():
            await self.can_write.wait()

    # ---- the connection task ----
    async def run(self) -> None:
        """Serve queued requests in order until the connection ends."""
        try:
            await self._serve()
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("control socket: connection %s failed", self.peer)
        finally:
            self.processing = False
            if not self.closed and self.transport is not None:
                self.closed = True
                self.transport.close()

    async def _serve(self) -> None:
        while not self.closed:
            if not self.queue:
                if not await self._wait_input():
                    return
                continue
            self.processing = True
            item = self.queue.popleft()
            if self.paused and len(self.queue) < MAX_QUEUED // 4 and self.transport is not None:
                self.paused = False
                self.transport.resume_reading()
            if isinstance(item, bytes):
                if self.kind is None and not self._first_message(item):
                    return
                try:
                    item = msg.decode_request(item)
                except msg.RequestDecodeError as exc:
                    item = exc
            if not await self._process(item):
                return

    async def _wait_input(self) -> bool:
        """Nothing queued: wait for input (appends keep flowing meanwhile); False at the end."""
        self.processing = False
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        if self.eof or self.transport is None or self.transport.is_closing():
            await self._drain()
            return False
        self.wakeup.clear()
        self.idle = True
        try:
            await self.wakeup.wait()
        finally:
            self.idle = False
        return True

    async def _process(self, item: Item) -> bool:
        """Answer one decoded request; False when the connection must close."""
        if isinstance(item, msg.AppendEvent):
            if len(self.inflight) >= MAX_INFLIGHT_APPENDS or not self.can_write.is_set():
                await self._drain()
            self._submit(item)
            return True
        await self._drain()
        if isinstance(item, msg.RequestDecodeError):
            self.send(msg.encode_error(item.request_id, "serialization", f"serialization error: {item.detail}"))
            return True
        assert not isinstance(item, bytes)
        reply, close = await self.handlers.handle(item, self.auth)
        self.send(reply)
        if close:
            log.warning("control socket: closing %s after %d failed authentications", self.peer,
                        self.auth.failures)
            return False
        return True

    def _first_message(self, frame: bytes) -> bool:
        """§2: decide the connection from its first message; False = stop serving."""
        root = root_struct(frame)
        if root is not None and root.data_words >= 2:
            self.kind = "control"
            return True
        if root is not None and root.data_words == 0 and root.ptr_words >= 1:
            log.warning("control socket: refused a CLI proxy request from %s", self.peer)
            self.send(msg.encode_cli_refusal())
        elif root is not None and root.data_words == 1:
            log.warning("control socket: refused a replication handshake from %s", self.peer)
            self.send(msg.encode_replication_refusal())
        else:
            log.debug("control socket: malformed first message from %s", self.peer)
        self.kind = "refused"
        return False


_PENDING: Any = object()


class InflightAppend:
    """An append submitted by a connection: its request id and, once delivered, its outcome or error."""

    __slots__ = ("connection", "outcome", "request_id")

    def __init__(self, connection: Connection, request_id: int) -> None:
        self.connection = connection
        self.request_id = request_id
        self.outcome: Any = _PENDING

    def deliver(self, outcome: object) -> None:
        """The commit's outcome (or error) arrived: send the replies now due."""
        self.outcome = outcome
        self.connection.append_done()
