"""kill -9 of the daemon under load from 8 socket clients: every acknowledged append is present after restart."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time

from tests.conftest import DbxEnv

from eventdbx import Client

CLIENTS = 8


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _load(
    port: int, token: str, client_no: int, acked: list[tuple[str, int]], stop: asyncio.Event
) -> None:
    try:
        async with Client("127.0.0.1", port, token=token, timeout=5) as client:
            n = 0
            while not stop.is_set() and n < 5000:
                event_type = "order_created" if n == 0 else "order_updated"
                reply = await client.append("order", f"c{client_no}", event_type, payload={"n": n})
                acked.append((f"c{client_no}", int(reply["version"])))
                n += 1
    except Exception:  # the daemon dies under us: unacknowledged appends may or may not exist
        return


async def _run_until_killed(port: int, token: str, pid: int) -> list[tuple[str, int]]:
    acked: list[tuple[str, int]] = []
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_load(port, token, c, acked, stop)) for c in range(CLIENTS)]
    deadline = time.monotonic() + 20
    while len(acked) < 400 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    return acked


def test_acknowledged_appends_survive_sigkill(dbx: DbxEnv) -> None:
    port = _free_port()
    dbx.ok("config", "--socket-bind", f"127.0.0.1:{port}")
    dbx.ok("start")
    pid = json.loads((dbx.data_dir / "eventdbx.pid").read_text())["pid"]
    token = (dbx.data_dir / "cli.token").read_text().strip()
    acked = asyncio.run(_run_until_killed(port, token, pid))
    assert len(acked) >= 400
    dbx.ok("start")  # stale pid file is removed; the store recovers from its WAL
    try:
        highest: dict[str, int] = {}
        for agg, version in acked:
            highest[agg] = max(highest.get(agg, 0), version)
        for agg, version in highest.items():
            state = json.loads(dbx.ok("aggregate", "get", "order", agg).out)
            assert state["version"] >= version, (
                f"{agg}: acknowledged v{version}, stored v{state['version']}"
            )
            dbx.ok("aggregate", "verify", "order", agg)
    finally:
        dbx.run("stop")
