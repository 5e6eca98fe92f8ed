"""The Cap'n Proto sink connection against a real loopback receiver built from its own schema copy."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from eventdbx.control.plugin_codec import EventFrameFields, encode_event
from eventdbx.errors import DeliveryError
from eventdbx.plugins.sinks.capnp_connection import CapnpConnection

RECEIVER = Path(__file__).with_name("receiver.py")


class Receiver:
    """A receiver process and the events it reported."""

    def __init__(self, policy: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(RECEIVER), policy], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    async def wait_events(self, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 10
        while len(self.events) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return self.events

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def start_receiver() -> Iterator[Callable[[str], Receiver]]:
    started: list[Receiver] = []

    def start(policy: str) -> Receiver:
        started.append(Receiver(policy))
        return started[-1]

    yield start
    for rec in started:
        rec.stop()


def _frame(n: int) -> Callable[[int], bytes]:
    fields = EventFrameFields(
        aggregate_type="order",
        aggregate_id=f"o-{n}",
        event_type="order_created",
        event_version=1,
        event_id=str(n),
        created_at_epoch_micros=5,
        payload_json=f'{{"n":{n}}}',
        hash="h" * 64,
        merkle_root="r" * 64,
    )
    return lambda seq: encode_event(fields, seq)


async def test_sequences_count_from_zero_and_fields_arrive(
    start_receiver: Callable[[str], Receiver],
) -> None:
    rec = start_receiver("ack")
    conn = CapnpConnection("127.0.0.1", rec.port, ack=True, timeout=5)
    for n in range(3):
        await conn.send(_frame(n))
    await conn.close()
    events = await rec.wait_events(3)
    assert [e["sequence"] for e in events] == [0, 1, 2]
    assert events[2]["aggregateId"] == "o-2" and events[2]["payloadJson"] == '{"n":2}'
    assert events[0]["schemaJson"] == "null" and events[0]["stateMerkleRoot"] == ""


async def test_pipelined_acks_and_errors(start_receiver: Callable[[str], Receiver]) -> None:
    rec = start_receiver("errors:1=busy;2=permanent: bad")
    conn = CapnpConnection("127.0.0.1", rec.port, ack=True, timeout=5)
    results = await asyncio.gather(
        *(conn.send(_frame(n)) for n in range(4)), return_exceptions=True
    )
    await conn.close()
    assert results[0] is None and results[3] is None
    assert isinstance(results[1], DeliveryError) and results[1].retryable
    assert results[1].message == "capnp plugin receiver error: busy"
    assert isinstance(results[2], DeliveryError) and not results[2].retryable


async def test_unknown_sequence_is_a_protocol_error_and_reconnects(
    start_receiver: Callable[[str], Receiver],
) -> None:
    rec = start_receiver("bogus-first")
    conn = CapnpConnection("127.0.0.1", rec.port, ack=True, timeout=5)
    with pytest.raises(DeliveryError, match="^capnp plugin protocol error: unknown sequence 999$"):
        await conn.send(_frame(0))
    await conn.send(_frame(1))
    await conn.close()
    events = await rec.wait_events(2)
    assert [(e["connection"], e["sequence"]) for e in events] == [(1, 0), (2, 0)]


async def test_missing_ack_times_out(start_receiver: Callable[[str], Receiver]) -> None:
    rec = start_receiver("none")
    conn = CapnpConnection("127.0.0.1", rec.port, ack=True, timeout=0.2)
    with pytest.raises(DeliveryError, match=r"^capnp plugin ack timed out after 0\.2s$") as info:
        await conn.send(_frame(0))
    assert info.value.endpoint_failure
    await conn.close()


async def test_peer_closing_and_connect_refused(start_receiver: Callable[[str], Receiver]) -> None:
    rec = start_receiver("close")
    conn = CapnpConnection("127.0.0.1", rec.port, ack=True, timeout=5)
    with pytest.raises(DeliveryError, match="^capnp plugin connection closed by peer$"):
        await conn.send(_frame(0))
    rec.stop()
    dead = CapnpConnection("127.0.0.1", rec.port, ack=False, timeout=1)
    with pytest.raises(
        DeliveryError, match=f"^capnp plugin connect to 127.0.0.1:{rec.port} failed: "
    ):
        await dead.send(_frame(0))


async def test_without_ack_success_is_a_flushed_write(
    start_receiver: Callable[[str], Receiver],
) -> None:
    rec = start_receiver("none")
    conn = CapnpConnection("127.0.0.1", rec.port, ack=False, timeout=5)
    for n in range(5):
        await conn.send(_frame(n))
    events = await rec.wait_events(5)
    await conn.close()
    assert [e["sequence"] for e in events] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("ack", [True, False])
async def test_concurrent_sends_share_writes_but_keep_their_order(
    start_receiver: Callable[[str], Receiver], ack: bool
) -> None:
    rec = start_receiver("ack" if ack else "none")
    conn = CapnpConnection("127.0.0.1", rec.port, ack=ack, timeout=5)
    await conn.send(_frame(0))  # connect first: the rest are queued in one loop turn
    results = await asyncio.gather(*(conn.send(_frame(n)) for n in range(1, 64)))
    assert results == [None] * 63
    events = await rec.wait_events(64)
    await conn.close()
    assert [e["sequence"] for e in events] == list(range(64))
    assert [e["aggregateId"] for e in events] == [f"o-{n}" for n in range(64)]
    assert {e["connection"] for e in events} == {1}
