"""Loopback receivers for sink and dispatcher tests: a scriptable aiohttp webhook and a TCP line receiver."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web


async def wait_for(
    predicate: Callable[[], bool], *, timeout: float = 5.0, what: str = "condition"
) -> None:
    """Poll `predicate` until true or fail after `timeout` (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


@dataclass(frozen=True, slots=True)
class Answer:
    """One scripted HTTP answer."""

    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    drop: bool = False


OK = Answer()


@dataclass(slots=True)
class ReceivedRequest:
    """What the receiver saw."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer: object = None


class HttpReceiver:
    """An aiohttp server on 127.0.0.1:0 that answers from a script, then with `default`."""

    def __init__(self) -> None:
        self.default = OK
        self.script: collections.deque[Answer] = collections.deque()
        self.requests: list[ReceivedRequest] = []
        self.head_status = 200
        self.responder: Callable[[ReceivedRequest], Answer] | None = None
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._release = asyncio.Event()
        self.in_flight = 0

    @property
    def url(self) -> str:
        """The endpoint URL."""
        return f"http://127.0.0.1:{self.port}/hook"

    def answer(self, *answers: Answer) -> None:
        """Queue answers for the next requests."""
        self.script.extend(answers)

    @property
    def posts(self) -> list[ReceivedRequest]:
        """The POSTs received, in arrival order."""
        return [r for r in self.requests if r.method == "POST"]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.method == "HEAD":
            return web.Response(status=self.head_status)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        received = ReceivedRequest(request.method, request.path, dict(request.headers), body, peer)
        self.requests.append(received)
        if self.script:
            answer = self.script.popleft()
        elif self.responder is not None:
            answer = self.responder(received)
        else:
            answer = self.default
        if answer.hang:
            self.in_flight += 1
            try:
                await self._release.wait()
            finally:
                self.in_flight -= 1
        if answer.drop and request.transport is not None:
            request.transport.close()
        return web.Response(status=answer.status, text=answer.body, headers=answer.headers)

    async def start(self, port: int = 0) -> HttpReceiver:
        """Listen (again) on loopback."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._release = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port or self.port or 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    def release_hung(self) -> None:
        """Let hung requests answer (with the status of their scripted answer)."""
        self._release.set()

    async def go_away(self) -> None:
        """Stop listening; hung requests are released first."""
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class TcpReceiver:
    """A JSON-line receiver on 127.0.0.1:0; with `ack`, replies from `replies` (then `ok`)."""

    def __init__(self, *, ack: bool = False) -> None:
        self.ack = ack
        self.replies: collections.deque[str | None] = collections.deque()
        self.lines: list[bytes] = []
        self.connections = 0
        self.open_connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> TcpReceiver:
        """Listen on loopback."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port or 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_connections += 1
        self._writers.append(writer)
        try:
            while line := await reader.readline():
                self.lines.append(line)
                if not self.ack:
                    continue
                reply = self.replies.popleft() if self.replies else "ok"
                if reply is None:  # stay silent: the sender's ack times out
                    continue
                if reply == "<close>":
                    break
                writer.write(reply.encode() + b"\n")
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.open_connections -= 1
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def go_away(self) -> None:
        """Close the listener and every connection."""
        if self._server is not None:
            self._server.close()
            for writer in self._writers:
                writer.close()
            await self._server.wait_closed()
            self._server = None
