"""Helpers for dispatcher integration tests: a real plugin_queue.db, a fake clock, loopback receivers."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from typing import Any

import orjson
from receivers import wait_for

from eventdbx.clock import FakeClock
from eventdbx.config import Settings
from eventdbx.plugins.dispatcher import Dispatcher, DispatcherTiming
from eventdbx.plugins.registry import HttpConfig, PluginDefinition, TcpConfig
from eventdbx.store.plugin_queue import PluginQueue
from eventdbx.store.plugin_queue_model import Job, JobStatus, NewJob

T0 = 1761480000.0
_event_ids = itertools.count(108172778397499392)


def envelope(aggregate_id: str, version: int, event_id: int) -> str:
    """An event-only wire envelope."""
    event = {
        "aggregate_id": aggregate_id,
        "aggregate_type": "order",
        "event_type": "order_created",
        "hash": "h",
        "merkle_root": "h",
        "metadata": {
            "created_at": "2025-10-26T12:00:00.123456Z",
            "event_id": str(event_id),
            "issued_by": None,
        },
        "payload": {"n": version},
        "version": version,
    }
    return orjson.dumps({"event": event}, option=orjson.OPT_SORT_KEYS).decode()


class Definitions:
    """An in-memory plugins.json for the dispatcher."""

    def __init__(self, *definitions: PluginDefinition) -> None:
        self.items = list(definitions)

    def current(self) -> list[PluginDefinition]:
        return list(self.items)


def http_plugin(url: str, name: str = "hook", **fields: Any) -> PluginDefinition:
    timeout = fields.pop("timeout_secs", 2)
    secret = fields.pop("secret", None)
    return PluginDefinition(
        name=name, config=HttpConfig(endpoint=url, timeout_secs=timeout, secret=secret), **fields
    )


def tcp_plugin(port: int, name: str = "lines", **fields: Any) -> PluginDefinition:
    ack = fields.pop("ack", True)
    return PluginDefinition(
        name=name, config=TcpConfig(host="127.0.0.1", port=port, ack=ack, timeout_secs=2), **fields
    )


class Env:
    """One dispatcher under test and everything around it."""

    def __init__(self, settings: Settings, queue: PluginQueue, clock: FakeClock) -> None:
        self.settings = settings
        self.queue = queue
        self.clock = clock
        self.definitions = Definitions()
        self.dispatcher: Dispatcher | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add_jobs(self, plugin: PluginDefinition, *aggregates: tuple[str, int]) -> list[int]:
        """Insert one job per (aggregate id, version)."""
        new = []
        for aggregate_id, version in aggregates:
            event_id = next(_event_ids)
            new.append(
                NewJob(
                    plugin_name=plugin.name,
                    label=plugin.label,
                    aggregate_type="order",
                    aggregate_id=aggregate_id,
                    event_type="order_created",
                    event_id=event_id,
                    version=version,
                    event_created_at="2025-10-26T12:00:00.123456Z",
                    envelope=envelope(aggregate_id, version, event_id),
                )
            )
        with self.queue.transaction() as tx:
            return tx.insert_jobs(new, now=self.clock.time())

    def job(self, job_id: int) -> Job:
        job = self.queue.get_job(job_id)
        assert job is not None
        return job

    async def start(self, *definitions: PluginDefinition, **settings: Any) -> Dispatcher:
        """Run a dispatcher over `definitions` (sweeps only when a test calls `sweep()`)."""
        self.definitions.items = list(definitions)
        if settings:
            queue_settings = dataclasses.replace(
                self.settings.plugin_queue,
                **{k: v for k, v in settings.items() if k != "plugin_max_attempts"},
            )
            top = (
                {"plugin_max_attempts": settings["plugin_max_attempts"]}
                if "plugin_max_attempts" in settings
                else {}
            )
            self.settings = dataclasses.replace(self.settings, plugin_queue=queue_settings, **top)
        timing = DispatcherTiming(poll_secs=0.05, sweep_secs=3600, reload_secs=0.05)
        self.dispatcher = Dispatcher(
            self.settings, self.queue, self.definitions, clock=self.clock, timing=timing
        )
        self._task = asyncio.create_task(self.dispatcher.run(self._stop))
        await wait_for(
            lambda: len(self.dispatcher.active_plugins()) == len(definitions), what="loops"
        )  # type: ignore[union-attr]
        return self.dispatcher

    async def stop(self) -> None:
        """Graceful shutdown, awaited."""
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 10)
            self._task = None

    def advance(self, seconds: float) -> None:
        """Move the fake clock and wake every loop."""
        self.clock.advance(seconds)
        assert self.dispatcher is not None
        self.dispatcher.wake()

    async def until_status(self, job_id: int, status: JobStatus, *, timeout: float = 5.0) -> Job:
        await wait_for(
            lambda: self.job(job_id).status == status,
            timeout=timeout,
            what=f"job {job_id} {status}",
        )
        return self.job(job_id)

    async def until(
        self, job_id: int, predicate: Any, *, timeout: float = 5.0, what: str = "job state"
    ) -> Job:
        await wait_for(lambda: predicate(self.job(job_id)), timeout=timeout, what=what)
        return self.job(job_id)
