"""Appends/s through EventService.append (in-process), 10k and 100k events over 100 aggregates.

Usage: .venv/bin/python bench/append_throughput.py [--counts 10000,100000] [--durability normal,fsync]
       [--batch 1,64] [--repeat 3] [--profile]
Prints one row per (durability, batch, count): overall wall-clock rate (median of --repeat runs), the CPU-time
rate (what the process itself spends; robust on a shared machine), the rate of each 10k chunk (flatness) and
bytes/event of event_store.db (after a WAL checkpoint). Payloads are ~100 bytes of JSON. batch 1 = one
EventService.append (one transaction) per event; batch N = EventService.append_batch of N (group commit).
The wall time of one whole `dbx aggregate apply` process (target ≤ 60 ms) is measured by bench/cli_wall.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from eventdbx.config import load_settings
from eventdbx.service import AppendRequest, EventService

AGGREGATES = 100
CHUNK = 10_000


def _payload(n: int) -> str:
    return (
        f'{{"status":"active","amount":{n % 997}.25,"customer":"cust-{n % 5000:05d}",'
        f'"sku":"SKU-{n % 1234:04d}","qty":{n % 17},"flag":true}}'
    )


def run(
    count: int, durability: str, root: Path, batch: int = 1
) -> tuple[float, float, list[float], list[float], float]:
    """(events/s, CPU events/s, per-chunk events/s, per-chunk CPU events/s, bytes/event) for `count` appends."""
    config = root / "config.toml"
    load_settings(config)
    text = config.read_text() + f'\ndurability = "{durability}"\n'
    config.write_text(text)
    settings = load_settings(config)
    service = EventService.open(settings)
    requests = [
        AppendRequest(aggregate_type="account", aggregate_id=f"acct-{k:03d}", event_type="account_created",
                      payload_json=_payload(k))
        for k in range(AGGREGATES)
    ]
    for request in requests:
        service.append(request)
    chunks: list[float] = []
    cpu_chunks: list[float] = []
    pending: list[AppendRequest] = []
    cpu = chunk_cpu = time.process_time()
    start = chunk_start = time.perf_counter()
    for n in range(AGGREGATES, count):
        request = AppendRequest(
            aggregate_type="account", aggregate_id=f"acct-{n % AGGREGATES:03d}",
            event_type="account_updated", payload_json=_payload(n),
        )
        if batch == 1:
            service.append(request)
        else:
            pending.append(request)
            if len(pending) == batch or n + 1 == count or (n + 1) % CHUNK == 0:
                results = service.append_batch(pending)
                assert all(not isinstance(r, Exception) for r in results), results
                pending = []
        if (n + 1) % CHUNK == 0:
            now, now_cpu = time.perf_counter(), time.process_time()
            chunks.append(CHUNK / (now - chunk_start))
            cpu_chunks.append(CHUNK / (now_cpu - chunk_cpu))
            chunk_start, chunk_cpu = now, now_cpu
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    service.store.db.checkpoint()  # type: ignore[attr-defined]
    service.close()
    size = os.path.getsize(settings.paths.event_store)
    return (count - AGGREGATES) / elapsed, (count - AGGREGATES) / cpu, chunks, cpu_chunks, size / count


def main() -> None:
    """Run the matrix and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counts", default="10000,100000")
    parser.add_argument("--durability", default="normal,fsync")
    parser.add_argument("--batch", default="1")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    modes = args.durability.split(",")
    batches = [int(b) for b in args.batch.split(",")]
    if args.profile:
        import cProfile
        import pstats

        with tempfile.TemporaryDirectory() as tmp:
            cProfile.runctx("run(counts[0], modes[0], Path(tmp))", globals(), locals(), "/tmp/append.prof")
        pstats.Stats("/tmp/append.prof").sort_stats("tottime").print_stats(25)
        return
    print(f"{'durability':<10} {'batch':>5} {'events':>8} {'appends/s':>10} {'cpu-rate/s':>10} "
          f"{'bytes/event':>11}  per-10k-chunk appends/s")
    for mode in modes:
        for batch in batches:
            for count in counts:
                _row(mode, batch, count, args.repeat)


def _row(mode: str, batch: int, count: int, repeat: int) -> None:
    rates, cpus, sizes, chunk_runs, cpu_runs = [], [], [], [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            rate, cpu, chunks, cpu_chunks, per_event = run(count, mode, Path(tmp), batch)
        rates.append(rate)
        cpus.append(cpu)
        sizes.append(per_event)
        chunk_runs.append(chunks)
        cpu_runs.append(cpu_chunks)
    chunk_text = " ".join(f"{statistics.median(c):,.0f}" for c in zip(*chunk_runs, strict=True))
    cpu_text = " ".join(f"{statistics.median(c):,.0f}" for c in zip(*cpu_runs, strict=True))
    print(f"{mode:<10} {batch:>5} {count:>8} {statistics.median(rates):>10,.0f} {statistics.median(cpus):>10,.0f} "
          f"{statistics.median(sizes):>11,.0f}  wall {chunk_text}\n{'':>59}cpu  {cpu_text}", flush=True)


if __name__ == "__main__":
    main()
