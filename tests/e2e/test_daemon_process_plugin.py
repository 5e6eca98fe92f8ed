"""Process plugins under the real daemon: examples/ installed from a checksummed .tar.gz, supervised, SIGKILLed
mid-stream (the in-flight job is retried and applied exactly once), stopped and started, and no process left
behind (plugins.md §8.5)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import DbxEnv
from tests.e2e.process_plugin_bundles import (
    daemon_log,
    example_script,
    free_port,
    install,
    plugin_jobs,
    queue_json,
    running_pid,
    status_block,
    tar_bundle,
    until,
)
from tests.e2e.process_table import ProcessWatch, no_leftover_processes, read_proc

from eventdbx import Client

AGGREGATES, VERSIONS = 40, 25
# The entry point starts a helper in its own process group before exec'ing the plugin: the helper keeps
# the plugin's stdout/stderr open and must still be killed with the group.
WRAPPER = b'#!/bin/sh\nsleep 300 &\nexec "$(dirname "$0")/orders.py" "$@"\n'


@pytest.fixture
def daemon(dbx: DbxEnv) -> Iterator[tuple[DbxEnv, int, ProcessWatch]]:
    port = free_port()
    dbx.ok("config", "--socket-bind", f"127.0.0.1:{port}")
    with no_leftover_processes(dbx.home, lambda: dbx.run("stop")) as watch:
        yield dbx, port, watch


def _daemon_pid(dbx: DbxEnv) -> int:
    return int(json.loads((dbx.data_dir / "eventdbx.pid").read_text())["pid"])


async def _append_orders(port: int, token: str) -> None:
    async with Client("127.0.0.1", port, token=token) as client:
        for version in range(1, VERSIONS + 1):
            for agg in range(AGGREGATES):
                event_type = "order_created" if version == 1 else "order_updated"
                payload = {"status": f"s{version}", "total": str(agg)}
                await client.append("order", f"o-{agg}", event_type, payload=payload)


def _done_jobs(dbx: DbxEnv) -> int:
    with sqlite3.connect(dbx.data_dir / "plugin_queue.db") as conn:
        (count,) = conn.execute("SELECT count(*) FROM jobs WHERE status = 'done'").fetchone()
    conn.close()
    return int(count)


def _read_model(db: Path) -> list[tuple[str, int, int]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            rows = conn.execute("select aggregate_id, version, applied from aggregates").fetchall()
        except sqlite3.OperationalError:
            return []
    conn.close()
    return [(str(a), int(v), int(n)) for a, v, n in rows]


def _group_members(pgid: int) -> list[int]:
    return [
        int(p)
        for p in os.listdir("/proc")
        if p.isdigit()
        and (e := read_proc(int(p))) is not None
        and e.pgid == pgid
        and e.state != "Z"
    ]


def test_read_model_survives_sigkill_mid_stream(
    daemon: tuple[DbxEnv, int, ProcessWatch], tmp_path: Path
) -> None:
    dbx, port, watch = daemon
    bundle = tmp_path / "orders-0.1.0.tar.gz"
    checksum = tar_bundle(
        bundle, {"run.sh": WRAPPER, "orders.py": example_script("sqlite_read_model.py")}
    )
    binary = install(dbx, "orders", bundle, checksum.upper(), "--bin", "run.sh")
    assert binary.endswith("/plugins/orders/0.1.0/" + binary.split("/")[-2] + "/run.sh")
    db = tmp_path / "orders.db"
    dbx.ok(
        "plugin",
        "config",
        "process",
        "orders",
        "--payload",
        "all",
        "--ack",
        "--env",
        f"READ_MODEL_DB={db}",
    )
    dbx.ok("start")
    until(lambda: running_pid(dbx, "orders"), what="worker running")
    initial = running_pid(dbx, "orders")
    assert initial is not None
    pid_file = dbx.data_dir / "plugins" / "run" / "orders.pid"
    assert pid_file.read_text() == f"{initial}\n"
    watch.track(initial)
    until(lambda: len(_group_members(initial)) == 2, what="helper started")
    # Stopped while the events are appended, so a backlog flows at full speed (frames in flight) once
    # started again; the stop also takes the helper down with the group.
    dbx.ok("plugin", "stop", "orders")
    assert not _group_members(initial)
    token = (dbx.data_dir / "cli.token").read_text().strip()
    asyncio.run(_append_orders(port, token))
    total = AGGREGATES * VERSIONS
    until(lambda: len(plugin_jobs(dbx, "orders", "pending")) == total, what="backlog queued")
    started = dbx.ok("plugin", "start", "orders").out
    first = int(started.removeprefix("Process plugin 'orders' worker started (pid ").rstrip(")\n"))
    watch.track(first)
    until(lambda: len(_group_members(first)) == 2, what="helper started")
    [helper] = [p for p in _group_members(first) if p != first]
    # Watched in plugin_queue.db (WAL): the read model's rollback journal can keep a reader waiting until the
    # plugin's back-to-back commits end, i.e. the whole backlog applied, and the kill would land too late.
    until(lambda: _done_jobs(dbx) >= 100, what="some events applied")
    os.kill(first, signal.SIGKILL)
    applied_at_kill = sum(n for _, _, n in _read_model(db))
    assert applied_at_kill < total, "the kill must land mid-stream"

    until(lambda: (p := running_pid(dbx, "orders")) and p != first, what="worker restarted")
    second = running_pid(dbx, "orders")
    assert second is not None
    watch.track(second)
    until(lambda: read_proc(helper) is None, what="old helper killed with its group")
    watch.assert_no_zombies()
    until(lambda: len(plugin_jobs(dbx, "orders", "done")) == total, timeout=120, what="all done")
    counts = queue_json(dbx)["counts"]
    assert (counts["pending"], counts["processing"], counts["dead"]) == (0, 0, 0)
    model = _read_model(db)
    assert sorted(model) == sorted((f"o-{a}", VERSIONS, VERSIONS) for a in range(AGGREGATES))
    retried = [j for j in plugin_jobs(dbx, "orders", "done") if j["attempts"] > 1]
    assert retried, "the in-flight job(s) must have been retried"
    log = daemon_log(dbx)
    assert "process plugin 'orders' exited (status -9); restarting in 1s" in log
    assert "error=\"process plugin 'orders' exited (status -9)\"" in log
    assert status_block(dbx, "orders")["restarts"] == "1"

    stopped = dbx.ok("plugin", "stop", "orders").out
    assert stopped == f"Stopped process plugin 'orders' runtime (pid {second})\n"
    assert read_proc(second) is None and not _group_members(second)
    assert not pid_file.exists()
    assert status_block(dbx, "orders")["status"] == "stopped by operator"
    assert (
        dbx.ok("plugin", "stop", "orders").out == "Process plugin 'orders' worker is not running\n"
    )
    watch.assert_no_zombies()


def test_plugin_test_start_stop_list_status(
    daemon: tuple[DbxEnv, int, ProcessWatch], tmp_path: Path
) -> None:
    dbx, _, watch = daemon
    bundle = tmp_path / "jsonl.tgz"
    checksum = tar_bundle(bundle, {"jsonl": example_script("jsonl_writer.py")})
    install(dbx, "jsonl", bundle, checksum)
    events = tmp_path / "events.jsonl"
    dbx.ok(
        "plugin",
        "config",
        "process",
        "jsonl",
        "--payload",
        "event-only",
        "--env",
        f"EVENTS_FILE={events}",
    )
    dbx.ok("start")
    daemon_pid = _daemon_pid(dbx)
    until(lambda: running_pid(dbx, "jsonl"), what="worker running")
    pid = running_pid(dbx, "jsonl")
    assert pid is not None
    watch.track(pid)
    assert status_block(dbx, "jsonl") == {
        "enabled": "true",
        "emit events": "true",
        "status": f"running (pid {pid})",
        "restarts": "0",
        "runtime pid file": str(dbx.data_dir / "plugins" / "run" / "jsonl.pid"),
        "supervisor": f"daemon (pid {daemon_pid})",
    }
    assert f"; process running (pid {pid})" in dbx.ok("plugin", "list").out
    [listed] = json.loads(dbx.ok("plugin", "list", "--json").out)
    assert listed["runtime"] == {"state": "running", "pid": pid}
    assert dbx.ok("plugin", "start", "jsonl").out == (
        f"Process plugin 'jsonl' worker is already running (pid {pid})\n"
    )

    tested = dbx.ok("plugin", "test", "jsonl").out
    assert tested == "process (jsonl) - ok\nTested 1 plugin(s): 1 succeeded, 0 failed\n"
    until(lambda: events.exists() and events.read_text().strip(), what="sample written")
    [sample] = [json.loads(line) for line in events.read_text().splitlines()]
    assert (sample["event_id"], sample["aggregate"], sample["version"]) == (
        "1234567890",
        "patient::p-001",
        5,
    )
    assert sample["payload"] == {"comment": "Archived via API", "status": "inactive"}
    assert queue_json(dbx, "--limit", "0")["jobs"] == []  # the one-off test job is deleted

    stopped = dbx.ok("plugin", "stop", "jsonl").out
    assert stopped == f"Stopped process plugin 'jsonl' runtime (pid {pid})\n"
    assert read_proc(pid) is None
    assert status_block(dbx, "jsonl")["status"] == "stopped by operator"
    assert (
        "  - process (jsonl) - enabled (disable with plugin disable jsonl)\n"
        in dbx.ok("plugin", "list").out
    )
    failed = dbx.fail("plugin", "test", "jsonl")
    assert failed.out.startswith(
        "process (jsonl) - FAILED (process plugin 'jsonl' worker is stopped; run dbx plugin start jsonl)"
    )
    # While stopped, jobs wait and use no attempts; the stop persists across a daemon restart.
    applied = json.loads(dbx.ok("aggregate", "apply", "order", "o-1", "order_created").out)
    until(lambda: plugin_jobs(dbx, "jsonl", "pending"), what="job queued")
    dbx.ok("stop")
    dbx.ok("start")
    assert status_block(dbx, "jsonl")["status"] == "stopped by operator"
    [job] = plugin_jobs(dbx, "jsonl", "pending")
    assert job["attempts"] == 0
    started = dbx.ok("plugin", "start", "jsonl").out
    assert started.startswith("Process plugin 'jsonl' worker started (pid ")
    new_pid = int(started.rsplit("pid ", 1)[1].rstrip(")\n"))
    watch.track(new_pid)
    until(lambda: plugin_jobs(dbx, "jsonl", "done"), what="waiting job delivered")
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert applied["metadata"]["event_id"] in {line["event_id"] for line in lines}
    watch.assert_no_zombies()


@pytest.mark.slow
def test_plugin_exiting_at_once_hits_the_crash_loop_limit(
    daemon: tuple[DbxEnv, int, ProcessWatch], tmp_path: Path
) -> None:
    dbx, _, watch = daemon
    script = tmp_path / "quitter"
    script.write_bytes(b"#!/bin/sh\nexit 3\n")
    dbx.ok("plugin", "install", "quitter", "0.1.0", "--source", str(script))
    dbx.ok("plugin", "config", "process", "quitter")
    dbx.ok("start")
    looping = "crash-looping (5 exits; run dbx plugin start quitter)"
    until(lambda: status_block(dbx, "quitter")["status"] == looping, timeout=90, what="crash loop")
    assert status_block(dbx, "quitter")["restarts"] == "5"
    assert (
        "ERROR eventdbx.plugin: process plugin 'quitter' is crash-looping (5 exits without a healthy "
        "run); not restarting until 'dbx plugin start quitter'" in daemon_log(dbx)
    )
    assert "process plugin 'quitter' exited (status 3); restarting in 8s" in daemon_log(dbx)
    assert "; process crash-looping" in dbx.ok("plugin", "list").out
    [listed] = json.loads(dbx.ok("plugin", "list", "--json").out)
    assert listed["runtime"] == {"state": "crash-looping"}
    dbx.ok("aggregate", "apply", "order", "o-1", "order_created")
    until(lambda: plugin_jobs(dbx, "quitter", "pending"), what="job queued")
    [plugin] = queue_json(dbx)["plugins"]
    assert plugin["state"] == "stopped"
    [job] = plugin_jobs(dbx, "quitter", "pending")
    assert job["attempts"] == 0  # a crash-looping worker's jobs wait without using attempts
    watch.assert_no_zombies()
    # `plugin start` clears the loop: the supervisor tries again (and the plugin exits again).
    result = dbx.run("plugin", "start", "quitter")
    assert "Traceback" not in result.err
    until(lambda: status_block(dbx, "quitter")["status"] != looping, what="crash loop cleared")


def test_emit_events_false_keeps_the_worker_without_jobs(
    daemon: tuple[DbxEnv, int, ProcessWatch], tmp_path: Path
) -> None:
    dbx, _, watch = daemon
    bundle = tmp_path / "surface.tar.gz"
    checksum = tar_bundle(bundle, {"surface": example_script("sqlite_read_model.py")})
    install(dbx, "surface", bundle, checksum)
    db = tmp_path / "surface.db"
    out = dbx.ok(
        "plugin",
        "config",
        "process",
        "surface",
        "--emit-events",
        "false",
        "--env",
        f"READ_MODEL_DB={db}",
    ).out
    assert out == "Process plugin 'surface' configured\n"
    dbx.ok(
        "plugin", "config", "log", "--name", "witness"
    )  # proves the enqueuer has passed the events
    dbx.ok("start")
    until(lambda: running_pid(dbx, "surface"), what="worker running")
    pid = running_pid(dbx, "surface")
    assert pid is not None
    watch.track(pid)
    for n in range(3):
        dbx.ok("aggregate", "apply", "order", f"o-{n}", "order_created", "--field", "status=new")
    until(lambda: len(plugin_jobs(dbx, "witness", "done")) == 3, what="witness delivered")
    for status in ("pending", "processing", "done", "dead"):
        assert plugin_jobs(dbx, "surface", status) == []
    surface = next(p for p in queue_json(dbx)["plugins"] if p["name"] == "surface")
    assert (surface["state"], surface["unqueued"], surface["pending"]) == ("no-events", 0, 0)
    until(
        lambda: (
            "surface stderr: INFO eventdbx.plugin.surface: started surface 0.1.0 on "
            in daemon_log(dbx)
        ),
        what="init frame received",
    )
    assert _read_model(db) == []
    block = status_block(dbx, "surface")
    assert (block["emit events"], block["status"], block["restarts"]) == (
        "false",
        f"running (pid {pid})",
        "0",
    )
    entry = read_proc(pid)
    assert entry is not None and entry.state != "Z"
    assert "has event delivery disabled" in dbx.fail("plugin", "test", "surface").err
    watch.assert_no_zombies()


def test_daemon_stop_kills_a_plugin_that_ignores_eof_and_sigterm(
    daemon: tuple[DbxEnv, int, ProcessWatch], tmp_path: Path
) -> None:
    dbx, _, watch = daemon
    script = tmp_path / "stubborn"
    script.write_bytes(b'#!/bin/sh\ntrap "" TERM\nwhile true; do sleep 1; done\n')
    dbx.ok("plugin", "install", "stubborn", "0.1.0", "--source", str(script))
    dbx.ok("plugin", "config", "process", "stubborn")
    dbx.ok("start")
    until(lambda: running_pid(dbx, "stubborn"), what="worker running")
    pid = running_pid(dbx, "stubborn")
    assert pid is not None
    watch.track(pid)
    until(lambda: len(_group_members(pid)) == 2, what="the plugin's sleep child")
    # `dbx stop` SIGKILLs the daemon after 5 s; the worker must be gone before that, helpers included.
    assert dbx.ok("stop").out.startswith("EventDBX server stopped (pid ")
    watch.assert_clean(timeout=5)
    assert "ERROR" not in daemon_log(dbx)
