"""`eventdbx.Client`: the asyncio client of the EventDBX control socket.

Example (a daemon on the default address; appends need a token allowing `aggregate.append`)::

    import asyncio
    from eventdbx import Client

    async def main() -> None:
        async with Client("127.0.0.1", 6363, token="<jwt>") as db:
            event = await db.append("order", "order-1", "order_created", payload={"status": "created"})
            print(event["version"], event["hash"])
            print(await db.get_aggregate("order", "order-1"))
            print(await db.list_events("order", "order-1", take=10))
            print(await db.verify("order", "order-1"))

    asyncio.run(main())

Every method may be called concurrently from several tasks: requests are pipelined on the one connection and
each reply is matched by its id. Failures raise the `eventdbx.errors` class of the wire code (e.g.
`AggregateNotFoundError`, `InvalidTokenError`); a lost connection raises `IoError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast

import orjson

from eventdbx import errors
from eventdbx.control import messages as msg
from eventdbx.control.client_codec import encode_append_request, read_text_reply
from eventdbx.control.framing import FrameDecoder, FrameError

DEFAULT_PORT = 6363
MAX_REPLY_BYTES = 64 * 1024 * 1024
_ERRORS: dict[str, type[errors.EventDBXError]] = {
    cls.code: cls
    for cls in (
        errors.InvalidTokenError, errors.TokenExpiredError, errors.TokenLimitReachedError, errors.UnauthorizedError,
        errors.AggregateNotFoundError, errors.AggregateArchivedError, errors.SchemaExistsError,
        errors.SchemaNotFoundError, errors.InvalidSchemaError, errors.SchemaViolationError,
        errors.VersionConflictError, errors.ConfigError, errors.StorageError, errors.IoError,
        errors.SerializationError,
    )
}


def error_from_wire(code: str, message: str) -> errors.EventDBXError:
    """The errors.py exception for a wire `error{code, message}`; its `.message` is the server's text."""
    cls = _ERRORS.get(code, errors.EventDBXError)
    if cls.prefix and message.startswith(cls.prefix):
        return cls(message[len(cls.prefix):])
    exc = cls(message)
    if cls.prefix:
        exc.detail = message[len(cls.prefix):] if message.startswith(cls.prefix) else message
    return exc


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """What `authenticate` returns: the token's identity and granted scopes."""

    subject: str
    group: str
    user: str
    expires_at: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]


class Client:
    """An asyncio control-socket client (see the module docstring for an example)."""

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, token: str | None = None,
                 timeout: float | None = 30.0, authenticate: bool | None = None) -> None:
        self.host = host
        self.port = port
        self.token = token
        self.timeout = timeout
        self._authenticate_on_connect = bool(token) if authenticate is None else authenticate
        self._transport: asyncio.Transport | None = None
        self._protocol: _ReplyProtocol | None = None
        self._pending: dict[int, asyncio.Future[msg.Response]] = {}
        # (deadline, request id, timeout) in send order; one timer watches the earliest (cheaper than one per call)
        self._deadlines: deque[tuple[float, int, float]] = deque()
        self._watchdog: asyncio.TimerHandle | None = None
        self._next_id = 1
        self._failure: errors.EventDBXError | None = None
        self.identity: Identity | None = None

    @classmethod
    async def connect(cls, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, token: str | None = None,
                      timeout: float | None = 30.0, authenticate: bool | None = None) -> Client:
        """Open a connection (and authenticate with `token` when given)."""
        client = cls(host, port, token=token, timeout=timeout, authenticate=authenticate)
        await client.open()
        return client

    async def open(self) -> None:
        """Connect now (done by `async with` and `connect`)."""
        try:
            loop = asyncio.get_running_loop()
            transport, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _ReplyProtocol(self), self.host, self.port), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise errors.IoError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        self._transport, self._protocol = transport, protocol
        if self._authenticate_on_connect and self.token:
            try:
                await self.authenticate(self.token)
            except errors.SerializationError:
                pass  # a reference server without the authenticate extension: the token still rides on appends
            except BaseException:
                await self.close()
                raise

    async def close(self) -> None:
        """Close the connection; pending calls fail with IoError."""
        if self._transport is not None and self._protocol is not None:
            self._transport.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._protocol.lost.wait(), 5.0)
        self._fail_all(errors.IoError("connection closed"))

    async def __aenter__(self) -> Client:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # ---- operations ----
    async def list_aggregates(self, skip: int = 0, take: int | None = None) -> list[dict[str, Any]]:
        """A page of AggregateState dicts in (type, id) order (server default page size when take is None)."""
        reply = await self._call(lambda i: msg.encode_request(msg.ListAggregates(id=i, skip=skip, take=take)))
        result: list[dict[str, Any]] = orjson.loads(reply.text)
        return result

    async def get_aggregate(self, aggregate_type: str, aggregate_id: str) -> dict[str, Any] | None:
        """The AggregateState dict, or None when not found."""
        reply = await self._call(lambda i: msg.encode_request(msg.GetAggregate(
            id=i, aggregate_type=aggregate_type, aggregate_id=aggregate_id)))
        if not reply.found:
            return None
        result: dict[str, Any] = orjson.loads(reply.text)
        return result

    async def list_events(self, aggregate_type: str, aggregate_id: str, skip: int = 0,
                          take: int | None = None) -> list[dict[str, Any]]:
        """EventRecord dicts in version order, after skipping `skip` events."""
        reply = await self._call(lambda i: msg.encode_request(msg.ListEvents(
            id=i, aggregate_type=aggregate_type, aggregate_id=aggregate_id, skip=skip, take=take)))
        result: list[dict[str, Any]] = orjson.loads(reply.text)
        return result

    async def append(self, aggregate_type: str, aggregate_id: str, event_type: str, *, payload: Any = None,
                     patch: Any = None, metadata: Any = None, note: str | None = None,
                     expected_version: int | None = None, token: str | None = None,
                     payload_json: str | None = None, patch_json: str | None = None) -> dict[str, Any]:
        """Append one event; returns the committed EventRecord dict.

        `payload`/`patch`/`metadata` are JSON values (`payload_json`/`patch_json` pass raw JSON text through).
        """
        if payload_json is None and payload is not None:
            payload_json = orjson.dumps(payload).decode()
        if patch_json is None and patch is not None:
            patch_json = orjson.dumps(patch).decode()
        metadata_json = None if metadata is None else orjson.dumps(metadata).decode()
        use_token = (token if token is not None else self.token) or ""
        reply = await self._call(lambda i: encode_append_request(
            i, use_token, aggregate_type, aggregate_id, event_type, payload_json, patch_json, note, metadata_json,
            expected_version))
        result: dict[str, Any] = orjson.loads(reply.text)
        return result

    async def verify(self, aggregate_type: str, aggregate_id: str) -> str:
        """Recompute the aggregate's Merkle root (64 hex)."""
        reply = await self._call(lambda i: msg.encode_request(msg.VerifyAggregate(
            id=i, aggregate_type=aggregate_type, aggregate_id=aggregate_id)))
        return reply.text

    async def authenticate(self, token: str) -> Identity:
        """Bind the connection to `token` (needed for reads from non-loopback peers)."""
        reply = await self._call(lambda i: msg.encode_request(msg.Authenticate(id=i, token=token)))
        assert reply.auth is not None
        a = reply.auth
        self.token = token
        self.identity = Identity(subject=a.subject, group=a.group, user=a.user, expires_at=a.expires_at,
                                 actions=a.actions, resources=a.resources)
        return self.identity

    # ---- plumbing ----
    async def _call(self, encode: Callable[[int], bytes]) -> msg.Response:
        """Send the request `encode(request_id)` frames and wait for its reply (IoError after `timeout`)."""
        if self._transport is None:
            raise errors.IoError("client is not connected")
        if self._failure is not None:
            raise self._failure
        request_id = self._next_id
        self._next_id += 1
        loop = asyncio.get_running_loop()
        future: asyncio.Future[msg.Response] = loop.create_future()
        self._pending[request_id] = future
        self._transport.write(encode(request_id))
        if self.timeout is not None:
            self._watch(loop, self.timeout, request_id)
        reply = await future
        if reply.kind == "error":
            raise error_from_wire(reply.error_code, reply.error_message)
        return reply

    def _watch(self, loop: asyncio.AbstractEventLoop, timeout: float, request_id: int) -> None:
        """Fail the call with IoError unless its reply arrives within `timeout` seconds."""
        deadline = loop.time() + timeout
        self._deadlines.append((deadline, request_id, timeout))
        watchdog = self._watchdog
        if watchdog is None or deadline < watchdog.when():
            if watchdog is not None:
                watchdog.cancel()
            self._watchdog = loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        """The watchdog: fail every call past its deadline, then wait for the next deadline."""
        self._watchdog = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        kept: deque[tuple[float, int, float]] = deque()
        for entry in self._deadlines:  # a shortened timeout can leave the deque unsorted
            deadline, request_id, timeout = entry
            future = self._pending.get(request_id)
            if future is None or future.done():
                continue
            if deadline > now:
                kept.append(entry)
                continue
            del self._pending[request_id]
            future.set_exception(errors.IoError(f"no reply within {timeout} s"))
        self._deadlines = kept
        if kept:
            self._watchdog = loop.call_at(min(entry[0] for entry in kept), self._expire)

    def _on_frame(self, frame: bytes) -> None:
        reply = read_text_reply(frame) or msg.decode_response(frame)
        pending = self._pending
        future = pending.pop(reply.id, None)
        if future is not None and not future.done():
            future.set_result(reply)
        deadlines = self._deadlines
        while deadlines and deadlines[0][1] not in pending:  # answered (replies come in order, mostly)
            deadlines.popleft()

    def _on_lost(self, failure: errors.EventDBXError) -> None:
        if self._failure is None:
            self._failure = failure
        self._fail_all(failure)

    def _fail_all(self, failure: errors.EventDBXError) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self._deadlines.clear()
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(failure)


class _ReplyProtocol(asyncio.Protocol):
    """Splits reply frames and resolves the matching calls."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.decoder = FrameDecoder(MAX_REPLY_BYTES)
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            for frame in self.decoder.feed(data):
                self.client._on_frame(frame)
        except (FrameError, ValueError) as exc:
            self.client._on_lost(errors.SerializationError(str(exc)))
            if self.transport is not None:
                self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        detail = f"connection lost: {exc}" if exc else "connection closed by the server"
        self.client._on_lost(errors.IoError(detail))
        self.lost.set()
