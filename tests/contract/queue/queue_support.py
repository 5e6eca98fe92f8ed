"""Helpers for the plugin queue contract suite: a job factory and an insert shortcut."""

from __future__ import annotations

from eventdbx.store.plugin_queue import PluginQueue
from eventdbx.store.plugin_queue_model import NewJob

T0 = 1761480000.0


def new_job(
    event_id: int, *, plugin: str = "hook", aggregate: str = "a-1", version: int = 1,
    envelope: str | None = '{"event":{}}', replay: bool = False,
) -> NewJob:
    """A job for event `event_id` of `order`/`aggregate`."""
    return NewJob(
        plugin_name=plugin, label=f"http ({plugin})", aggregate_type="order", aggregate_id=aggregate,
        event_type="order_created", event_id=event_id, version=version,
        event_created_at="2025-10-26T12:00:00.123456Z", envelope=envelope, replay=replay,
    )


def add(queue: PluginQueue, *jobs: NewJob, now: float = T0) -> list[int]:
    """Insert jobs in one transaction; returns their ids."""
    with queue.transaction() as tx:
        return tx.insert_jobs(list(jobs), now=now)
