"""Operator side of plugin_queue.db: counts, per-plugin stats, show, retry, skip, clears, removal, pruning.

Private to the plugin queue store: callers go through `PluginQueue`. Functions run inside the caller's transaction,
except the batched deletes, which take a `write` factory and commit batch by batch.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

from eventdbx.domain.payload_mode import Ordering
from eventdbx.errors import PluginError
from eventdbx.store import plugin_queue_claims as claims
from eventdbx.store import plugin_queue_jobs as jobs
from eventdbx.store import plugin_queue_state as state
from eventdbx.store.plugin_queue_jobs import ms
from eventdbx.store.plugin_queue_model import (
    Job,
    JobDetail,
    JobStatus,
    Outcome,
    PluginStats,
    PrunePolicy,
    PruneResult,
    QueueCounts,
)

BATCH = 1000
WriteTxn = Callable[[], AbstractContextManager[sqlite3.Connection]]


def count_status(conn: sqlite3.Connection, status: JobStatus, plugin: str | None = None) -> int:
    """Jobs with `status` (of one plugin, or all)."""
    if plugin is None:
        return int(
            conn.execute("SELECT count(*) FROM jobs WHERE status = ?", (status.value,)).fetchone()[
                0
            ]
        )
    return int(
        conn.execute(
            "SELECT count(*) FROM jobs WHERE status = ? AND plugin = ?", (status.value, plugin)
        ).fetchone()[0]
    )


def counts(conn: sqlite3.Connection, plugin: str | None) -> QueueCounts:
    """Jobs per status."""
    return QueueCounts(**{s.value: count_status(conn, s, plugin) for s in JobStatus})


def _blocked(conn: sqlite3.Connection, plugin: str) -> tuple[int, int]:
    row = conn.execute(
        "SELECT count(*), count(DISTINCT h.id) FROM jobs h JOIN jobs j ON j.plugin = h.plugin"
        " AND j.aggregate_type = h.aggregate_type AND j.aggregate_id = h.aggregate_id"
        " AND j.status <> 'done' AND j.id > h.id"
        " WHERE h.plugin = ? AND h.status = 'dead' AND h.head = 1 AND j.status = 'pending'",
        (plugin,),
    ).fetchone()
    return int(row[0]), int(row[1])


def _oldest_open_created(conn: sqlite3.Connection, plugin: str) -> int | None:
    found = []
    for status in ("pending", "processing"):
        row = conn.execute(
            "SELECT created_at FROM jobs WHERE status = ? AND plugin = ? ORDER BY id LIMIT 1",
            (status, plugin),
        ).fetchone()
        if row is not None:
            found.append(int(row[0]))
    return min(found) if found else None


def plugin_stats(
    conn: sqlite3.Connection, name: str, *, head_seq: int, now: float, ordering: Ordering
) -> PluginStats:
    """Figures for one plugin's `dbx queue` line."""
    st = state.get_state(conn, name)
    cursor = None if st is None else st.cursor
    blocked, blocked_aggs = _blocked(conn, name) if ordering is Ordering.AGGREGATE else (0, 0)
    oldest = _oldest_open_created(conn, name)
    return PluginStats(
        name=name,
        cursor=cursor,
        unqueued=0 if cursor is None else max(0, head_seq - cursor),
        pending=count_status(conn, JobStatus.PENDING, name),
        processing=count_status(conn, JobStatus.PROCESSING, name),
        dead=count_status(conn, JobStatus.DEAD, name),
        blocked=blocked,
        blocked_aggregates=blocked_aggs,
        due=claims.count_due(conn, name, now=now, ordering=ordering),
        oldest_pending_secs=None if oldest is None else max(0.0, now - oldest / 1000),
        last_attempt_at=None if st is None else st.last_attempt_at,
        last_success_at=None if st is None else st.last_success_at,
        last_failure_at=None if st is None else st.last_failure_at,
        last_error=None if st is None else st.last_error,
        circuit="closed" if st is None else st.circuit,
    )


def show_job(conn: sqlite3.Connection, job_id: int, ordering: Ordering) -> JobDetail | None:
    """A job with what blocks it, what it holds back, and its history."""
    job = jobs.get_job(conn, job_id)
    if job is None:
        return None
    blocked_by: int | None = None
    held_back: tuple[int, ...] = ()
    if job.status is not JobStatus.DONE and ordering is Ordering.AGGREGATE:
        if job.status is JobStatus.PENDING:
            blocked_by = jobs.earliest_open_before(conn, job)
            blocker = None if blocked_by is None else jobs.get_job(conn, blocked_by)
            if blocker is not None and blocker.status is JobStatus.DEAD:
                job = dataclasses.replace(job, next_retry_at=None)  # §3: null while blocked
        held_back = tuple(jobs.later_open_ids(conn, job))
    return JobDetail(
        job=job,
        blocked_by=blocked_by,
        held_back=held_back,
        history=tuple(jobs.history_of(conn, job_id)),
    )


def retry_dead(
    conn: sqlite3.Connection, *, now: float, job_id: int | None, plugin: str | None
) -> list[Job]:
    """Dead jobs matching the filters back to pending with attempts 0 (history `retried`)."""
    where, args = "status = 'dead'", list[object]()
    if job_id is not None:
        where += " AND id = ?"
        args.append(job_id)
    if plugin is not None:
        where += " AND plugin = ?"
        args.append(plugin)
    ids = [int(r[0]) for r in conn.execute(f"SELECT id FROM jobs WHERE {where} ORDER BY id", args)]
    for jid in ids:
        conn.execute(
            "UPDATE jobs SET status = 'pending', attempts = 0, next_retry_at = NULL, completed_at = NULL,"
            " lease_expires_at = NULL, claim_token = NULL WHERE id = ?",
            (jid,),
        )
        jobs.add_history(
            conn, jid, attempt=None, started_at=now, finished_at=now, outcome=Outcome.RETRIED
        )
    return jobs.get_jobs(conn, ids)


def skip_job(conn: sqlite3.Connection, job_id: int, *, now: float) -> tuple[Job, int]:
    """Mark a dead or pending job done/skipped; returns it and how many held jobs it released."""
    job = jobs.get_job(conn, job_id)
    if job is None:
        raise PluginError(f"job {job_id} not found")
    if job.status is JobStatus.DONE:
        raise PluginError(f"job {job_id} is already done")
    if job.status is JobStatus.PROCESSING:
        raise PluginError(f"job {job_id} is being delivered; try again when the attempt finishes")
    was_head = jobs.earliest_open_before(conn, job) is None
    released = len(jobs.later_open_ids(conn, job)) if was_head else 0
    conn.execute(
        "UPDATE jobs SET status = 'done', resolution = 'skipped', last_error = NULL, next_retry_at = NULL,"
        " completed_at = ?, head = 0 WHERE id = ?",
        (ms(now), job_id),
    )
    jobs.add_history(
        conn, job_id, attempt=None, started_at=now, finished_at=now, outcome=Outcome.SKIPPED
    )
    jobs.promote_head(conn, (job.plugin_name, job.aggregate_type, job.aggregate_id))
    after = jobs.get_job(conn, job_id)
    assert after is not None
    return after, released


def _delete_batches(write: WriteTxn, select_sql: str, args: list[object]) -> int:
    """Delete the rows `select_sql` (returning ids, ≤ BATCH) finds, batch by batch, each batch one transaction."""
    total = 0
    while True:
        with write() as conn:
            ids = [int(r[0]) for r in conn.execute(select_sql + f" LIMIT {BATCH}", args)]
            if not ids:
                return total
            for key in jobs.delete_jobs(conn, ids):
                jobs.promote_head(conn, key)
        total += len(ids)


def _scope(plugin: str | None) -> tuple[str, list[object]]:
    return ("", []) if plugin is None else (" AND plugin = ?", [plugin])


def clear_dead(write: WriteTxn, plugin: str | None) -> int:
    """Delete dead jobs (unblocking their aggregates)."""
    extra, args = _scope(plugin)
    return _delete_batches(
        write, f"SELECT id FROM jobs WHERE status = 'dead'{extra} ORDER BY id", args
    )


def _done_filter(
    now: float, older_than_secs: float | None, plugin: str | None
) -> tuple[str, list[object]]:
    extra, args = _scope(plugin)
    if older_than_secs is not None:
        extra += " AND completed_at <= ?"
        args.append(ms(now - older_than_secs))
    return extra, args


def count_done(
    conn: sqlite3.Connection, *, now: float, older_than_secs: float | None, plugin: str | None
) -> int:
    """Done jobs completed more than `older_than_secs` ago (all when None)."""
    extra, args = _done_filter(now, older_than_secs, plugin)
    return int(
        conn.execute(f"SELECT count(*) FROM jobs WHERE status = 'done'{extra}", args).fetchone()[0]
    )


def clear_done(
    write: WriteTxn, *, now: float, older_than_secs: float | None, plugin: str | None
) -> int:
    """Delete done jobs completed more than `older_than_secs` ago (all when None)."""
    extra, args = _done_filter(now, older_than_secs, plugin)
    return _delete_batches(
        write,
        f"SELECT id FROM jobs INDEXED BY jobs_done WHERE status = 'done'{extra} ORDER BY completed_at, id",
        args,
    )


def remove_plugin(conn: sqlite3.Connection, name: str) -> int:
    """Delete the plugin's cursor/state and its pending, processing and dead jobs; returns jobs purged."""
    ids = [
        int(r[0])
        for r in conn.execute("SELECT id FROM jobs WHERE plugin = ? AND status <> 'done'", (name,))
    ]
    jobs.delete_jobs(conn, ids)
    state.delete_state(conn, name)
    return len(ids)


VANISHED_ERROR = "event no longer exists in the event store"


def kill_vanished(conn: sqlite3.Connection, name: str, *, last_event_id: int, now: float) -> int:
    """After a power loss: the plugin's open jobs for events past the surviving log become dead."""
    cur = conn.execute(
        "UPDATE jobs SET status = 'dead', last_error = ?, completed_at = ?, next_retry_at = NULL,"
        " lease_expires_at = NULL, claim_token = NULL"
        " WHERE plugin = ? AND event_id > ? AND status IN ('pending', 'processing')",
        (VANISHED_ERROR, ms(now), name, last_event_id),
    )
    return cur.rowcount


def _cap_done(write: WriteTxn, keep: int) -> int:
    total = 0
    while True:
        with write() as conn:
            excess = count_status(conn, JobStatus.DONE) - keep
            if excess <= 0:
                return total
            ids = [
                int(r[0])
                for r in conn.execute(
                    "SELECT id FROM jobs INDEXED BY jobs_done WHERE status = 'done' ORDER BY completed_at, id LIMIT ?",
                    (min(excess, BATCH),),
                )
            ]
            jobs.delete_jobs(conn, ids)
        total += len(ids)


def prune(write: WriteTxn, policy: PrunePolicy, *, now: float) -> PruneResult:
    """plugins.md §6: done TTL from completed_at, then the global newest-N cap, then the dead TTL."""
    expired = capped = dead = 0
    if policy.done_ttl_secs > 0:
        expired = _delete_batches(
            write,
            "SELECT id FROM jobs INDEXED BY jobs_done WHERE status = 'done' AND completed_at < ? ORDER BY completed_at, id",
            [ms(now - policy.done_ttl_secs)],
        )
    if policy.max_done_jobs is not None:
        capped = _cap_done(write, max(0, policy.max_done_jobs))
    if policy.dead_ttl_secs > 0:
        dead = _delete_batches(
            write,
            "SELECT id FROM jobs WHERE status = 'dead' AND completed_at < ? ORDER BY id",
            [ms(now - policy.dead_ttl_secs)],
        )
    return PruneResult(done_expired=expired, done_capped=capped, dead_expired=dead)
