"""eventdbx.Client against the in-process daemon: typed results, error classes, pipelining, authenticate."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from control_daemon import Daemon, StartFn

from eventdbx import Client, errors


async def test_client_operations(daemon: Daemon) -> None:
    token = daemon.token()
    async with Client("127.0.0.1", daemon.port, token=token) as db:
        assert db.identity is not None and db.identity.user == "alice"
        event = await db.append("order", "o-1", "order_created", payload={"status": "created"},
                                metadata={"@source": "test"}, note="first")
        assert event["version"] == 1 and event["metadata"]["note"] == "first"
        assert event["extensions"] == {"@source": "test"}
        patched = await db.append("order", "o-1", "order_updated", patch=[
            {"op": "replace", "path": "/status", "value": "paid"}], expected_version=1)
        assert patched["payload"] == {"status": "paid"}
        state = await db.get_aggregate("order", "o-1")
        assert state is not None and state["state"] == {"status": "paid"} and state["version"] == 2
        assert await db.get_aggregate("order", "missing") is None
        assert [a["aggregate_id"] for a in await db.list_aggregates()] == ["o-1"]
        assert await db.list_aggregates(take=0) == []
        assert [e["version"] for e in await db.list_events("order", "o-1", skip=1)] == [2]
        assert await db.verify("order", "o-1") == state["merkle_root"]


async def test_client_raises_errors_by_wire_code(daemon: Daemon) -> None:
    async with Client("127.0.0.1", daemon.port) as db:
        with pytest.raises(errors.AggregateNotFoundError) as nf:
            await db.list_events("none", "x")
        assert nf.value.message == "aggregate not found"
        with pytest.raises(errors.InvalidTokenError):
            await db.append("t", "i", "e_created", payload={}, token="bad")
        with pytest.raises(errors.InvalidSchemaError) as bad:
            await db.append("t", "i", "e_created", payload_json="{oops", token=daemon.token())
        assert bad.value.message.startswith("invalid schema: ")
        with pytest.raises(errors.VersionConflictError):
            await db.append("t", "i", "e_created", payload={}, token=daemon.token(), expected_version=3)
        assert await db.list_aggregates() == []  # the connection is still usable


async def test_client_pipelines_concurrent_calls(daemon: Daemon) -> None:
    token = daemon.token()
    db = await Client.connect("127.0.0.1", daemon.port, token=token)
    try:
        results = await asyncio.gather(*(db.append("p", f"p-{n % 4}", "e_created", payload={"n": n}) for n in range(200)))
        assert sorted(r["version"] for r in results if r["aggregate_id"] == "p-0") == list(range(1, 51))
        reads = await asyncio.gather(*(db.get_aggregate("p", f"p-{n}") for n in range(4)))
        assert [r["version"] for r in reads if r] == [50, 50, 50, 50]
    finally:
        await db.close()


async def test_client_authenticate_for_untrusted_peer(start_daemon: StartFn) -> None:
    daemon = await start_daemon(trusted_networks=())
    async with Client("127.0.0.1", daemon.port) as anonymous:
        with pytest.raises(errors.UnauthorizedError) as info:
            await anonymous.list_aggregates()
        assert info.value.message == "unauthorized: authentication required"
        with pytest.raises(errors.InvalidTokenError):
            await anonymous.authenticate("nope")
        identity = await anonymous.authenticate(daemon.token(actions=("aggregate.read",)))
        assert identity.actions == ("aggregate.read",)
        assert await anonymous.list_aggregates() == []


async def test_client_connection_errors(daemon: Daemon) -> None:
    port = daemon.port
    await daemon.server.close(grace=0.1)
    with pytest.raises(errors.IoError):
        await Client.connect("127.0.0.1", port, timeout=2)


def test_error_classes_by_wire_code() -> None:
    from eventdbx.sdk.client import error_from_wire

    cases = [
        ("invalid_token", "token not found or inactive", errors.InvalidTokenError),
        ("unauthorized", "unauthorized: authentication required", errors.UnauthorizedError),
        ("schema_violation", "schema violation: event x is not defined", errors.SchemaViolationError),
        ("version_conflict", "version conflict: expected 1", errors.VersionConflictError),
        ("config", "configuration error: key missing", errors.ConfigError),
        ("serialization", "serialization error: unknown request variant 9", errors.SerializationError),
        ("something_new", "from a newer server", errors.EventDBXError),
    ]
    for code, message, cls in cases:
        exc = error_from_wire(code, message)
        assert type(exc) is cls and exc.message == message and str(exc) == message


async def test_client_token_works_against_a_server_without_authenticate(daemon: Daemon) -> None:
    from eventdbx.control import messages as msg

    async def reference_answer(request: msg.Authenticate, auth: object) -> tuple[bytes, bool]:
        # what a reference (3.x) server sends for tag 5
        return msg.encode_error(request.id, "serialization", "serialization error: unknown request variant 5"), False

    daemon.server.handlers._authenticate = reference_answer
    token = daemon.token()
    async with Client("127.0.0.1", daemon.port, token=token) as db:
        assert db.identity is None
        event = await db.append("r", "r-1", "r_created", payload={"ok": True})
        assert event["metadata"]["issued_by"] == {"group": "ops", "user": "alice"}


@contextlib.asynccontextmanager
async def _silent_server() -> AsyncIterator[int]:
    """A server that accepts, reads and never answers; yields its port."""
    writers: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)  # keep the connection open, never answer
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_client_call_times_out_and_leaves_nothing_pending() -> None:
    async with _silent_server() as port, Client("127.0.0.1", port, token="t", timeout=0.2,
                                                 authenticate=False) as db:
        started = asyncio.get_running_loop().time()
        with pytest.raises(errors.IoError) as info:
            await db.append("order", "o-1", "order_created", payload={"n": 1})
        assert info.value.message.endswith("no reply within 0.2 s"), info.value.message
        assert 0.15 <= asyncio.get_running_loop().time() - started < 5
        assert db._pending == {}  # the expired call left nothing behind
        assert not db._deadlines


async def test_client_shortened_timeout_fires_before_an_earlier_longer_one() -> None:
    async with _silent_server() as port, Client("127.0.0.1", port, token="t", timeout=30,
                                                 authenticate=False) as db:
        slow = asyncio.ensure_future(db.get_aggregate("order", "o-1"))
        for _ in range(100):  # let the first call send and arm the watchdog for 30 s
            if db._watchdog is not None:
                break
            await asyncio.sleep(0)
        assert db._watchdog is not None
        db.timeout = 0.2
        started = asyncio.get_running_loop().time()
        with pytest.raises(errors.IoError) as info:
            await db.get_aggregate("order", "o-2")
        assert info.value.message.endswith("no reply within 0.2 s"), info.value.message
        assert asyncio.get_running_loop().time() - started < 5  # not the first call's 30 s
        assert not slow.done()  # still within its own 30 s
        slow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await slow


async def test_client_answered_calls_leave_no_deadlines_behind(daemon: Daemon) -> None:
    async with Client("127.0.0.1", daemon.port, token=daemon.token(), timeout=30) as db:
        await asyncio.gather(*(db.append("order", f"o-{n % 5}", "order_created" if n < 5 else "order_updated",
                                         payload={"n": n}) for n in range(200)))
        assert db._pending == {} and not db._deadlines
    assert db._watchdog is None  # closing cancels the timer
