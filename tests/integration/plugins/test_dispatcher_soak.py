"""A randomised run: flaky receiver, many aggregates; every job ends done, in version order per aggregate."""

from __future__ import annotations

import random
from collections import defaultdict

from dispatch_support import Env, http_plugin
from receivers import Answer, HttpReceiver, ReceivedRequest, wait_for

from eventdbx.store.plugin_queue_model import JobStatus


async def test_flaky_receiver_every_job_delivered_in_order(
    env: Env, http_receiver: HttpReceiver
) -> None:
    rng = random.Random(7)
    delivered: dict[str, list[int]] = defaultdict(list)

    def respond(request: ReceivedRequest) -> Answer:
        if rng.random() < 0.3:
            return Answer(status=rng.choice([500, 502, 503, 408]))
        body = request.body.decode()
        aggregate = body.split('"aggregate_id":"')[1].split('"')[0]
        version = int(body.split('"version":')[-1].rstrip("}"))
        delivered[aggregate].append(version)
        return Answer()

    http_receiver.responder = respond
    hook = http_plugin(http_receiver.url, concurrency=16)
    pairs = [(f"agg-{a}", v) for v in range(1, 6) for a in range(20)]
    ids = env.add_jobs(hook, *pairs)
    await env.start(hook, plugin_max_attempts=50)

    def all_done() -> bool:
        return env.queue.counts("hook").done == len(ids)

    def quiet() -> bool:
        now = env.clock.time()
        due = env.queue.count_due("hook", now=now, ordering=hook.ordering)
        return due == 0 and env.queue.counts("hook").processing == 0

    for _ in range(400):
        if all_done():
            break
        env.advance(10)  # every backoff and probe is due again
        await wait_for(lambda: quiet() or all_done(), what="a quiet moment")
    assert all_done(), env.queue.counts("hook")
    for aggregate, versions in delivered.items():
        assert versions == sorted(versions), aggregate
        assert set(versions) == set(range(1, 6)), aggregate
    for job_id in ids:
        job = env.job(job_id)
        assert job.status == JobStatus.DONE and job.last_error is None
