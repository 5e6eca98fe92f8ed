"""Benchmark: socket append latency with a dead plugin sink vs no plugins (plugins.md §4: p99 ≤ 110 %).

The daemon side runs in a child process composed as `dbx start` does (EventService, ControlServer with
`on_commit=pipeline.wake`, the plugin pipeline in its own process (PipelineProcess), uvloop); `--inline` runs
PluginPipeline inside the daemon's process instead, as before the split. Scenarios, each on a fresh data dir:
  none     no plugins;
  refused  an http plugin whose endpoint refuses connections (nothing listens on the port);
  hang     an http plugin whose endpoint accepts and never answers (timeout_secs 5).
Clients (eventdbx.Client, this process) append sequentially over `--connections` connections. Each scenario
runs `--runs` times, interleaved; the table shows medians of the per-run p50/p99 and the p99 ratio to `none`,
plus CPU µs per append of the daemon and of the pipeline process (0 with `--inline`: it is in the daemon's).

Run: .venv/bin/python bench/append_with_dead_sink.py [--events 3000] [--connections 1] [--runs 3] [--inline]
     BENCH_PROFILE=/tmp/daemon.prof ... --runs 1 --scenarios refused   # cProfile of the daemon's loop thread
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import multiprocessing as mp
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SCENARIOS = ("none", "refused", "hang")


def _cpu_of(pid: int | None) -> float:
    """CPU seconds (user + system) of another process so far; 0 if it is gone."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _serve(config: str, endpoint: str | None, conn: Any, inline: bool) -> None:
    """Child process: the daemon's composition until the parent says stop (its log goes to daemon.log)."""
    import logging

    logging.basicConfig(
        filename=str(Path(config).parent / "daemon.log"), level=logging.INFO, force=True
    )
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    async def main() -> None:
        from eventdbx.config import load_settings
        from eventdbx.control.server import ControlServer
        from eventdbx.pipeline_process import PipelineProcess
        from eventdbx.plugins.enqueuer import init_cursor
        from eventdbx.plugins.pipeline import PluginPipeline
        from eventdbx.plugins.registry import HttpConfig, PluginDefinition, save_plugins
        from eventdbx.service import EventService
        from eventdbx.store.plugin_queue import PluginQueue

        settings = load_settings(config, create=True)
        settings = dataclasses.replace(
            settings, socket=dataclasses.replace(settings.socket, bind_addr="127.0.0.1:0")
        )
        if endpoint is not None:
            hook = PluginDefinition(
                name="hook", config=HttpConfig(endpoint=endpoint, timeout_secs=5)
            )
            save_plugins(settings.paths.plugins_json, [hook])
            init_cursor(settings, "hook")
        service = EventService.open(settings, create=True)
        pipeline = PluginPipeline(settings) if inline else PipelineProcess(settings)
        server = ControlServer(service, settings, on_commit=pipeline.wake)
        await server.start()
        await pipeline.start()
        conn.send(server.port)
        loop = asyncio.get_running_loop()
        child = getattr(pipeline, "pid", None)
        while await loop.run_in_executor(None, conn.recv) == "cpu":
            conn.send((time.process_time(), _cpu_of(child)))
        await server.close(grace=1.0)
        await pipeline.aclose()
        service.close()
        queue = PluginQueue.open(settings.paths.plugin_queue, durability=settings.durability)
        counts = queue.counts("hook")
        queue.close()
        conn.send((counts.pending + counts.processing, counts.done))

    profile = os.environ.get("BENCH_PROFILE")  # a path: cProfile of the daemon's main thread
    if profile:
        import cProfile

        cProfile.runctx("asyncio.run(main())", globals(), {"main": main}, profile)
    else:
        asyncio.run(main())


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _appends(port: int, token: str, connections: int, total: int, tag: str) -> list[float]:
    from eventdbx import Client

    latencies: list[float] = []

    async def worker(n: int) -> None:
        async with Client("127.0.0.1", port, token=token, authenticate=False) as db:
            for k in range(total // connections):
                kind = "order_created" if k < 50 else "order_updated"
                started = time.perf_counter()
                await db.append(
                    "order", f"{tag}-{n}-{k % 50}", kind, payload={"k": k, "v": "x" * 40}
                )
                latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker(n) for n in range(connections)))
    return latencies


def _hang_forever(conn: Any) -> None:
    """Child process: an endpoint that accepts, reads and never answers, until the parent closes the pipe.

    It runs in its own process, not on the measuring clients' loop: reading the dispatcher's requests there
    delayed the clients' replies and was counted as append latency.
    """

    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while await reader.read(65536):
                    pass
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        conn.send(server.sockets[0].getsockname()[1])
        with contextlib.suppress(EOFError):
            await asyncio.to_thread(conn.recv)
        server.close()

    asyncio.run(main())


class _HangingEndpoint:
    """The hanging endpoint's child process and port."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self._parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_hang_forever, args=(child,), daemon=True)
        self._proc.start()
        self.port = int(self._parent.recv())

    def close(self) -> None:
        self._parent.close()
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()


Result = tuple[float, float, float, float, str]


def _one_run(scenario: str, events: int, connections: int, inline: bool) -> Result:
    """(p50 ms, p99 ms, daemon and pipeline CPU µs per append, queue note) of one scenario on a fresh data dir."""
    from socket_throughput import _token

    with tempfile.TemporaryDirectory(prefix="dbx-dead-sink-") as tmp:
        config = str(Path(tmp) / "config.toml")
        token = _token(config)

        async def run() -> Result:
            hang = await asyncio.to_thread(_HangingEndpoint) if scenario == "hang" else None
            endpoint = {
                "none": None,
                "refused": f"http://127.0.0.1:{_closed_port()}/hook",
                "hang": f"http://127.0.0.1:{hang.port if hang else 0}/hook",
            }[scenario]
            ctx = mp.get_context("spawn")
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(config, endpoint, child, inline), daemon=True)
            proc.start()
            try:
                port = await asyncio.to_thread(parent.recv)
                await _appends(port, token, connections, min(200, events), "warm")
                parent.send("cpu")
                cpu0, pipeline_cpu0 = await asyncio.to_thread(parent.recv)
                latencies = sorted(await _appends(port, token, connections, events, "o"))
                parent.send("cpu")
                cpu, pipeline_cpu = await asyncio.to_thread(parent.recv)
                cpu, pipeline_cpu = cpu - cpu0, pipeline_cpu - pipeline_cpu0
                parent.send("stop")
                open_jobs, done = await asyncio.to_thread(parent.recv)
            finally:
                await asyncio.to_thread(proc.join, 15)
                if proc.is_alive():
                    proc.kill()
                if hang is not None:
                    hang.close()
            p50 = statistics.median(latencies) * 1000
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
            note = "" if scenario == "none" else f"jobs open {open_jobs}, done {done}"
            per = 1e6 / len(latencies)
            return p50, p99, cpu * per, pipeline_cpu * per, note

        with contextlib.suppress(ImportError):
            import uvloop

            return uvloop.run(run())  # type: ignore[no-any-return]
        return asyncio.run(run())


def main() -> None:
    """Run every scenario `--runs` times, interleaved, and print medians and the p99 ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--inline", action="store_true", help="the pipeline in the daemon's process")
    args = parser.parse_args()
    results: dict[str, list[Result]] = {s: [] for s in args.scenarios}
    for n in range(args.runs):
        for scenario in args.scenarios:
            result = _one_run(scenario, args.events, args.connections, args.inline)
            results[scenario].append(result)
            print(
                f"  run {n + 1} {scenario:<8} p50 {result[0]:6.2f} ms  p99 {result[1]:6.2f} ms"
                f"  CPU daemon {result[2]:5.0f} pipeline {result[3]:4.0f} µs/append  {result[4]}",
                flush=True,
            )
    base = statistics.median(r[1] for r in results["none"]) if "none" in results else None
    print(
        f"append latency, {args.events} appends over {args.connections} connection(s),"
        f" medians of {args.runs} runs, pipeline {'inline' if args.inline else 'in its own process'}:"
    )
    for scenario, runs in results.items():
        p50 = statistics.median(r[0] for r in runs)
        p99 = statistics.median(r[1] for r in runs)
        cpu = statistics.median(r[2] for r in runs)
        pipeline_cpu = statistics.median(r[3] for r in runs)
        ratio = f"  p99 ratio {p99 / base:.2f}x (target <= 1.10x)" if base else ""
        print(
            f"{scenario:<8} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  CPU daemon {cpu:5.0f}"
            f" pipeline {pipeline_cpu:4.0f} µs/append{ratio}"
        )


if __name__ == "__main__":
    main()
