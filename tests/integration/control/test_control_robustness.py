"""Malformed, oversized, stalled and garbage input; many clients; slow clients never block others."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import struct
import time

import pytest
from control_daemon import Daemon, StartFn
from control_wire import RawConn, request

EXAMPLE = request(1, "listAggregates", take=10, hasTake=True)


async def alive(daemon: Daemon, timeout: float = 5.0) -> None:
    """The daemon still answers a fresh connection promptly."""
    conn = await RawConn.open(daemon.port)
    reply = await conn.call(request(7, "listAggregates"), timeout=timeout)
    assert (reply["id"], reply["which"]) == (7, "listAggregates")
    await conn.close()


async def test_oversized_message_closed_before_body(start_daemon: StartFn) -> None:
    daemon = await start_daemon(max_message_bytes=4096)
    conn = await RawConn.open(daemon.port)
    await conn.send(struct.pack("<II", 0, 513))  # 4104 bytes announced, no body sent
    assert await conn.closed(timeout=5)
    await alive(daemon)


async def test_too_many_segments_closed(daemon: Daemon) -> None:
    conn = await RawConn.open(daemon.port)
    await conn.send(struct.pack("<I", 512) + b"\0" * 64)  # 513 segments
    assert await conn.closed(timeout=5)
    await alive(daemon)


async def test_truncated_frame_then_eof_closed(daemon: Daemon) -> None:
    conn = await RawConn.open(daemon.port)
    await conn.send(EXAMPLE[:40])
    conn.writer.write_eof()
    assert await conn.closed(timeout=5)
    await alive(daemon)


async def test_stalled_frame_closed_idle_connection_kept(start_daemon: StartFn) -> None:
    daemon = await start_daemon(frame_stall_secs=0.5)
    idle = await RawConn.open(daemon.port)
    stalled = await RawConn.open(daemon.port)
    await stalled.send(EXAMPLE[:10])
    started = time.monotonic()
    assert await stalled.closed(timeout=5)
    assert time.monotonic() - started < 4
    await asyncio.sleep(0.6)
    reply = await idle.call(request(3, "listAggregates"))
    assert reply["id"] == 3  # the idle connection stayed open past the stall timeout
    await idle.close()


async def test_max_connections(start_daemon: StartFn) -> None:
    daemon = await start_daemon(max_connections=3)
    conns = [await RawConn.open(daemon.port) for _ in range(3)]
    for conn in conns:
        assert (await conn.call(request(1, "listAggregates")))["which"] == "listAggregates"
    extra = await RawConn.open(daemon.port)
    assert await extra.closed(timeout=5)
    await conns[0].close()
    deadline = time.monotonic() + 5
    while len(daemon.server.connections) >= 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await alive(daemon)
    for conn in conns[1:]:
        await conn.close()


async def test_fuzzed_frames_never_hurt_the_daemon(daemon: Daemon, caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(20261126)
    token = daemon.token()
    seeds = [
        EXAMPLE,
        request(2, "getAggregate", aggregateType="t", aggregateId="i"),
        request(3, "appendEvent", token=token, aggregateType="t", aggregateId="i", eventType="e_created",
                payloadJson='{"a":1}'),
        request(4, "listEvents", aggregateType="t", aggregateId="i", take=3, hasTake=True),
        request(5, "authenticate", token="x"),
    ]
    sent = 0
    for _ in range(40):  # 40 connections × 60 frames
        conn = await RawConn.open(daemon.port)
        await conn.send(EXAMPLE)  # a valid first message so later garbage reaches the decoder
        await conn.frame()
        chunks = []
        for _ in range(60):
            frame = bytearray(rng.choice(seeds))
            mode = rng.random()
            if mode < 0.7:  # flip bytes after the segment table: well framed, garbage content
                for _ in range(rng.randint(1, 8)):
                    frame[rng.randrange(8, len(frame))] = rng.randrange(256)
            elif mode < 0.85:  # garbage with a correct header
                body = rng.randbytes(8 * rng.randint(1, 12))
                frame = bytearray(struct.pack("<II", 0, len(body) // 8) + body)
            else:  # anything at all (may be a framing error: the server then closes this connection)
                frame = bytearray(rng.randbytes(rng.randint(1, 80)))
            chunks.append(bytes(frame))
            sent += 1
        try:
            await conn.send(b"".join(chunks))
        except ConnectionError:
            pass
        if rng.random() < 0.5:
            await conn.closed(timeout=0.3)
        await conn.close()
    assert sent == 2400
    await alive(daemon)
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures == [], [r.getMessage() for r in failures]


async def test_many_concurrent_clients(daemon: Daemon) -> None:
    token = daemon.token()

    async def client(n: int) -> list[int]:
        conn = await RawConn.open(daemon.port)
        versions = []
        for k in range(10):
            reply = await conn.call(request(k + 1, "appendEvent", token=token, aggregateType="c",
                                            aggregateId=f"c-{n % 5}", eventType="e_created", payloadJson=f'{{"k":{k}}}'))
            assert reply["which"] == "appendEvent", reply
            versions.append(json.loads(reply["eventJson"])["version"])
        await conn.close()
        return versions

    results = await asyncio.gather(*(client(n) for n in range(60)))
    per_aggregate: dict[int, list[int]] = {}
    for n, versions in enumerate(results):
        per_aggregate.setdefault(n % 5, []).extend(versions)
    for versions in per_aggregate.values():
        assert sorted(versions) == list(range(1, 121))
    assert daemon.server.writer.batches < 600  # group commit batched concurrent appends


async def test_slow_reader_does_not_block_others(daemon: Daemon) -> None:
    token = daemon.token()
    for n in range(3):
        conn = await RawConn.open(daemon.port)
        await conn.call(request(1, "appendEvent", token=token, aggregateType="s", aggregateId=f"s-{n}",
                                eventType="e_created", payloadJson='{"x":"' + "y" * 4000 + '"}'))
        await conn.close()
    slow = await RawConn.open(daemon.port)
    # pipeline thousands of list requests and never read the replies: the server's buffers fill up
    flood = b"".join(request(k, "listEvents", aggregateType="s", aggregateId="s-1") for k in range(1, 3001))
    slow.writer.write(flood)
    half_frame = await RawConn.open(daemon.port)
    await half_frame.send(EXAMPLE[:20])
    started = time.monotonic()
    for _ in range(20):
        await alive(daemon, timeout=2.0)
    assert time.monotonic() - started < 10
    slow.writer.transport.abort()
    await half_frame.close()


async def test_connection_per_request_like_the_rest_plugin(daemon: Daemon) -> None:
    token = daemon.token()
    for n in range(60):
        conn = await RawConn.open(daemon.port)
        if n % 2:
            reply = await conn.call(request(1, "appendEvent", token=token, aggregateType="r", aggregateId="r-1",
                                            eventType="r_created", payloadJson=f'{{"n":{n}}}'))
            assert reply["which"] == "appendEvent"
        else:
            assert (await conn.call(request(1, "listAggregates")))["which"] == "listAggregates"
        await conn.close()
    deadline = time.monotonic() + 5
    while daemon.server.connections and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert not daemon.server.connections  # nothing leaks
