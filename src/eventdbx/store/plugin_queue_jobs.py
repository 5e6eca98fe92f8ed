"""Job rows of plugin_queue.db: mapping, inserts with snowflake ids, history, aggregate heads, reads.

Private to the plugin queue store: callers go through `PluginQueue`. Every function runs inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from eventdbx.clock import compose_snowflake
from eventdbx.errors import PluginError, StorageError
from eventdbx.store.plugin_queue_model import (
    HistoryEntry,
    Job,
    JobStatus,
    NewJob,
    Outcome,
    Resolution,
)

HISTORY_KEEP = 50
JOB_COLUMNS = (
    "id, plugin, label, status, resolution, replay, attempts, last_error, created_at, next_retry_at,"
    " completed_at, lease_expires_at, claim_token, aggregate_type, aggregate_id, event_type, event_id,"
    " version, event_created_at, envelope"
)
AggregateKey = tuple[str, str, str]  # (plugin, aggregate_type, aggregate_id)
MAX_JOB_ID = (1 << 63) - 1  # SQLite INTEGER is int64; job ids (snowflakes) are never negative


def check_job_id(job_id: int) -> int:
    """`job_id` if it can name a job (0..2^63−1); PluginError otherwise (sqlite3 would raise OverflowError)."""
    if isinstance(job_id, bool) or not isinstance(job_id, int) or not 0 <= job_id <= MAX_JOB_ID:
        raise PluginError(f"invalid job id '{job_id}'")
    return job_id


def ms(seconds: float) -> int:
    """Unix seconds → stored integer milliseconds."""
    return round(seconds * 1000)


def secs(millis: int | None) -> float | None:
    """Stored milliseconds → Unix seconds."""
    return None if millis is None else millis / 1000


def row_to_job(row: Sequence[Any]) -> Job:
    """Map a `SELECT JOB_COLUMNS` row."""
    (
        jid,
        plugin,
        label,
        status,
        resolution,
        replay,
        attempts,
        last_error,
        created,
        retry,
        completed,
        lease,
        token,
        a_type,
        a_id,
        e_type,
        e_id,
        version,
        e_created,
        envelope,
    ) = row
    return Job(
        id=int(jid),
        plugin_name=str(plugin),
        label=str(label),
        status=JobStatus(status),
        resolution=None if resolution is None else Resolution(resolution),
        replay=bool(replay),
        attempts=int(attempts),
        last_error=None if last_error is None else str(last_error),
        created_at=float(created) / 1000,
        next_retry_at=secs(retry),
        completed_at=secs(completed),
        lease_expires_at=secs(lease),
        claim_token=None if token is None else str(token),
        aggregate_type=str(a_type),
        aggregate_id=str(a_id),
        event_type=str(e_type),
        event_id=int(e_id),
        version=int(version),
        event_created_at=str(e_created),
        envelope=str(envelope),
    )


def get_job(conn: sqlite3.Connection, job_id: int) -> Job | None:
    """One job by id."""
    row = conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else row_to_job(row)


def get_jobs(conn: sqlite3.Connection, ids: Iterable[int]) -> list[Job]:
    """Jobs by id, in id order."""
    return [job for job in (get_job(conn, i) for i in sorted(ids)) if job is not None]


def list_jobs(
    conn: sqlite3.Connection, *, plugin: str | None, status: JobStatus | None, limit: int | None
) -> list[Job]:
    """Jobs matching the filters, oldest first."""
    where, args = _filters(plugin, status)
    sql = f"SELECT {JOB_COLUMNS} FROM jobs{where} ORDER BY id"
    if limit is not None and limit > 0:
        sql += f" LIMIT {int(limit)}"
    return [row_to_job(r) for r in conn.execute(sql, args)]


def _filters(plugin: str | None, status: JobStatus | None) -> tuple[str, list[object]]:
    clauses: list[str] = []
    args: list[object] = []
    if status is not None:
        clauses.append("status = ?")
        args.append(status.value)
    if plugin is not None:
        clauses.append("plugin = ?")
        args.append(plugin)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def _next_ids(conn: sqlite3.Connection, count: int, now: float) -> list[int]:
    row = conn.execute("SELECT value FROM meta WHERE key = 'last_job_id'").fetchone()
    top = conn.execute("SELECT max(id) FROM jobs").fetchone()[0]
    last = max(int(row[0]) if row else 0, int(top or 0))
    ids: list[int] = []
    now_ms = ms(now)
    for _ in range(count):
        last = max(compose_snowflake(now_ms, 0, 0), last + 1)
        ids.append(last)
    if ids:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('last_job_id', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(last),),
        )
    return ids


def has_open_job(conn: sqlite3.Connection, key: AggregateKey) -> bool:
    """Whether the aggregate has a pending, processing or dead job for this plugin."""
    row = conn.execute(
        "SELECT 1 FROM jobs WHERE plugin = ? AND aggregate_type = ? AND aggregate_id = ?"
        " AND status <> 'done' LIMIT 1",
        key,
    ).fetchone()
    return row is not None


def insert_jobs(conn: sqlite3.Connection, jobs: Sequence[NewJob], now: float) -> list[int]:
    """Insert jobs with increasing snowflake ids; empty envelopes become done/empty. Returns the ids."""
    ids = _next_ids(conn, len(jobs), now)
    open_seen: dict[AggregateKey, bool] = {}
    rows = []
    created = ms(now)
    for jid, job in zip(ids, jobs, strict=True):
        empty = job.envelope is None
        head = 0
        if not empty:
            key = (job.plugin_name, job.aggregate_type, job.aggregate_id)
            if key not in open_seen:
                open_seen[key] = has_open_job(conn, key)
            head = 0 if open_seen[key] else 1
            open_seen[key] = True
        rows.append(
            (
                jid,
                job.plugin_name,
                job.label,
                "done" if empty else "pending",
                "empty" if empty else None,
                int(job.replay),
                head,
                created,
                created if empty else None,
                job.aggregate_type,
                job.aggregate_id,
                job.event_type,
                job.event_id,
                job.version,
                job.event_created_at,
                job.envelope or "{}",
            )
        )
    try:
        conn.executemany(
            "INSERT INTO jobs (id, plugin, label, status, resolution, replay, head, created_at,"
            " completed_at, aggregate_type, aggregate_id, event_type, event_id, version,"
            " event_created_at, envelope) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
    except sqlite3.IntegrityError as exc:
        raise StorageError(f"duplicate plugin job (invariant I1 violated): {exc}") from exc
    return ids


def promote_head(conn: sqlite3.Connection, key: AggregateKey) -> None:
    """Mark the earliest not-done job of the aggregate as its head (after the previous head left)."""
    conn.execute(
        "UPDATE jobs SET head = 1 WHERE id = (SELECT id FROM jobs WHERE plugin = ? AND aggregate_type = ?"
        " AND aggregate_id = ? AND status <> 'done' ORDER BY id LIMIT 1) AND head = 0",
        key,
    )


def later_open_ids(conn: sqlite3.Connection, job: Job, limit: int = -1) -> list[int]:
    """Ids of the not-done jobs of the same plugin and aggregate after `job`."""
    rows = conn.execute(
        "SELECT id FROM jobs WHERE plugin = ? AND aggregate_type = ? AND aggregate_id = ?"
        " AND status <> 'done' AND id > ? ORDER BY id LIMIT ?",
        (job.plugin_name, job.aggregate_type, job.aggregate_id, job.id, limit),
    )
    return [int(r[0]) for r in rows]


def earliest_open_before(conn: sqlite3.Connection, job: Job) -> int | None:
    """The earliest not-done job of the same plugin and aggregate before `job`, if any."""
    row = conn.execute(
        "SELECT id FROM jobs WHERE plugin = ? AND aggregate_type = ? AND aggregate_id = ?"
        " AND status <> 'done' AND id < ? ORDER BY id LIMIT 1",
        (job.plugin_name, job.aggregate_type, job.aggregate_id, job.id),
    ).fetchone()
    return None if row is None else int(row[0])


def add_history(
    conn: sqlite3.Connection,
    job_id: int,
    *,
    attempt: int | None,
    started_at: float,
    finished_at: float,
    outcome: Outcome,
    error: str | None = None,
    http_status: int | None = None,
) -> None:
    """Append one history entry and keep only the last 50."""
    n = int(
        conn.execute(
            "UPDATE jobs SET history_seq = history_seq + 1 WHERE id = ? RETURNING history_seq",
            (job_id,),
        ).fetchall()[0][0]
    )
    insert_history(
        conn,
        job_id,
        n,
        attempt=attempt,
        started_at=started_at,
        finished_at=finished_at,
        outcome=outcome,
        error=error,
        http_status=http_status,
    )


def insert_history(
    conn: sqlite3.Connection,
    job_id: int,
    n: int,
    *,
    attempt: int | None,
    started_at: float,
    finished_at: float,
    outcome: Outcome,
    error: str | None = None,
    http_status: int | None = None,
) -> None:
    """Store history entry number `n` (already counted in jobs.history_seq); drop entries older than the last 50."""
    conn.execute(
        "INSERT INTO history (job_id, n, attempt, started_at, finished_at, outcome, error, http_status)"
        " VALUES (?,?,?,?,?,?,?,?)",
        (job_id, n, attempt, ms(started_at), ms(finished_at), outcome.value, error, http_status),
    )
    if n > HISTORY_KEEP:
        conn.execute("DELETE FROM history WHERE job_id = ? AND n <= ?", (job_id, n - HISTORY_KEEP))


def history_of(conn: sqlite3.Connection, job_id: int) -> list[HistoryEntry]:
    """The kept history of a job, oldest first."""
    rows = conn.execute(
        "SELECT attempt, started_at, finished_at, outcome, error, http_status FROM history"
        " WHERE job_id = ? ORDER BY n",
        (job_id,),
    )
    return [
        HistoryEntry(
            attempt=a,
            started_at=s / 1000,
            finished_at=f / 1000,
            outcome=Outcome(o),
            error=e,
            http_status=h,
        )
        for a, s, f, o, e, h in rows
    ]


def delete_jobs(conn: sqlite3.Connection, ids: Sequence[int]) -> set[AggregateKey]:
    """Delete jobs and their history; returns the aggregates that lost a not-done job."""
    touched: set[AggregateKey] = set()
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        for plugin, a_type, a_id in conn.execute(
            f"SELECT DISTINCT plugin, aggregate_type, aggregate_id FROM jobs WHERE id IN ({marks})"
            " AND status <> 'done'",
            chunk,
        ):
            touched.add((plugin, a_type, a_id))
        conn.execute(f"DELETE FROM history WHERE job_id IN ({marks})", chunk)
        conn.execute(f"DELETE FROM jobs WHERE id IN ({marks})", chunk)
    return touched
