"""Job fields as shown (plugins.md §3): next_retry_at only while backing off; job ids within SQLite's INTEGER range."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import DbxEnv

from eventdbx.domain.payload_mode import Ordering
from eventdbx.errors import PluginError
from eventdbx.store.plugin_queue import PluginQueue
from eventdbx.store.plugin_queue_jobs import MAX_JOB_ID
from eventdbx.store.plugin_queue_model import Job, JobStatus, NewJob

T0 = 1_800_000_000.0


def _new(event_id: int, aggregate_id: str = "o1") -> NewJob:
    return NewJob(
        plugin_name="hook",
        label="http (hook)",
        aggregate_type="order",
        aggregate_id=aggregate_id,
        event_type="order_created",
        event_id=event_id,
        version=event_id,
        event_created_at="2025-10-26T12:00:00Z",
        envelope='{"n":1}',
    )


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[PluginQueue]:
    opened = PluginQueue.open(tmp_path / "plugin_queue.db")
    yield opened
    opened.close()


def _claim_one(queue: PluginQueue, now: float, ordering: Ordering = Ordering.AGGREGATE) -> Job:
    [job] = queue.claim("hook", now=now, limit=1, lease_secs=35, ordering=ordering)
    return job


def _fail(queue: PluginQueue, job: Job, *, now: float, retry_at: float) -> None:
    assert job.claim_token is not None
    assert queue.mark_retry(
        job.id, job.claim_token, started_at=now, now=now, error="503", next_retry_at=retry_at
    )


def test_next_retry_at_is_shown_only_while_a_pending_job_backs_off(queue: PluginQueue) -> None:
    with queue.transaction() as tx:
        [first, second] = tx.insert_jobs([_new(1), _new(2)], now=T0)
    _fail(queue, _claim_one(queue, T0), now=T0, retry_at=T0 + 2)
    job = queue.get_job(first)
    assert job is not None and job.next_retry_at == T0 + 2  # stored as written
    assert job.to_dict(T0 + 1)["next_retry_at"] == "2027-01-15T08:00:02.000Z"  # backing off
    assert job.to_dict(T0 + 2)["next_retry_at"] is None  # due
    assert job.to_dict(T0 + 5)["next_retry_at"] is None
    assert (
        queue.claim("hook", now=T0 + 1, limit=8, lease_secs=35, ordering=Ordering.AGGREGATE) == []
    )
    processing = _claim_one(queue, T0 + 3)  # being delivered
    assert processing.id == first and processing.next_retry_at is None
    assert processing.to_dict(T0 + 3)["next_retry_at"] is None
    assert processing.claim_token is not None
    assert queue.mark_dead(
        first, processing.claim_token, started_at=T0 + 3, now=T0 + 3, error="gone", permanent=True
    )
    dead = queue.get_job(first)
    assert (
        dead is not None
        and dead.status is JobStatus.DEAD
        and dead.to_dict()["next_retry_at"] is None
    )
    detail = queue.show_job(second, ordering=Ordering.AGGREGATE)
    assert detail is not None and detail.blocked_by == first
    assert detail.to_dict(T0 + 3)["next_retry_at"] is None  # blocked


def test_a_blocked_job_shows_no_retry_time_even_with_a_stale_one(queue: PluginQueue) -> None:
    """`none` ordering let a later job back off; switched to `aggregate`, it is blocked by the dead one."""
    with queue.transaction() as tx:
        [first, second] = tx.insert_jobs([_new(1), _new(2)], now=T0)
    head = _claim_one(queue, T0, Ordering.NONE)
    later = _claim_one(queue, T0, Ordering.NONE)
    assert head.claim_token is not None
    assert queue.mark_dead(
        first, head.claim_token, started_at=T0, now=T0, error="x", permanent=True
    )
    _fail(queue, later, now=T0, retry_at=T0 + 60)
    shown = queue.show_job(second, ordering=Ordering.AGGREGATE)
    assert (
        shown is not None
        and shown.blocked_by == first
        and shown.to_dict(T0)["next_retry_at"] is None
    )
    unordered = queue.show_job(second, ordering=Ordering.NONE)
    assert unordered is not None and unordered.to_dict(T0)["next_retry_at"] is not None


@pytest.mark.parametrize("bad", [MAX_JOB_ID + 1, 1 << 64, -1, -(1 << 63) - 1])
def test_job_ids_outside_the_sqlite_range_are_plugin_errors(queue: PluginQueue, bad: int) -> None:
    calls = [
        lambda: queue.get_job(bad),
        lambda: queue.show_job(bad),
        lambda: queue.skip_job(bad, now=T0),
        lambda: queue.retry_dead(now=T0, job_id=bad),
        lambda: queue.delete_job(bad),
        lambda: queue.held_back_count(bad),
    ]
    for call in calls:
        with pytest.raises(PluginError, match=f"invalid job id '{bad}'"):
            call()
    assert (
        queue.get_job(MAX_JOB_ID) is None and queue.get_job(0) is None
    )  # in range: simply not found
    assert queue.retry_dead(now=T0, job_id=MAX_JOB_ID) == []


def test_dbx_queue_shows_null_next_retry_once_due(dbx: DbxEnv) -> None:
    dbx.ok("plugin", "config", "http", "--name", "hook", "--endpoint", "http://127.0.0.1:9/x")
    for n in range(2):
        dbx.ok("aggregate", "apply", "order", f"o-{n}", "order_created", "--field", f"n={n}")
    queue = PluginQueue.open(dbx.data_dir / "plugin_queue.db", create=False)
    try:
        now = time.time()
        waiting, due = queue.claim("hook", now=now, limit=2, lease_secs=60, ordering=Ordering.NONE)
        _fail(queue, waiting, now=now, retry_at=now + 3600)
        _fail(queue, due, now=now, retry_at=now - 1)
    finally:
        queue.close()
    shown = {j["id"]: j["next_retry_at"] for j in json.loads(dbx.ok("queue", "--json").out)["jobs"]}
    assert shown[str(due.id)] is None and shown[str(waiting.id)] is not None
    assert json.loads(dbx.ok("queue", "show", str(due.id)).out)["next_retry_at"] is None
    text = dbx.ok("queue").out
    assert f'id={due.id} plugin="http (hook)" status="pending" attempts=1 next_retry=- ' in text
    assert f'id={waiting.id} plugin="http (hook)" status="pending" attempts=1 next_retry=20' in text
    out_of_range = dbx.fail("queue", "show", str(MAX_JOB_ID + 1), code=2)
    assert f"invalid job id '{MAX_JOB_ID + 1}'" in out_of_range.err
