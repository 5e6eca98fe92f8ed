"""The daemon's plugin pipeline: enqueuer → queue → dispatcher → sinks, plus pruning and process workers.

Composition only: each part owns its behaviour. The daemon runs it in its own process (`eventdbx.pipeline_child`).
Shutdown order follows plugins.md §4: the enqueuer finishes its transaction and claiming stops, in-flight deliveries
get the grace period, then process workers stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from eventdbx.plugins.dispatcher import Dispatcher
from eventdbx.plugins.enqueuer import Enqueuer
from eventdbx.plugins.pruner import QueuePruner
from eventdbx.plugins.registry import PluginDefinition, PluginRegistry
from eventdbx.plugins.sinks import build_sink
from eventdbx.plugins.sinks.process import ProcessSink
from eventdbx.plugins.supervisor import WorkerSupervisor
from eventdbx.store.plugin_queue import PluginQueue

if TYPE_CHECKING:
    from eventdbx.config import Settings
    from eventdbx.plugins.sink import Sink

log = logging.getLogger("eventdbx.plugin")
SUPERVISE_SECS = 0.5


class PluginPipeline:
    """Owns the enqueuer, dispatcher, pruner and worker supervisor of one daemon."""

    def __init__(
        self, settings: Settings, *, thread_setup: Callable[[], object] | None = None
    ) -> None:
        self.settings = settings
        paths = settings.paths
        self.queue = PluginQueue.open(
            paths.plugin_queue, durability=settings.durability, dek=settings.data_encryption_key
        )
        self.registry = PluginRegistry(paths.plugins_json, warn=lambda m: log.warning("%s", m))
        self.supervisor = WorkerSupervisor(
            queue=self.queue, plugins_dir=paths.plugins_dir, control_addr=settings.socket.bind_addr
        )
        self.dispatcher = Dispatcher(
            settings, self.queue, self.registry, sink_factory=self._sink, is_runnable=self._runnable
        )
        self.enqueuer = Enqueuer(settings, on_jobs=self.dispatcher.wake, thread_setup=thread_setup)
        self.pruner = QueuePruner(settings, queue=self.queue)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._running_workers: frozenset[str] = frozenset()

    def _sink(self, definition: PluginDefinition) -> Sink:
        if str(definition.kind) == "process":
            name = definition.name
            return ProcessSink(name, lambda: self.supervisor.worker(name))
        return build_sink(definition, self.settings)

    def _runnable(self, definition: PluginDefinition) -> bool:
        return str(definition.kind) != "process" or self.supervisor.is_running(definition.name)

    def wake(self) -> None:
        """A socket append committed (the daemon's wake message): run an enqueue pass soon."""
        self.enqueuer.wake()

    async def start(self) -> None:
        """Start every loop."""
        await self._supervise_once()
        self._tasks = [
            asyncio.create_task(self.enqueuer.run(self._stop), name="enqueuer"),
            asyncio.create_task(self.dispatcher.run(self._stop), name="dispatcher"),
            asyncio.create_task(self.pruner.run(self._stop), name="pruner"),
            asyncio.create_task(self._supervise(), name="supervisor"),
        ]

    async def _supervise_once(self) -> None:
        self.registry.reload_if_changed()
        await self.supervisor.sync(self.registry.current())
        running = frozenset(
            d.name for d in self.registry.current() if self.supervisor.is_running(d.name)
        )
        if running != self._running_workers:
            self._running_workers = running
            self.dispatcher.reload()

    async def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                await self._supervise_once()
            except Exception:  # one bad pass must not end supervision
                log.exception("process plugin supervision failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), SUPERVISE_SECS)

    def refresh_settings(self, settings: Settings) -> None:
        """Apply live keys (attempts, prune policy, grace)."""
        self.settings = settings
        for part in (self.enqueuer, self.dispatcher, self.pruner):
            part.refresh_settings(settings)

    async def aclose(self) -> None:
        """Stop in order and release everything."""
        self._stop.set()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        for task, result in zip(self._tasks, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                log.error("%s stopped with an error: %s", task.get_name(), result)
        await self.supervisor.aclose()
        self.enqueuer.close()
        self.pruner.close()
        self.queue.close()
