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


def _claim_ids(conn: sqlite3.Connection, ids: list[int], *, now: float, lease_secs: float, probe: bool) -> list[Job]:
    """One UPDATE claims every still-pending job of `ids`; each gets its own token (batch nonce + job id).

    `+status` keeps the planner on the rowid lookups (an index on status would scan every pending job).
    """
    if not ids:
        return []
    probed = ", probed_at = ?" if probe else ""
    marks = ",".join("?" * len(ids))
    args: list[object] = [ms(now + lease_secs), secrets.token_hex(8)]
    if probe:
        args.append(ms(now))
    rows = conn.execute(
        "UPDATE jobs SET status = 'processing', attempts = attempts + 1, next_retry_at = NULL,"
        f" lease_expires_at = ?, claim_token = ? || '.' || id{probed}"
        f" WHERE id IN ({marks}) AND +status = 'pending' RETURNING {jobs.JOB_COLUMNS}", [*args, *ids],
    ).fetchall()
    return sorted((jobs.row_to_job(r) for r in rows), key=lambda job: job.id)


def claim(
    conn: sqlite3.Connection, plugin: str, *, now: float, limit: int, lease_secs: float, ordering: Ordering
) -> list[Job]:
    """Claim up to `limit` due jobs (processing, attempts+1, lease, fresh token), lowest id first."""
    if limit <= 0:
        return []
    ids = due_ids(conn, plugin, now=now, ordering=ordering, limit=limit)
    return _claim_ids(conn, ids, now=now, lease_secs=lease_secs, probe=False)


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
    claimed = _claim_ids(conn, [int(row[0])], now=now, lease_secs=lease_secs, probe=True)
    return claimed[0] if claimed else None


def unclaim(conn: sqlite3.Connection, items: list[tuple[int, str]]) -> list[bool]:
    """Claimed jobs that were never started go back to pending as if never claimed (attempts-1, no history).

    `items` are (job_id, claim_token); result[i] is False when that token no longer matches.
    """
    done = []
    for job_id, token in items:
        row = conn.execute(
            "UPDATE jobs SET status = 'pending', attempts = attempts - 1, lease_expires_at = NULL,"
            " claim_token = NULL WHERE id = ? AND +status = 'processing' AND claim_token = ? RETURNING id",
            (job_id, token),
        ).fetchone()
        done.append(row is not None)
    return done


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


_DELIVERED_MANY = (
    "UPDATE jobs SET status = 'done', resolution = 'delivered', last_error = NULL, completed_at = ?, head = 0,"
    " lease_expires_at = NULL, claim_token = NULL, history_seq = history_seq + 1 WHERE id IN ({marks})"
)
_PROMOTE_HEAD = (  # jobs.promote_head's statement, run with executemany for a batch of aggregates
    "UPDATE jobs SET head = 1 WHERE id = (SELECT id FROM jobs WHERE plugin = ? AND aggregate_type = ?"
    " AND aggregate_id = ? AND status <> 'done' ORDER BY id LIMIT 1) AND head = 0"
)
_BATCH = 500


def record_delivered_many(conn: sqlite3.Connection, attempts: list[Attempt], *, now: float) -> list[bool]:
    """`record` for a batch of successes in a handful of statements; plugin_state is updated once per plugin.

    Token checks, the status change and the head promotions all happen inside the caller's write
    transaction, so nothing can change between the read and the update.
    """
    by_id = {a.job_id: a for a in attempts}
    ids = list(by_id)
    matched: list[tuple[int, int, int, str, str, str]] = []
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start:start + _BATCH]
        rows = conn.execute(
            "SELECT id, claim_token, attempts, history_seq, plugin, aggregate_type, aggregate_id FROM jobs"
            f" WHERE id IN ({','.join('?' * len(chunk))}) AND +status = 'processing'", chunk,
        ).fetchall()
        matched.extend((jid, att, seq, p, t, a) for jid, tok, att, seq, p, t, a in rows if by_id[jid].token == tok)
    if not matched:
        return [False] * len(attempts)
    done_ids = [m[0] for m in matched]
    for start in range(0, len(done_ids), _BATCH):
        chunk = done_ids[start:start + _BATCH]
        conn.execute(_DELIVERED_MANY.format(marks=",".join("?" * len(chunk))), [ms(now), *chunk])
    history = []
    for jid, att, seq, _p, _t, _a in matched:
        attempt = by_id[jid]
        history.append((jid, seq + 1, att, ms(attempt.started_at), ms(attempt.now), Outcome.DELIVERED.value,
                        attempt.http_status))
    conn.executemany(
        "INSERT INTO history (job_id, n, attempt, started_at, finished_at, outcome, error, http_status)"
        " VALUES (?,?,?,?,?,?,NULL,?)", history,
    )
    trim = [(jid, n - jobs.HISTORY_KEEP) for jid, n, *_ in history if n > jobs.HISTORY_KEEP]
    if trim:
        conn.executemany("DELETE FROM history WHERE job_id = ? AND n <= ?", trim)
    keys = sorted({(p, t, a) for _j, _att, _seq, p, t, a in matched})
    conn.executemany(_PROMOTE_HEAD, keys)
    for plugin in sorted({k[0] for k in keys}):
        state.record_attempt(conn, plugin, now=now, success=True, error=None)
    ok = set(done_ids)
    return [a.job_id in ok for a in attempts]


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
