"""More dispatcher behaviour: tcp and log sinks, concurrency limit, which plugins get loops, no busy loop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from dispatch_support import T0, Env, http_plugin, tcp_plugin
from receivers import Answer, HttpReceiver, TcpReceiver, wait_for

from eventdbx.domain.payload_mode import Ordering
from eventdbx.plugins.registry import LogConfig, PluginDefinition
from eventdbx.store.plugin_queue_model import JobStatus


async def test_tcp_plugin_delivers_and_reject_is_dead(env: Env, tcp_receiver: TcpReceiver) -> None:
    tcp_receiver.replies.extend(["ok", "reject schema mismatch"])
    lines = tcp_plugin(tcp_receiver.port, concurrency=1)
    first, second, third = env.add_jobs(lines, ("a", 1), ("b", 1), ("c", 1))
    await env.start(lines)
    await env.until_status(first, JobStatus.DONE)
    dead = await env.until_status(second, JobStatus.DEAD)
    assert dead.last_error == "tcp plugin receiver rejected: schema mismatch"
    await env.until_status(third, JobStatus.DONE)
    assert tcp_receiver.lines[0] == env.job(first).envelope.encode() + b"\n"
    assert tcp_receiver.connections == 1


async def test_log_plugin_writes_lines(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="eventdbx.plugin.log")
    audit = PluginDefinition(
        name="audit", config=LogConfig(level="info", template="{aggregate}/{id} v{version}")
    )
    [job_id] = env.add_jobs(audit, ("a", 1))
    await env.start(audit)
    await env.until_status(job_id, JobStatus.DONE)
    assert "order/a v1" in caplog.messages


async def test_at_most_concurrency_in_flight(env: Env, http_receiver: HttpReceiver) -> None:
    http_receiver.default = Answer(hang=True)
    hook = http_plugin(http_receiver.url, concurrency=2, ordering=Ordering.NONE, timeout_secs=30)
    env.add_jobs(hook, *[("a", v) for v in range(1, 6)])
    dispatcher = await env.start(hook, shutdown_grace_secs=0)
    await wait_for(lambda: http_receiver.in_flight == 2, what="two in flight")
    dispatcher.wake()
    await asyncio.sleep(0.2)  # bounded check that nothing more goes out (not synchronisation)
    assert http_receiver.in_flight == 2
    assert env.queue.counts("hook").processing == 2


async def test_only_enabled_emitting_plugins_get_loops(
    env: Env, http_receiver: HttpReceiver
) -> None:
    on = http_plugin(http_receiver.url, name="on")
    off = http_plugin(http_receiver.url, name="off", enabled=False)
    quiet = http_plugin(http_receiver.url, name="quiet", emit_events=False)
    dispatcher = await env.start(on)
    env.definitions.items = [on, off, quiet]
    dispatcher.reload()
    await asyncio.sleep(0.2)  # bounded: several reload periods
    assert dispatcher.active_plugins() == ["on"]


async def test_open_circuit_without_due_jobs_does_not_spin(
    env: Env, http_receiver: HttpReceiver
) -> None:
    hook = http_plugin(http_receiver.url)
    [job_id] = env.add_jobs(hook, ("a", 1))
    [job] = env.queue.claim("hook", now=T0, limit=1, lease_secs=35, ordering=Ordering.AGGREGATE)
    assert job.claim_token is not None
    env.queue.mark_retry(
        job_id, job.claim_token, started_at=T0, now=T0, error="down", next_retry_at=T0 + 100
    )
    env.queue.set_circuit(
        "hook",
        circuit="open",
        consecutive_failures=5,
        opened_at=T0 - 10,
        next_probe_at=T0 - 1,
        probe_failures=2,
    )
    calls = {"n": 0}
    original = env.queue.claim_probe

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        return original(*args, **kwargs)

    env.queue.claim_probe = counting  # type: ignore[method-assign]
    await env.start(hook)
    await asyncio.sleep(
        0.3
    )  # bounded: poll is 0.05 s in tests, so a handful of probe attempts at most
    assert 1 <= calls["n"] <= 12
    env.advance(100)
    await env.until_status(job_id, JobStatus.DONE)
    state = env.queue.get_state("hook")
    assert state is not None and state.circuit == "closed"


async def test_a_sink_that_cannot_be_built_is_reported_once(
    env: Env, http_receiver: HttpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eventdbx.plugin")
    bad = http_plugin("http://", name="bad")
    good = http_plugin(http_receiver.url)
    env.definitions.items = [bad, good]
    dispatcher = await env.start(good)
    env.definitions.items = [bad, good]
    dispatcher.reload()
    await asyncio.sleep(0.2)  # bounded: several reload periods
    assert dispatcher.active_plugins() == ["hook"]
    errors = [m for m in caplog.messages if m.startswith("plugin http (bad) cannot start")]
    assert errors == ["plugin http (bad) cannot start: invalid endpoint 'http://'"]


async def test_a_sink_bug_is_a_retryable_failure(env: Env) -> None:
    class Broken:
        async def deliver(self, job: object) -> None:
            raise ValueError("boom")

        async def check_ready(self) -> None:
            return None

        async def aclose(self) -> None:
            return None

    from eventdbx.plugins.dispatcher import Dispatcher, DispatcherTiming

    audit = PluginDefinition(name="audit", config=LogConfig())
    [job_id] = env.add_jobs(audit, ("a", 1))
    env.definitions.items = [audit]
    dispatcher = Dispatcher(
        env.settings,
        env.queue,
        env.definitions,
        clock=env.clock,
        sink_factory=lambda d: Broken(),
        timing=DispatcherTiming(poll_secs=0.05, sweep_secs=3600, reload_secs=0.05),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        job = await env.until(job_id, lambda j: j.attempts == 1 and j.status == JobStatus.PENDING)
        assert job.last_error == "log plugin delivery failed: ValueError: boom"
    finally:
        stop.set()
        await task


async def test_definitions_may_come_from_a_plain_callable(
    env: Env, http_receiver: HttpReceiver
) -> None:
    from eventdbx.plugins.dispatcher import Dispatcher, DispatcherTiming

    hook = http_plugin(http_receiver.url)
    [job_id] = env.add_jobs(hook, ("a", 1))
    dispatcher = Dispatcher(
        env.settings,
        env.queue,
        lambda: [hook],
        clock=env.clock,
        timing=DispatcherTiming(poll_secs=0.05, sweep_secs=3600, reload_secs=0.05),
    )
    await dispatcher.start()
    try:
        await env.until_status(job_id, JobStatus.DONE)
        assert dispatcher.running
    finally:
        await dispatcher.aclose()
    assert not dispatcher.running


async def test_only_delivery_settings_restart_a_loop(env: Env, http_receiver: HttpReceiver) -> None:
    import dataclasses

    from eventdbx.domain.payload_mode import PayloadMode

    hook = http_plugin(http_receiver.url)
    dispatcher = await env.start(hook)
    first = dispatcher.plugin_loop("hook")
    env.definitions.items = [dataclasses.replace(hook, payload_mode=PayloadMode.EVENT_ONLY)]
    await wait_for(
        lambda: first is not None and first.definition.payload_mode == PayloadMode.EVENT_ONLY,
        what="definition updated",
    )
    assert dispatcher.plugin_loop("hook") is first
    env.definitions.items = [dataclasses.replace(hook, concurrency=2)]
    await wait_for(lambda: dispatcher.plugin_loop("hook") is not first, what="loop restarted")
