"""Benchmark: plugin delivery to a local aiohttp receiver (plugins.md §4 performance).

1. Rate: 20,000 queued jobs delivered by the dispatcher (target >= 5,000/s).
2. Latency: events appended to event_store.db one by one (enqueuer woken per append, as the socket does);
   append commit -> request arrival at the receiver, p50/p99 (target p99 < 50 ms).

The receiver runs in a separate process so it does not share the dispatcher's core.
Run: .venv/bin/python bench/delivery_http.py [--jobs 20000] [--concurrency 1 8 32] [--runs 3] [--profile]
     [--latency-events 2000]
     [--latency-rate 500] [--blocked 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import multiprocessing
import pstats
import resource
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from eventdbx.config import Settings, load_settings
from eventdbx.plugins.dispatcher import Dispatcher
from eventdbx.plugins.registry import HttpConfig, PluginDefinition
from eventdbx.plugins.sinks.recording import RecordingSink
from eventdbx.store.plugin_queue import PluginQueue
from eventdbx.store.plugin_queue_model import NewJob

# -- receiver (child process) ----------------------------------------------------------------------


def _serve(conn: Connection) -> None:
    from aiohttp import web

    arrivals: dict[str, float] = {}

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        arrivals[request.headers["X-EventDBX-Event-Id"]] = time.time()
        return web.Response(status=204)

    async def stats(request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(arrivals), content_type="application/json")

    async def cpu(request: web.Request) -> web.Response:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return web.Response(text=str(usage.ru_utime + usage.ru_stime))

    async def reset(request: web.Request) -> web.Response:
        arrivals.clear()
        return web.Response(status=204)

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hook", hook)
        app.router.add_get("/stats", stats)
        app.router.add_post("/reset", reset)
        app.router.add_get("/cpu", cpu)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        conn.send(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop
        await runner.cleanup()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


async def _get_json(url: str) -> Any:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return json.loads(await resp.read())


# -- part 1: rate ----------------------------------------------------------------------------------


def _envelope(agg: str, version: int, event_id: int) -> str:
    event = {
        "aggregate_id": agg,
        "aggregate_type": "order",
        "event_type": "order_updated",
        "hash": "ab" * 32,
        "merkle_root": "cd" * 32,
        "metadata": {
            "created_at": "2025-10-26T12:00:00.123456Z",
            "event_id": str(event_id),
            "issued_by": {"group": "admin", "user": "jane"},
        },
        "payload": {"n": version, "status": "paid", "total": 15.5, "tags": ["a", "b"]},
        "version": version,
    }
    return orjson.dumps({"event": event}, option=orjson.OPT_SORT_KEYS).decode()


class _Defs:
    def __init__(self, defs: list[PluginDefinition]) -> None:
        self.defs = defs

    def current(self) -> list[PluginDefinition]:
        return list(self.defs)


def _queue_jobs(root: Path, label: str, jobs: int, aggregates: int) -> PluginQueue:
    queue = PluginQueue.open(root / "rate_queue.db")
    news = []
    for n in range(jobs):
        agg = f"order-{n % aggregates}"
        event_id = 1_000_000 + n
        news.append(
            NewJob(
                plugin_name="hook",
                label=label,
                aggregate_type="order",
                aggregate_id=agg,
                event_type="order_updated",
                event_id=event_id,
                version=n // aggregates + 1,
                event_created_at="2025-10-26T12:00:00.123456Z",
                envelope=_envelope(agg, n // aggregates + 1, event_id),
            )
        )
    with queue.transaction() as tx:
        tx.insert_jobs(news, now=time.time())
    return queue


class _Batches:
    """Counts the dispatcher's write transactions on the hot path (wraps the queue's methods)."""

    def __init__(self) -> None:
        self.cycles = self.claimed = self.recorded = 0
        self.cpu = 0.0

    def __str__(self) -> str:
        cycles = max(self.cycles, 1)
        return (
            f"{self.cycles} deliver+claim transactions (avg {self.recorded / cycles:.1f} done,"
            f" {self.claimed / cycles:.1f} claimed), their thread CPU"
            f" {self.cpu * 1000 / max(self.recorded, 1):.3f} ms/job"
        )


def _count_batches(queue: PluginQueue) -> _Batches:
    batches = _Batches()
    if not hasattr(queue, "deliver_and_claim"):
        return batches  # an older queue (before/after comparisons): no counts
    deliver_and_claim = queue.deliver_and_claim

    def counted(items: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            done, claimed = deliver_and_claim(items, **kwargs)
        finally:
            batches.cpu += time.thread_time() - start
        batches.cycles += 1
        batches.recorded += len(items)
        batches.claimed += len(claimed)
        return done, claimed

    queue.deliver_and_claim = counted  # type: ignore[method-assign]
    return batches


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def rate_of(
    settings: Settings,
    root: Path,
    definition: PluginDefinition,
    jobs: int,
    aggregates: int,
    *,
    profile: bool = False,
    sink_factory: Any = None,
    receiver_cpu: Any = None,
) -> tuple[float, float]:
    """Deliver `jobs` queued jobs through a Dispatcher; (deliveries/s, dispatcher-process CPU ms per job).

    Prints SQL statements per job on the dispatcher's connection. CPU covers this whole process (the
    dispatcher loop and its SQLite worker threads) minus the bench's own done-count polls, not the receiver.
    """
    for leftover in root.glob("rate_queue.db*"):
        leftover.unlink()
    queue = _queue_jobs(root, definition.label, jobs, aggregates)
    statements = [0]

    def count(_sql: str) -> None:
        statements[0] += 1

    queue._conn.set_trace_callback(count)  # bench-only peek at the private connection
    batches = _count_batches(queue)
    watcher = PluginQueue.open(root / "rate_queue.db")
    stop = asyncio.Event()
    dispatcher = Dispatcher(settings, queue, _Defs([definition]), sink_factory=sink_factory)
    profiler = cProfile.Profile() if profile else None
    receiver0 = await receiver_cpu() if receiver_cpu is not None else 0.0
    cpu0, loop_cpu0, started = _cpu(), time.thread_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    task = asyncio.create_task(dispatcher.run(stop))
    poll_cpu = 0.0

    def done_count() -> tuple[int, float]:
        start = time.thread_time()
        return watcher.counts("hook").done, time.thread_time() - start

    while True:
        done, spent = await asyncio.to_thread(done_count)
        poll_cpu += spent
        if done >= jobs:
            break
        await asyncio.sleep(0.1)
    elapsed, cpu = time.perf_counter() - started, _cpu() - cpu0 - poll_cpu
    loop_cpu = time.thread_time() - loop_cpu0
    if profiler is not None:
        profiler.disable()
    stop.set()
    await task
    queue._conn.set_trace_callback(None)
    counts = watcher.counts("hook")
    receiver = (await receiver_cpu() - receiver0) if receiver_cpu is not None else None
    if receiver is not None:
        print(f"  receiver process CPU {receiver * 1000 / jobs:.3f} ms/job")
    print(
        f"  {jobs} jobs, {definition.kind} concurrency {definition.concurrency}, {aggregates} aggregates:"
        f" {elapsed:.2f} s = {jobs / elapsed:,.0f}/s, CPU {cpu * 1000 / jobs:.3f} ms/job"
        f" (event-loop thread {loop_cpu * 1000 / jobs:.3f}),"
        f" {statements[0] / jobs:.2f} SQL statements/job, {batches}"
        f" (done={counts.done} dead={counts.dead} pending={counts.pending})"
    )
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    watcher.close()
    queue.close()
    return jobs / elapsed, cpu * 1000 / jobs


def report_runs(name: str, results: list[tuple[float, float]]) -> None:
    """Median rate and CPU per job over the runs."""
    rates = [r for r, _ in results]
    cpus = [c for _, c in results]
    print(
        f"{name}: median {statistics.median(rates):,.0f} deliveries/s"
        f" (runs: {', '.join(f'{r:,.0f}' for r in rates)}),"
        f" median CPU {statistics.median(cpus):.3f} ms/job"
    )


async def rate(
    settings: Settings,
    root: Path,
    port: int,
    jobs: int,
    concurrency: int,
    aggregates: int,
    *,
    runs: int = 1,
    profile: bool = False,
    null_sink: bool = False,
) -> None:
    hook = PluginDefinition(
        name="hook",
        config=HttpConfig(endpoint=f"http://127.0.0.1:{port}/hook"),
        concurrency=concurrency,
    )
    factory = (lambda _definition: RecordingSink()) if null_sink else None

    async def receiver_cpu() -> float:
        return float(await _get_json(f"http://127.0.0.1:{port}/cpu"))

    results = [
        await rate_of(
            settings,
            root,
            hook,
            jobs,
            aggregates,
            profile=profile and n == 0,
            sink_factory=factory,
            receiver_cpu=None if null_sink else receiver_cpu,
        )
        for n in range(runs)
    ]
    kind = "null sink (dispatcher + queue only)" if null_sink else "http"
    report_runs(f"{kind} rate, concurrency {concurrency}", results)


# -- part 2: append -> delivery latency ---------------------------------------------------------


def _add_blocked(queue: PluginQueue, label: str, count: int) -> None:
    """`count` jobs on 1,000 aggregates whose first job is dead: all blocked (plugins.md §4 perf. note)."""
    from eventdbx.domain.payload_mode import Ordering

    if count <= 0:
        return
    news = [
        NewJob(
            plugin_name="hook",
            label=label,
            aggregate_type="blocked",
            aggregate_id=f"b-{n % 1000}",
            event_type="x",
            event_id=9_000_000 + n,
            version=n // 1000 + 1,
            event_created_at="2025-10-26T12:00:00.123456Z",
            envelope=_envelope(f"b-{n % 1000}", 1, n),
        )
        for n in range(count)
    ]
    with queue.transaction() as tx:
        tx.insert_jobs(news, now=time.time())
    for _ in range(1000 // 100):
        for job in queue.claim(
            "hook", now=time.time(), limit=100, lease_secs=60, ordering=Ordering.AGGREGATE
        ):
            queue.mark_dead(
                job.id,
                job.claim_token or "",
                started_at=time.time(),
                now=time.time(),
                error="bench: blocked",
                permanent=True,
            )


async def latency(
    settings: Settings, port: int, events: int, per_second: float, blocked: int = 0
) -> None:
    from eventdbx.domain.jsontext import parse_json
    from eventdbx.domain.records import AggregateRow, EventRecord
    from eventdbx.domain.state import fold_state, payload_map
    from eventdbx.plugins import enqueuer as enq
    from eventdbx.plugins.registry import PluginRegistry, save_plugins
    from eventdbx.store import events as store_events
    from eventdbx.store.database import Database

    hook = PluginDefinition(
        name="hook", config=HttpConfig(endpoint=f"http://127.0.0.1:{port}/hook")
    )
    save_plugins(settings.paths.plugins_json, [hook])
    enq.init_cursor(settings, "hook")
    db = Database.open(settings.paths.event_store, settings.durability, create=True)
    queue = PluginQueue.open(settings.paths.plugin_queue)
    _add_blocked(queue, hook.label, blocked)
    stop = asyncio.Event()
    dispatcher = Dispatcher(settings, queue, PluginRegistry(settings.paths.plugins_json))
    enqueuer = enq.Enqueuer(settings, queue=queue, db=db, on_jobs=dispatcher.wake)
    tasks = [asyncio.create_task(dispatcher.run(stop)), asyncio.create_task(enqueuer.run(stop))]
    while not dispatcher.active_plugins():
        await asyncio.sleep(0.01)
    committed: dict[str, float] = {}
    states: dict[str, tuple[int, dict[str, str]]] = {}

    def append(n: int) -> None:
        agg = f"order-{n % 50}"
        version, state = states.get(agg, (0, {}))
        payload = f'{{"n":{n},"status":"paid"}}'
        state = fold_state(state, payload_map(parse_json(payload)))
        version += 1
        states[agg] = (version, state)
        event_id = 5_000_000 + n
        with db.write() as conn:
            store_events.insert_event(
                conn,
                EventRecord(
                    aggregate_type="order",
                    aggregate_id=agg,
                    event_type="order_updated",
                    payload_json=payload,
                    extensions_json=None,
                    event_id=event_id,
                    created_at="2025-10-26T12:00:00.123456Z",
                    issued_by=None,
                    note=None,
                    version=version,
                    hash="ab" * 32,
                    merkle_root="cd" * 32,
                ),
            )
            store_events.save_aggregate(
                conn,
                AggregateRow(
                    aggregate_type="order",
                    aggregate_id=agg,
                    version=version,
                    state=state,
                    merkle_root="cd" * 32,
                ),
            )
        committed[str(event_id)] = time.time()

    interval = 1.0 / per_second
    next_at = time.perf_counter()
    for n in range(events):
        await asyncio.to_thread(
            append, n
        )  # appends happen off the loop, like the socket's writer thread
        enqueuer.wake()
        next_at += interval
        delay = next_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    deadline = time.time() + 30
    arrivals: dict[str, float] = {}
    while time.time() < deadline:
        arrivals = await _get_json(f"http://127.0.0.1:{port}/stats")
        if all(k in arrivals for k in committed):
            break
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*tasks)
    enqueuer.close()
    lat = sorted((arrivals[k] - t) * 1000 for k, t in committed.items() if k in arrivals)
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(
        f"latency ({blocked} blocked jobs queued): {len(lat)}/{events} events at {per_second:.0f}/s: append commit -> receiver arrival "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {lat[-1]:.1f} ms"
    )
    queue.close()
    db.close()


def _run(coro: Any) -> None:
    """Like the daemon: uvloop when installed."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    uvloop.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile the first rate run")
    parser.add_argument(
        "--null-sink",
        action="store_true",
        help="deliver to an in-memory sink (dispatcher cost only)",
    )
    parser.add_argument("--aggregates", type=int, default=1000)
    parser.add_argument("--latency-events", type=int, default=2000)
    parser.add_argument("--latency-rate", type=float, default=500.0)
    parser.add_argument(
        "--blocked", type=int, default=0, help="blocked jobs queued during the latency run"
    )
    args = parser.parse_args()
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("spawn").Process(target=_serve, args=(child,), daemon=True)
    proc.start()
    port = parent.recv()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            settings = load_settings(root / "config.toml")
            if args.jobs:
                for concurrency in args.concurrency:
                    _run(
                        rate(
                            settings,
                            root,
                            port,
                            args.jobs,
                            concurrency,
                            args.aggregates,
                            runs=args.runs,
                            profile=args.profile,
                            null_sink=args.null_sink,
                        )
                    )
            if args.latency_events:
                _run(latency(settings, port, args.latency_events, args.latency_rate, args.blocked))
    finally:
        parent.send("stop")
        proc.join(10)


if __name__ == "__main__":
    main()
