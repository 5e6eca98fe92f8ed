"""The log sink in detail (plugins.md §8.4): lines per part, templates, levels."""

from __future__ import annotations

import logging

import pytest

from eventdbx.errors import DeliveryError, PluginError
from eventdbx.plugins.sink import DeliveryJob
from eventdbx.plugins.sinks.log import TRACE, LogSink, parse_level

E = (
    '{"aggregate_id":"order-1","aggregate_type":"order","event_type":"order_created","hash":"h",'
    '"merkle_root":"h","metadata":{"created_at":"2025-10-26T12:00:00.123456Z","event_id":"42",'
    '"issued_by":null},"payload":{"status":"created","total":1.50},"version":5}'
)
S = '{"aggregate_id":"order-1","aggregate_type":"order","archived":false,"merkle_root":"h","state":{"status":"created","total":"1.50"},"version":5}'
C = '{"aggregate":"order","events":{},"hidden":false}'


def job(envelope: str) -> DeliveryJob:
    return DeliveryJob(
        job_id=9,
        event_id=42,
        attempt=1,
        replay=False,
        body=envelope.encode(),
        aggregate_type="order",
        aggregate_id="order-1",
        event_type="order_created",
        version=5,
    )


async def lines(
    caplog: pytest.LogCaptureFixture, sink: LogSink, envelope: str
) -> list[tuple[int, str]]:
    caplog.set_level(1, logger="eventdbx.plugin.log")
    caplog.clear()
    await sink.deliver(job(envelope))
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "eventdbx.plugin.log"]


async def test_one_line_per_part(caplog: pytest.LogCaptureFixture) -> None:
    got = await lines(caplog, LogSink(level="INFO"), f'{{"event":{E},"schema":{C},"state":{S}}}')
    assert got == [
        (
            logging.INFO,
            'aggregate=order id=order-1 event=order_created payload={"status":"created","total":1.50}',
        ),
        (logging.INFO, 'aggregate=order id=order-1 state={"status":"created","total":"1.50"}'),
        (logging.INFO, f"schema=order payload={C}"),
    ]


async def test_template_replaces_the_event_line(caplog: pytest.LogCaptureFixture) -> None:
    sink = LogSink(
        level="warn", template="[{aggregate}/{id}] {event} v{version} #{event_id} {unknown}"
    )
    got = await lines(caplog, sink, f'{{"event":{E}}}')
    assert got == [(logging.WARNING, "[order/order-1] order_created v5 #42 {unknown}")]


async def test_state_only_and_extensions_only(caplog: pytest.LogCaptureFixture) -> None:
    sink = LogSink(level="trace")
    ext_only = E.replace('{"status":"created","total":1.50}', "null")
    got = await lines(caplog, sink, f'{{"state":{S}}}')
    got += await lines(caplog, sink, f'{{"event":{ext_only}}}')
    assert [level for level, _ in got] == [TRACE, TRACE]
    assert got[-1][1] == "aggregate=order id=order-1 event=order_created payload=null"


@pytest.mark.parametrize(
    ("text", "level"), [("TRACE", "trace"), (" Warn ", "warn"), ("error", "error")]
)
def test_levels_are_case_insensitive(text: str, level: str) -> None:
    assert parse_level(text) == level


async def test_bad_level_fails_readiness_and_delivery() -> None:
    with pytest.raises(PluginError) as info:
        parse_level("verbose")
    assert info.value.message == "unsupported log level 'verbose'"
    sink = LogSink(level="verbose")
    for call in (sink.check_ready(), sink.deliver(job(f'{{"event":{E}}}'))):
        with pytest.raises(DeliveryError) as err:
            await call
        assert err.value.message == "unsupported log level 'verbose'"
