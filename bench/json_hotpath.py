"""Micro-benchmark of the append hot path's pure part: parse + canonical dump + payload map + event hash."""

from __future__ import annotations

import time

from eventdbx.domain.integrity import event_hash, frontier_append, frontier_root
from eventdbx.domain.jsontext import dumps_canonical, parse_json
from eventdbx.domain.state import payload_map

PAYLOADS = {
    "ints/strings": '{"status":"shipped","tracking":"abc123","n":5,"obj":{"b":1,"a":[1,"x",null]}}',
    "with floats": '{"price":19.99,"qty":3,"ratio":1e-7,"name":"widget","tags":["a","b"],"ok":true}',
}


def run(text: str, seconds: float = 1.0) -> tuple[float, float]:
    """ops/s of parse+dump+map+hash, and of the same plus a Merkle frontier step."""
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(500):
            value = parse_json(text)
            dumps_canonical(value)
            event_hash("order", "order-1", 7, "order_updated", payload_map(value))
        count += 500
    core = count / elapsed
    frontier: list[str | None] = []
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(500):
            value = parse_json(text)
            dumps_canonical(value)
            digest = event_hash("order", "order-1", 7, "order_updated", payload_map(value))
            frontier = frontier_append(frontier, digest)
            frontier_root(frontier)
        count += 500
    return core, count / elapsed


def main() -> None:
    """Print ops/s per payload shape."""
    for label, text in PAYLOADS.items():
        core, with_merkle = run(text)
        print(
            f"{label:13s} ({len(text)} B): parse+dump+payload_map+hash {core:,.0f} ops/s; "
            f"+frontier {with_merkle:,.0f} ops/s"
        )


if __name__ == "__main__":
    main()
