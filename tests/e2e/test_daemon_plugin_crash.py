"""The crash test (issue 4 acceptance): SIGKILL the daemon at random moments under load with an HTTP and a TCP plugin.

At the end every event has exactly one non-replay job per plugin (invariant I1, read from plugin_queue.db) and each
receiver has seen every event id at least once. Knobs for a longer soak by hand, e.g.
`EVENTDBX_CRASH_KILLS=200 EVENTDBX_CRASH_EVENTS=200000 pytest tests/e2e/test_daemon_plugin_crash.py`:
EVENTDBX_CRASH_KILLS (20), EVENTDBX_CRASH_EVENTS (10000), EVENTDBX_CRASH_CLIENTS (6), EVENTDBX_CRASH_SEED (random).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from collections import Counter
from pathlib import Path

import pytest
from plugin_crash_support import (
    Daemon,
    Load,
    Receivers,
    group_alive,
    job_statuses,
    live_jobs,
    stored_event_ids,
)
from tests.conftest import DBX, DbxEnv

KILLS = int(os.environ.get("EVENTDBX_CRASH_KILLS", "20"))
EVENTS = int(os.environ.get("EVENTDBX_CRASH_EVENTS", "10000"))
CLIENTS = int(os.environ.get("EVENTDBX_CRASH_CLIENTS", "6"))
SEED = int(os.environ.get("EVENTDBX_CRASH_SEED", str(random.randrange(1 << 32))))
DRAIN_SECS = 60 + EVENTS / 250  # a generous bound for the final drain on a loaded machine

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240 + KILLS * 5 + EVENTS / 100)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _crash_under_load(daemon: Daemon, load: Load, rng: random.Random) -> list[float]:
    """KILLS SIGKILLs at random moments while the clients append; then run until EVENTS were acknowledged."""
    clients = [asyncio.create_task(load.client(n)) for n in range(CLIENTS)]
    clients.append(
        asyncio.create_task(load.cli(daemon.dbx_path, daemon.env, daemon.data_dir.parent))
    )
    startups: list[float] = []
    try:
        for _ in range(KILLS):
            startups.append(await asyncio.to_thread(daemon.start))
            floor = len(load.acked)
            await asyncio.sleep(rng.uniform(0.0, 1.2))  # the random moment (not a synchronisation)
            # mostly mid-load; sometimes still in startup recovery and catch-up
            if rng.random() < 0.8:
                await _until(
                    lambda floor=floor: len(load.acked) > floor, 30, "appends after a restart"
                )
            await asyncio.to_thread(daemon.kill)
        startups.append(await asyncio.to_thread(daemon.start))
        await _until(
            lambda: len(load.acked) >= EVENTS, 30 + EVENTS / 50, f"{EVENTS} acknowledged appends"
        )
    finally:
        load.stop.set()
        await asyncio.wait_for(asyncio.gather(*clients), 30)
    return startups


def _drained(data_dir: Path, receivers: Receivers, log_path: Path) -> bool:
    assert "invariant I1" not in log_path.read_text(), (
        "the enqueuer hit the unique index (see the daemon log)"
    )
    events = set(stored_event_ids(data_dir))
    statuses = job_statuses(data_dir)
    if statuses["done"] != 2 * len(events) or sum(statuses.values()) != statuses["done"]:
        return False
    seen = receivers.seen()
    return all(events <= set(seen[kind]["ids"]) for kind in ("http", "tcp"))


@pytest.mark.slow
def test_sigkill_under_load_keeps_one_job_per_event_and_delivers_every_event(dbx: DbxEnv) -> None:
    print(f"crash test: seed={SEED} kills={KILLS} events={EVENTS} clients={CLIENTS}")
    rng = random.Random(SEED)
    port = _free_port()
    dbx.ok("config", "--socket-bind", f"127.0.0.1:{port}")
    receivers = Receivers.start()
    log_path = dbx.home / "daemon.stderr"
    began = time.monotonic()
    with log_path.open("w") as log:
        daemon = Daemon(DBX, dbx.env(), dbx.data_dir, port, log)
        try:
            hook = f"127.0.0.1:{receivers.http_port}/hook"
            dbx.ok(
                "plugin",
                "config",
                "http",
                "--name",
                "hook",
                "--endpoint",
                hook,
                "--payload",
                "event-only",
            )
            dbx.ok(
                "plugin",
                "config",
                "tcp",
                "--name",
                "lines",
                "--host",
                "127.0.0.1",
                "--port",
                str(receivers.tcp_port),
            )
            daemon.start()  # first start writes cli.token
            daemon.kill()
            load = Load(port, dbx.data_dir / "cli.token")
            startups = asyncio.run(_crash_under_load(daemon, load, rng))
            loaded = time.monotonic()
            try:
                asyncio.run(
                    _until(
                        lambda: _drained(dbx.data_dir, receivers, log_path), DRAIN_SECS, "the drain"
                    )
                )
            except AssertionError as exc:
                statuses = dict(job_statuses(dbx.data_dir))
                raise AssertionError(
                    f"{exc}: jobs {statuses}, {len(stored_event_ids(dbx.data_dir))} events"
                ) from None
            drained = time.monotonic()
            seen = receivers.seen()
            assert daemon.stop() == 0
        finally:
            daemon.kill()
            receivers.close()
    assert not [g for g in [*daemon.pgids, receivers.proc.pid] if group_alive(g)], (
        "orphan processes"
    )
    assert not daemon.orphans, f"outlived a SIGKILLed daemon by 10 s: {daemon.orphans}"

    events = stored_event_ids(dbx.data_dir)
    acked = Counter(load.acked)
    print(
        f"crash test: {len(startups) - 1} kills, {len(events)} events ({len(acked)} acknowledged, {len(load.cli_acked)} via dbx), load "
        f"{loaded - began:.1f}s, drain {drained - loaded:.1f}s, startups median "
        f"{sorted(startups)[len(startups) // 2]:.2f}s, client reconnects {dict(load.failures)}, deliveries "
        f"http {seen['http']['deliveries']} tcp {seen['tcp']['deliveries']}"
    )
    assert not load.errors, load.errors[:5]
    assert len(startups) - 1 >= KILLS and len(acked) >= EVENTS
    assert set(acked) <= set(events), "an acknowledged append was lost"
    assert len(load.cli_acked) >= 5 and set(load.cli_acked) <= set(events)
    assert len(set(events)) == len(events)
    jobs = live_jobs(dbx.data_dir)
    expected = Counter(events)
    assert set(jobs) == {"hook", "lines"}
    for plugin, per_event in jobs.items():
        missing = len(set(expected) - set(per_event))
        extra = len(set(per_event) - set(expected))
        doubled = sum(1 for n in per_event.values() if n != 1)
        assert per_event == expected, (
            f"{plugin}: {missing} events without a job, {extra} stray, {doubled} doubled"
        )
    for kind in ("http", "tcp"):
        unseen = set(events) - set(seen[kind]["ids"])
        assert not unseen, f"the {kind} receiver never saw {len(unseen)} event(s)"
    text = log_path.read_text()
    assert "invariant I1" not in text and "Traceback" not in text, text[-4000:]
