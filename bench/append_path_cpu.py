"""The daemon's CPU per socket append without the socket: frames fed to a control Connection, replies caught in memory.

`socket_throughput.py` measures the whole round trip, which on a small VM is dominated by how the two processes wake
each other (a loopback ping-pong between two vCPUs costs 10× one on a single vCPU on some machines). This bench runs
the daemon's own request path — framing, decode, token check, validation, state, hash/Merkle, the SQLite commit on the
loop, reply encoding, the in-order reply write — in one thread of one process and reports its CPU time per append
(`time.thread_time`), the figure that code changes move. Run:

    .venv/bin/python bench/append_path_cpu.py               # 1 append per commit and 8 per commit, 20k each
    .venv/bin/python bench/append_path_cpu.py --events 50000 --runs 5

Prints the median over runs of µs per append for each scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from socket_throughput import _token


class _Transport:
    """Just enough of an asyncio transport: replies are counted, nothing is sent."""

    def __init__(self) -> None:
        self.replies = 0
        self.bytes = 0
        self.waiter: asyncio.Future[None] | None = None
        self.want = 0

    def write(self, data: bytes) -> None:
        self.replies += 1
        self.bytes += len(data)
        if self.waiter is not None and self.replies >= self.want and not self.waiter.done():
            self.waiter.set_result(None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def request_frames(token: str, events: int, per_commit: int, tag: str) -> list[bytes]:
    """appendEvent frames, `per_commit` connections' requests interleaved, 100 aggregates per connection."""
    from eventdbx.control import messages as msg

    return [
        msg.encode_request(
            msg.AppendEvent(
                id=k + 1, token=token, aggregate_type="bench", aggregate_id=f"{tag}-{n}-{k % 100}",
                event_type="item_created", payload_json=f'{{"k":{k},"v":"{"x" * 40}"}}',
                patch_json=None, note=None, metadata_json=None, expected_version=None,
            )
        )
        for k in range(events // per_commit)
        for n in range(per_commit)
    ]


async def _scenario(config: str, frames: list[bytes], per_commit: int) -> float:
    """µs of this thread's CPU per append, `per_commit` connections each sending one append at a time."""
    from eventdbx.config import load_settings
    from eventdbx.control.connection import Connection
    from eventdbx.control.server import ControlServer
    from eventdbx.service import EventService

    settings = load_settings(config, create=True)
    settings = dataclasses.replace(
        settings, socket=dataclasses.replace(settings.socket, bind_addr="127.0.0.1:0")
    )
    service = EventService.open(settings, create=True)
    server = ControlServer(service, settings)
    server.writer.start()
    transports = [_Transport() for _ in range(per_commit)]
    connections = []
    for transport in transports:
        connection = Connection(server)
        connection.connection_made(transport)  # type: ignore[arg-type]
        connections.append(connection)
    loop = asyncio.get_running_loop()
    started = time.thread_time()
    for at in range(0, len(frames), per_commit):
        for n, connection in enumerate(connections):
            transport = transports[n]
            transport.want = transport.replies + 1
            transport.waiter = loop.create_future()
            connection.data_received(frames[at + n])
        for transport in transports:
            assert transport.waiter is not None
            await transport.waiter
    used = time.thread_time() - started
    assert sum(t.replies for t in transports) == len(frames)
    for connection in connections:
        connection.abort()
        connection.connection_lost(None)
    await server.writer.close()
    service.close()
    return used / len(frames) * 1e6


async def _main(events: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="dbx-bench-") as tmp:
        config = str(Path(tmp) / "config.toml")
        token = _token(config)
        for per_commit in (1, 8):
            figures = [
                await _scenario(config, request_frames(token, events, per_commit, f"r{run}c{per_commit}"), per_commit)
                for run in range(runs)
            ]
            print(
                f"append path, {per_commit} append(s) per commit: median {statistics.median(figures):6.1f} µs CPU"
                f" per append  (runs: {', '.join(f'{f:.1f}' for f in figures)})",
                flush=True,
            )


def main() -> None:
    """Parse arguments and run both scenarios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(_main(args.events, args.runs))


if __name__ == "__main__":
    main()
