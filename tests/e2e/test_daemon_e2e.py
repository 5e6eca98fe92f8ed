"""The real daemon: start/status/stop/restart, CLI and socket appends interleaved, HTTP delivery through the pipeline."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_receiver import recording_receiver
from tests.conftest import DbxEnv

from eventdbx import Client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def daemon(dbx: DbxEnv) -> Iterator[tuple[DbxEnv, int]]:
    port = _free_port()
    dbx.ok("config", "--socket-bind", f"127.0.0.1:{port}")
    yield dbx, port
    dbx.run("stop")


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[bytes]]]:
    with recording_receiver() as port_and_bodies:
        yield port_and_bodies


def _until(predicate: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


async def _socket_appends(port: int, token: str, ids: range) -> list[int]:
    async with Client("127.0.0.1", port, token=token) as client:
        results = [
            await client.append("order", f"o-{n}", "order_created", payload={"n": n}) for n in ids
        ]
    return [r["version"] for r in results]


def test_lifecycle_socket_and_cli_appends_survive_restart(daemon: tuple[DbxEnv, int]) -> None:
    dbx, port = daemon
    started = dbx.ok("start")
    assert f"EventDBX server is running on port {port} (pid " in started.out
    assert "(restrict=default)" in started.out
    assert dbx.fail("start").err.startswith("Error: EventDBX server already running (pid ")
    assert "— restrict=default — up for " in dbx.ok("status").out
    token = (dbx.data_dir / "cli.token").read_text().strip()
    dbx.ok("aggregate", "apply", "order", "c-1", "order_created", "--field", "status=new")
    assert asyncio.run(_socket_appends(port, token, range(5))) == [1] * 5
    dbx.ok("aggregate", "apply", "order", "c-1", "order_updated", "--field", "status=paid")
    stopped = dbx.ok("stop")
    assert "EventDBX server stopped (pid " in stopped.out
    assert not (dbx.data_dir / "eventdbx.pid").exists()
    assert dbx.ok("status").out.strip() == "EventDBX server is not running."
    dbx.ok("start")
    listed = dbx.ok("aggregate", "list", "--take", "100").out.splitlines()
    assert len(listed) == 6
    assert '"status": "paid"' in dbx.ok("aggregate", "get", "order", "c-1").out
    dbx.ok("aggregate", "verify", "order", "o-3")


def test_http_plugin_receives_every_event(
    daemon: tuple[DbxEnv, int], receiver: tuple[int, list[bytes]]
) -> None:
    dbx, _ = daemon
    http_port, bodies = receiver
    dbx.ok(
        "plugin",
        "config",
        "http",
        "--name",
        "hook",
        "--endpoint",
        f"127.0.0.1:{http_port}/hook",
        "--payload",
        "event-only",
    )
    dbx.ok("start")
    for n in range(4):
        dbx.ok("aggregate", "apply", "order", f"o-{n}", "order_created", "--field", f"n={n}")
    _until(lambda: len(bodies) >= 4)
    assert (
        sorted(b'"aggregate_id":"o-%d"' % n in body for n in range(4) for body in bodies).count(
            True
        )
        == 4
    )
    _until(lambda: "done=4" in dbx.ok("queue").out)
    assert "http (hook) state=idle" in dbx.ok("queue").out


def test_destroy_removes_everything(dbx: DbxEnv) -> None:
    dbx.ok("aggregate", "apply", "order", "o-1", "order_created")
    assert dbx.ok("destroy", input="nope\n").out.strip() == "Destroy command cancelled."
    out = dbx.ok("destroy", "--yes").out
    assert out.strip() == f"All EventDBX data and configuration removed from {dbx.data_dir}"
    assert not Path(dbx.data_dir).exists()
