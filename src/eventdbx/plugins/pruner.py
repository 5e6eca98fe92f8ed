"""The daemon's background pruning of plugin_queue.db (plugins.md §6): at startup, then every max(interval, 60) s.

Owns only the schedule; what gets deleted is `PluginQueue.prune`. Errors are a WARN and retried on the next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from eventdbx.clock import Clock, SystemClock
from eventdbx.store.plugin_queue import PluginQueue
from eventdbx.store.plugin_queue_model import PrunePolicy, PruneResult

if TYPE_CHECKING:
    from eventdbx.config import Settings

log = logging.getLogger("eventdbx.plugin")
MIN_INTERVAL_SECS = 60.0


class QueuePruner:
    """Runs `PluginQueue.prune` with the live `[plugin_queue.prune]` settings."""

    def __init__(self, settings: Settings, *, queue: PluginQueue | None = None, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self._own_queue = queue is None
        self.queue = queue or PluginQueue.open(
            settings.paths.plugin_queue, durability=settings.durability, dek=settings.data_encryption_key
        )

    def close(self) -> None:
        """Close the queue if this pruner opened it."""
        if self._own_queue:
            self.queue.close()

    def refresh_settings(self, settings: Settings) -> None:
        """Adopt live config changes (the policy and the interval are read at each pass)."""
        self.settings = settings

    @property
    def interval(self) -> float:
        """Seconds between passes: `interval_secs`, at least 60."""
        return max(float(self.settings.plugin_queue.prune.interval_secs), MIN_INTERVAL_SECS)

    def prune_once(self) -> PruneResult | None:
        """One pass; None when pruning is off or the pass failed (logged)."""
        policy = PrunePolicy.from_settings(self.settings.plugin_queue.prune)
        if not policy.enabled:
            return None
        try:
            result = self.queue.prune(policy, now=self.clock.time())
        except Exception as exc:  # retried at the next interval
            log.warning("plugin queue pruning failed: %s", exc)
            return None
        removed = result.done_expired + result.done_capped + result.dead_expired
        if removed:
            log.info(
                "pruned %d plugin job(s) (done ttl %d, done cap %d, dead ttl %d)",
                removed, result.done_expired, result.done_capped, result.dead_expired,
            )
        return result

    async def run(self, stop_event: asyncio.Event) -> None:
        """Prune at startup and then every `interval` seconds until `stop_event` is set."""
        while not stop_event.is_set():
            await asyncio.to_thread(self.prune_once)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop_event.wait(), timeout=self.interval)
