"""The plugin pipeline's own process under the real daemon: it delivers, is restarted after a crash, dies with a
SIGKILLed daemon and stops with a graceful one."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_receiver import recording_receiver
from plugin_crash_support import Daemon, live_group_members
from process_table import process_table
from tests.conftest import DBX, DbxEnv

from eventdbx import Client

pytestmark = pytest.mark.timeout(120)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[bytes]]]:
    with recording_receiver() as port_and_bodies:
        yield port_and_bodies


def _until(predicate: object, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _pipeline_children(daemon_pid: int) -> list[int]:
    return [e.pid for e in process_table() if e.ppid == daemon_pid and e.state != "Z"]


def _idle_threads(daemon_pid: int) -> bool:
    """The one pipeline process runs its loop thread normally and its enqueuer thread under SCHED_IDLE."""
    children = _pipeline_children(daemon_pid)
    if len(children) != 1:
        return False
    try:
        policies = {
            int(tid): os.sched_getscheduler(int(tid)) for tid in os.listdir(f"/proc/{children[0]}/task")
        }
    except OSError:
        return False
    return policies.get(children[0]) == os.SCHED_OTHER and os.SCHED_IDLE in policies.values()


def _append(port: int, token_path: Path, aggregate: str) -> None:
    async def go() -> None:
        async with Client("127.0.0.1", port, token=token_path.read_text().strip()) as db:
            await db.append("order", aggregate, "order_created", payload={"n": 1})

    asyncio.run(go())


def _delivered(bodies: list[bytes], aggregate: str) -> bool:
    return any(f'"aggregate_id":"{aggregate}"'.encode() in b for b in bodies)


def test_pipeline_process_restarts_after_a_crash_and_dies_with_the_daemon(
    dbx: DbxEnv, receiver: tuple[int, list[bytes]]
) -> None:
    port = _free_port()
    dbx.ok("config", "--socket-bind", f"127.0.0.1:{port}")
    http_port, bodies = receiver
    endpoint = f"http://127.0.0.1:{http_port}/hook"
    dbx.ok("plugin", "config", "http", "--name", "hook", "--endpoint", endpoint)
    token = dbx.data_dir / "cli.token"
    with (dbx.home / "daemon.stderr").open("w") as log:
        daemon = Daemon(DBX, dbx.env(), dbx.data_dir, port, log)
        try:
            daemon.start()
            assert daemon.proc is not None
            # the daemon serves before its pipeline process is up; its worker threads run at idle priority,
            # its loop thread (which forks process plugins) at normal priority
            _until(lambda: _idle_threads(daemon.proc.pid), "the pipeline process")  # type: ignore[union-attr]
            children = _pipeline_children(daemon.proc.pid)
            assert len(children) == 1, children
            _append(port, token, "a-1")
            _until(lambda: _delivered(bodies, "a-1"), "delivery by the pipeline process")

            os.kill(children[0], signal.SIGKILL)
            _until(
                lambda: _pipeline_children(daemon.proc.pid) not in ([], children),  # type: ignore[union-attr]
                "the restarted pipeline process",
            )
            _append(port, token, "a-2")
            _until(lambda: _delivered(bodies, "a-2"), "delivery after the restart")

            daemon.kill()  # the daemon alone: its pipeline process must follow by itself
            assert not daemon.orphans, daemon.orphans
            dbx.ok("aggregate", "apply", "order", "a-3", "order_created")
            daemon.start()
            _until(lambda: _delivered(bodies, "a-3"), "a CLI append delivered after restart")
            assert daemon.stop() == 0
            assert not live_group_members(daemon.proc.pid), "the graceful stop left a process"
        finally:
            daemon.kill()
    text = (dbx.home / "daemon.stderr").read_text()
    assert "plugin pipeline process exited (status -9); restarting in 1s" in text
    assert "Traceback" not in text, text[-3000:]
    logged = (dbx.data_dir / "logs" / "eventdbx.log").read_text()
    assert "plugin pipeline process restarted" in logged
