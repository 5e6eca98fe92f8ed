"""Queue contract: counts, listings, skip/clear/remove and pruning (plugins.md §6, §10.2, §14)."""

from __future__ import annotations

import sqlite3

import pytest
from queue_support import T0, add, new_job

from eventdbx.domain.payload_mode import Ordering
from eventdbx.errors import PluginError
from eventdbx.store.plugin_queue import PluginQueue
from eventdbx.store.plugin_queue_model import JobStatus, PrunePolicy

AGG = Ordering.AGGREGATE


def deliver_all(queue: PluginQueue, now: float, plugin: str = "hook") -> None:
    for job in queue.claim(plugin, now=now, limit=1000, lease_secs=35, ordering=Ordering.NONE):
        queue.mark_delivered(job.id, job.claim_token or "", started_at=now, now=now)


def kill_all(queue: PluginQueue, now: float, plugin: str = "hook") -> None:
    for job in queue.claim(plugin, now=now, limit=1000, lease_secs=35, ordering=AGG):
        queue.mark_dead(job.id, job.claim_token or "", started_at=now, now=now, error="x", permanent=True)


def test_counts_and_listing_filters(queue: PluginQueue) -> None:
    add(queue, new_job(1), new_job(2, aggregate="b"), new_job(3, plugin="other"))
    deliver_all(queue, T0, "other")
    assert queue.counts() == queue.counts().__class__(pending=2, processing=0, done=1, dead=0)
    assert queue.counts("other").done == 1
    assert [j.event_id for j in queue.list_jobs(status=JobStatus.PENDING)] == [1, 2]
    assert [j.event_id for j in queue.list_jobs(plugin="hook", limit=1)] == [1]
    assert len(queue.list_jobs(limit=0)) == 3


def test_plugin_stats_unqueued_oldest_and_last_success(queue: PluginQueue) -> None:
    with queue.transaction() as tx:
        tx.set_cursor("hook", 7)
        tx.insert_jobs([new_job(1), new_job(2, aggregate="b")], now=T0)
    [job, _] = queue.claim("hook", now=T0 + 1, limit=2, lease_secs=35, ordering=AGG)
    queue.mark_delivered(job.id, job.claim_token or "", started_at=T0 + 1, now=T0 + 2)
    stats = queue.plugin_stats("hook", head_seq=10, now=T0 + 30)
    assert (stats.cursor, stats.unqueued, stats.pending, stats.processing) == (7, 3, 0, 1)
    assert stats.oldest_pending_secs == 30 and stats.last_success_at == T0 + 2
    assert queue.plugin_stats("ghost", head_seq=10, now=T0).unqueued == 0


def test_skip_refusals(queue: PluginQueue) -> None:
    a1, b1 = add(queue, new_job(1), new_job(2, aggregate="b"))
    with pytest.raises(PluginError, match="^job 99 not found$"):
        queue.skip_job(99, now=T0)
    queue.claim("hook", now=T0, limit=1, lease_secs=35, ordering=AGG)
    with pytest.raises(PluginError, match=f"^job {a1} is being delivered; try again when the attempt finishes$"):
        queue.skip_job(a1, now=T0)
    queue.skip_job(b1, now=T0)
    with pytest.raises(PluginError, match=f"^job {b1} is already done$"):
        queue.skip_job(b1, now=T0)


def test_clear_dead_unblocks_and_remove_purges(queue: PluginQueue) -> None:
    a1, a2, _b1 = add(queue, new_job(1), new_job(2, version=2), new_job(3, aggregate="b"))
    kill_all(queue, T0)
    assert queue.count_dead() == 2
    assert queue.clear_dead() == 2
    [job] = queue.claim("hook", now=T0, limit=5, lease_secs=35, ordering=AGG)
    assert job.id == a2
    with queue.transaction() as tx:
        tx.set_cursor("hook", 3)
    add(queue, new_job(4, aggregate="c"), new_job(5, plugin="other"))
    assert queue.remove_plugin("hook") == 2  # processing a2 + pending c
    assert queue.get_state("hook") is None
    assert queue.counts() == queue.counts().__class__(pending=1, processing=0, done=0, dead=0)
    del a1


def test_clear_done_older_than(queue: PluginQueue) -> None:
    add(queue, new_job(1), new_job(2, aggregate="b"))
    [old, _] = queue.claim("hook", now=T0, limit=2, lease_secs=35, ordering=AGG)
    queue.mark_delivered(old.id, old.claim_token or "", started_at=T0, now=T0)
    deliver_all(queue, T0 + 7200)
    for job in queue.list_jobs(status=JobStatus.PROCESSING):
        queue.mark_delivered(job.id, job.claim_token or "", started_at=T0, now=T0 + 7200)
    assert queue.count_done(now=T0 + 7300, older_than_secs=3600) == 1
    assert queue.clear_done(now=T0 + 7300, older_than_secs=3600) == 1
    assert queue.clear_done(now=T0 + 7300) == 1
    assert queue.counts().done == 0


def _done_jobs(queue: PluginQueue, completions: list[float]) -> list[int]:
    ids = add(queue, *(new_job(i, aggregate=f"a{i}") for i in range(len(completions))))
    claimed = {j.id: j for j in queue.claim("hook", now=T0, limit=100, lease_secs=35, ordering=AGG)}
    for jid, at in zip(ids, completions, strict=True):
        queue.mark_delivered(jid, claimed[jid].claim_token or "", started_at=at, now=at)
    return ids


def test_prune_ttl_from_completion(queue: PluginQueue) -> None:
    old, fresh = _done_jobs(queue, [T0 - 120, T0])
    result = queue.prune(PrunePolicy(done_ttl_secs=60), now=T0)
    assert result.done_expired == 1
    assert [j.id for j in queue.list_jobs()] == [fresh]
    conn = sqlite3.connect(queue.path)
    assert conn.execute("SELECT count(*) FROM history WHERE job_id = ?", (old,)).fetchone()[0] == 0
    conn.close()


@pytest.mark.parametrize(("cap", "left"), [(2, 2), (0, 0)])
def test_prune_max_done_jobs_keeps_newest(queue: PluginQueue, cap: int, left: int) -> None:
    ids = _done_jobs(queue, [T0 + 4, T0 + 1, T0 + 3, T0 + 2])
    result = queue.prune(PrunePolicy(done_ttl_secs=0, max_done_jobs=cap), now=T0 + 10)
    assert result.done_capped == 4 - left
    assert [j.id for j in queue.list_jobs()] == ([ids[0], ids[2]] if left else [])


def test_prune_dead_ttl_and_batches(queue: PluginQueue) -> None:
    add(queue, *(new_job(i, aggregate=f"a{i}") for i in range(2500)))
    kill_all(queue, T0 - 100)
    for job in queue.claim("hook", now=T0, limit=5000, lease_secs=35, ordering=AGG):
        queue.mark_dead(job.id, job.claim_token or "", started_at=T0, now=T0, error="x", permanent=True)
    assert queue.prune(PrunePolicy(done_ttl_secs=0, dead_ttl_secs=0), now=T0).dead_expired == 0
    result = queue.prune(PrunePolicy(done_ttl_secs=0, dead_ttl_secs=50), now=T0)
    assert result.dead_expired == 1000
    assert queue.count_dead() == 1500


def test_delete_job_releases_its_aggregate(queue: PluginQueue) -> None:
    a1, a2 = add(queue, new_job(1), new_job(2, version=2))
    assert queue.delete_job(a1) and not queue.delete_job(a1)
    [job] = queue.claim("hook", now=T0, limit=5, lease_secs=35, ordering=AGG)
    assert job.id == a2


def test_pruning_gives_space_back(queue: PluginQueue) -> None:
    big = '{"event":{"payload":"' + "x" * 4000 + '"}}'
    add(queue, *(new_job(i, aggregate=f"a{i}", envelope=big) for i in range(600)))
    deliver_all(queue, T0)
    conn = sqlite3.connect(queue.path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = queue.path.stat().st_size
    queue.prune(PrunePolicy(done_ttl_secs=0, max_done_jobs=0), now=T0)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert queue.path.stat().st_size < before / 4
