"""Randomised operations against the queue: aggregate heads always match a from-scratch recomputation, and
aggregate ordering never has two jobs of one aggregate in flight nor claims a job behind an open one."""

from __future__ import annotations

import random
import sqlite3

import pytest
from queue_support import T0, add, new_job

from eventdbx.domain.payload_mode import Ordering
from eventdbx.errors import PluginError
from eventdbx.store.plugin_queue import PluginQueue
from eventdbx.store.plugin_queue_model import JobStatus, PrunePolicy


def _check_heads(queue: PluginQueue) -> None:
    conn = sqlite3.connect(queue.path)
    wrong = conn.execute(
        "SELECT count(*) FROM jobs j WHERE status <> 'done' AND head <> (id = (SELECT min(id) FROM jobs k"
        " WHERE k.plugin = j.plugin AND k.aggregate_type = j.aggregate_type AND k.aggregate_id = j.aggregate_id"
        " AND k.status <> 'done'))"
    ).fetchone()[0]
    conn.close()
    assert wrong == 0


def _check_in_flight(queue: PluginQueue) -> None:
    processing = queue.list_jobs(status=JobStatus.PROCESSING)
    keys = [(j.plugin_name, j.aggregate_id) for j in processing]
    assert len(keys) == len(set(keys))
    for job in processing:
        detail = queue.show_job(job.id)
        assert detail is not None and detail.blocked_by is None


class Model:
    """Drives random operations against one queue."""

    def __init__(self, queue: PluginQueue, rng: random.Random) -> None:
        self.queue, self.rng, self.now, self.event = queue, rng, T0, 0

    def add(self) -> None:
        batch = []
        for _ in range(self.rng.randrange(1, 6)):
            self.event += 1
            batch.append(new_job(self.event, aggregate=f"a{self.rng.randrange(4)}",
                                 envelope=None if self.rng.random() < 0.1 else "{}"))
        add(self.queue, *batch, now=self.now)

    def deliver(self) -> None:
        q, now = self.queue, self.now
        for job in q.claim("hook", now=now, limit=self.rng.randrange(1, 4), lease_secs=5, ordering=Ordering.AGGREGATE):
            token, roll = job.claim_token or "", self.rng.random()
            if roll < 0.4:
                q.mark_delivered(job.id, token, started_at=now, now=now)
            elif roll < 0.6:
                q.mark_retry(job.id, token, started_at=now, now=now, error="e", next_retry_at=now + 2)
            elif roll < 0.75:
                q.mark_dead(job.id, token, started_at=now, now=now, error="e", permanent=True)
            elif roll < 0.85:
                q.mark_released(job.id, token, started_at=now, now=now)
            # else: left in flight until its lease expires

    def skip(self) -> None:
        candidates = self.queue.list_jobs(status=self.rng.choice([JobStatus.DEAD, JobStatus.PENDING]))
        if candidates:
            try:
                self.queue.skip_job(self.rng.choice(candidates).id, now=self.now)
            except PluginError:
                pytest.fail("skip refused a dead or pending job")

    def step(self) -> None:
        self.now += self.rng.uniform(0, 3)
        q, now = self.queue, self.now
        ops = [
            (0.30, self.add), (0.55, self.deliver),
            (0.65, lambda: q.expire_leases(now=now, max_attempts=3)),
            (0.72, lambda: q.retry_dead(now=now)), (0.80, self.skip), (0.85, q.clear_dead),
            (0.90, lambda: q.prune(PrunePolicy(done_ttl_secs=5, dead_ttl_secs=20), now=now)),
            (1.00, lambda: q.recover_interrupted(now=now, max_attempts=3)),
        ]
        roll = self.rng.random()
        next(op for limit, op in ops if roll < limit)()


@pytest.mark.parametrize("seed", range(12))
def test_random_operations_keep_heads_and_ordering(queue: PluginQueue, seed: int) -> None:
    model = Model(queue, random.Random(seed))
    for _ in range(250):
        model.step()
        _check_heads(queue)
        _check_in_flight(queue)
