"""Appends committed on the loop when the write lock is free: fallback to the writer thread, order, housekeeping."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Sequence

import pytest
from control_daemon import Daemon
from control_wire import RawConn, request, response

from eventdbx.control import writer as writer_module
from eventdbx.control.writer import GroupCommitWriter
from eventdbx.errors import EventDBXError, WriteBusy


class Path2:
    """Records which path (loop or thread) committed which requests; the loop path can be made busy."""

    def __init__(self) -> None:
        self.order: list[tuple[str, int]] = []
        self.busy = False
        self.release = threading.Event()
        self.release.set()
        self.housekeeping = 0
        self.finishes: list[bool] = []  # what each housekeeping call reports (True once the list is used up)

    def inline(self, requests: Sequence[int]) -> list[int | EventDBXError]:
        if self.busy:
            raise WriteBusy("held")
        self.order.extend(("loop", r) for r in requests)
        return [r * 10 for r in requests]

    def thread(self, requests: Sequence[int]) -> list[int | EventDBXError]:
        self.release.wait(10)
        self.order.extend(("thread", r) for r in requests)
        return [r * 10 for r in requests]

    def housekeep(self) -> bool:
        self.housekeeping += 1
        return self.finishes.pop(0) if self.finishes else True

    def writer(self, **options: float) -> GroupCommitWriter[int, int]:
        """A started writer committing on the loop through `inline`, else on its thread through `thread`."""
        writer: GroupCommitWriter[int, int] = GroupCommitWriter(
            self.thread, inline_batch=self.inline, housekeeping=self.housekeep, **options
        )
        writer.start()
        return writer


async def _until(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def test_free_lock_commits_on_the_loop_and_busy_falls_back_in_order() -> None:
    paths = Path2()
    writer = paths.writer(linger_secs=0)
    try:
        assert await writer.submit(1) == 10
        paths.busy, paths.release = True, threading.Event()
        first = writer.submit_nowait(2)  # lock held elsewhere: goes to the thread, which is held up
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        paths.busy = False  # the lock is free again, but request 2 is still with the thread
        second = writer.submit_nowait(3)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not first.done() and not second.done()
        paths.release.set()
        assert await asyncio.gather(first, second) == [20, 30]
        assert await writer.submit(4) == 40  # thread drained: back on the loop
    finally:
        await writer.close()
    assert paths.order == [("loop", 1), ("thread", 2), ("thread", 3), ("loop", 4)]
    assert writer.busy_fallbacks == 1 and writer.inline_batches == 2


async def test_housekeeping_runs_on_the_thread_every_n_inline_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "HOUSEKEEPING_EVERY", 3)
    paths = Path2()
    writer = paths.writer()
    try:
        for n in range(7):
            assert await writer.submit(n) == n * 10
        await _until(lambda: paths.housekeeping == 2)
    finally:
        await writer.close()
    assert all(where == "loop" for where, _ in paths.order)


async def test_housekeeping_that_could_not_finish_runs_again_sooner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "HOUSEKEEPING_EVERY", 10)
    monkeypatch.setattr(writer_module, "HOUSEKEEPING_RETRY", 2)
    paths = Path2()
    paths.finishes = [False]  # the first checkpoint finds others writing
    writer = paths.writer()
    try:
        for n in range(10):
            assert await writer.submit(n) == n * 10
        await _until(lambda: paths.housekeeping == 1)
        await _until(lambda: writer.housekeeping_retries == 1)
        for n in range(2):  # two batches later, not ten
            await writer.submit(n)
        await _until(lambda: paths.housekeeping == 2)
        for n in range(9):  # it finished: the next one waits the full ten batches
            await writer.submit(n)
    finally:
        await writer.close()  # runs whatever was queued before it, housekeeping included
    assert paths.housekeeping == 2 and writer.housekeeping_retries == 1


def _append(rid: int, token: str, aggregate_id: str) -> bytes:
    return request(rid, "appendEvent", token=token, aggregateType="order", aggregateId=aggregate_id,
                   eventType="order_created", payloadJson=json.dumps({"n": rid}))


async def test_a_lock_held_by_another_process_never_blocks_the_loop(daemon: Daemon) -> None:
    token = daemon.token()
    conn = await RawConn.open(daemon.port)
    assert (await conn.call(_append(1, token, "o-1")))["which"] == "appendEvent"  # inline, lock free
    holder = sqlite3.connect(daemon.settings.paths.event_store, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # what a CLI append holds while it writes
    try:
        for rid in (2, 3, 4):
            await conn.send(_append(rid, token, "o-1"))
        other = await RawConn.open(daemon.port)
        reply = await other.call(request(1, "getAggregate", aggregateType="order",
                                         aggregateId="o-1"), timeout=5)
        assert reply["which"] == "getAggregate", reply  # the loop still serves others
        await other.close()
        assert daemon.server.writer.busy_fallbacks >= 1
    finally:
        holder.execute("COMMIT")
        holder.close()
    replies = [await conn.frame() for _ in range(3)]
    events = [json.loads(response(frame)["eventJson"]) for frame in replies]
    assert [e["version"] for e in events] == [2, 3, 4]
    assert [response(frame)["id"] for frame in replies] == [2, 3, 4]
    assert (await conn.call(_append(5, token, "o-1")))["which"] == "appendEvent"
    await conn.close()
    assert daemon.server.writer.inline_batches >= 2


async def test_the_wal_stays_bounded_under_inline_appends(daemon: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "HOUSEKEEPING_EVERY", 25)
    token = daemon.token()
    conn = await RawConn.open(daemon.port)
    wal = daemon.settings.paths.event_store.with_name("event_store.db-wal")
    sizes = []
    for rid in range(1, 801):
        assert (await conn.call(_append(rid, token, f"o-{rid % 7}")))["which"] == "appendEvent"
        if rid % 200 == 0:
            sizes.append(wal.stat().st_size)
    await conn.close()
    assert daemon.server.writer.inline_batches >= 600
    # each single-append commit adds ~35 KB of WAL: 800 commits without a rewind leave ~28 MB; rewinds every
    # 25 commits keep the file near its high-water mark even when a few checkpoints find a reader and give up
    assert max(sizes) < 12_000_000, sizes
