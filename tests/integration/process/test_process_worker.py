"""Process plugin supervision with real child processes: acks, restarts, crash loops, clean stops."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from eventdbx.control.plugin_codec import EventFrameFields, encode_event
from eventdbx.errors import DeliveryError
from eventdbx.plugins.process_worker import ProcessWorker, WorkerSpec, WorkerState, WorkerTiming

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
FAST = WorkerTiming(
    restart_delays=(0.05, 0.05, 0.05, 0.05, 0.05),
    healthy_after=30,
    stop_eof_wait=2,
    stop_term_wait=2,
)


def _frame(version: int) -> Callable[[int], bytes]:
    fields = EventFrameFields(
        aggregate_type="order",
        aggregate_id="o-1",
        event_type="order_created",
        event_version=version,
        event_id=str(version),
        created_at_epoch_micros=0,
        payload_json='{"status":"x"}',
        hash="h" * 64,
        merkle_root="r" * 64,
        state_version=version,
        state_merkle_root="r" * 64,
        state_entries=(("status", "x"),),
    )
    return lambda seq: encode_event(fields, seq)


def _script(tmp: Path, name: str, body: str) -> str:
    path = tmp / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return str(path)


async def _until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def _with_worker(
    spec: WorkerSpec, body: Callable[[ProcessWorker], Awaitable[None]], timing: WorkerTiming = FAST
) -> ProcessWorker:
    worker = ProcessWorker(spec, timing)
    task = asyncio.create_task(worker.run())
    try:
        await body(worker)
    finally:
        await worker.stop()
        await asyncio.wait_for(task, 20)
    return worker


def _spec(tmp: Path, binary: str, *, ack: bool, **env: str) -> WorkerSpec:
    return WorkerSpec(
        name="orders",
        plugin_id="orders",
        version="0.1.0",
        target="linux-x86_64",
        binary_path=binary,
        env=env,
        ack=ack,
        timeout_secs=5,
        run_dir=tmp / "run",
    )


async def test_ack_mode_round_trip_and_pid_file(tmp_path: Path) -> None:
    # The example's `#!/usr/bin/env python3` must find an interpreter that has eventdbx installed.
    path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
    spec = _spec(
        tmp_path,
        str(EXAMPLES / "sqlite_read_model.py"),
        ack=True,
        READ_MODEL_DB=str(tmp_path / "rm.db"),
        PATH=path,
    )

    async def body(worker: ProcessWorker) -> None:
        await asyncio.wait_for(worker.running.wait(), 15)
        pid_file = tmp_path / "run" / "orders.pid"
        assert pid_file.read_text() == f"{worker.status.pid}\n"
        for version in (1, 2, 3):
            await worker.deliver(f"job-{version}", _frame(version))
        assert worker.status.state is WorkerState.RUNNING

    worker = await _with_worker(spec, body)
    assert worker.status.state is WorkerState.STOPPED
    assert not (tmp_path / "run" / "orders.pid").exists()


async def test_sigkill_mid_stream_fails_the_delivery_then_restarts(tmp_path: Path) -> None:
    hang = _script(
        tmp_path, "hang.py", "import sys, time\nsys.stdin.buffer.read(1)\ntime.sleep(60)\n"
    )
    spec = _spec(tmp_path, hang, ack=True)

    async def body(worker: ProcessWorker) -> None:
        await asyncio.wait_for(worker.running.wait(), 15)
        first_pid = worker.status.pid
        assert first_pid is not None
        delivery = asyncio.create_task(worker.deliver("job-1", _frame(1)))
        await asyncio.sleep(0)
        os.kill(first_pid, signal.SIGKILL)
        with pytest.raises(
            DeliveryError, match=r"^process plugin 'orders' exited \(status -9\)$"
        ) as info:
            await delivery
        assert info.value.retryable
        await _until(lambda: worker.status.pid not in (None, first_pid) and worker.running.is_set())
        assert worker.status.restarts == 1

    await _with_worker(spec, body)


async def test_plugin_that_exits_at_once_hits_the_crash_loop_limit(tmp_path: Path) -> None:
    spec = _spec(tmp_path, _script(tmp_path, "die.py", "raise SystemExit(3)\n"), ack=False)

    async def body(worker: ProcessWorker) -> None:
        await _until(lambda: worker.status.state is WorkerState.CRASH_LOOPING)
        assert worker.status.last_exit == 3
        assert worker.status.restarts == 5
        worker.start()
        await _until(lambda: worker.status.restarts > 5)

    await _with_worker(spec, body)


async def test_same_job_in_flight_for_three_exits_is_permanent(tmp_path: Path) -> None:
    crash = _script(
        tmp_path,
        "crash.py",
        "import sys\nfrom eventdbx.sdk.plugin import read_frame\n"
        "read_frame(sys.stdin.buffer)\nsys.stdin.buffer.read(8)\nraise SystemExit(1)\n",
    )
    spec = _spec(tmp_path, crash, ack=True)
    errors: list[DeliveryError] = []

    async def body(worker: ProcessWorker) -> None:
        for _ in range(3):
            await _until(lambda: worker.running.is_set())
            try:
                await worker.deliver("poison", _frame(1))
            except DeliveryError as exc:
                errors.append(exc)

    await _with_worker(
        spec, body, WorkerTiming(restart_delays=(0.05,), crash_loop_exits=10, healthy_after=30)
    )
    assert [e.retryable for e in errors] == [True, True, False]
    assert errors[-1].message == "process plugin 'orders' exited 3 times while handling this job"


async def test_stop_kills_the_process_group_without_orphans(tmp_path: Path) -> None:
    marker = tmp_path / "grandchild.pid"
    parent = _script(
        tmp_path,
        "parent.py",
        "import os, signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"child = subprocess.Popen(['sleep', '300'])\nopen({str(marker)!r}, 'w').write(str(child.pid))\n"
        "sys.stdin.buffer.read()\ntime.sleep(300)\n",
    )
    spec = _spec(tmp_path, parent, ack=False)

    async def body(worker: ProcessWorker) -> None:
        await asyncio.wait_for(worker.running.wait(), 15)
        await _until(lambda: marker.exists() and marker.read_text() != "")

    await _with_worker(spec, body, WorkerTiming(stop_eof_wait=0.3, stop_term_wait=0.3))
    grandchild = int(marker.read_text())
    await _until(lambda: not Path(f"/proc/{grandchild}").exists(), timeout=10)
