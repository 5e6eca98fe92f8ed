"""Benchmark: enqueue a 100,000-event backlog for one plugin (target < 10 s, plugins.md §4), then the size of
plugin_queue.db with 100k done jobs and after pruning.

Run: .venv/bin/python bench/enqueue_backlog.py [--events 100000] [--aggregates 1000] [--mode all]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

from eventdbx.config import Settings, load_settings
from eventdbx.domain.jsontext import parse_json
from eventdbx.domain.payload_mode import Ordering
from eventdbx.domain.records import AggregateRow, EventRecord
from eventdbx.domain.state import fold_state, payload_map
from eventdbx.plugins import enqueuer as enq
from eventdbx.store import events as store_events
from eventdbx.store.database import Database
from eventdbx.store.plugin_queue import PluginQueue
from eventdbx.store.plugin_queue_model import PrunePolicy


def populate(db: Database, events: int, aggregates: int) -> None:
    """Write `events` events round-robin over `aggregates` aggregates (not timed)."""
    states: dict[str, tuple[int, dict[str, str]]] = {}
    with db.write() as conn:
        for n in range(events):
            agg = f"order-{n % aggregates}"
            version, state = states.get(agg, (0, {}))
            payload = f'{{"n":{n},"status":"s{n % 5}","total":{n * 1.5},"tags":["a","b"]}}'
            state = fold_state(state, payload_map(parse_json(payload)))
            states[agg] = (version + 1, state)
            store_events.insert_event(conn, EventRecord(
                aggregate_type="order", aggregate_id=agg, event_type="order_updated", payload_json=payload,
                extensions_json=None, event_id=10_000 + n, created_at="2025-10-26T12:00:00.123456Z",
                issued_by=None, note=None, version=version + 1, hash="ab" * 32, merkle_root="cd" * 32,
            ))
        for agg, (version, state) in states.items():
            store_events.save_aggregate(conn, AggregateRow(
                aggregate_type="order", aggregate_id=agg, version=version, state=state, merkle_root="cd" * 32))


def file_size(path: Path) -> tuple[int, int]:
    """(bytes on disk after a WAL checkpoint, bytes in use = pages minus free pages)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page, count, free = (conn.execute(f"PRAGMA {p}").fetchone()[0]
                         for p in ("page_size", "page_count", "freelist_count"))
    conn.close()
    return path.stat().st_size, (count - free) * page


def latency_with_blocked(settings: Settings, qpath: Path) -> dict[str, float]:
    """Kill every aggregate head (so the rest are blocked), then time append → enqueue pass → claim of a new event."""
    queue = PluginQueue.open(qpath)
    heads = queue.claim("hook", now=time.time(), limit=100_000, lease_secs=35, ordering=Ordering.AGGREGATE)
    for job in heads:
        queue.mark_dead(job.id, job.claim_token or "", started_at=time.time(), now=time.time(), error="x",
                        permanent=True)
    blocked = queue.plugin_stats("hook", head_seq=0, now=time.time()).blocked
    db = Database.open(settings.paths.event_store, settings.durability, create=False)
    enqueuer = enq.Enqueuer(settings, queue=queue, db=db)
    samples = []
    for i in range(50):
        start = time.perf_counter()
        with db.write() as conn:
            store_events.insert_event(conn, EventRecord(
                aggregate_type="order", aggregate_id=f"fresh-{i}", event_type="order_created", payload_json="{}",
                extensions_json=None, event_id=10**9 + i, created_at="2025-10-26T12:00:00Z", issued_by=None,
                note=None, version=1, hash="ab" * 32, merkle_root="ab" * 32))
        enqueuer.run_pass()
        [job] = queue.claim("hook", now=time.time(), limit=8, lease_secs=35, ordering=Ordering.AGGREGATE)
        samples.append((time.perf_counter() - start) * 1000)
        queue.mark_delivered(job.id, job.claim_token or "", started_at=time.time(), now=time.time())
    db.close()
    queue.close()
    samples.sort()
    return {"blocked_jobs": blocked, "append_to_claim_ms_p50": round(samples[25], 2),
            "append_to_claim_ms_p99": round(samples[-1], 2)}


def mark_all_done(path: Path, now_ms: int) -> None:
    """Bulk-complete every job with one `delivered` history entry, as a dispatcher would leave them."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DELETE FROM history")
        conn.execute("INSERT INTO history (job_id, n, attempt, started_at, finished_at, outcome)"
                     " SELECT id, 1, 1, ?, ?, 'delivered' FROM jobs", (now_ms, now_ms))
        conn.execute("UPDATE jobs SET status = 'done', resolution = 'delivered', completed_at = ?, head = 0,"
                     " attempts = 1, history_seq = 1", (now_ms,))
    conn.close()


def main() -> None:
    """Run the benchmark and print one JSON object."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--aggregates", type=int, default=1000)
    parser.add_argument("--mode", default="all")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(Path(tmp) / "config.toml")
        settings.paths.plugins_json.write_text(json.dumps(
            [{"name": "hook", "payload_mode": args.mode, "config": {"type": "log"}}]))
        enq.init_cursor(settings, "hook")
        db = Database.open(settings.paths.event_store, settings.durability, create=True)
        populate(db, args.events, args.aggregates)
        db.close()
        start = time.perf_counter()
        created = enq.enqueue_once(settings)
        elapsed = time.perf_counter() - start
        qpath = settings.paths.plugin_queue
        pending_size = file_size(qpath)
        latency = latency_with_blocked(settings, qpath) if args.mode == "all" else {}
        mark_all_done(qpath, int(time.time() * 1000))
        done_size = file_size(qpath)
        queue = PluginQueue.open(qpath)
        start = time.perf_counter()
        pruned = queue.prune(PrunePolicy(done_ttl_secs=0, max_done_jobs=500), now=time.time())
        prune_secs = time.perf_counter() - start
        queue.close()
        pruned_size = file_size(qpath)
        conn = sqlite3.connect(qpath)
        conn.execute("VACUUM")
        conn.close()
        print(json.dumps({
            "events": args.events, "aggregates": args.aggregates, "mode": args.mode, "jobs_created": created,
            "enqueue_secs": round(elapsed, 2), "events_per_sec": round(created / elapsed),
            "target_met": elapsed < 10, **latency,
            "queue_bytes_100k_pending": pending_size[0], "queue_bytes_100k_done": done_size[0],
            "prune_max_done_500_secs": round(prune_secs, 2), "pruned_rows": pruned.done_capped,
            "queue_bytes_after_prune": pruned_size[0], "queue_bytes_in_use_after_prune": pruned_size[1],
            "queue_bytes_after_vacuum": qpath.stat().st_size,
        }, indent=2))


if __name__ == "__main__":
    main()
