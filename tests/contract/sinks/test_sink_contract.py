"""The one contract every sink passes: exact bytes, failure classes, clean close, readiness."""

from __future__ import annotations

import pytest
from sink_harness import Harness

from eventdbx.errors import DeliveryError
from eventdbx.plugins.sink import DeliveryJob, Sink

PAYLOAD = '{"big":12345678901234567890,"note":"caf\u00e9 \u2603","total":1.50}'
ENVELOPE = (
    '{"event":{"aggregate_id":"order-1","aggregate_type":"order","event_type":"order_created",'
    '"hash":"h","merkle_root":"h","metadata":{"created_at":"2025-10-26T12:00:00.123456Z",'
    '"event_id":"108172778397499392","issued_by":null},"payload":' + PAYLOAD + ',"version":1}}'
)


def make_job(job_id: int = 7, *, attempt: int = 1, body: str = ENVELOPE) -> DeliveryJob:
    return DeliveryJob(
        job_id=job_id,
        event_id=108172778397499392,
        attempt=attempt,
        replay=False,
        body=body.encode(),
        aggregate_type="order",
        aggregate_id="order-1",
        event_type="order_created",
        version=1,
    )


def expected(harness: Harness, job: DeliveryJob) -> bytes:
    if harness.kind == "log":
        return f"aggregate=order id=order-1 event=order_created payload={PAYLOAD}".encode()
    return job.body


async def test_is_a_sink(harness: Harness) -> None:
    sink = harness.make_sink()
    assert isinstance(sink, Sink)
    await sink.aclose()


async def test_delivers_the_exact_bytes_in_order(harness: Harness) -> None:
    sink = harness.make_sink()
    try:
        jobs = [make_job(i) for i in range(1, 4)]
        for job in jobs:
            await sink.deliver(job)
        assert harness.received() == [expected(harness, job) for job in jobs]
    finally:
        await sink.aclose()


async def test_retryable_failure_is_classified(harness: Harness) -> None:
    sink = harness.make_sink()
    try:
        harness.fail_next(permanent=False)
        with pytest.raises(DeliveryError) as info:
            await sink.deliver(make_job())
        assert info.value.retryable
        assert info.value.message
    finally:
        await sink.aclose()


async def test_permanent_failure_is_classified(harness: Harness) -> None:
    if harness.kind == "log":
        pytest.skip("the log sink has no permanent failures")
    sink = harness.make_sink()
    try:
        harness.fail_next(permanent=True)
        with pytest.raises(DeliveryError) as info:
            await sink.deliver(make_job())
        assert not info.value.retryable
        assert not info.value.endpoint_failure
    finally:
        await sink.aclose()


async def test_recovers_after_a_failure(harness: Harness) -> None:
    if harness.kind == "log":
        pytest.skip("the log sink's failure is its configuration")
    sink = harness.make_sink()
    try:
        harness.fail_next(permanent=False)
        with pytest.raises(DeliveryError):
            await sink.deliver(make_job(1))
        await sink.deliver(make_job(2))
        assert harness.received()[-1] == expected(harness, make_job(2))
    finally:
        await sink.aclose()


async def test_endpoint_gone_is_retryable(harness: Harness) -> None:
    sink = harness.make_sink()
    try:
        await sink.deliver(make_job(1))
        await harness.go_away()
        with pytest.raises(DeliveryError) as info:
            await sink.deliver(make_job(2))
        assert info.value.retryable
        if harness.kind != "log":
            assert info.value.endpoint_failure
    finally:
        await sink.aclose()


async def test_readiness(harness: Harness) -> None:
    sink = harness.make_sink()
    try:
        await sink.check_ready()
        await harness.go_away()
        with pytest.raises(DeliveryError):
            await sink.check_ready()
    finally:
        await sink.aclose()


async def test_closes_cleanly_and_idempotently(harness: Harness) -> None:
    sink = harness.make_sink()
    await sink.deliver(make_job())
    await sink.aclose()
    await sink.aclose()
