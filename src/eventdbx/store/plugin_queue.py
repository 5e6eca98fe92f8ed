"""`PluginQueue`: the typed, synchronous API over plugin_queue.db for the enqueuer, the dispatcher and the CLI.

Owns the connection, its lock and transactions; the SQL lives in the plugin_queue_* modules. It never delivers
anything and never decides retry policy (the dispatcher passes outcomes and retry times in).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from eventdbx.domain.payload_mode import Ordering
from eventdbx.errors import StorageError
from eventdbx.store import plugin_queue_admin as admin
from eventdbx.store import plugin_queue_claims as claims
from eventdbx.store import plugin_queue_jobs as jobs
from eventdbx.store import plugin_queue_state as state
from eventdbx.store.plugin_queue_cipher import PREFIX, seal, unseal
from eventdbx.store.plugin_queue_migrations import connect
from eventdbx.store.plugin_queue_model import (
    Job,
    JobDetail,
    JobStatus,
    NewJob,
    PluginState,
    PluginStats,
    PrunePolicy,
    PruneResult,
    QueueCounts,
)
from eventdbx.store.plugin_queue_outcomes import AttemptOutcomes


class QueueWriter:
    """What the enqueuer may do inside one `PluginQueue.transaction()` (a BEGIN IMMEDIATE transaction)."""

    def __init__(self, conn: sqlite3.Connection, dek: str | None = None) -> None:
        self._conn = conn
        self._dek = dek

    def cursor(self, name: str) -> int | None:
        """The plugin's cursor, or None."""
        return state.get_cursor(self._conn, name)

    def cursors(self) -> dict[str, int | None]:
        """Every plugin row's cursor (None when the row has none)."""
        return {s.name: s.cursor for s in state.list_states(self._conn)}

    def set_cursor(self, name: str, seq: int) -> None:
        """Move (or create) the plugin's cursor."""
        state.set_cursor(self._conn, name, seq)

    def insert_jobs(self, new_jobs: Sequence[NewJob], *, now: float) -> list[int]:
        """Insert jobs (ids assigned here, increasing); an envelope of None is stored done/empty."""
        if self._dek:
            new_jobs = [
                j
                if j.envelope is None
                else dataclasses.replace(j, envelope=seal(j.envelope, self._dek))
                for j in new_jobs
            ]
        return jobs.insert_jobs(self._conn, new_jobs, now)

    def remove_plugin(self, name: str) -> int:
        """Delete the plugin's state and its not-done jobs; returns jobs purged."""
        return admin.remove_plugin(self._conn, name)

    def kill_vanished(self, name: str, *, last_event_id: int, now: float) -> int:
        """Open jobs of events after `last_event_id` (lost in a power loss) become dead; returns how many."""
        return admin.kill_vanished(self._conn, name, last_event_id=last_event_id, now=now)


class PluginQueue(AttemptOutcomes):
    """plugin_queue.db. Thread-safe: one connection guarded by a lock; open one per thread for parallel reads.

    With `dek` (the data encryption key) new envelopes are stored as `ENCv1:` ciphertext; every Job returned
    carries the decrypted envelope.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, dek: str | None = None) -> None:
        self._conn = conn
        self._lock = threading.RLock()
        self._dek = dek
        self.path = path

    @classmethod
    def open(
        cls, path: Path, *, durability: str = "normal", create: bool = True, dek: str | None = None
    ) -> PluginQueue:
        """Open (creating and migrating when allowed) plugin_queue.db."""
        return cls(connect(Path(path), durability=durability, create=create), Path(path), dek)

    def _clear(self, job: Job) -> Job:
        """The job with its envelope decrypted."""
        if job.envelope.startswith(PREFIX):
            return dataclasses.replace(job, envelope=unseal(job.envelope, self._dek))
        return job

    def _clear_all(self, found: list[Job]) -> list[Job]:
        return [self._clear(j) for j in found]

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn.in_transaction:
                raise StorageError("plugin queue: nested write transaction")
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageError(f"plugin queue: {exc}") from exc
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StorageError(f"plugin queue: {exc}") from exc
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if (
                self._conn.in_transaction
            ):  # a read inside this thread's own transaction sees its writes
                yield self._conn
                return
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise StorageError(f"plugin queue: {exc}") from exc
            finally:
                self._conn.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[QueueWriter]:
        """One BEGIN IMMEDIATE transaction for the enqueuer: cursor and jobs commit together or not at all."""
        with self._write() as conn:
            yield QueueWriter(conn, self._dek)

    # --- dispatcher -------------------------------------------------------------------------------

    def claim(
        self, plugin: str, *, now: float, limit: int, lease_secs: float, ordering: Ordering
    ) -> list[Job]:
        """Claim up to `limit` due jobs, lowest id first (aggregate ordering: heads of their aggregate only)."""
        with self._write() as conn:
            return self._clear_all(
                claims.claim(
                    conn, plugin, now=now, limit=limit, lease_secs=lease_secs, ordering=ordering
                )
            )

    def claim_probe(
        self, plugin: str, *, now: float, lease_secs: float, ordering: Ordering
    ) -> Job | None:
        """Claim the circuit-breaker probe: the due job probed least recently."""
        with self._write() as conn:
            job = claims.claim_probe(
                conn, plugin, now=now, lease_secs=lease_secs, ordering=ordering
            )
            return None if job is None else self._clear(job)

    def recover_interrupted(self, *, now: float, max_attempts: int) -> list[Job]:
        """Startup recovery of every processing job (history `interrupted`)."""
        with self._write() as conn:
            return self._clear_all(
                claims.recover_interrupted(conn, now=now, max_attempts=max_attempts)
            )

    def expire_leases(self, *, now: float, max_attempts: int) -> list[Job]:
        """Recover processing jobs whose lease expired."""
        with self._write() as conn:
            return self._clear_all(claims.expire_leases(conn, now=now, max_attempts=max_attempts))

    def next_wakeup(self, plugin: str, *, ordering: Ordering) -> float | None:
        """Earliest retry due time or lease expiry of the plugin."""
        with self._read() as conn:
            return claims.next_wakeup(conn, plugin, ordering=ordering)

    def count_due(self, plugin: str, *, now: float, ordering: Ordering) -> int:
        """Due jobs of the plugin."""
        with self._read() as conn:
            return claims.count_due(conn, plugin, now=now, ordering=ordering)

    def held_back_count(self, job_id: int) -> int:
        """Later not-done jobs of the job's plugin and aggregate."""
        with self._read() as conn:
            job = jobs.get_job(conn, jobs.check_job_id(job_id))
            return 0 if job is None else len(jobs.later_open_ids(conn, job))

    def get_state(self, name: str) -> PluginState | None:
        """One plugin's bookkeeping row."""
        with self._read() as conn:
            return state.get_state(conn, name)

    def list_states(self) -> list[PluginState]:
        """Every plugin's bookkeeping row."""
        with self._read() as conn:
            return state.list_states(conn)

    def set_circuit(
        self,
        name: str,
        *,
        circuit: str,
        consecutive_failures: int,
        opened_at: float | None,
        next_probe_at: float | None,
        probe_failures: int,
    ) -> None:
        """Persist the plugin's circuit breaker."""
        with self._write() as conn:
            state.set_circuit(
                conn,
                name,
                circuit=circuit,
                consecutive_failures=consecutive_failures,
                opened_at=opened_at,
                next_probe_at=next_probe_at,
                probe_failures=probe_failures,
            )

    def set_worker_desired(self, name: str, desired: str | None) -> None:
        """The operator's wish for a process worker."""
        with self._write() as conn:
            state.set_worker_desired(conn, name, desired)

    def set_worker_actual(
        self, name: str, actual: str | None, *, pid: int | None, detail: str | None, now: float
    ) -> None:
        """The supervisor's report for a process worker."""
        with self._write() as conn:
            state.set_worker_actual(conn, name, actual, pid=pid, detail=detail, now=now)

    # --- CLI --------------------------------------------------------------------------------------

    def counts(self, plugin: str | None = None) -> QueueCounts:
        """Jobs per status."""
        with self._read() as conn:
            return admin.counts(conn, plugin)

    def plugin_stats(
        self, name: str, *, head_seq: int, now: float, ordering: Ordering = Ordering.AGGREGATE
    ) -> PluginStats:
        """One plugin's figures for `dbx queue`."""
        with self._read() as conn:
            return admin.plugin_stats(conn, name, head_seq=head_seq, now=now, ordering=ordering)

    def list_jobs(
        self,
        *,
        plugin: str | None = None,
        status: JobStatus | None = None,
        limit: int | None = None,
    ) -> list[Job]:
        """Jobs, oldest first (limit None or 0 = all)."""
        with self._read() as conn:
            return self._clear_all(jobs.list_jobs(conn, plugin=plugin, status=status, limit=limit))

    def get_job(self, job_id: int) -> Job | None:
        """One job (PluginError for an id no job can have)."""
        with self._read() as conn:
            job = jobs.get_job(conn, jobs.check_job_id(job_id))
        return None if job is None else self._clear(job)

    def show_job(self, job_id: int, *, ordering: Ordering = Ordering.AGGREGATE) -> JobDetail | None:
        """One job with blocked_by, held_back and history."""
        with self._read() as conn:
            detail = admin.show_job(conn, jobs.check_job_id(job_id), ordering)
        return None if detail is None else dataclasses.replace(detail, job=self._clear(detail.job))

    def retry_dead(
        self, *, now: float, job_id: int | None = None, plugin: str | None = None
    ) -> list[Job]:
        """Reset matching dead jobs to pending with attempts 0."""
        if job_id is not None:
            jobs.check_job_id(job_id)
        with self._write() as conn:
            return self._clear_all(admin.retry_dead(conn, now=now, job_id=job_id, plugin=plugin))

    def skip_job(self, job_id: int, *, now: float) -> tuple[Job, int]:
        """Mark a dead or pending job done/skipped; (job, released held jobs). PluginError otherwise."""
        with self._write() as conn:
            job, released = admin.skip_job(conn, jobs.check_job_id(job_id), now=now)
        return self._clear(job), released

    def count_dead(self, plugin: str | None = None) -> int:
        """Dead jobs."""
        with self._read() as conn:
            return admin.count_status(conn, JobStatus.DEAD, plugin)

    def clear_dead(self, plugin: str | None = None) -> int:
        """Delete dead jobs; returns how many."""
        return admin.clear_dead(self._write, plugin)

    def count_done(
        self, *, now: float, older_than_secs: float | None = None, plugin: str | None = None
    ) -> int:
        """Done jobs that clear_done would delete."""
        with self._read() as conn:
            return admin.count_done(conn, now=now, older_than_secs=older_than_secs, plugin=plugin)

    def clear_done(
        self, *, now: float, older_than_secs: float | None = None, plugin: str | None = None
    ) -> int:
        """Delete done jobs completed more than `older_than_secs` ago (all when None)."""
        return admin.clear_done(
            self._write, now=now, older_than_secs=older_than_secs, plugin=plugin
        )

    def remove_plugin(self, name: str) -> int:
        """Delete the plugin's cursor/state and its pending, processing and dead jobs."""
        with self._write() as conn:
            return admin.remove_plugin(conn, name)

    def delete_job(self, job_id: int) -> bool:
        """Delete one job and its history (e.g. the one-off `plugin test` job); False if it does not exist."""
        with self._write() as conn:
            if jobs.get_job(conn, jobs.check_job_id(job_id)) is None:
                return False
            for key in jobs.delete_jobs(conn, [job_id]):
                jobs.promote_head(conn, key)
            return True

    def prune(self, policy: PrunePolicy, *, now: float) -> PruneResult:
        """One pruning pass (plugins.md §6); then free pages are returned to the file system."""
        result = admin.prune(self._write, policy, now=now)
        if result.done_expired or result.done_capped or result.dead_expired:
            self.release_free_pages()
        return result

    def release_free_pages(self) -> None:
        """Give free pages back to the file system (incremental auto-vacuum; no-op for older files).

        Runs as its own autocommit statement via executescript, which steps the pragma to completion
        (a plain execute frees a single page).
        """
        with self._lock:
            if self._conn.in_transaction:
                raise StorageError("plugin queue: release_free_pages inside a transaction")
            try:
                self._conn.executescript("PRAGMA incremental_vacuum;")
            except sqlite3.Error as exc:
                raise StorageError(f"plugin queue: {exc}") from exc

    def rebuild_heads(self) -> None:
        """Recompute the aggregate-head flags from scratch (repair tool; O(jobs))."""
        with self._write() as conn:
            conn.execute("UPDATE jobs SET head = 0 WHERE head = 1")
            conn.execute(
                "UPDATE jobs SET head = 1 WHERE id IN (SELECT min(id) FROM jobs WHERE status <> 'done'"
                " GROUP BY plugin, aggregate_type, aggregate_id)"
            )
