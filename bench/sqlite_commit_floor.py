"""SQLite's own cost of a socket append's commit: the daemon's statements with precomputed rows, nothing else.

The daemon commits a single socket append (1 connection, 1 request in flight) as `BEGIN IMMEDIATE`,
`PRAGMA data_version`, the event row, the aggregate row, the token's usage count, `meta.last_event_id` and `COMMIT`
(docs/control-internals.md, "Write path of a group commit"). This bench runs exactly those statements through the
store's own functions and the daemon's connection settings (WAL, `synchronous=NORMAL`, the loop's non-waiting
connection), with the rows built once up front, and prints the median wall time of each statement and of the whole
commit: the floor under any Python implementation of the write path on this machine, before decoding, checks,
hashing, replies and the socket. Run:

    .venv/bin/python bench/sqlite_commit_floor.py                  # 20k commits of 1 append, then of 8
    .venv/bin/python bench/sqlite_commit_floor.py --commits 50000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from eventdbx.domain.records import AggregateRow, EventRecord
from eventdbx.store import events, meta, tokens
from eventdbx.store.database import Database

STEPS = ("begin", "data_version", "event row(s)", "aggregate row(s)", "token usage", "last_event_id", "commit")
CHECKPOINT_EVERY = 1000  # commits, like the daemon's writer-thread RESTART checkpoints (HOUSEKEEPING_EVERY)


def _rows(n: int, version: int, per_commit: int) -> tuple[list[EventRecord], list[AggregateRow]]:
    digest = "ab" * 32
    records, rows = [], []
    for k in range(per_commit):
        aggregate_id = f"a-{(n * per_commit + k) % 100}"
        records.append(EventRecord(
            aggregate_type="bench", aggregate_id=aggregate_id, event_type="item_created",
            payload_json='{"k":1,"v":"' + "x" * 40 + '"}', extensions_json=None,
            event_id=1_000_000_000 + n * per_commit + k, created_at="2026-11-27T07:00:00.123456Z",
            issued_by=None, note=None, version=version, hash=digest, merkle_root=digest,
        ))
        rows.append(AggregateRow(
            aggregate_type="bench", aggregate_id=aggregate_id, version=version,
            state={"k": "1", "v": "x" * 40}, merkle_root=digest, merkle_frontier=[digest] * 6,
        ))
    return records, rows


def run(path: Path, commits: int, per_commit: int) -> dict[str, float]:
    """Median µs per step and per commit over `commits` commits of `per_commit` appends (first fifth warms up)."""
    timings: dict[str, list[int]] = {step: [] for step in (*STEPS, "total")}
    clock = time.perf_counter_ns
    versions: dict[str, int] = {}
    with Database.open(path, "normal", create=True) as db:
        for n in range(commits):
            records, rows = _rows(n, 0, per_commit)
            for k, record in enumerate(records):
                version = versions[record.aggregate_id] = versions.get(record.aggregate_id, 0) + 1
                records[k] = replace(record, version=version)
                rows[k] = replace(rows[k], version=version)
            start = clock()
            conn = db.begin_write(False)
            t0 = clock()
            db.data_version()
            t1 = clock()
            events.insert_events(conn, records)
            t2 = clock()
            events.save_aggregates(conn, list({row.aggregate_id: row for row in rows}.values()))
            t3 = clock()
            tokens.add_events_written(conn, "bench-jti", per_commit)
            t4 = clock()
            meta.set_last_event_id(conn, records[-1].event_id)
            t5 = clock()
            db.commit_write(conn)
            t6 = clock()
            if n % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1:
                db.checkpoint("RESTART", busy_ms=100)
            if n < commits // 5:
                continue
            spans = (t0 - start, t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)
            for step, spent in zip(STEPS, spans, strict=True):
                timings[step].append(spent)
            timings["total"].append(t6 - start)
    return {step: statistics.median(values) / 1000 for step, values in timings.items()}


def main() -> None:
    """Run the 1-append and the 8-append commit and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=20_000)
    args = parser.parse_args()
    for per_commit in (1, 8):
        with tempfile.TemporaryDirectory(prefix="dbx-floor-") as tmp:
            medians = run(Path(tmp) / "event_store.db", args.commits // per_commit, per_commit)
        steps = ", ".join(f"{step} {medians[step]:.1f}" for step in STEPS)
        print(f"{per_commit} append(s) per commit: median {medians['total']:.1f} µs per commit,"
              f" {medians['total'] / per_commit:.1f} µs per append  ({steps}; µs)", flush=True)


if __name__ == "__main__":
    main()
