"""The background pruner: live policy, minimum interval, startup pass, errors are WARNs."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

import pytest

from eventdbx.clock import FakeClock
from eventdbx.config import load_settings
from eventdbx.domain.payload_mode import Ordering
from eventdbx.plugins.pruner import QueuePruner
from eventdbx.store.plugin_queue import PluginQueue
from eventdbx.store.plugin_queue_model import NewJob


def _done_job(queue: PluginQueue, event_id: int, at: float) -> None:
    with queue.transaction() as tx:
        tx.insert_jobs([NewJob(plugin_name="p", label="log (p)", aggregate_type="t", aggregate_id=str(event_id),
                               event_type="e", event_id=event_id, version=1,
                               event_created_at="2025-10-26T12:00:00Z", envelope="{}")], now=at)
    [job] = queue.claim("p", now=at, limit=1, lease_secs=35, ordering=Ordering.AGGREGATE)
    queue.mark_delivered(job.id, job.claim_token or "", started_at=at, now=at)


async def test_prunes_at_startup_with_live_settings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(tmp_path / "config.toml")
    clock = FakeClock()
    pruner = QueuePruner(settings, clock=clock)
    _done_job(pruner.queue, 1, clock.now - 90_000)
    _done_job(pruner.queue, 2, clock.now)
    assert pruner.interval == 300
    stop = asyncio.Event()
    with caplog.at_level(logging.INFO, logger="eventdbx.plugin"):
        task = asyncio.create_task(pruner.run(stop))
        for _ in range(500):
            if pruner.queue.counts().done == 1:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)
    assert pruner.queue.counts().done == 1
    assert "pruned 1 plugin job(s) (done ttl 1, done cap 0, dead ttl 0)" in caplog.messages
    prune = dataclasses.replace(settings.plugin_queue.prune, done_ttl_secs=0, interval_secs=5, max_done_jobs=0)
    pruner.refresh_settings(dataclasses.replace(
        settings, plugin_queue=dataclasses.replace(settings.plugin_queue, prune=prune)))
    assert pruner.interval == 60
    result = pruner.prune_once()
    assert result is not None and result.done_capped == 1
    pruner.close()


def test_pruning_off_and_failures_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(tmp_path / "config.toml")
    off = dataclasses.replace(settings.plugin_queue.prune, done_ttl_secs=0, max_done_jobs=None, dead_ttl_secs=0)
    pruner = QueuePruner(dataclasses.replace(
        settings, plugin_queue=dataclasses.replace(settings.plugin_queue, prune=off)))
    assert pruner.prune_once() is None
    pruner.refresh_settings(settings)
    pruner.queue.close()  # a closed connection makes the pass fail
    with caplog.at_level(logging.WARNING, logger="eventdbx.plugin"):
        assert pruner.prune_once() is None
    assert any(m.startswith("plugin queue pruning failed") for m in caplog.messages)
