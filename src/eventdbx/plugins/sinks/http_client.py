"""A lean HTTP/1.1 client for the http sink: a keep-alive pool of asyncio protocols, one request per
connection at a time, prebuilt request heads and a small incremental response parser.

Why not aiohttp's request pipeline: it costs about 0.1 ms of CPU per webhook POST against about 0.03 ms
here (bench/delivery_http.py), and delivery throughput is CPU-bound. Only what a webhook client needs is
implemented: POST/HEAD, Content-Length, chunked and read-until-close bodies, keep-alive, TLS. Redirects are
never followed. Bodies are kept up to `BODY_KEEP` bytes (error excerpts); a longer body ends the
connection instead of being read.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

BODY_KEEP = 64 * 1024
MAX_HEAD_BYTES = 64 * 1024
KEEPALIVE_SECS = 15.0


class HttpClientError(Exception):
    """A transport or protocol failure before a complete answer arrived."""


class ServerDisconnected(HttpClientError):
    """The connection closed before any byte of the answer (a stale keep-alive connection, typically)."""

    def __init__(self) -> None:
        super().__init__("Server disconnected")


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """Status line, headers (lower-case names, last value wins) and the kept part of the body."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Target:
    """Where requests go: host, port, the request path and whether TLS is used."""

    host: str
    port: int
    path: str
    tls: bool
    host_header: str

    @classmethod
    def parse(cls, url: str) -> Target:
        """Split an absolute http(s) URL."""
        parts = urlsplit(url)
        tls = parts.scheme == "https"
        host = parts.hostname or ""
        port = parts.port or (443 if tls else 80)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        default = (tls and port == 443) or (not tls and port == 80)
        shown = f"[{host}]" if ":" in host else host
        return cls(host, port, path, tls, shown if default else f"{shown}:{port}")


class _Connection(asyncio.Protocol):
    """One socket; parses the answer to the request in progress."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._buf = bytearray()
        self._waiter: asyncio.Future[HttpAnswer] | None = None
        self._head_only = False
        self._got_any = False
        self._answer: tuple[int, str, dict[str, str]] | None = None
        self._mode = ""  # "length", "chunked" or "close" once the head is parsed
        self._remaining = 0
        self._body = bytearray()
        self.keep_alive = True

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # no isinstance check: uvloop's transports (the daemon's loop) do not subclass asyncio.Transport
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: the connection is out of step
            return
        self._got_any = True
        self._buf += data
        try:
            self._advance()
        except HttpClientError as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._answer is not None and self._mode == "close":
            self._finish()
        elif not self._got_any:
            waiter.set_exception(ServerDisconnected())
        else:
            waiter.set_exception(
                HttpClientError("connection closed before the answer was complete")
            )

    # -- requests --------------------------------------------------------------------------------

    async def send(self, data: bytes, *, head_only: bool) -> HttpAnswer:
        """Write one request and wait for its answer (the caller bounds the wait)."""
        if self.closed or self.transport is None or self.transport.is_closing():
            raise ServerDisconnected()
        self._buf.clear()
        self._body.clear()
        self._answer, self._mode, self._got_any = None, "", False
        self._head_only = head_only
        self.keep_alive = True
        waiter: asyncio.Future[HttpAnswer] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self.transport.write(data)
        try:
            return await waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        """Close the socket now."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- parsing ---------------------------------------------------------------------------------

    def _advance(self) -> None:
        while self._answer is None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEAD_BYTES:
                    raise HttpClientError("response head too large")
                return
            head = bytes(self._buf[:end])
            del self._buf[: end + 4]
            self._parse_head(head)
        if self._mode == "length":
            take = min(self._remaining, len(self._buf))
            self._keep(self._buf[:take])
            del self._buf[:take]
            self._remaining -= take
            if self._remaining == 0:
                self._finish()
        elif self._mode == "chunked":
            self._advance_chunked()
        elif self._mode == "trailers":
            self._advance_trailers()
        else:
            self._keep(self._buf)
            self._buf.clear()

    def _parse_head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise HttpClientError(f"invalid status line '{lines[0][:80]}'")
        status = int(code)
        if 100 <= status < 200:
            return  # an interim answer: the real one follows
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        self.keep_alive = (
            "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
        )
        self._answer = (status, reason.strip(), headers)
        if self._head_only or status in (204, 304):
            self._mode, self._remaining = "length", 0
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._mode, self._remaining = "chunked", -1
        elif "content-length" in headers:
            try:
                self._remaining = int(headers["content-length"])
            except ValueError as exc:
                raise HttpClientError("invalid Content-Length") from exc
            self._mode = "length"
        else:
            self._mode, self.keep_alive = "close", False

    def _advance_chunked(self) -> None:
        while True:
            if self._remaining < 0:  # expecting a chunk-size line
                end = self._buf.find(b"\r\n")
                if end < 0:
                    return
                size_text = bytes(self._buf[:end]).split(b";", 1)[0].strip()
                del self._buf[: end + 2]
                try:
                    size = int(size_text, 16)
                except ValueError as exc:
                    raise HttpClientError("invalid chunk size") from exc
                if size == 0:
                    self._mode = "trailers"
                    self._advance_trailers()
                    return
                self._remaining = size + 2  # the data and its CRLF
            take = min(self._remaining, len(self._buf))
            self._keep(self._buf[: max(0, min(take, self._remaining - 2))])
            del self._buf[:take]
            self._remaining -= take
            if self._remaining > 0:
                return
            self._remaining = -1

    def _advance_trailers(self) -> None:
        if self._buf.startswith(b"\r\n"):
            del self._buf[:2]
            self._finish()
            return
        end = self._buf.find(b"\r\n\r\n")
        if end >= 0:
            del self._buf[: end + 4]
            self._finish()

    def _keep(self, chunk: bytes | bytearray) -> None:
        room = BODY_KEEP - len(self._body)
        if room > 0:
            self._body += chunk[:room]
        if len(chunk) > room and self._waiter is not None and not self._waiter.done():
            self.keep_alive = (
                False  # longer than we keep: answer now, drop the rest with the socket
            )
            self._finish()

    def _finish(self) -> None:
        waiter, answer = self._waiter, self._answer
        if waiter is None or waiter.done() or answer is None:
            return
        if self._buf and self._mode != "close":
            self.keep_alive = False  # bytes beyond the answer: out of step
        status, reason, headers = answer
        waiter.set_result(HttpAnswer(status, reason, headers, bytes(self._body)))

    def _fail(self, exc: HttpClientError) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()


class HttpPool:
    """Keep-alive connections to one target, at most `limit` open at once."""

    def __init__(
        self,
        target: Target,
        *,
        limit: int,
        connect_timeout: float,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.target = target
        self._slots = asyncio.Semaphore(max(limit, 1))
        self._idle: list[_Connection] = []
        self._connect_timeout = connect_timeout
        self._ssl: ssl.SSLContext | None = None
        if target.tls:  # verified against the system's CAs unless a context is given (tests)
            self._ssl = tls or ssl.create_default_context()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    async def request(self, data: bytes, *, head_only: bool = False) -> HttpAnswer:
        """Send prebuilt request bytes; a connection dropped before any answer is retried once."""
        async with self._slots:
            for retry in (False, True):
                conn = self._take_idle() or await self._open()
                try:
                    answer = await conn.send(data, head_only=head_only)
                except ServerDisconnected:
                    conn.close()
                    if retry:
                        raise
                    continue
                except BaseException:
                    conn.close()  # cancelled or failed mid-answer: the socket is out of step
                    raise
                self._give_back(conn, answer)
                return answer
        raise AssertionError("unreachable")

    def _take_idle(self) -> _Connection | None:
        loop_time = asyncio.get_running_loop().time()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and loop_time - conn.idle_since < KEEPALIVE_SECS:
                return conn
            conn.close()
        return None

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        target = self.target
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    _Connection,
                    target.host,
                    target.port,
                    ssl=self._ssl,
                    server_hostname=target.host if self._ssl is not None else None,
                )
        except TimeoutError:
            raise
        except (OSError, ssl.SSLError) as exc:
            cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise HttpClientError(
                f"cannot connect to {target.host}:{target.port}: {cause or type(exc).__name__}"
            ) from exc
        return conn

    def _give_back(self, conn: _Connection, answer: HttpAnswer) -> None:
        del answer
        if self._closed or conn.closed or not conn.keep_alive:
            conn.close()
            return
        loop = asyncio.get_running_loop()
        conn.idle_since = loop.time()
        self._idle.append(conn)
        if self._sweeper is None:
            self._sweeper = loop.call_later(KEEPALIVE_SECS, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        keep = [c for c in self._idle if not c.closed and now - c.idle_since < KEEPALIVE_SECS]
        for conn in self._idle:
            if conn not in keep:
                conn.close()
        self._idle = keep
        if keep:
            oldest = min(c.idle_since for c in keep)
            delay = max(oldest + KEEPALIVE_SECS - now, 0.5)
            self._sweeper = asyncio.get_running_loop().call_later(delay, self._sweep)

    async def aclose(self) -> None:
        """Close idle connections; connections in use close when their request ends."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        await asyncio.sleep(0)  # let the transports run their close callbacks
