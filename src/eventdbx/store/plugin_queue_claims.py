"""Dispatcher side of plugin_queue.db: claiming due jobs under a lease, recording outcomes, lease recovery.

Private to the plugin queue store: callers go through `PluginQueue`. Every function runs inside the caller's transaction.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass

from eventdbx.domain.payload_mode import Ordering
from eventdbx.store import plugin_queue_jobs as jobs
from eventdbx.store import plugin_queue_state as state
from eventdbx.store.plugin_queue_jobs import ms
from eventdbx.store.plugin_queue_model import Job, Outcome

RESTART_ERROR = "delivery interrupted by daemon restart"
LEASE_ERROR = "delivery interrupted (lease expired)"


def _head_clause(ordering: Ordering) -> str:
    return " AND head = 1" if ordering is Ordering.AGGREGATE else ""


def _fresh_index(ordering: Ordering) -> str:
    """Pinned partial indexes: due scans never touch blocked or backing-off rows, whatever the statistics."""
    return "jobs_fresh_head" if ordering is Ordering.AGGREGATE else "jobs_fresh"


def due_ids(conn: sqlite3.Connection, plugin: str, *, now: float, ordering: Ordering, limit: int) -> list[int]:
    """Ids of due jobs, lowest first: fresh ones by id, retried ones by due time (both index range scans)."""
    head = _head_clause(ordering)
    fresh = conn.execute(
        f"SELECT id FROM jobs INDEXED BY {_fresh_index(ordering)} WHERE plugin = ? AND status = 'pending'"
        f" AND next_retry_at IS NULL{head} ORDER BY id LIMIT ?", (plugin, limit),
    ).fetchall()
    retry = conn.execute(
        "SELECT id FROM jobs INDEXED BY jobs_retry WHERE plugin = ? AND status = 'pending'"
        " AND next_retry_at IS NOT NULL"
        f" AND next_retry_at <= ?{head} ORDER BY next_retry_at LIMIT ?", (plugin, ms(now), limit),
    ).fetchall()
    return sorted(int(r[0]) for r in fresh + retry)[:limit]


def count_due(conn: sqlite3.Connection, plugin: str, *, now: float, ordering: Ordering) -> int:
    """How many jobs of the plugin are due now."""
    head = _head_clause(ordering)
    fresh = conn.execute(
        f"SELECT count(*) FROM jobs INDEXED BY {_fresh_index(ordering)} WHERE plugin = ?"
        f" AND status = 'pending' AND next_retry_at IS NULL{head}", (plugin,),
    ).fetchone()[0]
    retry = conn.execute(
        "SELECT count(*) FROM jobs INDEXED BY jobs_retry WHERE plugin = ? AND status = 'pending'"
        " AND next_retry_at IS NOT NULL"
        f" AND next_retry_at <= ?{head}", (plugin, ms(now)),
    ).fetchone()[0]
    return int(fresh) + int(retry)


def _claim_one(conn: sqlite3.Connection, job_id: int, *, now: float, lease_secs: float, probe: bool) -> Job | None:
    probed = ", probed_at = :now" if probe else ""
    rows = conn.execute(
        "UPDATE jobs SET status = 'processing', attempts = attempts + 1, next_retry_at = NULL,"
        f" lease_expires_at = :lease, claim_token = :token{probed}"
        f" WHERE id = :id AND status = 'pending' RETURNING {jobs.JOB_COLUMNS}",
        {"lease": ms(now + lease_secs), "token": secrets.token_hex(8), "id": job_id, "now": ms(now)},
    ).fetchall()
    return jobs.row_to_job(rows[0]) if rows else None


def claim(
    conn: sqlite3.Connection, plugin: str, *, now: float, limit: int, lease_secs: float, ordering: Ordering
) -> list[Job]:
    """Claim up to `limit` due jobs (processing, attempts+1, lease, fresh token), lowest id first."""
    if limit <= 0:
        return []
    claimed = []
    for job_id in due_ids(conn, plugin, now=now, ordering=ordering, limit=limit):
        job = _claim_one(conn, job_id, now=now, lease_secs=lease_secs, probe=False)
        if job is not None:
            claimed.append(job)
    return claimed


def claim_probe(
    conn: sqlite3.Connection, plugin: str, *, now: float, lease_secs: float, ordering: Ordering
) -> Job | None:
    """Claim the due job probed least recently (never-probed first, then lowest id)."""
    ids = due_ids(conn, plugin, now=now, ordering=ordering, limit=1000)
    if not ids:
        return None
    marks = ",".join("?" * len(ids))
    row = conn.execute(
        f"SELECT id FROM jobs WHERE id IN ({marks}) ORDER BY coalesce(probed_at, -1), id LIMIT 1", ids
    ).fetchone()
    return _claim_one(conn, int(row[0]), now=now, lease_secs=lease_secs, probe=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """How one claimed attempt ended, as reported by the dispatcher."""

    job_id: int
    token: str
    started_at: float
    now: float
    outcome: Outcome
    error: str | None = None
    http_status: int | None = None
    next_retry_at: float | None = None


_SET_BY_OUTCOME = {
    Outcome.DELIVERED: "status = 'done', resolution = 'delivered', last_error = NULL, completed_at = :now,"
                       " head = 0",
    Outcome.FAILED: "status = 'pending', last_error = :error, next_retry_at = :retry",
    Outcome.PROBE_FAILED: "status = 'pending', attempts = attempts - 1, last_error = :error,"
                          " next_retry_at = :retry",
    Outcome.RELEASED: "status = 'pending', attempts = attempts - 1, next_retry_at = NULL",
}
_DEAD = "status = 'dead', last_error = :error, next_retry_at = NULL, completed_at = :now"


def finish(conn: sqlite3.Connection, attempt: Attempt, *, dead: bool = False) -> str | None:
    """Write one attempt's outcome if the claim token still matches; returns the job's plugin, else None.

    Does not touch plugin_state (callers batch that with `state.record_attempt`).
    """
    row = conn.execute(
        "SELECT attempts, plugin, aggregate_type, aggregate_id FROM jobs"
        " WHERE id = ? AND status = 'processing' AND claim_token = ?", (attempt.job_id, attempt.token),
    ).fetchone()
    if row is None:
        return None
    attempts, plugin, a_type, a_id = row
    sets = _DEAD if dead else _SET_BY_OUTCOME[attempt.outcome]
    n = conn.execute(
        f"UPDATE jobs SET {sets}, lease_expires_at = NULL, claim_token = NULL, history_seq = history_seq + 1"
        " WHERE id = :id RETURNING history_seq",
        {"now": ms(attempt.now), "error": attempt.error, "id": attempt.job_id,
         "retry": None if attempt.next_retry_at is None else ms(attempt.next_retry_at)},
    ).fetchall()[0][0]
    jobs.insert_history(
        conn, attempt.job_id, int(n), attempt=int(attempts), started_at=attempt.started_at,
        finished_at=attempt.now, outcome=attempt.outcome, error=attempt.error, http_status=attempt.http_status,
    )
    if attempt.outcome is Outcome.DELIVERED:
        jobs.promote_head(conn, (plugin, a_type, a_id))
    return str(plugin)


def record(conn: sqlite3.Connection, attempt: Attempt, *, dead: bool = False) -> bool:
    """Write the outcome of a claimed attempt if the claim token still matches; False otherwise."""
    plugin = finish(conn, attempt, dead=dead)
    if plugin is None:
        return False
    if attempt.outcome is not Outcome.RELEASED:
        state.record_attempt(
            conn, plugin, now=attempt.now, success=attempt.outcome is Outcome.DELIVERED, error=attempt.error,
        )
    return True


def record_delivered_many(conn: sqlite3.Connection, attempts: list[Attempt], *, now: float) -> list[bool]:
    """`record` for a batch of successes; plugin_state is updated once per plugin."""
    plugins = [finish(conn, a) for a in attempts]
    for plugin in {p for p in plugins if p is not None}:
        state.record_attempt(conn, plugin, now=now, success=True, error=None)
    return [p is not None for p in plugins]


def _interrupt(conn: sqlite3.Connection, rows: list[tuple[int, int]], *, now: float,
               max_attempts: int, error: str) -> list[Job]:
    limit = max(max_attempts, 1)
    for job_id, attempts in rows:
        if attempts >= limit:
            sets = "status = 'dead', completed_at = :now, next_retry_at = NULL"
        else:
            sets = "status = 'pending', next_retry_at = NULL"
        conn.execute(
            f"UPDATE jobs SET {sets}, last_error = :error, lease_expires_at = NULL, claim_token = NULL"
            " WHERE id = :id", {"now": ms(now), "error": error, "id": job_id},
        )
        jobs.add_history(conn, job_id, attempt=attempts, started_at=now, finished_at=now,
                         outcome=Outcome.INTERRUPTED, error=error)
    return jobs.get_jobs(conn, (r[0] for r in rows))


def recover_interrupted(conn: sqlite3.Connection, *, now: float, max_attempts: int) -> list[Job]:
    """Startup: every processing job back to pending due now (or dead at the attempt limit)."""
    rows = conn.execute("SELECT id, attempts FROM jobs WHERE status = 'processing' ORDER BY id").fetchall()
    return _interrupt(conn, rows, now=now, max_attempts=max_attempts, error=RESTART_ERROR)


def expire_leases(conn: sqlite3.Connection, *, now: float, max_attempts: int) -> list[Job]:
    """Processing jobs whose lease has expired: same treatment as a restart, with the lease error."""
    rows = conn.execute(
        "SELECT id, attempts FROM jobs WHERE status = 'processing' AND lease_expires_at <= ? ORDER BY id",
        (ms(now),),
    ).fetchall()
    return _interrupt(conn, rows, now=now, max_attempts=max_attempts, error=LEASE_ERROR)


def next_wakeup(conn: sqlite3.Connection, plugin: str, *, ordering: Ordering) -> float | None:
    """The earliest future moment something changes for the plugin: a retry comes due or a lease expires."""
    head = _head_clause(ordering)
    retry = conn.execute(
        "SELECT next_retry_at FROM jobs INDEXED BY jobs_retry WHERE plugin = ? AND status = 'pending'"
        f" AND next_retry_at IS NOT NULL{head} ORDER BY next_retry_at LIMIT 1", (plugin,),
    ).fetchone()
    lease = conn.execute(
        "SELECT lease_expires_at FROM jobs INDEXED BY jobs_leases WHERE plugin = ? AND status = 'processing'"
        " ORDER BY lease_expires_at LIMIT 1", (plugin,),
    ).fetchone()
    moments = [row[0] for row in (retry, lease) if row is not None and row[0] is not None]
    return min(moments) / 1000 if moments else None
