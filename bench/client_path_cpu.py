"""eventdbx.Client's CPU per append without a daemon: requests go to an in-memory transport that answers at once.

The companion of `append_path_cpu.py` for the client side of a round trip: request encoding, the pending-call
bookkeeping and timeout, reply framing and decoding, the JSON of the result, one event-loop hop per call.
The fake transport stamps the request id into a prebuilt reply (a few slices), so nearly all of the figure is
the client's own work. Run:

    .venv/bin/python bench/client_path_cpu.py              # 20k appends, 5 runs
    .venv/bin/python bench/client_path_cpu.py --events 50000

Prints the median over runs of µs CPU (`time.thread_time`) per append.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import orjson

from eventdbx import Client
from eventdbx.control import messages as msg
from eventdbx.sdk.client import _ReplyProtocol

_EVENT = orjson.dumps(
    {
        "aggregate_type": "bench", "aggregate_id": "bench-1", "event_type": "item_created",
        "payload": {"k": 1, "v": "x" * 40}, "extensions": None,
        "metadata": {"event_id": "251938589368123394", "created_at": "2026-11-27T05:00:00.123456Z",
                     "issued_by": {"group": "bench", "user": "bench"}, "note": None},
        "version": 7, "hash": "a" * 64, "merkle_root": "b" * 64,
    }
)
_ID = slice(16, 24)  # the request id: word 1 of a single-segment message (after the segment table and root pointer)


class _Answering:
    """A transport that answers every request with the same appendEvent reply, on the next loop iteration."""

    def __init__(self, protocol: _ReplyProtocol) -> None:
        self.protocol = protocol
        self.template = msg.encode_append(0, _EVENT)
        self.loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        t = self.template
        self.loop.call_soon(self.protocol.data_received, t[: _ID.start] + data[_ID] + t[_ID.stop :])

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


async def _run(events: int) -> float:
    client = Client("127.0.0.1", 1, token="t" * 300, authenticate=False)
    protocol = _ReplyProtocol(client)
    transport: Any = _Answering(protocol)
    protocol.connection_made(transport)
    client._transport, client._protocol = transport, protocol
    started = time.thread_time()
    for k in range(events):
        await client.append("bench", f"bench-{k % 100}", "item_created", payload={"k": k, "v": "x" * 40})
    return (time.thread_time() - started) / events * 1e6


def main() -> None:
    """Parse arguments and measure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    figures = [asyncio.run(_run(args.events)) for _ in range(args.runs)]
    print(
        f"client path: median {statistics.median(figures):6.1f} µs CPU per append"
        f"  (runs: {', '.join(f'{f:.1f}' for f in figures)})"
    )


if __name__ == "__main__":
    main()
