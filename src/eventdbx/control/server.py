"""The asyncio TCP control server: connection admission, first-message dispatch, per-connection ordering."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from eventdbx.control.connection import Connection
from eventdbx.control.framing import FRAME_STALL_SECS
from eventdbx.control.handlers import Handlers
from eventdbx.control.peers import PeerPolicy
from eventdbx.control.writer import GroupCommitWriter
from eventdbx.errors import ConfigError

if TYPE_CHECKING:
    from eventdbx.config import Settings

log = logging.getLogger("eventdbx.control")


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

    def __init__(
        self,
        service: Any,
        settings: Settings,
        *,
        on_commit: Callable[[], object] | None = None,
        bind_addr: str | None = None,
        reader_threads: int = 2,
        max_batch: int = 1024,
        frame_stall_secs: float = FRAME_STALL_SECS,
        inline_appends: bool = True,
    ) -> None:
        self.service = service
        self.settings = settings
        self.bind_addr = bind_addr or settings.socket.bind_addr
        self.frame_stall_secs = frame_stall_secs
        self.policy = PeerPolicy(settings.socket.trusted_networks)
        self.readers = ThreadPoolExecutor(
            max_workers=reader_threads, thread_name_prefix="eventdbx-read"
        )
        inline = inline_appends and settings.durability != "fsync"  # an fsync commit would block the loop
        self.writer: GroupCommitWriter[Any, Any] = GroupCommitWriter(
            service.append_batch,
            max_batch=max_batch,
            on_commit=on_commit,
            inline_batch=functools.partial(service.append_batch, wait=False) if inline else None,
            housekeeping=service.checkpoint if inline else None,
        )
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
        self.handlers.point_reads.start()
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: Connection(self), host, port, backlog=1024
            )
        except OSError as exc:
            await self.writer.close()
            await self.handlers.point_reads.close()
            raise ConfigError(
                f"cannot bind control socket {self.bind_addr}: {exc.strerror or exc}"
            ) from exc

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
        await self.handlers.point_reads.close()
        with contextlib.suppress(TimeoutError):  # let running reads finish before the store closes
            await asyncio.wait_for(
                asyncio.to_thread(self.readers.shutdown, True, cancel_futures=True), max(grace, 0.1)
            )
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
