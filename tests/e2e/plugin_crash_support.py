"""Support for the daemon crash test: a receiver process (HTTP + TCP), a killable daemon, socket load clients.

Run as a script, this module is the receiver process: an aiohttp server (POST /hook) and a JSON-lines TCP server on
127.0.0.1, recording the event id of every envelope; `GET /seen` reports them. It prints its two ports as one JSON
line, then serves until killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from process_table import process_table

from eventdbx import Client
from eventdbx.errors import EventDBXError, IoError

RECEIVER = Path(__file__)


# --- the receiver process -----------------------------------------------------------------------


def _event_id(envelope: bytes) -> str:
    return str(json.loads(envelope)["event"]["metadata"]["event_id"])


async def _serve_receivers() -> None:
    from aiohttp import web

    seen: dict[str, set[str]] = {"http": set(), "tcp": set()}
    deliveries: Counter[str] = Counter()

    async def hook(request: web.Request) -> web.Response:
        seen["http"].add(_event_id(await request.read()))
        deliveries["http"] += 1
        return web.Response(status=200)

    async def report(request: web.Request) -> web.Response:
        body = {k: {"ids": sorted(v), "deliveries": deliveries[k]} for k, v in seen.items()}
        return web.json_response(body)

    async def lines(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                if not line.endswith(b"\n"):  # the sender died mid-frame: not a delivery
                    break
                seen["tcp"].add(_event_id(line))
                deliveries["tcp"] += 1
        except (ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    app = web.Application()
    app.add_routes([web.post("/hook", hook), web.get("/seen", report)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    tcp = await asyncio.start_server(lines, "127.0.0.1", 0, limit=1 << 24)
    tcp_port = tcp.sockets[0].getsockname()[1]
    print(json.dumps({"http": http_port, "tcp": tcp_port}), flush=True)
    await asyncio.Event().wait()


@dataclass
class Receivers:
    """The receiver process and its ports."""

    proc: subprocess.Popen[str]
    http_port: int
    tcp_port: int

    @classmethod
    def start(cls) -> Receivers:
        """Start the receiver process in its own process group and read its ports."""
        proc = subprocess.Popen(
            [sys.executable, str(RECEIVER)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert proc.stdout is not None
        ports = json.loads(proc.stdout.readline())
        return cls(proc, int(ports["http"]), int(ports["tcp"]))

    def seen(self) -> dict[str, Any]:
        """`{"http"|"tcp": {"ids": [...], "deliveries": n}}` so far."""
        with socket.create_connection(("127.0.0.1", self.http_port), timeout=10) as sock:
            sock.sendall(b"GET /seen HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            while chunk := sock.recv(1 << 16):
                data += chunk
        reply: dict[str, Any] = json.loads(data.split(b"\r\n\r\n", 1)[1])
        return reply

    def close(self) -> None:
        """SIGKILL the receiver's process group and reap it."""
        _kill_group(self.proc, signal.SIGKILL)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# --- the daemon -----------------------------------------------------------------------------------


def _kill_group(proc: subprocess.Popen[Any], sig: int, wait: float = 10) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    proc.wait(wait)


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is still there."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def live_group_members(pgid: int) -> list[str]:
    """`pid command` of every process of the group that is not a zombie."""
    members = []
    for entry in process_table():
        if entry.pgid == pgid and entry.state != "Z":
            members.append(f"{entry.pid} {entry.command}")
    return members


@dataclass
class Daemon:
    """`dbx start --foreground` in its own process group: started, SIGKILLed and restarted by the test."""

    dbx_path: str
    env: dict[str, str]
    data_dir: Path
    port: int
    log: IO[str]
    proc: subprocess.Popen[bytes] | None = None
    pgids: list[int] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)

    def start(self, timeout: float = 60) -> float:
        """Start and wait until it serves the control socket; returns the seconds that took."""
        began = time.monotonic()
        self.proc = subprocess.Popen(
            [self.dbx_path, "start", "--foreground"],
            env=self.env,
            cwd=self.data_dir.parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
        )
        self.pgids.append(self.proc.pid)
        deadline = began + timeout
        while not self._ready():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the daemon exited with {self.proc.returncode} while starting"
                )
            if time.monotonic() > deadline:
                raise AssertionError("the daemon did not become ready in time")
            time.sleep(0.02)
        return time.monotonic() - began

    def _ready(self) -> bool:
        assert self.proc is not None
        try:
            info = json.loads((self.data_dir / "eventdbx.pid").read_text())
        except (OSError, ValueError):
            return False
        if info.get("pid") != self.proc.pid:
            return False
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL the daemon alone and reap it; whatever of its group outlives it for 10 s is an orphan.

        The plugin pipeline process must die by itself (parent-death signal); orphans are recorded, then killed.
        """
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait(10)
        deadline = time.monotonic() + 10
        while (left := live_group_members(self.proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.orphans.extend(left)
        _kill_group(self.proc, signal.SIGKILL)

    def stop(self) -> int:
        """SIGTERM (graceful shutdown); SIGKILL after 20 s. Returns the exit status."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            _kill_group(self.proc, signal.SIGKILL)
            raise


# --- load -----------------------------------------------------------------------------------------


@dataclass
class Load:
    """Appends from several socket clients that reconnect across daemon restarts, and from `dbx` itself."""

    port: int
    token_path: Path
    acked: list[str] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # anything but a connection failure
    cli_acked: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def client(self, number: int) -> None:
        """Append to 16 aggregates of this client until stopped; reconnect after any connection failure."""
        n = 0
        created: set[str] = set()
        while not self.stop.is_set():
            try:
                token = self.token_path.read_text().strip()
                async with Client("127.0.0.1", self.port, token=token, timeout=5) as client:
                    while not self.stop.is_set():
                        aggregate = f"c{number}-{n % 16}"
                        kind = "order_updated" if aggregate in created else "order_created"
                        reply = await client.append(
                            "order", aggregate, kind, payload={"n": n, "c": number}
                        )
                        self.acked.append(str(reply["metadata"]["event_id"]))
                        created.add(aggregate)
                        n += 1
            except (
                EventDBXError,
                OSError,
                TimeoutError,
            ) as exc:  # the daemon died or is not up yet
                self.failures[type(exc).__name__] += 1
                if not isinstance(exc, (IoError, OSError, TimeoutError)):
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.02)

    async def cli(self, dbx_path: str, env: dict[str, str], cwd: Path) -> None:
        """`dbx aggregate apply` in a loop: direct writes whose own enqueue pass races the daemon's enqueuer."""
        n = 0
        while not self.stop.is_set():
            kind = "order_created" if n == 0 else "order_updated"
            proc = await asyncio.create_subprocess_exec(
                dbx_path,
                "aggregate",
                "apply",
                "order",
                "cli",
                kind,
                "--field",
                f"n={n}",
                env=env,
                cwd=cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await proc.communicate()
            if proc.returncode == 0:
                self.cli_acked.append(str(json.loads(out)["metadata"]["event_id"]))
                n += 1
            else:
                self.failures["cli exit"] += 1
            if (
                err.strip()
            ):  # the CLI's enqueue pass warns instead of failing; any warning is a finding
                self.errors.append(f"dbx aggregate apply: {err.decode().strip()[-300:]}")


# --- the stores, read directly --------------------------------------------------------------------


def _query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def stored_event_ids(data_dir: Path) -> list[str]:
    """Every event id in event_store.db."""
    return [
        str(r[0])
        for r in _query(data_dir / "event_store.db", "SELECT event_id FROM events ORDER BY seq")
    ]


def live_jobs(data_dir: Path) -> dict[str, Counter[str]]:
    """Per plugin: how many non-replay jobs each event id has in plugin_queue.db."""
    found: dict[str, Counter[str]] = {}
    rows = _query(
        data_dir / "plugin_queue.db", "SELECT plugin, event_id FROM jobs WHERE replay = 0"
    )
    for plugin, event_id in rows:
        found.setdefault(str(plugin), Counter())[str(event_id)] += 1
    return found


def job_statuses(data_dir: Path) -> Counter[str]:
    """Jobs per status in plugin_queue.db."""
    rows = _query(data_dir / "plugin_queue.db", "SELECT status, count(*) FROM jobs GROUP BY status")
    return Counter({str(status): int(count) for status, count in rows})


if __name__ == "__main__":
    asyncio.run(_serve_receivers())
