"""Keeps one ProcessWorker per enabled process plugin, in step with plugins.json and `dbx plugin start|stop`.

The desired state is written by the CLI into plugin_queue.db; the actual state is written back here so
`dbx plugin status` and `dbx queue` can show it. The supervisor never delivers jobs itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from eventdbx.errors import EventDBXError
from eventdbx.plugins.install import current_target, resolve_installed
from eventdbx.plugins.process_worker import ProcessWorker, WorkerSpec, WorkerState, WorkerTiming

if TYPE_CHECKING:
    from eventdbx.plugins.registry import PluginDefinition, ProcessConfig
    from eventdbx.store.plugin_queue import PluginQueue

log = logging.getLogger("eventdbx.plugin")
DESIRED_START = "start"
DESIRED_RUNNING = "running"
DESIRED_STOPPED = "stopped"


@dataclass(slots=True)
class _Managed:
    spec: WorkerSpec
    worker: ProcessWorker
    task: asyncio.Task[None]


class WorkerSupervisor:
    """Starts, restarts on reconfiguration and stops process plugin workers."""

    def __init__(
        self,
        *,
        queue: PluginQueue,
        plugins_dir: Path,
        control_addr: str,
        timing: WorkerTiming | None = None,
    ) -> None:
        self.queue = queue
        self.plugins_dir = plugins_dir
        self.control_addr = control_addr
        self.timing = timing
        self._managed: dict[str, _Managed] = {}
        self._reported: dict[str, tuple[object, ...]] = {}

    def worker(self, name: str) -> ProcessWorker | None:
        """The live worker of a plugin, if any (the process sink delivers through it)."""
        managed = self._managed.get(name)
        return managed.worker if managed is not None else None

    def _spec(self, definition: PluginDefinition, config: ProcessConfig) -> WorkerSpec:
        installed = resolve_installed(self.plugins_dir, config.name, config.version)
        return WorkerSpec(
            name=definition.name,
            plugin_id=config.name,
            version=installed.version,
            target=current_target(),
            binary_path=installed.binary_path,
            args=tuple(config.args),
            env=dict(config.env),
            working_dir=config.working_dir,
            ack=config.ack,
            payload_mode=str(definition.payload_mode),
            timeout_secs=float(config.timeout_secs),
            control_addr=self.control_addr,
            run_dir=self.plugins_dir / "run",
        )

    async def sync(self, definitions: Sequence[PluginDefinition]) -> None:
        """Bring workers in line with the definitions and the desired states; report actual states."""
        wanted: dict[str, PluginDefinition] = {
            d.name: d for d in definitions if str(d.kind) == "process" and d.enabled
        }
        for name in list(self._managed):
            if name not in wanted:
                await self._stop(name)
        for definition in wanted.values():
            await self._sync_one(definition)
        await asyncio.to_thread(self._report_all, list(wanted))

    async def _sync_one(self, definition: PluginDefinition) -> None:
        name = definition.name
        state = await asyncio.to_thread(self.queue.get_state, name)
        desired = state.worker_desired if state is not None else None
        if desired == DESIRED_STOPPED:
            await self._stop(name)
            return
        from eventdbx.plugins.registry import ProcessConfig

        config = definition.config
        if not isinstance(config, ProcessConfig):
            return
        try:
            spec = self._spec(definition, config)
        except EventDBXError as exc:
            await self._stop(name)
            await asyncio.to_thread(
                self._report, name, "not-installed", None, {"reason": exc.message}
            )
            return
        managed = self._managed.get(name)
        if managed is not None and managed.spec != spec:
            log.info("process plugin '%s' reconfigured; restarting", name)
            await self._stop(name)
            managed = None
        if managed is None:
            worker = ProcessWorker(spec, self.timing)
            self._managed[name] = _Managed(
                spec=spec, worker=worker, task=asyncio.create_task(worker.run())
            )
        elif desired == DESIRED_START:
            managed.worker.start()
        if desired == DESIRED_START:
            await asyncio.to_thread(self.queue.set_worker_desired, name, DESIRED_RUNNING)

    async def _stop(self, name: str, *, shutdown: bool = False) -> None:
        managed = self._managed.pop(name, None)
        if managed is None:
            return
        await managed.worker.stop(shutdown=shutdown)
        await asyncio.gather(managed.task, return_exceptions=True)
        await asyncio.to_thread(self._report, name, "stopped", None, {})

    async def aclose(self) -> None:
        """Stop every worker (daemon shutdown)."""
        await asyncio.gather(*(self._stop(name, shutdown=True) for name in list(self._managed)))

    def _report_all(self, names: Sequence[str]) -> None:
        for name in names:
            managed = self._managed.get(name)
            if managed is None:
                continue
            status = managed.worker.status
            detail: dict[str, object] = {
                "restarts": status.restarts,
                "exit_status": status.last_exit,
            }
            if status.state is WorkerState.RESTARTING and status.restart_at is not None:
                detail["restart_in"] = max(0, round(status.restart_at - time.time()))
            if status.state is WorkerState.CRASH_LOOPING:
                detail["exits"] = managed.worker.timing.crash_loop_exits
            self._report(name, str(status.state), status.pid, detail)

    def _report(self, name: str, actual: str, pid: int | None, detail: dict[str, object]) -> None:
        key = (actual, pid, tuple(sorted(detail.items())))
        if self._reported.get(name) == key:
            return
        self._reported[name] = key
        self.queue.set_worker_actual(
            name, actual, pid=pid, detail=json.dumps(detail), now=time.time()
        )

    def is_running(self, name: str) -> bool:
        """True when the worker is up and initialised (its jobs may be dispatched)."""
        worker = self.worker(name)
        return worker is not None and worker.running.is_set()
