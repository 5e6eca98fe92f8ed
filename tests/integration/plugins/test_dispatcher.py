"""The dispatcher against real loopback receivers and a real plugin_queue.db (timing on a fake clock)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from dispatch_support import T0, Env, http_plugin
from receivers import Answer, HttpReceiver, ReceivedRequest, wait_for

from eventdbx.store.plugin_queue_model import JobStatus, Outcome

pytestmark = pytest.mark.asyncio


def circuit(env: Env, name: str = "hook") -> str | None:
    state = env.queue.get_state(name)
    return None if state is None else state.circuit


def outcomes(env: Env, job_id: int) -> list[str]:
    detail = env.queue.show_job(job_id)
    assert detail is not None
    return [h.outcome.value for h in detail.history]


async def test_delivers_pending_jobs_with_identity_headers(
    env: Env, http_receiver: HttpReceiver
) -> None:
    hook = http_plugin(http_receiver.url)
    ids = env.add_jobs(hook, ("a", 1), ("a", 2), ("b", 1))
    await env.start(hook)
    for job_id in ids:
        job = await env.until_status(job_id, JobStatus.DONE)
        assert job.attempts == 1
    posts = http_receiver.posts
    assert [p.headers["X-EventDBX-Job-Id"] for p in posts if p.body.find(b'"a"') > 0] == [
        str(ids[0]),
        str(ids[1]),
    ]
    first = next(p for p in posts if p.headers["X-EventDBX-Job-Id"] == str(ids[0]))
    assert first.headers["Idempotency-Key"] == str(ids[0])
    assert first.headers["X-EventDBX-Attempt"] == "1"
    assert first.body == env.job(ids[0]).envelope.encode()
    assert "X-EventDBX-Replay" not in first.headers
    assert outcomes(env, ids[0]) == ["delivered"]


async def test_new_jobs_wake_the_loop(env: Env, http_receiver: HttpReceiver) -> None:
    hook = http_plugin(http_receiver.url)
    dispatcher = await env.start(hook)
    [job_id] = env.add_jobs(hook, ("a", 1))
    dispatcher.wake({"hook"})
    await env.until_status(job_id, JobStatus.DONE)


async def test_retry_with_backoff_then_delivered(
    env: Env, http_receiver: HttpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eventdbx.plugin")
    hook = http_plugin(http_receiver.url)
    http_receiver.answer(Answer(status=500, body="db down"), Answer(status=502))
    [job_id] = env.add_jobs(hook, ("a", 1))
    await env.start(hook)
    job = await env.until(job_id, lambda j: j.attempts == 1 and j.status == JobStatus.PENDING)
    assert job.next_retry_at == T0 + 1
    assert job.last_error == "http plugin request failed (500 Internal Server Error): db down"
    env.advance(0.5)  # not yet due
    env.advance(0.5)
    job = await env.until(job_id, lambda j: j.attempts == 2 and j.status == JobStatus.PENDING)
    assert job.next_retry_at == T0 + 1 + 2
    env.advance(2)
    job = await env.until_status(job_id, JobStatus.DONE)
    assert job.attempts == 3 and job.last_error is None
    assert [p.headers["X-EventDBX-Attempt"] for p in http_receiver.posts] == ["1", "2", "3"]
    assert outcomes(env, job_id) == ["failed", "failed", "delivered"]
    label = 'plugin="http (hook)"'
    assert (
        f"plugin delivery failed {label} job={job_id} event={job.event_id} aggregate=order::a version=1"
        ' attempt=1/10 retry_in=1s error="http plugin request failed (500 Internal Server Error): db down"'
    ) in caplog.messages


async def test_dead_after_max_attempts(
    env: Env, http_receiver: HttpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eventdbx.plugin")
    http_receiver.default = Answer(status=503)
    hook = http_plugin(http_receiver.url)
    [job_id] = env.add_jobs(hook, ("a", 1))
    await env.start(hook, plugin_max_attempts=3)
    await env.until(job_id, lambda j: j.attempts == 1 and j.status == JobStatus.PENDING)
    env.advance(1)
    await env.until(job_id, lambda j: j.attempts == 2 and j.status == JobStatus.PENDING)
    env.advance(2)
    job = await env.until_status(job_id, JobStatus.DEAD)
    assert job.attempts == 3
    assert outcomes(env, job_id) == ["failed", "failed", "failed"]
    # the line follows the status change (it counts held-back jobs first): wait for it
    await wait_for(
        lambda: any(
            m.startswith(f'plugin job dead plugin="http (hook)" job={job_id}')
            and "attempts=3 permanent=false held_back=0" in m
            for m in caplog.messages
        ),
        what="the job-dead line",
    )


async def test_max_attempts_zero_makes_the_first_failure_dead(
    env: Env, http_receiver: HttpReceiver
) -> None:
    http_receiver.default = Answer(status=500)
    hook = http_plugin(http_receiver.url)
    [job_id] = env.add_jobs(hook, ("a", 1))
    await env.start(hook, plugin_max_attempts=0)
    job = await env.until_status(job_id, JobStatus.DEAD)
    assert job.attempts == 1
    # plugins.md §14: after `queue retry`, a succeeding sink ends with done=1, nothing pending or processing
    http_receiver.default = Answer(status=200)
    assert [j.id for j in env.queue.retry_dead(now=env.clock.time(), job_id=job_id)] == [job_id]
    env.advance(0)
    await env.until_status(job_id, JobStatus.DONE)
    counts = env.queue.counts("hook")
    assert (counts.done, counts.pending, counts.processing, counts.dead) == (1, 0, 0, 0)


async def test_max_attempts_three_one_failure_leaves_one_pending_job(
    env: Env, http_receiver: HttpReceiver
) -> None:
    http_receiver.default = Answer(status=500)
    hook = http_plugin(http_receiver.url)
    [job_id] = env.add_jobs(hook, ("a", 1))
    await env.start(hook, plugin_max_attempts=3)
    job = await env.until(job_id, lambda j: j.attempts == 1 and j.status == JobStatus.PENDING)
    counts = env.queue.counts("hook")
    assert (counts.pending, counts.dead, job.attempts) == (1, 0, 1)  # plugins.md §14


async def test_permanent_404_is_dead_at_once(
    env: Env, http_receiver: HttpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eventdbx.plugin")
    http_receiver.answer(Answer(status=404, body="no such hook"))
    hook = http_plugin(http_receiver.url)
    [job_id, held] = env.add_jobs(hook, ("a", 1), ("a", 2))
    await env.start(hook)
    job = await env.until_status(job_id, JobStatus.DEAD)
    assert job.attempts == 1
    assert job.last_error == "http plugin request failed (404 Not Found): no such hook"
    assert outcomes(env, job_id) == ["permanent"]
    await wait_for(  # the line follows the status change (it counts held-back jobs first)
        lambda: any("permanent=true held_back=1" in m for m in caplog.messages), what="the job-dead line"
    )
    assert env.job(held).status == JobStatus.PENDING and env.job(held).attempts == 0


async def test_429_retry_after_waits_and_opens_the_circuit(
    env: Env, http_receiver: HttpReceiver
) -> None:
    http_receiver.answer(Answer(status=429, headers={"Retry-After": "120"}))
    hook = http_plugin(http_receiver.url)
    [job_id] = env.add_jobs(hook, ("a", 1))
    await env.start(hook)
    job = await env.until(job_id, lambda j: j.attempts == 1 and j.status == JobStatus.PENDING)
    assert job.next_retry_at == T0 + 120
    await wait_for(lambda: circuit(env) == "open", what="open")
    state = env.queue.get_state("hook")
    assert state is not None and state.next_probe_at == T0 + 120
    env.advance(119)
    assert len(http_receiver.posts) == 1
    env.advance(1)
    await env.until_status(job_id, JobStatus.DONE)
    await wait_for(lambda: circuit(env) == "closed", what="closed")


async def test_hang_times_out_and_retries(env: Env, http_receiver: HttpReceiver) -> None:
    http_receiver.answer(Answer(hang=True))
    hook = http_plugin(http_receiver.url, timeout_secs=0.2)
    [job_id] = env.add_jobs(hook, ("a", 1))
    await env.start(hook)
    job = await env.until(job_id, lambda j: j.attempts == 1 and j.status == JobStatus.PENDING)
    assert job.last_error == "http plugin request timed out after 0.2s"
    env.advance(1)
    await env.until_status(job_id, JobStatus.DONE)


async def test_receiver_gone_gives_connect_errors(env: Env, http_receiver: HttpReceiver) -> None:
    hook = http_plugin(http_receiver.url)
    await http_receiver.go_away()
    [job_id] = env.add_jobs(hook, ("a", 1))
    await env.start(hook)
    job = await env.until(job_id, lambda j: j.attempts == 1 and j.status == JobStatus.PENDING)
    assert job.last_error is not None and job.last_error.startswith("http plugin request failed: ")
    assert job.next_retry_at == T0 + 1
    await http_receiver.start()
    env.advance(1)
    await env.until_status(job_id, JobStatus.DONE)


async def test_circuit_opens_probes_and_closes(
    env: Env, http_receiver: HttpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eventdbx.plugin")
    http_receiver.default = Answer(status=500)
    hook = http_plugin(http_receiver.url)
    ids = env.add_jobs(hook, *[(f"agg-{i}", 1) for i in range(6)])
    await env.start(hook)
    await wait_for(lambda: len(http_receiver.posts) == 6, what="6 attempts")
    await wait_for(lambda: circuit(env) == "open", what="open")
    await wait_for(
        lambda: all(env.job(i).status == JobStatus.PENDING for i in ids), what="all pending"
    )
    assert any(
        m.startswith('plugin circuit opened plugin="http (hook)" consecutive_failures=5')
        for m in caplog.messages
    )
    # all jobs' backoff has passed, but only one probe goes out per probe slot
    env.advance(1)
    await wait_for(lambda: len(http_receiver.posts) == 7, what="first probe")
    probe_id = int(http_receiver.posts[6].headers["X-EventDBX-Job-Id"])
    probe = await env.until(probe_id, lambda j: j.status == JobStatus.PENDING)
    assert probe.attempts == 1  # a failed probe does not count
    assert outcomes(env, probe_id)[-1] == Outcome.PROBE_FAILED.value
    env.advance(1)
    assert len(http_receiver.posts) == 7  # next probe after 2 s
    http_receiver.default = Answer(status=200)
    env.advance(1)
    await wait_for(lambda: len(http_receiver.posts) >= 8, what="second probe")
    second = int(http_receiver.posts[7].headers["X-EventDBX-Job-Id"])
    assert second != probe_id  # the least recently probed job goes next
    await env.until_status(second, JobStatus.DONE)
    await wait_for(lambda: circuit(env) == "closed", what="closed")
    env.advance(10)
    for job_id in ids:
        await env.until_status(job_id, JobStatus.DONE)
    await wait_for(
        lambda: 'plugin delivery recovered plugin="http (hook)" after_failures=7' in caplog.messages,
        what="the recovered line",
    )


async def test_dead_job_blocks_only_its_aggregate(env: Env, http_receiver: HttpReceiver) -> None:
    poison = {"value": True}

    def respond(request: ReceivedRequest) -> Answer:
        if (
            poison["value"]
            and b'"aggregate_id":"a"' in request.body
            and b'"version":1}' in request.body
        ):
            return Answer(status=400, body="bad event")
        return Answer()

    http_receiver.responder = respond
    hook = http_plugin(http_receiver.url)
    a1, a2, b1, b2, b3 = env.add_jobs(hook, ("a", 1), ("a", 2), ("b", 1), ("b", 2), ("b", 3))
    await env.start(hook)
    await env.until_status(a1, JobStatus.DEAD)
    for job_id in (b1, b2, b3):
        await env.until_status(job_id, JobStatus.DONE)
    assert env.job(a2).status == JobStatus.PENDING and env.job(a2).attempts == 0
    b_order = [
        p.headers["X-EventDBX-Job-Id"]
        for p in http_receiver.posts
        if b'"aggregate_id":"b"' in p.body
    ]
    assert b_order == [str(b1), str(b2), str(b3)]
    poison["value"] = False
    env.queue.retry_dead(now=env.clock.time(), job_id=a1)
    env.advance(0)
    await env.until_status(a2, JobStatus.DONE)
    a_order = [
        p.headers["X-EventDBX-Job-Id"]
        for p in http_receiver.posts
        if b'"aggregate_id":"a"' in p.body
    ]
    assert a_order == [str(a1), str(a1), str(a2)]


async def test_graceful_shutdown_releases_in_flight_jobs(
    env: Env, http_receiver: HttpReceiver
) -> None:
    http_receiver.default = Answer(hang=True)
    hook = http_plugin(http_receiver.url, timeout_secs=30)
    ids = env.add_jobs(hook, ("a", 1), ("b", 1))
    await env.start(hook, shutdown_grace_secs=0)
    await wait_for(lambda: http_receiver.in_flight == 2, what="two hung requests")
    await env.stop()
    for job_id in ids:
        job = env.job(job_id)
        assert job.status == JobStatus.PENDING
        assert job.attempts == 0
        assert outcomes(env, job_id) == ["released"]


async def test_shutdown_grace_lets_in_flight_deliveries_finish(
    env: Env, http_receiver: HttpReceiver
) -> None:
    http_receiver.answer(Answer(hang=True))
    hook = http_plugin(http_receiver.url, timeout_secs=30)
    [job_id] = env.add_jobs(hook, ("a", 1))
    dispatcher = await env.start(hook, shutdown_grace_secs=10)
    await wait_for(lambda: http_receiver.in_flight == 1, what="hung request")
    loop = dispatcher.plugin_loop("hook")
    assert loop is not None
    stopping = asyncio.create_task(env.stop())
    await wait_for(lambda: loop._stopping, what="stop requested")
    http_receiver.release_hung()
    await asyncio.wait_for(stopping, 10)
    job = env.job(job_id)
    assert (job.status, job.attempts) == (JobStatus.DONE, 1)
    assert outcomes(env, job_id) == ["delivered"]


async def test_startup_recovers_interrupted_jobs(env: Env, http_receiver: HttpReceiver) -> None:
    hook = http_plugin(http_receiver.url)
    [job_id] = env.add_jobs(hook, ("a", 1))
    from eventdbx.domain.payload_mode import Ordering

    claimed = env.queue.claim("hook", now=T0, limit=1, lease_secs=35, ordering=Ordering.AGGREGATE)
    assert [j.id for j in claimed] == [job_id]
    await env.start(hook)
    job = await env.until_status(job_id, JobStatus.DONE)
    assert job.attempts == 2
    assert outcomes(env, job_id) == ["interrupted", "delivered"]
    assert http_receiver.posts[0].headers["X-EventDBX-Attempt"] == "2"


async def test_lease_expiry_cancels_the_hung_call(
    env: Env, http_receiver: HttpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eventdbx.plugin")
    http_receiver.answer(Answer(hang=True))
    hook = http_plugin(http_receiver.url, timeout_secs=30)
    [job_id] = env.add_jobs(hook, ("a", 1))
    dispatcher = await env.start(hook)
    await wait_for(lambda: http_receiver.in_flight == 1, what="hung request")
    env.clock.advance(61)
    await dispatcher.sweep()
    assert (
        f'plugin job lease expired plugin="http (hook)" job={job_id} attempt=1' in caplog.messages
    )
    job = await env.until_status(job_id, JobStatus.DONE)  # claimed again at once
    assert job.attempts == 2
    await wait_for(lambda: http_receiver.in_flight == 0, what="the hung call cancelled")
    assert outcomes(env, job_id) == ["interrupted", "delivered"]


async def test_plugins_json_changes_start_and_stop_loops(
    env: Env, http_receiver: HttpReceiver
) -> None:
    hook = http_plugin(http_receiver.url)
    dispatcher = await env.start(hook)
    other = http_plugin(http_receiver.url, name="other")
    env.definitions.items = [hook, other]
    await wait_for(lambda: dispatcher.active_plugins() == ["hook", "other"], what="other started")
    [job_id] = env.add_jobs(other, ("a", 1))
    dispatcher.wake()
    await env.until_status(job_id, JobStatus.DONE)
    env.definitions.items = [
        other.__class__(**{**{f: getattr(other, f) for f in other.__slots__}, "enabled": False})
    ]
    await wait_for(lambda: dispatcher.active_plugins() == [], what="both stopped")
