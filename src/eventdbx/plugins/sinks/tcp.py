"""The tcp sink (plugins.md §8.2): JSON lines over one persistent connection, optional in-order acks.

It only delivers: retries, attempts and the circuit belong to the dispatcher.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket

from eventdbx.errors import DeliveryError
from eventdbx.plugins.sink import DeliveryJob

IDLE_CLOSE_SECS = 300.0
MAX_REPLY_BYTES = 64 * 1024


def _secs(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _error(text: str, *, endpoint: bool = True, retryable: bool = True) -> DeliveryError:
    return DeliveryError(f"tcp plugin {text}", retryable=retryable, endpoint_failure=endpoint)


def _cause(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc).strip() or type(exc).__name__


def parse_reply(line: str) -> tuple[DeliveryError | None, bool]:
    """(error or None for `ok`, whether the connection must close) for one ack line."""
    text = line.strip()
    word, _, rest = text.partition(" ")
    message = rest.strip()
    if word == "ok":
        return None, False
    if word == "error":
        return _error(_with_message("receiver error", message), endpoint=False), False
    if word == "reject":
        detail = _with_message("receiver rejected", message)
        return _error(detail, endpoint=False, retryable=False), False
    return _protocol_error(text), True


def _with_message(head: str, message: str) -> str:
    return f"{head}: {message}" if message else head


def _protocol_error(text: str) -> DeliveryError:
    return _error(f"protocol error: unexpected reply '{text[:80]}'", endpoint=False)


def _consume(future: asyncio.Future[None]) -> None:
    """Mark a failure as seen even when its caller has gone (cancelled delivery)."""
    if not future.cancelled():
        future.exception()


class _Connection:
    """One open socket and the replies it still owes, oldest first."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self.reply_task: asyncio.Task[None] | None = None
        self.closed = False

    def fail_all(self, error: DeliveryError) -> None:
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)

    def close_now(self, error: DeliveryError) -> None:
        self.closed = True
        self.fail_all(error)
        task = self.reply_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self.writer.close()

    async def close(self, error: DeliveryError) -> None:
        self.close_now(error)
        with contextlib.suppress(OSError, ConnectionError):
            await self.writer.wait_closed()


class TcpSink:
    """Writes one wire-JSON line per job; with `ack`, waits for `ok`/`error`/`reject` in order."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        ack: bool = False,
        timeout_secs: float = 5.0,
        concurrency: int = 8,
    ) -> None:
        self.host, self.port, self.ack = host, int(port), ack
        self.timeout = float(timeout_secs)
        self._conn: _Connection | None = None
        self._lock = asyncio.Lock()
        self._window = asyncio.Semaphore(max(concurrency, 1))
        self._last_used = 0.0
        self._idle_handle: asyncio.TimerHandle | None = None

    async def _open(self) -> _Connection:
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, limit=MAX_REPLY_BYTES
                )
        except (OSError, TimeoutError) as exc:
            raise _error(f"connect to {self.host}:{self.port} failed: {_cause(exc)}") from exc
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Connection(reader, writer)
        conn.reply_task = asyncio.create_task(self._read_replies(conn))
        return conn

    async def _connection(self) -> _Connection:
        loop = asyncio.get_running_loop()
        conn = self._conn
        idle = loop.time() - self._last_used > IDLE_CLOSE_SECS
        if conn is not None and not conn.closed and not conn.waiting and idle:
            await self._drop(conn, _error("connection reset"))
            conn = None
        if conn is None or conn.closed:
            conn = self._conn = await self._open()
        return conn

    async def deliver(self, job: DeliveryJob) -> int | None:
        """Write the job's line; in ack mode wait for its reply."""
        async with self._window:
            future = await self._write(job.body + b"\n")
            if future is not None:
                await self._await_reply(future)
        return None

    async def _write(self, line: bytes) -> asyncio.Future[None] | None:
        loop = asyncio.get_running_loop()
        async with self._lock:
            conn = await self._connection()
            future: asyncio.Future[None] | None = None
            if self.ack:
                future = loop.create_future()
                future.add_done_callback(_consume)
                conn.waiting.append(future)
            try:
                conn.writer.write(line)
                async with asyncio.timeout(self.timeout):
                    await conn.writer.drain()
            except (OSError, TimeoutError) as exc:
                error = _error(f"write failed: {_cause(exc)}")
                if future is not None:
                    future.cancel()
                await self._drop(conn, _error("connection reset"))
                raise error from exc
            self._touch(loop)
            return future

    async def _await_reply(self, future: asyncio.Future[None]) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await future
        except TimeoutError as exc:
            conn = self._conn
            if conn is not None:
                with contextlib.suppress(ValueError):
                    conn.waiting.remove(future)
                await self._drop(conn, _error("connection reset"))
            raise _error(f"ack timed out after {_secs(self.timeout)}s") from exc
        finally:
            self._touch(asyncio.get_running_loop())

    async def _read_replies(self, conn: _Connection) -> None:
        error = await (self._read_acks(conn) if self.ack else self._read_until_eof(conn))
        await self._drop(conn, error)

    async def _read_until_eof(self, conn: _Connection) -> DeliveryError:
        with contextlib.suppress(ConnectionError, OSError):
            while await conn.reader.read(65536):
                pass
        return _error("connection closed by peer")

    async def _read_acks(self, conn: _Connection) -> DeliveryError:
        while True:
            try:
                raw = await conn.reader.readuntil(b"\n")
            except asyncio.LimitOverrunError:
                head = await conn.reader.read(80)
                return _protocol_error(head.decode("utf-8", errors="replace"))
            except (asyncio.IncompleteReadError, ConnectionError, OSError):
                return _error("connection closed by peer")
            reply = raw.decode("utf-8", errors="replace").strip()
            verdict, close = parse_reply(reply)
            if not conn.waiting:
                return _protocol_error(reply)
            future = conn.waiting.popleft()
            if not future.done():
                if verdict is None:
                    future.set_result(None)
                else:
                    future.set_exception(verdict)
            if close:
                return _error("connection reset")

    async def _drop(self, conn: _Connection, error: DeliveryError) -> None:
        if self._conn is conn:
            self._conn = None
        if not conn.closed:
            await conn.close(error)

    def _touch(self, loop: asyncio.AbstractEventLoop) -> None:
        self._last_used = loop.time()
        if self._idle_handle is None:
            self._idle_handle = loop.call_later(IDLE_CLOSE_SECS, self._idle_check)

    def _idle_check(self) -> None:
        self._idle_handle = None
        conn = self._conn
        if conn is None or conn.closed:
            return
        loop = asyncio.get_running_loop()
        idle = loop.time() - self._last_used
        if idle >= IDLE_CLOSE_SECS and not conn.waiting:
            self._conn = None
            conn.close_now(_error("connection reset"))
        else:
            self._idle_handle = loop.call_later(max(IDLE_CLOSE_SECS - idle, 1.0), self._idle_check)

    async def check_ready(self) -> None:
        """A TCP connect within the timeout."""
        try:
            async with asyncio.timeout(self.timeout):
                _, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise _error(f"connect to {self.host}:{self.port} failed: {_cause(exc)}") from exc
        writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await writer.wait_closed()

    async def aclose(self) -> None:
        """Close the connection; replies still owed fail as reset."""
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            await conn.close(_error("connection reset"))
