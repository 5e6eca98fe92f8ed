"""The http sink in detail (plugins.md §8.1): headers, signing, URLs, error text, classes, readiness."""

from __future__ import annotations

import asyncio

import pytest
from receivers import Answer, HttpReceiver

from eventdbx import __version__
from eventdbx.clock import FakeClock
from eventdbx.errors import DeliveryError, PluginError
from eventdbx.plugins.sink import DeliveryJob
from eventdbx.plugins.sinks.http import HttpSink, check_headers, failure_text, normalize_endpoint

H = "b76c75e55a2fb57f26e14a0cabe3d48e3aa335a0dae624bc1edf562b1d2ad509"
EVENT_ONLY = (
    '{"event":{"aggregate_id":"order-1","aggregate_type":"order","event_type":"order_created",'
    '"extensions":{"@trace_id":"abc123"},"hash":"H","merkle_root":"H","metadata":{"created_at":'
    '"2025-10-26T12:00:00.123456Z","event_id":"108172778397499392","issued_by":{"group":"admin",'
    '"user":"jane"},"note":"import"},"payload":{"status":"created","total":15},"version":1}}'
).replace('"H"', f'"{H}"')


def job(*, job_id: int = 108172778565271552, attempt: int = 1, replay: bool = False) -> DeliveryJob:
    return DeliveryJob(
        job_id=job_id,
        event_id=108172778397499392,
        attempt=attempt,
        replay=replay,
        body=EVENT_ONLY.encode(),
        aggregate_type="order",
        aggregate_id="order-1",
        event_type="order_created",
        version=1,
    )


async def deliver_error(sink: HttpSink) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        await sink.deliver(job())
    return info.value


async def test_headers_and_body(http_receiver: HttpReceiver) -> None:
    sink = HttpSink(endpoint=http_receiver.url, headers={"X-Test": "ok"})
    try:
        assert await sink.deliver(job(attempt=3, replay=True)) == 200
    finally:
        await sink.aclose()
    [post] = http_receiver.posts
    assert post.body == EVENT_ONLY.encode()
    h = post.headers
    assert h["Content-Type"] == "application/json"
    assert h["User-Agent"] == f"eventdbx/{__version__}"
    assert h["X-Test"] == "ok"
    assert h["Idempotency-Key"] == h["X-EventDBX-Job-Id"] == "108172778565271552"
    assert h["X-EventDBX-Event-Id"] == "108172778397499392"
    assert h["X-EventDBX-Attempt"] == "3"
    assert h["X-EventDBX-Replay"] == "true"
    assert "webhook-signature" not in h


async def test_configured_user_agent_wins(http_receiver: HttpReceiver) -> None:
    sink = HttpSink(endpoint=http_receiver.url, headers={"user-agent": "mine/1"})
    try:
        await sink.deliver(job())
    finally:
        await sink.aclose()
    assert http_receiver.posts[0].headers["User-Agent"] == "mine/1"


async def test_standard_webhooks_signature_vector(http_receiver: HttpReceiver) -> None:
    sink = HttpSink(
        endpoint=http_receiver.url,
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        clock=FakeClock(now=1761480001.4),
    )
    try:
        await sink.deliver(job())
    finally:
        await sink.aclose()
    h = http_receiver.posts[0].headers
    assert h["webhook-id"] == "108172778565271552"
    assert h["webhook-timestamp"] == "1761480001"
    assert h["webhook-signature"] == "v1,3R8Yv96E+OfwmKBlyyaqFewFB0b8JNvdtbdWdPhl71Y="


async def test_keep_alive_pool_reuses_connections(http_receiver: HttpReceiver) -> None:
    sink = HttpSink(endpoint=http_receiver.url, concurrency=2)
    try:
        for i in range(10):
            await sink.deliver(job(job_id=i + 1))
    finally:
        await sink.aclose()
    assert len({p.peer for p in http_receiver.posts}) == 1


@pytest.mark.parametrize(
    ("endpoint", "https", "url"),
    [
        ("example.com/hook", False, "http://example.com/hook"),
        ("  example.com:8080/h ", True, "https://example.com:8080/h"),
        ("https://x.test/a?b=c", False, "https://x.test/a?b=c"),
        ("http://127.0.0.1:9/", True, "http://127.0.0.1:9/"),
    ],
)
def test_normalize_endpoint(endpoint: str, https: bool, url: str) -> None:
    assert normalize_endpoint(endpoint, https=https) == url


@pytest.mark.parametrize(
    "endpoint", ["", "   ", "http://", "http://exa mple.com", "http://host:99999/", "ftp://x"]
)
def test_invalid_endpoint(endpoint: str) -> None:
    with pytest.raises(PluginError) as info:
        normalize_endpoint(endpoint)
    assert info.value.message == f"invalid endpoint '{endpoint}'"


@pytest.mark.parametrize(
    "key", ["Idempotency-Key", "x-eventdbx-attempt", "Webhook-Signature", "X-EventDBX-Replay"]
)
def test_reserved_headers_are_refused(key: str) -> None:
    with pytest.raises(PluginError) as info:
        check_headers({key: "x"})
    assert info.value.message == f"header '{key}' is set by EventDBX and cannot be configured"
    check_headers({"Content-Type": "application/cloudevents+json", "Authorization": "Bearer t"})


def test_failure_text() -> None:
    assert (
        failure_text(500, "Internal Server Error", b"")
        == "http plugin request failed (500 Internal Server Error)"
    )
    assert (
        failure_text(404, "Not Found", b"  gone \n")
        == "http plugin request failed (404 Not Found): gone"
    )
    long = failure_text(500, "Internal Server Error", b"x" * 300)
    assert long == "http plugin request failed (500 Internal Server Error): " + "x" * 256 + "…"
    assert failure_text(500, "Internal Server Error", b"y" * 256).endswith("y" * 256)
    assert failure_text(599, "", b"") == "http plugin request failed (599 )"


@pytest.mark.parametrize(
    ("status", "retryable", "endpoint"),
    [
        (408, True, True),
        (429, True, True),
        (500, True, True),
        (503, True, True),
        (400, False, False),
        (401, False, False),
        (404, False, False),
        (409, False, False),
        (302, False, False),
        (301, False, False),
    ],
)
async def test_classification(
    http_receiver: HttpReceiver, status: int, retryable: bool, endpoint: bool
) -> None:
    headers = {"Location": http_receiver.url + "/elsewhere"} if 300 <= status < 400 else {}
    http_receiver.answer(Answer(status=status, headers=headers))
    sink = HttpSink(endpoint=http_receiver.url)
    try:
        error = await deliver_error(sink)
    finally:
        await sink.aclose()
    assert (error.retryable, error.endpoint_failure, error.http_status) == (
        retryable,
        endpoint,
        status,
    )
    assert len(http_receiver.requests) == 1  # redirects are not followed


async def test_retry_after_seconds_and_http_date(http_receiver: HttpReceiver) -> None:
    clock = FakeClock(now=1445412470.0)  # 2015-10-21T07:27:50Z
    http_receiver.answer(
        Answer(status=429, headers={"Retry-After": "30"}),
        Answer(status=503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
        Answer(status=500, headers={"Retry-After": "30"}),
        Answer(status=429),
    )
    sink = HttpSink(endpoint=http_receiver.url, clock=clock)
    try:
        assert (await deliver_error(sink)).retry_after == 30
        assert (await deliver_error(sink)).retry_after == 10
        assert (await deliver_error(sink)).retry_after is None  # only 429 and 503
        assert (await deliver_error(sink)).retry_after is None
    finally:
        await sink.aclose()


async def test_timeout_bounds_the_whole_request(http_receiver: HttpReceiver) -> None:
    http_receiver.answer(Answer(hang=True))
    sink = HttpSink(endpoint=http_receiver.url, timeout_secs=0.2)
    try:
        error = await deliver_error(sink)
    finally:
        await sink.aclose()
    assert error.message == "http plugin request timed out after 0.2s"
    assert error.retryable and error.endpoint_failure


async def test_connect_failure(http_receiver: HttpReceiver) -> None:
    await http_receiver.go_away()
    sink = HttpSink(endpoint=http_receiver.url)
    try:
        error = await deliver_error(sink)
    finally:
        await sink.aclose()
    assert error.message.startswith("http plugin request failed: ")
    assert error.retryable and error.endpoint_failure and error.http_status is None


@pytest.mark.parametrize("status", [200, 204, 405, 501])
async def test_ready_statuses(http_receiver: HttpReceiver, status: int) -> None:
    http_receiver.head_status = status
    sink = HttpSink(endpoint=http_receiver.url, headers={"Authorization": "Bearer t"})
    try:
        await sink.check_ready()
    finally:
        await sink.aclose()


@pytest.mark.parametrize(
    ("status", "text"),
    [(404, "404 Not Found"), (500, "500 Internal Server Error"), (302, "302 Found")],
)
async def test_not_ready(http_receiver: HttpReceiver, status: int, text: str) -> None:
    http_receiver.head_status = status
    sink = HttpSink(endpoint=http_receiver.url)
    try:
        with pytest.raises(DeliveryError) as info:
            await sink.check_ready()
    finally:
        await sink.aclose()
    assert info.value.message == f"http plugin readiness check failed ({text})"


async def test_concurrent_deliveries_share_the_pool(http_receiver: HttpReceiver) -> None:
    sink = HttpSink(endpoint=http_receiver.url, concurrency=8)
    try:
        results = await asyncio.gather(*(sink.deliver(job(job_id=i + 1)) for i in range(32)))
    finally:
        await sink.aclose()
    assert results == [200] * 32
    assert len({p.peer for p in http_receiver.posts}) <= 8


async def test_a_dropped_connection_is_retried_once(http_receiver: HttpReceiver) -> None:
    http_receiver.answer(Answer(drop=True))
    sink = HttpSink(endpoint=http_receiver.url)
    try:
        assert await sink.deliver(job()) == 200
        assert len(http_receiver.posts) == 2
        http_receiver.answer(Answer(drop=True), Answer(drop=True))
        error = await deliver_error(sink)
    finally:
        await sink.aclose()
    assert error.message == "http plugin request failed: Server disconnected"
    assert error.retryable and error.endpoint_failure
