"""The asyncio TCP control server: connection admission, first-message dispatch, per-connection ordering."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

from eventdbx.control import messages as msg
from eventdbx.control.framing import FRAME_STALL_SECS, FrameDecoder, FrameError, root_struct
from eventdbx.control.handlers import Handlers
from eventdbx.control.peers import ConnectionAuth, PeerPolicy
from eventdbx.control.writer import GroupCommitWriter
from eventdbx.errors import ConfigError

if TYPE_CHECKING:
    from eventdbx.config import Settings

log = logging.getLogger("eventdbx.control")

MAX_QUEUED_FRAMES = 64
MAX_INFLIGHT_APPENDS = 256
WRITE_HIGH_WATER = 4 * 1024 * 1024


def parse_bind_addr(bind_addr: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` → (host, port)."""
    host, sep, port = bind_addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"invalid socket.bind_addr '{bind_addr}'")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port)


class ControlServer:
    """Serves the control socket for one EventService.

    `await start()` binds `[socket].bind_addr` (port 0 picks a free port: see `port`); `await close(grace)`
    stops accepting, lets in-flight requests finish for up to `grace` seconds, then closes every connection
    and stops the writer thread and the reader pool. `on_commit()` runs on the loop after each group commit.
    """

    def __init__(self, service: Any, settings: Settings, *, on_commit: Callable[[], object] | None = None,
                 bind_addr: str | None = None, reader_threads: int = 4, max_batch: int = 1024,
                 frame_stall_secs: float = FRAME_STALL_SECS) -> None:
        self.service = service
        self.settings = settings
        self.bind_addr = bind_addr or settings.socket.bind_addr
        self.frame_stall_secs = frame_stall_secs
        self.policy = PeerPolicy(settings.socket.trusted_networks)
        self.readers = ThreadPoolExecutor(max_workers=reader_threads, thread_name_prefix="eventdbx-read")
        self.writer: GroupCommitWriter[Any, Any] = GroupCommitWriter(
            service.append_batch, max_batch=max_batch, on_commit=on_commit)
        self.handlers = Handlers(service, settings, self.readers, self.writer)
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound TCP port (after start)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def host(self) -> str:
        """The bound host (after start)."""
        assert self._server is not None
        return str(self._server.sockets[0].getsockname()[0])

    def refresh_settings(self, settings: Settings) -> None:
        """Apply live keys (page sizes, trusted networks, limits) to new requests and connections."""
        self.settings = settings
        self.policy = PeerPolicy(settings.socket.trusted_networks)
        self.handlers.settings = settings

    async def start(self) -> None:
        """Bind and start accepting; the writer thread starts too."""
        host, port = parse_bind_addr(self.bind_addr)
        self.writer.start()
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(lambda: Connection(self), host, port, backlog=1024)
        except OSError as exc:
            await self.writer.close()
            raise ConfigError(f"cannot bind control socket {self.bind_addr}: {exc.strerror or exc}") from exc

    async def serve_forever(self) -> None:
        """Serve until cancelled or closed."""
        assert self._server is not None
        with contextlib.suppress(asyncio.CancelledError):
            await self._server.serve_forever()

    async def close(self, grace: float = 5.0) -> None:
        """Stop accepting, drain for up to `grace` seconds, close connections, stop the threads."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.stop_reading()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while any(c.busy for c in self.connections) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            conn.abort()
        await self.writer.close()
        with contextlib.suppress(TimeoutError):  # let running reads finish before the store closes
            await asyncio.wait_for(asyncio.to_thread(self.readers.shutdown, True, cancel_futures=True),
                                   max(grace, 0.1))
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)


class Connection(asyncio.Protocol):
    """One client: frames in, replies out in request order."""

    def __init__(self, server: ControlServer) -> None:
        self.server = server
        self.decoder = FrameDecoder(server.settings.socket.max_message_bytes)
        self.frames: deque[bytes] = deque()
        self.wakeup = asyncio.Event()
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
        self.busy = False
        self.eof = False

    # ---- asyncio.Protocol ----
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = self.transport.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) and peer else None
        self.peer = f"{host}:{peer[1]}" if host is not None else str(peer)
        server = self.server
        if len(server.connections) >= server.settings.socket.max_connections:
            log.warning("control socket: refusing %s: max_connections (%d) reached", self.peer,
                        server.settings.socket.max_connections)
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
            self.frames.extend(frames)
            self.wakeup.set()
            if self.stall is not None:
                self.stall.cancel()
                self.stall = None
            if len(self.frames) >= MAX_QUEUED_FRAMES and not self.paused and self.transport is not None:
                self.paused = True
                self.transport.pause_reading()
        if self.decoder.pending and self.stall is None:
            self.stall = asyncio.get_running_loop().call_later(
                self.server.frame_stall_secs, self.drop, "frame not finished in time")

    def eof_received(self) -> bool:
        if self.decoder.pending:
            self.drop("EOF inside a frame")
            return False
        self.eof = True
        self.wakeup.set()
        return True  # keep the write side open until queued replies are sent

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        if self.stall is not None:
            self.stall.cancel()
        self.can_write.set()
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
        """Shutdown: accept no further frames."""
        if self.transport is not None and not self.closed:
            with contextlib.suppress(Exception):
                self.transport.pause_reading()
        self.frames.clear()

    def send(self, data: bytes) -> None:
        """Queue one reply."""
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    async def run(self) -> None:
        """Serve frames in order until the connection ends."""
        try:
            await self._serve()
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("control socket: connection %s failed", self.peer)
        finally:
            self.busy = False
            if not self.closed and self.transport is not None:
                self.closed = True
                self.transport.close()

    async def _serve(self) -> None:
        inflight: deque[tuple[int, asyncio.Future[Any]]] = deque()
        while not self.closed:
            if not self.frames:
                if not await self._idle(inflight):
                    return
                continue
            self.busy = True
            frame = self.frames.popleft()
            if self.paused and len(self.frames) < MAX_QUEUED_FRAMES // 4 and self.transport is not None:
                self.paused = False
                self.transport.resume_reading()
            if self.kind is None and not self._first_message(frame):
                return
            if not await self._process(frame, inflight):
                return

    async def _idle(self, inflight: deque[tuple[int, asyncio.Future[Any]]]) -> bool:
        """No frame queued: send pipelined replies, then wait for more input; False at the end."""
        if inflight:
            await self._flush(inflight)
            return True
        self.busy = False
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        self.wakeup.clear()
        if self.frames:
            return True
        if self._eof():
            return False
        await self.wakeup.wait()
        return True

    async def _process(self, frame: bytes, inflight: deque[tuple[int, asyncio.Future[Any]]]) -> bool:
        """Decode and answer one request (appends are pipelined); False when the connection must close."""
        handlers = self.server.handlers
        try:
            request = msg.decode_request(frame)
        except msg.RequestDecodeError as exc:
            await self._flush(inflight)
            self.send(msg.encode_error(exc.request_id, "serialization", f"serialization error: {exc.detail}"))
            return True
        if isinstance(request, msg.AppendEvent):
            inflight.append((request.id, handlers.submit_append(request, self.auth)))
            if len(inflight) >= MAX_INFLIGHT_APPENDS:
                await self._flush(inflight)
            return True
        await self._flush(inflight)
        reply, close = await handlers.handle(request, self.auth)
        self.send(reply)
        if close:
            log.warning("control socket: closing %s after %d failed authentications", self.peer,
                        self.auth.failures)
            return False
        if not self.can_write.is_set():
            await self.can_write.wait()
        return True

    def _eof(self) -> bool:
        return self.eof or self.transport is None or self.transport.is_closing()

    async def _flush(self, inflight: deque[tuple[int, asyncio.Future[Any]]]) -> None:
        """Send the replies of pipelined appends in request order."""
        handlers = self.server.handlers
        while inflight:
            request_id, future = inflight.popleft()
            self.send(await handlers.append_reply(request_id, future))
        if not self.can_write.is_set():
            await self.can_write.wait()

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
