"""Direct edits of a test data dir's plugin_queue.db: make jobs dead or done without a daemon."""

from __future__ import annotations

import time
from pathlib import Path

from eventdbx.domain.payload_mode import Ordering
from eventdbx.store.plugin_queue import PluginQueue


def _open(data_dir: Path) -> PluginQueue:
    return PluginQueue.open(data_dir / "plugin_queue.db", create=False)


def kill_jobs(data_dir: Path, plugin: str, count: int, *, error: str = "boom") -> list[int]:
    """Claim up to `count` due jobs of `plugin` and mark them dead with `error`."""
    queue = _open(data_dir)
    try:
        now = time.time()
        jobs = queue.claim(plugin, now=now, limit=count, lease_secs=60, ordering=Ordering.NONE)
        for job in jobs:
            assert job.claim_token is not None
            assert queue.mark_dead(
                job.id, job.claim_token, started_at=now, now=now, error=error, permanent=True
            )
        return [job.id for job in jobs]
    finally:
        queue.close()


def deliver_jobs(data_dir: Path, plugin: str, count: int, *, now: float | None = None) -> list[int]:
    """Claim up to `count` due jobs of `plugin` and mark them delivered (done) at `now`."""
    queue = _open(data_dir)
    try:
        moment = time.time() if now is None else now
        jobs = queue.claim(plugin, now=moment, limit=count, lease_secs=60, ordering=Ordering.NONE)
        for job in jobs:
            assert job.claim_token is not None
            assert queue.mark_delivered(job.id, job.claim_token, started_at=moment, now=moment)
        return [job.id for job in jobs]
    finally:
        queue.close()


def claim_jobs(data_dir: Path, plugin: str, count: int) -> list[int]:
    """Claim jobs and leave them processing."""
    queue = _open(data_dir)
    try:
        jobs = queue.claim(
            plugin, now=time.time(), limit=count, lease_secs=600, ordering=Ordering.NONE
        )
        return [job.id for job in jobs]
    finally:
        queue.close()
