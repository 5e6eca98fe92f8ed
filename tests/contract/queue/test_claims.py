"""Queue contract: ids, claims, leases, outcomes, aggregate ordering, probes and recovery."""

from __future__ import annotations

import os
import sqlite3
import stat

import orjson
import pytest
from queue_support import T0, add, new_job

from eventdbx.domain.payload_mode import Ordering
from eventdbx.errors import StorageError
from eventdbx.store.plugin_queue import PluginQueue
from eventdbx.store.plugin_queue_model import JobStatus, Outcome, Resolution

AGG, NONE = Ordering.AGGREGATE, Ordering.NONE


def claim(queue: PluginQueue, *, now: float = T0, limit: int = 10, ordering: Ordering = AGG,
          plugin: str = "hook") -> list[int]:
    return [j.id for j in queue.claim(plugin, now=now, limit=limit, lease_secs=35, ordering=ordering)]


def test_file_is_wal_private_and_versioned(queue: PluginQueue) -> None:
    assert stat.S_IMODE(os.stat(queue.path).st_mode) == 0o600
    conn = sqlite3.connect(queue.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()
    PluginQueue.open(queue.path).close()  # reopening is a no-op migration


def test_forward_migration_keeps_data(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from eventdbx.store.plugin_queue_migrations import MIGRATIONS

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS[0](conn)
    conn.execute("PRAGMA user_version=1")
    conn.execute("INSERT INTO plugin_state (name, cursor) VALUES ('hook', 7)")
    conn.close()
    queue = PluginQueue.open(path)
    state = queue.get_state("hook")
    assert state is not None and (state.cursor, state.created_at) == (7, None)
    queue.close()
    newer = sqlite3.connect(path)
    newer.execute("PRAGMA user_version=99")
    newer.close()
    with pytest.raises(StorageError, match="newer than this build"):
        PluginQueue.open(path)


def test_ids_increase_and_live_duplicates_are_refused(queue: PluginQueue) -> None:
    ids = add(queue, new_job(1), new_job(2, version=2))
    later = add(queue, new_job(3, version=3), now=T0 - 100)  # clock stepped back
    assert ids[0] < ids[1] < later[0]
    with pytest.raises(StorageError, match="invariant I1"):
        add(queue, new_job(1))
    add(queue, new_job(1, replay=True))  # replays may repeat an event
    assert queue.counts().pending == 4


def test_empty_envelope_is_stored_done_empty(queue: PluginQueue) -> None:
    [jid] = add(queue, new_job(1, envelope=None))
    job = queue.get_job(jid)
    assert job is not None and job.status is JobStatus.DONE and job.resolution is Resolution.EMPTY
    assert job.completed_at == T0
    assert claim(queue) == []


def test_claim_sets_processing_lease_token_and_attempt(queue: PluginQueue) -> None:
    [jid] = add(queue, new_job(1))
    [job] = queue.claim("hook", now=T0 + 1, limit=5, lease_secs=35, ordering=AGG)
    assert (job.id, job.status, job.attempts) == (jid, JobStatus.PROCESSING, 1)
    assert job.lease_expires_at == T0 + 36 and job.claim_token
    assert claim(queue) == []


def test_aggregate_ordering_claims_one_per_aggregate_in_id_order(queue: PluginQueue) -> None:
    a1, a2, b1 = add(queue, new_job(1), new_job(2, version=2), new_job(3, aggregate="b"))
    assert claim(queue) == [a1, b1]
    [job] = [j for j in queue.list_jobs(status=JobStatus.PROCESSING) if j.id == a1]
    assert queue.mark_delivered(a1, job.claim_token or "", started_at=T0, now=T0 + 1)
    assert claim(queue) == [a2]


def test_none_ordering_is_oldest_first_with_limit(queue: PluginQueue) -> None:
    ids = add(queue, *(new_job(i, version=i) for i in range(1, 6)))
    assert claim(queue, ordering=NONE, limit=3) == ids[:3]
    assert claim(queue, ordering=NONE, limit=3) == ids[3:]


def test_outcomes_require_the_current_token(queue: PluginQueue) -> None:
    [jid] = add(queue, new_job(1))
    [job] = queue.claim("hook", now=T0, limit=1, lease_secs=35, ordering=AGG)
    assert not queue.mark_delivered(jid, "stale", started_at=T0, now=T0)
    queue.expire_leases(now=T0 + 40, max_attempts=10)
    assert not queue.mark_delivered(jid, job.claim_token or "", started_at=T0, now=T0 + 41)
    [again] = queue.claim("hook", now=T0 + 41, limit=1, lease_secs=35, ordering=AGG)
    assert again.attempts == 2 and again.claim_token != job.claim_token


def test_retry_backoff_holds_back_only_its_aggregate(queue: PluginQueue) -> None:
    a1, a2, b1 = add(queue, new_job(1), new_job(2, version=2), new_job(3, aggregate="b"))
    jobs = {j.id: j for j in queue.claim("hook", now=T0, limit=10, lease_secs=35, ordering=AGG)}
    assert queue.mark_retry(a1, jobs[a1].claim_token or "", started_at=T0, now=T0 + 1, error="boom",
                            next_retry_at=T0 + 2, http_status=503)
    queue.mark_delivered(b1, jobs[b1].claim_token or "", started_at=T0, now=T0 + 1)
    assert claim(queue, now=T0 + 1.5) == []
    assert queue.next_wakeup("hook", ordering=AGG) == T0 + 2
    job = queue.get_job(a1)
    assert job and job.status is JobStatus.PENDING and job.last_error == "boom" and job.attempts == 1
    assert queue.show_job(a2).blocked_by == a1  # type: ignore[union-attr]
    assert claim(queue, now=T0 + 2) == [a1]
    assert claim(queue, now=T0 + 2, ordering=NONE) == [a2]


def test_dead_job_blocks_its_aggregate_until_skipped(queue: PluginQueue) -> None:
    a1, a2, a3, b1 = add(queue, new_job(1), new_job(2, version=2), new_job(3, version=3),
                         new_job(4, aggregate="b"))
    jobs = {j.id: j for j in queue.claim("hook", now=T0, limit=10, lease_secs=35, ordering=AGG)}
    assert queue.mark_dead(a1, jobs[a1].claim_token or "", started_at=T0, now=T0 + 1,
                           error="400 bad", permanent=True, http_status=400)
    stats = queue.plugin_stats("hook", head_seq=0, now=T0 + 10)
    assert (stats.dead, stats.blocked, stats.blocked_aggregates, stats.processing) == (1, 2, 1, 1)
    detail = queue.show_job(a1)
    assert detail is not None and detail.held_back == (a2, a3)
    assert [h.outcome for h in detail.history] == [Outcome.PERMANENT]
    assert detail.history[0].http_status == 400
    assert claim(queue, now=T0 + 10) == []
    job, released = queue.skip_job(a1, now=T0 + 11)
    assert (job.status, job.resolution, released) == (JobStatus.DONE, Resolution.SKIPPED, 2)
    assert claim(queue, now=T0 + 11) == [a2]
    assert queue.held_back_count(a2) == 1
    del b1


def test_retry_dead_resets_attempts_and_keeps_last_error(queue: PluginQueue) -> None:
    [a1] = add(queue, new_job(1))
    [job] = queue.claim("hook", now=T0, limit=1, lease_secs=35, ordering=AGG)
    queue.mark_dead(a1, job.claim_token or "", started_at=T0, now=T0 + 1, error="x", permanent=False)
    [retried] = queue.retry_dead(now=T0 + 5)
    assert (retried.status, retried.attempts, retried.last_error) == (JobStatus.PENDING, 0, "x")
    assert retried.completed_at is None and retried.next_retry_at is None
    history = queue.show_job(a1).history  # type: ignore[union-attr]
    assert [(h.outcome, h.attempt) for h in history] == [(Outcome.FAILED, 1), (Outcome.RETRIED, None)]
    assert queue.retry_dead(now=T0 + 6) == []


def test_release_and_probe_failure_do_not_count(queue: PluginQueue) -> None:
    a1, b1 = add(queue, new_job(1), new_job(2, aggregate="b"))
    jobs = {j.id: j for j in queue.claim("hook", now=T0, limit=10, lease_secs=35, ordering=AGG)}
    assert queue.mark_released(a1, jobs[a1].claim_token or "", started_at=T0, now=T0 + 1)
    assert queue.mark_probe_failed(b1, jobs[b1].claim_token or "", started_at=T0, now=T0 + 1,
                                   error="refused", next_retry_at=T0 + 1)
    assert [queue.get_job(i).attempts for i in (a1, b1)] == [0, 0]  # type: ignore[union-attr]
    probe = queue.claim_probe("hook", now=T0 + 2, lease_secs=35, ordering=AGG)
    assert probe is not None and probe.id == a1
    queue.mark_probe_failed(a1, probe.claim_token or "", started_at=T0 + 2, now=T0 + 2, error="e",
                            next_retry_at=T0 + 3)
    probe = queue.claim_probe("hook", now=T0 + 3, lease_secs=35, ordering=AGG)
    assert probe is not None and probe.id == b1  # the least recently probed job


def test_recovery_at_startup_and_expired_leases(queue: PluginQueue) -> None:
    a1, b1, c1 = add(queue, new_job(1), new_job(2, aggregate="b"), new_job(3, aggregate="c"))
    queue.claim("hook", now=T0, limit=10, lease_secs=35, ordering=AGG)
    recovered = queue.recover_interrupted(now=T0 + 1, max_attempts=1)
    assert {j.status for j in recovered} == {JobStatus.DEAD}
    queue.retry_dead(now=T0 + 2)
    jobs = {j.id: j for j in queue.claim("hook", now=T0 + 2, limit=10, lease_secs=35, ordering=AGG)}
    queue.mark_delivered(c1, jobs[c1].claim_token or "", started_at=T0, now=T0 + 3)
    assert queue.expire_leases(now=T0 + 30, max_attempts=10) == []
    expired = queue.expire_leases(now=T0 + 37, max_attempts=10)
    assert [(j.id, j.status, j.attempts, j.last_error) for j in expired] == [
        (a1, JobStatus.PENDING, 1, "delivery interrupted (lease expired)"),
        (b1, JobStatus.PENDING, 1, "delivery interrupted (lease expired)"),
    ]
    history = queue.show_job(a1).history  # type: ignore[union-attr]
    assert history[0].error == "delivery interrupted by daemon restart"
    assert history[-1].outcome is Outcome.INTERRUPTED


def test_plugin_state_tracks_attempts_circuit_and_worker(queue: PluginQueue) -> None:
    [a1] = add(queue, new_job(1))
    [job] = queue.claim("hook", now=T0, limit=1, lease_secs=35, ordering=AGG)
    queue.mark_retry(a1, job.claim_token or "", started_at=T0, now=T0 + 1, error="e", next_retry_at=T0 + 2)
    queue.set_circuit("hook", circuit="open", consecutive_failures=5, opened_at=T0 + 1,
                      next_probe_at=T0 + 2, probe_failures=0)
    queue.set_worker_desired("hook", "stopped")
    queue.set_worker_actual("hook", "running", pid=42, detail=None, now=T0)
    st = queue.get_state("hook")
    assert st is not None
    assert (st.last_attempt_at, st.last_failure_at, st.last_success_at, st.last_error) == (
        T0 + 1, T0 + 1, None, "e")
    assert (st.circuit, st.consecutive_failures, st.worker_desired, st.worker_pid) == ("open", 5, "stopped", 42)


def test_history_keeps_the_last_50(queue: PluginQueue) -> None:
    [a1] = add(queue, new_job(1))
    for i in range(60):
        [job] = queue.claim("hook", now=T0 + i, limit=1, lease_secs=35, ordering=AGG)
        queue.mark_released(a1, job.claim_token or "", started_at=T0 + i, now=T0 + i)
    history = queue.show_job(a1).history  # type: ignore[union-attr]
    assert len(history) == 50 and history[0].started_at == T0 + 10


def test_job_record_keys_and_payload_verbatim(queue: PluginQueue) -> None:
    envelope = '{"event":{"payload":{"n":1.50e3}}}'
    [jid] = add(queue, new_job(1, envelope=envelope))
    job = queue.get_job(jid)
    assert job is not None
    out = orjson.dumps(job.to_dict()).decode()
    assert list(job.to_dict()) == [
        "id", "plugin", "plugin_name", "status", "resolution", "replay", "attempts", "last_error",
        "created_at", "next_retry_at", "completed_at", "aggregate_type", "aggregate_id", "event_type",
        "event_id", "version", "payload"]
    assert out.endswith(f',"payload":{envelope}}}')
    assert job.to_dict()["created_at"] == "2025-10-26T12:00:00.000Z"
    assert job.to_dict()["plugin"] == "http (hook)"
    detail = queue.show_job(jid)
    assert detail is not None
    assert list(detail.to_dict())[-4:] == ["lease_expires_at", "blocked_by", "held_back", "history"]


def test_due_queries_use_partial_indexes(queue: PluginQueue) -> None:
    from eventdbx.store import plugin_queue_claims as claims

    with queue.transaction():
        pass
    conn = sqlite3.connect(queue.path)
    conn.set_trace_callback(None)
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    for ordering in (AGG, NONE):
        claims.due_ids(conn, "hook", now=T0, ordering=ordering, limit=5)  # INDEXED BY fails if unusable
    assert sum("INDEXED BY" in s for s in seen) == 4
    conn.close()


def test_envelopes_are_encrypted_at_rest_with_a_dek(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import base64

    from eventdbx.errors import ConfigError

    dek = base64.b64encode(bytes(range(32))).decode()
    path = tmp_path / "q.db"
    queue = PluginQueue.open(path, dek=dek)
    [jid] = add(queue, new_job(1, envelope='{"event":{"payload":{"secret":"s3-cret"}}}'))
    [claimed] = queue.claim("hook", now=T0, limit=1, lease_secs=35, ordering=AGG)
    assert claimed.envelope == '{"event":{"payload":{"secret":"s3-cret"}}}'
    queue.close()
    conn = sqlite3.connect(path)
    stored = conn.execute("SELECT envelope FROM jobs WHERE id = ?", (jid,)).fetchone()[0]
    conn.close()
    assert stored.startswith("ENCv1:") and "s3-cret" not in stored
    for key, message in ((None, "must be configured"), (base64.b64encode(bytes(32)).decode(), "does not match")):
        other = PluginQueue.open(path, dek=key)
        with pytest.raises(ConfigError, match=message):
            other.get_job(jid)
        other.close()


def test_reads_nest_inside_a_transaction_and_writes_do_not(queue: PluginQueue) -> None:
    with queue.transaction() as tx:
        tx.set_cursor("hook", 3)
        state = queue.get_state("hook")
        assert state is not None and state.cursor == 3
        with pytest.raises(StorageError, match="nested write"):
            queue.set_worker_desired("hook", "stopped")
    assert queue.get_state("hook") is not None


def test_mark_delivered_many_is_one_transaction_with_per_job_token_checks(queue: PluginQueue) -> None:
    a1, a2, b1 = add(queue, new_job(1), new_job(2, version=2), new_job(3, aggregate="b"))
    jobs = queue.claim("hook", now=T0, limit=10, lease_secs=35, ordering=AGG)
    assert [j.id for j in jobs] == [a1, b1]
    items = [(a1, jobs[0].claim_token or "", T0, 200), (b1, "stale", T0, None)]
    assert queue.mark_delivered_many(items, now=T0 + 1) == [True, False]
    assert queue.get_job(a1).status is JobStatus.DONE  # type: ignore[union-attr]
    assert queue.get_job(b1).status is JobStatus.PROCESSING  # type: ignore[union-attr]
    assert [h.http_status for h in queue.show_job(a1).history] == [200]  # type: ignore[union-attr]
    assert claim(queue, now=T0 + 1) == [a2]
    state = queue.get_state("hook")
    assert state is not None and state.last_success_at == T0 + 1
