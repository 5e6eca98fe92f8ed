"""GroupCommitWriter: per-loop-iteration hand-over, max_batch splitting, one outcome per caller, draining close."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest
from control_daemon import Daemon

from eventdbx.control.writer import GroupCommitWriter
from eventdbx.errors import EventDBXError, VersionConflictError


class Recorder:
    """An append_batch that echoes requests, fails odd ones and records batch sizes and threads."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()

    def __call__(self, requests: Sequence[int]) -> list[int | EventDBXError]:
        self.batches.append(list(requests))
        self.threads.add(threading.current_thread().name)
        return [VersionConflictError(f"odd {r}") if r % 2 else r * 10 for r in requests]


async def test_one_iteration_is_one_hand_over_split_at_max_batch() -> None:
    recorder = Recorder()
    writer: GroupCommitWriter[int, int] = GroupCommitWriter(recorder, max_batch=4, linger_secs=0)
    writer.start()
    try:
        futures = [writer.submit_nowait(n) for n in range(10)]  # all within one loop iteration
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
    finally:
        await writer.close()
    assert [o if isinstance(o, int) else str(o) for o in outcomes] == [
        n * 10 if n % 2 == 0 else f"version conflict: odd {n}" for n in range(10)
    ]
    assert [n for batch in recorder.batches for n in batch] == list(range(10))
    assert max(len(b) for b in recorder.batches) <= 4 and len(recorder.batches) >= 3
    assert recorder.threads == {"eventdbx-writer"}
    assert (writer.batches, writer.events) == (len(recorder.batches), 5)


async def test_close_finishes_what_was_submitted() -> None:
    recorder = Recorder()
    writer: GroupCommitWriter[int, int] = GroupCommitWriter(recorder, max_batch=2)
    writer.start()
    futures = [writer.submit_nowait(n) for n in (2, 4, 6, 8, 10)]
    await writer.close()  # the submits of this iteration have not been handed over yet
    assert [f.result() for f in futures] == [20, 40, 60, 80, 100]
    with pytest.raises(EventDBXError):
        writer.submit_nowait(12)


async def test_a_crashing_batch_fails_only_its_callers() -> None:
    calls: list[int] = []

    def flaky(requests: Sequence[int]) -> list[int | EventDBXError]:
        calls.append(len(requests))
        if 0 in requests:
            raise RuntimeError("disk on fire")
        return list(requests)

    writer: GroupCommitWriter[int, int] = GroupCommitWriter(flaky, linger_secs=0)
    writer.start()
    try:
        first = writer.submit_nowait(0)
        with pytest.raises(EventDBXError, match="disk on fire"):
            await first
        assert await writer.submit(5) == 5
    finally:
        await writer.close()


async def test_point_reads_from_many_connections_get_their_own_answers(daemon: Daemon) -> None:
    from eventdbx import Client, errors

    token = daemon.token()
    async with Client("127.0.0.1", daemon.port, token=token) as db:
        for n in range(8):
            await db.append("acct", f"a-{n}", "acct_created", payload={"n": n})
            await db.append("acct", f"a-{n}", "acct_updated", payload={"m": n * 2})

    async def reader(n: int) -> None:
        async with Client("127.0.0.1", daemon.port) as db:
            for _ in range(20):
                state, events = await asyncio.gather(
                    db.get_aggregate("acct", f"a-{n}"), db.list_events("acct", f"a-{n}", skip=1)
                )
                assert state is not None and state["state"] == {"n": str(n), "m": str(n * 2)}
                assert [e["payload"] for e in events] == [{"m": n * 2}]
                assert await db.get_aggregate("acct", f"missing-{n}") is None
                with pytest.raises(errors.AggregateNotFoundError):
                    await db.list_events("acct", f"missing-{n}")

    await asyncio.gather(*(reader(n) for n in range(8)))
    assert daemon.server.handlers.point_reads.batches > 0
