"""kill -9 during a staged commit leaves all or nothing; concurrent writer processes never collide.

A real subprocess drives EventService (or the real `dbx aggregate commit`) while the test SIGKILLs it at a
random moment; afterwards the store holds either all 1,000 staged events or none (and then keeps them staged).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eventdbx.config import load_settings
from eventdbx.service import AppendRequest, EventService

N = 1000

_STAGE_AND_COMMIT = """
import sys
from eventdbx.config import load_settings
from eventdbx.service import AppendRequest, EventService
svc = EventService.open(load_settings(sys.argv[1]))
n = int(sys.argv[2])
for k in range(n):
    svc.stage(AppendRequest(aggregate_type="order", aggregate_id=f"o{k % 10}",
                            event_type="order_created" if k < 10 else "order_updated",
                            payload_json='{"k":%d,"text":"some payload text"}' % k))
print("STAGED", flush=True)
svc.commit_staged()
print("DONE", flush=True)
"""

_APPEND_LOOP = """
import sys, time
from pathlib import Path
from eventdbx.config import load_settings
from eventdbx.service import AppendRequest, EventService
svc = EventService.open(load_settings(sys.argv[1]), create=False)
go = Path(sys.argv[3])
print("READY", flush=True)
while not go.exists():
    time.sleep(0.001)
ids = []
for k in range(int(sys.argv[2])):
    out = svc.append(AppendRequest(aggregate_type="acct", aggregate_id="shared", event_type="acct_updated",
                                   payload_json='{"w":"%s","k":%d}' % (sys.argv[4], k)))
    ids.append(out.record.event_id)
print(len(ids), flush=True)
"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("EVENTDBX_")}


def _counts(config: Path) -> tuple[int, int]:
    svc = EventService.open(load_settings(config), create=False)
    try:
        committed = sum(a.version for a in svc.list_aggregates())
        for agg in svc.list_aggregates():
            svc.verify(agg.aggregate_type, agg.aggregate_id)
        return committed, len(svc.staged())
    finally:
        svc.close()


def _wait_for_line(proc: subprocess.Popen[str], expected: str, deadline: float) -> bool:
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            return False
        if line.strip() == expected:
            return True
    return False


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(6))
def test_kill_during_commit_is_all_or_nothing(tmp_path: Path, trial: int) -> None:
    config = tmp_path / "home" / "config.toml"
    load_settings(config)
    proc = subprocess.Popen(
        [sys.executable, "-c", _STAGE_AND_COMMIT, str(config), str(N)],
        stdout=subprocess.PIPE, text=True, env=_env(),
    )
    try:
        assert _wait_for_line(proc, "STAGED", time.monotonic() + 60)
        # Kill somewhere between the start of the commit and (usually) before its end.
        time.sleep(random.Random(trial).uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()
    committed, staged = _counts(config)
    assert (committed, staged) in ((0, N), (N, 0)), (committed, staged)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(5))
def test_kill_real_dbx_commit(dbx, trial: int) -> None:  # type: ignore[no-untyped-def]
    config = dbx.data_dir / "config.toml"
    svc = EventService.open(load_settings(config))
    for k in range(N):
        svc.stage(AppendRequest(aggregate_type="order", aggregate_id=f"o{k % 10}",
                                event_type="order_created" if k < 10 else "order_updated",
                                payload_json=f'{{"k":{k}}}'))
    svc.close()
    proc = subprocess.Popen([str(Path(sys.executable).with_name("dbx")), "aggregate", "commit"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dbx.env(), cwd=dbx.home)
    # `dbx aggregate commit` needs ~0.1 s to start and ~0.1 s to commit: spread kills over both.
    time.sleep(0.06 * (trial + 1) + random.Random(trial).uniform(0.0, 0.05))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    committed, staged = _counts(config)
    assert (committed, staged) in ((0, N), (N, 0)), (committed, staged)


@pytest.mark.slow
def test_concurrent_processes_append_gap_free(tmp_path: Path) -> None:
    config = tmp_path / "home" / "config.toml"
    svc = EventService.open(load_settings(config))
    svc.append(AppendRequest(aggregate_type="acct", aggregate_id="shared", event_type="acct_created"))
    svc.close()
    go = tmp_path / "go"
    per = 300
    procs = [
        subprocess.Popen([sys.executable, "-c", _APPEND_LOOP, str(config), str(per), str(go), name],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        for name in ("p1", "p2")
    ]
    for proc in procs:  # both processes opened the store and wait at the start line
        assert _wait_for_line(proc, "READY", time.monotonic() + 60)
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == str(per)
    svc = EventService.open(load_settings(config), create=False)
    try:
        events = svc.list_events("acct", "shared")
        assert [e.version for e in events] == list(range(1, 2 * per + 2))
        assert len({e.event_id for e in events}) == len(events)
        assert [e.event_id for e in events] == sorted(e.event_id for e in events)
        assert svc.verify("acct", "shared") == svc.get_aggregate("acct", "shared").merkle_root
        writers = {e.payload_json.split('"w":"')[1][:2] for e in events[1:]}
        assert writers == {"p1", "p2"}
    finally:
        svc.close()
