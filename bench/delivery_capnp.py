"""Benchmark: delivery rate through the capnp sink, with and without acks (target >= 5,000 events/s).

20,000 jobs are queued in a fresh plugin_queue.db, then the Dispatcher delivers them to a Cap'n Proto
receiver running in another process (so it does not share the dispatcher's core). Reported per run: wall
rate until every job is done, and CPU-ms per job of the dispatcher's process (time.process_time); then the
median of the runs.
Run: .venv/bin/python bench/delivery_capnp.py [--jobs 20000] [--runs 3] [--concurrency 8] [--modes noack,ack]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from eventdbx.config import Settings, load_settings
from eventdbx.plugins.dispatcher import Dispatcher
from eventdbx.plugins.registry import CapnpConfig, PluginDefinition
from eventdbx.store.plugin_queue import PluginQueue
from eventdbx.store.plugin_queue_model import NewJob

# -- receiver (child process) ----------------------------------------------------------------------


class _Receiver(asyncio.Protocol):
    """Counts event frames; in ack mode answers each with PluginAck{sequence}, one write per burst."""

    def __init__(self, state: dict[str, Any], conn: Connection) -> None:
        from eventdbx.control.plugin_codec import _schema

        self.envelope = _schema().PluginEnvelope
        self.state, self.conn = state, conn
        self.buffer = bytearray()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def _next_frame(self) -> bytes | None:
        from eventdbx.control.plugin_codec import body_length, frame_length

        if len(self.buffer) < 8:
            return None
        table, segments = frame_length(self.buffer[:4])
        if len(self.buffer) < 4 + table:
            return None
        size = 4 + table + body_length(self.buffer[4 : 4 + table], segments)
        if len(self.buffer) < size:
            return None
        frame = bytes(self.buffer[:size])
        del self.buffer[:size]
        return frame

    def data_received(self, data: bytes) -> None:
        from eventdbx.control.plugin_codec import Reply, encode_reply

        self.buffer += data
        replies = []
        while (frame := self._next_frame()) is not None:
            self.state["frames"] += 1
            if self.state["ack"]:
                with self.envelope.from_bytes(frame) as env:
                    replies.append(encode_reply(Reply(sequence=env.event.sequence)))
        if replies:
            self.transport.write(b"".join(replies))
        if self.state["frames"] == self.state["expect"]:
            self.conn.send(("received", self.state["frames"], time.time()))


def _receive(conn: Connection) -> None:
    """The receiver process: serve until told to stop; each command resets the count for one run."""
    state: dict[str, Any] = {"frames": 0, "expect": -1, "ack": False}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Receiver(state, conn), "127.0.0.1", 0)
        conn.send(server.sockets[0].getsockname()[1])
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command is None:
                break
            state.update(frames=0, expect=command["expect"], ack=command["ack"])
            conn.send("ready")
        server.close()

    _run(main())


# -- jobs and the dispatcher -----------------------------------------------------------------------


def envelope(agg: str, version: int, event_id: int) -> str:
    """A realistic `all` envelope (event, state, no schema) as stored in the queue."""
    root = "cd" * 32
    event = {
        "aggregate_id": agg,
        "aggregate_type": "order",
        "event_type": "order_updated",
        "hash": "ab" * 32,
        "merkle_root": root,
        "metadata": {
            "created_at": "2025-10-26T12:00:00.123456Z",
            "event_id": str(event_id),
            "issued_by": {"group": "admin", "user": "jane"},
        },
        "payload": {"n": version, "status": "paid", "total": 15.5, "tags": ["a", "b"]},
        "version": version,
    }
    state = {
        "aggregate_id": agg,
        "aggregate_type": "order",
        "archived": False,
        "merkle_root": root,
        "state": {"n": str(version), "status": "paid", "tags": '["a","b"]', "total": "15.5"},
        "version": version,
    }
    return orjson.dumps({"event": event, "state": state}, option=orjson.OPT_SORT_KEYS).decode()


def fill_queue(path: Path, definition: PluginDefinition, jobs: int, aggregates: int) -> None:
    """Insert `jobs` pending jobs for one plugin, spread over `aggregates` aggregates."""
    queue = PluginQueue.open(path)
    news = []
    for n in range(jobs):
        agg, version, event_id = f"order-{n % aggregates}", n // aggregates + 1, 1_000_000 + n
        news.append(
            NewJob(
                plugin_name=definition.name,
                label=definition.label,
                aggregate_type="order",
                aggregate_id=agg,
                event_type="order_updated",
                event_id=event_id,
                version=version,
                event_created_at="2025-10-26T12:00:00.123456Z",
                envelope=envelope(agg, version, event_id),
            )
        )
    with queue.transaction() as tx:
        tx.insert_jobs(news, now=time.time())
    queue.close()


@dataclass(frozen=True, slots=True)
class RunResult:
    """One timed run: wall seconds until every job was done, and CPU seconds of this process."""

    jobs: int
    wall: float
    cpu: float
    dead: int

    @property
    def rate(self) -> float:
        """Jobs done per wall second."""
        return self.jobs / self.wall

    @property
    def cpu_ms_per_job(self) -> float:
        """Dispatcher-process CPU milliseconds per job."""
        return 1000 * self.cpu / self.jobs


async def dispatch_all(
    settings: Settings,
    queue_path: Path,
    definition: PluginDefinition,
    jobs: int,
    **dispatcher_args: Any,
) -> RunResult:
    """Run a Dispatcher over a filled queue until every job is done (or dead); time it."""
    queue = PluginQueue.open(queue_path)
    watcher = PluginQueue.open(queue_path)
    stop = asyncio.Event()
    dispatcher = Dispatcher(settings, queue, lambda: [definition], **dispatcher_args)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    task = asyncio.create_task(dispatcher.run(stop))
    while True:
        counts = await asyncio.to_thread(watcher.counts, definition.name)
        if counts.done + counts.dead >= jobs:
            break
        await asyncio.sleep(0.05)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    stop.set()
    await task
    watcher.close()
    queue.close()
    return RunResult(jobs=jobs, wall=wall, cpu=cpu, dead=counts.dead)


def report(title: str, results: list[RunResult]) -> None:
    """Print every run and the medians."""
    for n, r in enumerate(results, 1):
        print(
            f"  {title} run {n}: {r.jobs} jobs in {r.wall:.2f} s = {r.rate:,.0f} events/s, "
            f"{r.cpu_ms_per_job:.3f} CPU-ms/job (dead={r.dead})"
        )
    rate = statistics.median(r.rate for r in results)
    cpu = statistics.median(r.cpu_ms_per_job for r in results)
    verdict = "meets" if rate >= 5000 else "BELOW"
    print(
        f"{title}: median {rate:,.0f} events/s ({verdict} the 5,000/s target), {cpu:.3f} CPU-ms/job"
    )


def _run(coro: Any) -> Any:
    """Like the daemon: uvloop when installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def timed_runs(runs: int, one: Callable[[Path], RunResult]) -> list[RunResult]:
    """`runs` runs, each in a fresh temporary directory."""
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(one(Path(tmp)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--aggregates", type=int, default=1000)
    parser.add_argument("--modes", default="noack,ack")
    args = parser.parse_args()
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("spawn").Process(target=_receive, args=(child,), daemon=True)
    proc.start()
    port = parent.recv()
    try:
        for mode in args.modes.split(","):
            ack = mode == "ack"
            definition = PluginDefinition(
                name="capnp",
                config=CapnpConfig(host="127.0.0.1", port=port, ack=ack),
                concurrency=args.concurrency,
            )

            def one(
                root: Path, definition: PluginDefinition = definition, ack: bool = ack
            ) -> RunResult:
                settings = load_settings(root / "config.toml")
                fill_queue(root / "queue.db", definition, args.jobs, args.aggregates)
                parent.send({"expect": args.jobs, "ack": ack})
                assert parent.recv() == "ready"
                result: RunResult = _run(
                    dispatch_all(settings, root / "queue.db", definition, args.jobs)
                )
                assert parent.poll(30), "the receiver did not get every frame"
                kind, frames, _ = parent.recv()
                assert (kind, frames) == ("received", args.jobs)
                return result

            report(f"capnp {mode}", timed_runs(args.runs, one))
    finally:
        parent.send(None)
        proc.join(10)


if __name__ == "__main__":
    main()
