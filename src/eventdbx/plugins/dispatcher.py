"""The dispatcher (plugins.md §4): one delivery loop per enabled `emit_events` plugin, kept in step with
plugins.json; startup recovery, the lease sweep, stall warnings and graceful shutdown.

It runs beside the write path and never blocks it: appends only call `wake()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from eventdbx.clock import Clock, SystemClock
from eventdbx.plugins import dispatcher_log
from eventdbx.plugins.dispatcher_loop import DispatcherTiming, PluginLoop
from eventdbx.plugins.dispatcher_outcome import OutcomeRecorder
from eventdbx.plugins.sinks import build_sink, has_sink_factory

if TYPE_CHECKING:
    from eventdbx.config import Settings
    from eventdbx.plugins.registry import PluginDefinition
    from eventdbx.plugins.sink import Sink
    from eventdbx.store.plugin_queue import PluginQueue
    from eventdbx.store.plugin_queue_model import Job

log = logging.getLogger("eventdbx.plugin")

__all__ = ["DefinitionSource", "Dispatcher", "DispatcherTiming"]


@runtime_checkable
class DefinitionSource(Protocol):
    """Where plugin definitions come from (`PluginRegistry`: re-reads plugins.json when it changes)."""

    def current(self) -> list[PluginDefinition]:
        """The current definitions."""
        ...


SinkBuilder = Callable[["PluginDefinition"], "Sink"]
Runnable = Callable[["PluginDefinition"], bool]


class Dispatcher:
    """Runs delivery loops for the daemon. `run(stop_event)` until the event is set, then drains."""

    def __init__(
        self,
        settings: Settings,
        queue: PluginQueue,
        registry: DefinitionSource | Callable[[], Sequence[PluginDefinition]],
        *,
        clock: Clock | None = None,
        sink_factory: SinkBuilder | None = None,
        is_runnable: Runnable | None = None,
        timing: DispatcherTiming | None = None,
    ) -> None:
        self.settings = settings
        self.queue = queue
        self._definitions: Callable[[], Sequence[PluginDefinition]] = (
            registry.current if isinstance(registry, DefinitionSource) else registry
        )
        self.clock: Clock = clock or SystemClock()
        self.timing = timing or DispatcherTiming()
        self._sink_factory = sink_factory
        self._is_runnable = is_runnable
        self._loops: dict[str, PluginLoop] = {}
        self._unbuildable: dict[str, PluginDefinition] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()
        self._running = False
        self._own_stop: asyncio.Event | None = None
        self._own_task: asyncio.Task[None] | None = None

    # -- public API ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between startup recovery and the end of shutdown."""
        return self._running

    def active_plugins(self) -> list[str]:
        """Names of plugins with a running delivery loop."""
        return sorted(self._loops)

    def plugin_loop(self, name: str) -> PluginLoop | None:
        """The loop of one plugin (tests, diagnostics)."""
        return self._loops.get(name)

    def wake(self, plugins: Iterable[str] | None = None) -> None:
        """New jobs (for these plugins, or all): claim now. Thread-safe; cheap enough for every append."""
        names = None if plugins is None else set(plugins)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if not any(
            (names is None or name in names) and plugin_loop.can_use_wake()
            for name, plugin_loop in list(self._loops.items())
        ):
            return  # no loop could claim now: do not wake the event loop for nothing
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake_now(names)
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake_now, names)

    def reload(self) -> None:
        """Re-check plugin definitions now (e.g. after a `plugin start|stop`). Thread-safe."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._changed.set)

    def refresh_settings(self, settings: Settings) -> None:
        """Live settings (`plugin_max_attempts`, shutdown grace)."""
        self.settings = settings
        for plugin_loop in self._loops.values():
            plugin_loop.set_max_attempts(settings.plugin_max_attempts)

    async def start(self) -> None:
        """Start `run()` as a background task (pair with `aclose()`)."""
        if self._own_task is None:
            self._own_stop = asyncio.Event()
            self._own_task = asyncio.create_task(self.run(self._own_stop), name="plugin dispatcher")

    async def aclose(self) -> None:
        """Graceful shutdown of a dispatcher started with `start()`: stop claiming, drain, release, close."""
        task, stop = self._own_task, self._own_stop
        self._own_task = self._own_stop = None
        if task is None or stop is None:
            return
        stop.set()
        await task

    async def run(self, stop_event: asyncio.Event) -> None:
        """Recover interrupted jobs, run loops in step with plugins.json until `stop_event`, then drain."""
        self._loop = asyncio.get_running_loop()
        self._running = True
        try:
            await self._recover()
            await self._sync()
            sweeper = asyncio.create_task(self._sweep_forever(stop_event), name="dispatcher sweep")
            try:
                await self._watch(stop_event)
            finally:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
        finally:
            await self._stop_all()
            self._running = False

    # -- internals -------------------------------------------------------------------------------

    def _wake_now(self, names: set[str] | None) -> None:
        for name, plugin_loop in self._loops.items():
            if (names is None or name in names) and plugin_loop.can_use_wake():
                plugin_loop.wake()

    async def _watch(self, stop_event: asyncio.Event) -> None:
        while not stop_event.is_set():
            self._changed.clear()
            stop_wait = asyncio.ensure_future(stop_event.wait())
            change_wait = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait(
                    {stop_wait, change_wait},
                    timeout=self.timing.reload_secs,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                for waiter in (stop_wait, change_wait):
                    waiter.cancel()
            if stop_event.is_set():
                return
            try:
                await self._sync()
            except Exception:
                log.exception("applying plugins.json changes failed")

    def _wanted(self, definitions: Sequence[PluginDefinition]) -> dict[str, PluginDefinition]:
        wanted: dict[str, PluginDefinition] = {}
        for definition in definitions:
            if not (definition.enabled and definition.emit_events):
                continue
            if self._sink_factory is None and not has_sink_factory(definition.kind):
                continue
            if self._is_runnable is not None and not self._is_runnable(definition):
                continue
            wanted[definition.name] = definition
        return wanted

    async def _sync(self) -> None:
        definitions = await asyncio.to_thread(self._definitions)
        wanted = self._wanted(definitions)
        grace = float(self.settings.plugin_queue.shutdown_grace_secs)
        stopping = [
            self._loops.pop(name)
            for name, plugin_loop in list(self._loops.items())
            if _needs_restart(plugin_loop.definition, wanted.get(name))
        ]
        if stopping:
            await asyncio.gather(*(pl.stop(grace) for pl in stopping), return_exceptions=True)
        for name, definition in wanted.items():
            if name in self._loops:
                self._loops[name].definition = definition  # e.g. a new payload mode: no restart
            else:
                self._start_loop(definition)

    def _start_loop(self, definition: PluginDefinition) -> None:
        if self._unbuildable.get(definition.name) == definition:
            return  # already reported; retried when the definition changes
        try:
            sink = (self._sink_factory or build_sink)(definition)
        except Exception as exc:
            self._unbuildable[definition.name] = definition
            log.error("plugin %s cannot start: %s", definition.label, exc)
            return
        self._unbuildable.pop(definition.name, None)
        plugin_loop = PluginLoop(
            definition,
            sink,
            self.queue,
            clock=self.clock,
            max_attempts=self.settings.plugin_max_attempts,
            timing=self.timing,
        )
        self._loops[definition.name] = plugin_loop
        plugin_loop.start()

    async def _stop_all(self) -> None:
        grace = float(self.settings.plugin_queue.shutdown_grace_secs)
        loops, self._loops = list(self._loops.values()), {}
        if loops:
            await asyncio.gather(*(pl.stop(grace) for pl in loops), return_exceptions=True)

    async def _recover(self) -> None:
        jobs = await asyncio.to_thread(
            self.queue.recover_interrupted,
            now=self.clock.time(),
            max_attempts=self.settings.plugin_max_attempts,
        )
        if jobs:
            log.warning("recovered %d plugin job(s) interrupted by a daemon restart", len(jobs))
        await self._log_dead(jobs)

    async def _sweep_forever(self, stop_event: asyncio.Event) -> None:
        while not stop_event.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timing.sweep_secs):
                    await stop_event.wait()
            if stop_event.is_set():
                return
            try:
                await self.sweep()
            except Exception:
                log.exception("plugin lease sweep failed")

    async def sweep(self) -> None:
        """One pass: expire leases (cancel hung calls) and report stalled plugins."""
        expired = await asyncio.to_thread(
            self.queue.expire_leases,
            now=self.clock.time(),
            max_attempts=self.settings.plugin_max_attempts,
        )
        by_plugin: dict[str, set[int]] = {}
        for job in expired:
            dispatcher_log.lease_expired(job.label, job=job.id, attempt=job.attempts)
            by_plugin.setdefault(job.plugin_name, set()).add(job.id)
        for name, ids in by_plugin.items():
            plugin_loop = self._loops.get(name)
            if plugin_loop is not None:
                plugin_loop.cancel_expired(ids)
        await self._log_dead(expired)
        await self._check_stalls()

    async def _log_dead(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            if job.status == "dead":
                recorder = OutcomeRecorder(
                    queue=self.queue,
                    label=job.label,
                    max_attempts=self.settings.plugin_max_attempts,
                )
                await asyncio.to_thread(
                    recorder.log_dead, job, reason=job.last_error or "", permanent=False
                )

    async def _check_stalls(self) -> None:
        window = float(self.settings.plugin_queue.stall_after_secs)
        mono = self.clock.monotonic()
        for plugin_loop in list(self._loops.values()):
            idle = mono - plugin_loop.last_finished
            if plugin_loop.stall_reported or idle <= window or plugin_loop.circuit.is_open:
                continue
            due = await asyncio.to_thread(
                self.queue.count_due,
                plugin_loop.name,
                now=self.clock.time(),
                ordering=plugin_loop.definition.ordering,
            )
            if due > 0:
                plugin_loop.stall_reported = True
                dispatcher_log.stalled(plugin_loop.definition.label, due_jobs=due, idle_secs=idle)


def _needs_restart(running: PluginDefinition, wanted: PluginDefinition | None) -> bool:
    """Only what delivery depends on restarts a loop; payload mode only matters at enqueue time."""
    if wanted is None:
        return True
    return (running.config, running.ordering, running.concurrency) != (
        wanted.config,
        wanted.ordering,
        wanted.concurrency,
    )
