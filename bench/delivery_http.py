"""Benchmark: plugin delivery to a local aiohttp receiver (plugins.md §4 performance).

1. Rate: 20,000 queued jobs delivered by the dispatcher (target >= 5,000/s).
2. Latency: events appended to event_store.db one by one (enqueuer woken per append, as the socket does);
   append commit -> request arrival at the receiver, p50/p99 (target p99 < 50 ms).

The receiver runs in a separate process so it does not share the dispatcher's core.
Run: .venv/bin/python bench/delivery_http.py [--jobs 20000] [--concurrency 8] [--latency-events 2000]
     [--latency-rate 500] [--blocked 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
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

    async def reset(request: web.Request) -> web.Response:
        arrivals.clear()
        return web.Response(status=204)

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hook", hook)
        app.router.add_get("/stats", stats)
        app.router.add_post("/reset", reset)
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


async def rate(
    settings: Settings, root: Path, port: int, jobs: int, concurrency: int, aggregates: int
) -> None:
    hook = PluginDefinition(
        name="hook",
        config=HttpConfig(endpoint=f"http://127.0.0.1:{port}/hook"),
        concurrency=concurrency,
    )
    queue = PluginQueue.open(root / "rate_queue.db")
    news = []
    for n in range(jobs):
        agg = f"order-{n % aggregates}"
        event_id = 1_000_000 + n
        news.append(
            NewJob(
                plugin_name="hook",
                label=hook.label,
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
    watcher = PluginQueue.open(root / "rate_queue.db")
    stop = asyncio.Event()
    dispatcher = Dispatcher(settings, queue, _Defs([hook]))
    started = time.perf_counter()
    task = asyncio.create_task(dispatcher.run(stop))
    while True:
        done = (await asyncio.to_thread(watcher.counts, "hook")).done
        if done >= jobs:
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    counts = watcher.counts("hook")
    print(
        f"rate: {jobs} jobs, concurrency {concurrency}, {aggregates} aggregates: {elapsed:.2f} s "
        f"= {jobs / elapsed:,.0f} deliveries/s (done={counts.done} dead={counts.dead} pending={counts.pending})"
    )
    watcher.close()
    queue.close()


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
    parser.add_argument("--concurrency", type=int, default=8)
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
                _run(rate(settings, root, port, args.jobs, args.concurrency, args.aggregates))
            if args.latency_events:
                _run(latency(settings, port, args.latency_events, args.latency_rate, args.blocked))
    finally:
        parent.send("stop")
        proc.join(10)


if __name__ == "__main__":
    main()
