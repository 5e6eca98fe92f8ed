"""Benchmark: plugin delivery to a local JSON-lines TCP receiver, with and without acks (plugins.md §4, §8.2).

20,000 queued jobs delivered by the dispatcher through the tcp sink; the receiver (a separate process, uvloop)
reads lines and, with `--ack`, answers `ok` per line. Prints deliveries/s, the dispatcher process's CPU ms per
job (the figure that stays meaningful on a shared machine), SQL statements and batch sizes, and the receiver's
CPU per job. Uses `rate_of` from delivery_http.py.

Run: .venv/bin/python bench/delivery_tcp.py [--jobs 20000] [--concurrency 1 8 32] [--runs 3] [--ack]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import sys
import tempfile
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from delivery_http import _run, rate_of, report_runs
from eventdbx.config import load_settings
from eventdbx.plugins.registry import PluginDefinition, TcpConfig


def _serve(conn: Connection, ack: bool) -> None:
    """Child process: a JSON-lines receiver; answers `cpu` requests on the pipe until `stop`."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                if ack:
                    writer.write(b"ok\n" * chunk.count(b"\n"))
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=1 << 20)
        conn.send(server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        while await loop.run_in_executor(None, conn.recv) == "cpu":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            conn.send(usage.ru_utime + usage.ru_stime)
        server.close()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


def main() -> None:
    """Start the receiver, run the rate for each concurrency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8])
    parser.add_argument("--aggregates", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--ack", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(child, args.ack), daemon=True
    )
    proc.start()
    port = parent.recv()

    async def receiver_cpu() -> float:
        def ask() -> float:
            parent.send("cpu")
            return float(parent.recv())

        return await asyncio.to_thread(ask)

    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            settings = load_settings(root / "config.toml")
            for concurrency in args.concurrency:
                lines = PluginDefinition(
                    name="hook",
                    config=TcpConfig(host="127.0.0.1", port=port, ack=args.ack),
                    concurrency=concurrency,
                )

                async def runs(definition: PluginDefinition = lines) -> None:
                    results = [
                        await rate_of(
                            settings,
                            root,
                            definition,
                            args.jobs,
                            args.aggregates,
                            profile=args.profile and n == 0,
                            receiver_cpu=receiver_cpu,
                        )
                        for n in range(args.runs)
                    ]
                    mode = "ack" if args.ack else "no ack"
                    report_runs(f"tcp ({mode}) rate, concurrency {definition.concurrency}", results)

                _run(runs())
    finally:
        parent.send("stop")
        proc.join(10)


if __name__ == "__main__":
    main()
