"""Control-socket throughput: appends/s and latency with 1 and 16 connections, reads/s for getAggregate/listEvents.

The daemon side (EventService + ControlServer, uvloop) runs in a child process on a temp data dir; the clients
(eventdbx.Client) run in this process. Run:

    .venv/bin/python bench/socket_throughput.py                 # 10k events per append scenario
    .venv/bin/python bench/socket_throughput.py --events 100000 # the long run
    .venv/bin/python bench/socket_throughput.py --durability fsync

Append scenarios: 1 connection with 1 request in flight, 16 connections with 1 each (the targets), and 1 connection
with 16 requests in flight (one client shared by 16 tasks: how one process gets group commit from one socket).
Prints one line per scenario: ops, seconds, ops/s, p50 and p99 latency in ms and the daemon process's CPU time
per operation (the capacity figure that stays meaningful on a shared, loaded machine; the clients' own CPU per operation
follows in parentheses: they share the machine's 2 cores with the daemon) (targets: ≥5,000 appends/s with one
connection and one request in flight, ≥15,000/s with 16 connections), then the daemon's resident memory (VmRSS and
VmHWM from /proc/<pid>/status) after all appends and reads (target ≤ 80 MB after 100k events).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def _serve(config: str, durability: str, conn: Any) -> None:
    """Child process: run the daemon side until the parent closes the pipe."""
    import os

    if os.environ.get(
        "BENCH_PIN"
    ):  # pin the daemon to one CPU (GIL handoffs stay on one core's caches)
        os.sched_setaffinity(0, {int(os.environ["BENCH_PIN"])})
    if os.environ.get("BENCH_SWITCH"):
        sys.setswitchinterval(float(os.environ["BENCH_SWITCH"]))
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    async def main() -> None:
        from eventdbx.config import load_settings
        from eventdbx.control.server import ControlServer
        from eventdbx.service import EventService

        settings = load_settings(config, create=True)
        settings = dataclasses.replace(
            settings,
            durability=durability,  # type: ignore[arg-type]
            socket=dataclasses.replace(settings.socket, bind_addr="127.0.0.1:0"),
        )
        service = EventService.open(settings, create=True)
        server = ControlServer(
            service, settings, reader_threads=int(os.environ.get("BENCH_READERS", "2"))
        )
        await server.start()
        conn.send(server.port)
        loop = asyncio.get_running_loop()
        while await loop.run_in_executor(None, conn.recv) == "cpu":
            conn.send((time.process_time(), server.writer.batches, server.writer.events))
        stats = (server.writer.batches, server.writer.events, server.writer.inline_batches,
                 server.writer.busy_fallbacks, server.writer.housekeeping_retries)
        await server.close(grace=1.0)
        service.close()
        conn.send(stats)

    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        cProfile.runctx(
            "asyncio.run(main())",
            globals(),
            {"main": main, "asyncio": asyncio},
            os.environ["BENCH_PROFILE"],
        )
    else:
        asyncio.run(main())


def _token(config: str) -> str:
    from eventdbx.auth.keys import signing_keys
    from eventdbx.auth.records import TokenRequest
    from eventdbx.auth.tokens import issue_token
    from eventdbx.config import load_settings
    from eventdbx.store import tokens as ledger
    from eventdbx.store.database import Database

    settings = load_settings(config, create=True)
    record = issue_token(
        signing_keys(settings.auth),
        settings.auth,
        TokenRequest(group="bench", user="bench", root=True, ttl_secs=0),
        time.time(),
    )
    db = Database.open(settings.paths.event_store, create=True)
    with db.write() as conn:
        ledger.insert_token(conn, record)
    db.close()
    return record.token


_CPU: dict[str, Any] = {}


def _server_cpu() -> float:
    """CPU seconds the daemon process has used so far (its group-commit counters go to _CPU["commits"])."""
    pipe = _CPU["pipe"]
    pipe.send("cpu")
    cpu, batches, events = pipe.recv()
    _CPU["commits"] = (batches, events)
    return float(cpu)


def _rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB, read from /proc (0 where unavailable)."""
    values = {"VmRSS:": 0.0, "VmHWM:": 0.0}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
        for line in status:
            fields = line.split()
            if fields and fields[0] in values:
                values[fields[0]] = int(fields[1]) / 1024
    return values["VmRSS:"], values["VmHWM:"]


def _report(name: str, ops: int, seconds: float, latencies: list[float]) -> None:
    before = _CPU.get("commits", (0, 0))
    cpu = _server_cpu()
    used, _CPU["last"] = cpu - _CPU.get("last", cpu), cpu
    batches, events = (now - then for now, then in zip(_CPU["commits"], before, strict=True))
    per_commit = f"  {events / batches:4.1f} appends/commit" if batches else ""
    mine = time.process_time()
    client, _CPU["client"] = mine - _CPU.get("client", mine), mine
    latencies.sort()
    p50 = statistics.median(latencies) * 1000 if latencies else 0.0
    p99 = (
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000 if latencies else 0.0
    )
    print(
        f"{name:<42} {ops:>8} ops {seconds:>7.2f} s {ops / seconds:>10,.0f}/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
        f"  daemon CPU {used / ops * 1e6:5.0f} µs/op  (client CPU {client / ops * 1e6:4.0f} µs/op){per_commit}",
        flush=True,
    )


async def _appends(port: int, token: str, connections: int, total: int, tag: str, in_flight: int = 1) -> None:
    """`total` appends over `connections` clients, each with `in_flight` requests outstanding (tasks sharing it)."""
    from eventdbx import Client

    per = total // (connections * in_flight)
    latencies: list[float] = []

    async def worker(db: Client, n: int) -> None:
        for k in range(per):
            started = time.perf_counter()
            await db.append(
                "bench", f"{tag}-{n}-{k % 100}", "item_created", payload={"k": k, "v": "x" * 40}
            )
            latencies.append(time.perf_counter() - started)

    async def connection(c: int) -> None:
        async with Client("127.0.0.1", port, token=token, authenticate=False) as db:
            await asyncio.gather(*(worker(db, c * in_flight + t) for t in range(in_flight)))

    started = time.perf_counter()
    await asyncio.gather(*(connection(c) for c in range(connections)))
    _report(
        f"append {connections:>2} conn(s), {in_flight} in flight each",
        per * connections * in_flight,
        time.perf_counter() - started,
        latencies,
    )


async def _reads(port: int, kind: str, connections: int, total: int, tag: str) -> None:
    from eventdbx import Client

    per = total // connections
    latencies: list[float] = []

    async def worker(n: int) -> None:
        async with Client("127.0.0.1", port) as db:
            for k in range(per):
                started = time.perf_counter()
                if kind == "getAggregate":
                    await db.get_aggregate(
                        "bench", f"{tag}-{n % 16 if connections > 1 else 0}-{k % 100}"
                    )
                else:
                    await db.list_events("bench", f"{tag}-0-{k % 100}", take=10)
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(connections)))
    _report(
        f"{kind} {connections:>2} conn(s)",
        per * connections,
        time.perf_counter() - started,
        latencies,
    )


async def _run(port: int, token: str, events: int, reads: int) -> None:
    _CPU["last"] = _server_cpu()
    _CPU["client"] = time.process_time()
    await _appends(port, token, 1, events, "one")
    await _appends(port, token, 16, events, "many")
    await _appends(port, token, 1, events, "piped", in_flight=16)  # one connection, pipelined
    for kind in ("getAggregate", "listEvents"):
        await _reads(port, kind, 1, reads, "many")
        await _reads(port, kind, 16, reads, "many")


def main() -> None:
    """Parse arguments, start the daemon child, run the scenarios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=10_000)
    parser.add_argument("--durability", choices=("normal", "fsync"), default="normal")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dbx-bench-") as tmp:
        config = str(Path(tmp) / "config.toml")
        token = _token(config)
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_serve, args=(config, args.durability, child), daemon=True)
        proc.start()
        port = parent.recv()
        _CPU["pipe"] = parent
        with contextlib.suppress(ImportError):
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        print(
            f"socket_throughput: events={args.events} reads={args.reads} durability={args.durability}"
        )
        try:
            asyncio.run(_run(port, token, args.events, args.reads))
            rss, peak = _rss_mb(proc.pid)
            print(
                f"daemon memory after {3 * args.events} appended events: VmRSS {rss:.1f} MB (peak {peak:.1f} MB)"
            )
            wal = Path(tmp) / "event_store.db-wal"
            wal_mb = wal.stat().st_size / 1e6 if wal.exists() else 0.0
            print(f"WAL file: {wal_mb:.1f} MB (bounded by the writer thread's RESTART checkpoints)")
        finally:
            parent.send("stop")
            batches, committed, inline, busy, retries = parent.recv()
            proc.join(10)
        print(
            f"group commit: {committed} events in {batches} batches ({committed / max(batches, 1):.1f}/batch),"
            f" {inline} committed on the loop, {busy} busy fallbacks to the writer thread,"
            f" {retries} checkpoints retried early (could not rewind the WAL)"
        )


if __name__ == "__main__":
    main()
