"""Claim-ahead: ready jobs never raise deliveries above `concurrency`, keep aggregate order, and go back to
pending untouched (no attempt, no history) when they may not start (circuit open, shutdown)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict

from dispatch_support import Env, http_plugin
from receivers import wait_for

from eventdbx.errors import DeliveryError
from eventdbx.plugins.dispatcher import Dispatcher, DispatcherTiming
from eventdbx.plugins.registry import PluginDefinition
from eventdbx.plugins.sink import DeliveryJob
from eventdbx.store.plugin_queue_model import JobStatus


class PacedSink:
    """Answers at once; counts deliveries running together; fails or hangs after `ok_first` on request."""

    def __init__(self, *, ok_first: int | None = None, hang_after: bool = False) -> None:
        self.ok_first = ok_first
        self.hang_after = hang_after
        self.running = 0
        self.most_running = 0
        self.most_ready = 0
        self.delivered: list[DeliveryJob] = []
        self.calls = 0
        self.dispatcher: Dispatcher | None = None
        self._gate = asyncio.Event()

    async def deliver(self, job: DeliveryJob) -> int | None:
        self.calls += 1
        number = self.calls
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        loop = self.dispatcher.plugin_loop("hook") if self.dispatcher else None
        self.most_ready = max(self.most_ready, len(getattr(loop, "_ready", ())))
        try:
            await asyncio.sleep(0)
            if self.ok_first is not None and number > self.ok_first:
                if self.hang_after:
                    await self._gate.wait()
                raise DeliveryError("http plugin request failed (503 )", endpoint_failure=True)
            self.delivered.append(job)
            return 204
        finally:
            self.running -= 1

    async def check_ready(self) -> None:
        return None

    async def aclose(self) -> None:
        self._gate.set()


async def _start(env: Env, hook: PluginDefinition, sink: PacedSink, **queue: float) -> Dispatcher:
    env.definitions.items = [hook]
    if queue:
        env.settings = dataclasses.replace(
            env.settings, plugin_queue=dataclasses.replace(env.settings.plugin_queue, **queue)
        )
    timing = DispatcherTiming(poll_secs=0.05, sweep_secs=3600, reload_secs=0.05)
    dispatcher = Dispatcher(
        env.settings,
        env.queue,
        env.definitions,
        clock=env.clock,
        timing=timing,
        sink_factory=lambda _definition: sink,  # type: ignore[arg-type,return-value]
    )
    env.dispatcher = sink.dispatcher = dispatcher
    env._task = asyncio.create_task(dispatcher.run(env._stop))
    await wait_for(lambda: dispatcher.plugin_loop(hook.name) is not None, what="loop")
    return dispatcher


def _history(env: Env, job_id: int) -> list[str]:
    detail = env.queue.show_job(job_id)
    assert detail is not None
    return [entry.outcome.value for entry in detail.history]


async def test_claim_ahead_keeps_concurrency_and_aggregate_order(env: Env) -> None:
    hook = http_plugin("http://127.0.0.1:9/hook", concurrency=4)
    env.add_jobs(hook, *[(f"agg-{n % 7}", n // 7 + 1) for n in range(300)])
    sink = PacedSink()
    await _start(env, hook, sink)
    await wait_for(lambda: env.queue.counts("hook").done == 300, what="all delivered")
    assert sink.most_running <= 4
    assert sink.most_ready > 0  # jobs were claimed ahead
    versions: dict[str, list[int]] = defaultdict(list)
    for job in sink.delivered:
        versions[job.aggregate_id].append(job.version)
    assert all(v == sorted(v) for v in versions.values())
    assert len(sink.delivered) == 300


async def test_ready_jobs_go_back_untouched_when_the_circuit_opens(env: Env) -> None:
    hook = http_plugin("http://127.0.0.1:9/hook", concurrency=4)
    ids = env.add_jobs(hook, *[(f"agg-{n}", 1) for n in range(60)])
    sink = PacedSink(ok_first=20)
    await _start(env, hook, sink)
    loop = env.dispatcher.plugin_loop("hook") if env.dispatcher else None
    assert loop is not None
    await wait_for(lambda: loop.circuit.is_open, what="circuit open")
    await wait_for(lambda: env.queue.counts("hook").processing == 0, what="nothing processing")
    failed = 0
    for job_id in ids:
        job, history = env.job(job_id), _history(env, job_id)
        assert "released" not in history
        if job.status == JobStatus.DONE:
            continue
        assert job.attempts == history.count("failed")  # no attempt without a history entry
        failed += bool(history)
    assert failed >= 5
    assert sink.calls == 20 + failed


async def test_shutdown_unclaims_ready_jobs_without_history(env: Env) -> None:
    hook = http_plugin("http://127.0.0.1:9/hook", concurrency=4, timeout_secs=30)
    ids = env.add_jobs(hook, *[(f"agg-{n}", 1) for n in range(40)])
    sink = PacedSink(ok_first=1, hang_after=True)
    await _start(env, hook, sink, shutdown_grace_secs=0)
    await wait_for(lambda: sink.running == 4, what="four hung deliveries")
    loop = env.dispatcher.plugin_loop("hook") if env.dispatcher else None
    assert loop is not None
    await wait_for(lambda: len(loop._ready) > 0, what="jobs claimed ahead")
    await env.stop()
    outcomes = {job_id: _history(env, job_id) for job_id in ids}
    assert sum(h == ["delivered"] for h in outcomes.values()) == 1
    assert sum(h == ["released"] for h in outcomes.values()) == 4
    untouched = [job_id for job_id, h in outcomes.items() if not h]
    assert len(untouched) == 35
    for job_id in untouched:
        job = env.job(job_id)
        assert (job.status, job.attempts, job.claim_token) == (JobStatus.PENDING, 0, None)
    assert env.queue.counts("hook").processing == 0
