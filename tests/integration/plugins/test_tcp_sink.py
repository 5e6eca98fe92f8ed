"""The tcp sink in detail (plugins.md §8.2): persistent connection, acks, pipelining, every error text."""

from __future__ import annotations

import asyncio
import socket

import pytest
from receivers import TcpReceiver, wait_for

from eventdbx.errors import DeliveryError
from eventdbx.plugins.sink import DeliveryJob
from eventdbx.plugins.sinks import tcp as tcp_module
from eventdbx.plugins.sinks.tcp import TcpSink, parse_reply


def job(n: int = 1) -> DeliveryJob:
    body = '{"event":{"aggregate_id":"a","n":' + str(n) + "}}"
    return DeliveryJob(
        job_id=n,
        event_id=1000 + n,
        attempt=1,
        replay=False,
        body=body.encode(),
        aggregate_type="order",
        aggregate_id="a",
        event_type="created",
        version=n,
    )


async def failure(sink: TcpSink, n: int = 1) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        await sink.deliver(job(n))
    return info.value


async def test_without_ack_lines_on_one_persistent_connection() -> None:
    receiver = await TcpReceiver(ack=False).start()
    sink = TcpSink(host="127.0.0.1", port=receiver.port, ack=False)
    try:
        for n in range(1, 4):
            await sink.deliver(job(n))
        await wait_for(lambda: len(receiver.lines) == 3, what="3 lines")
        assert receiver.lines == [job(n).body + b"\n" for n in range(1, 4)]
        assert receiver.connections == 1
        conn = sink._conn
        assert conn is not None
        sock = conn.writer.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        await sink.aclose()
        await receiver.go_away()


@pytest.mark.parametrize("reply", ["ok", "ok thanks", "ok\r", "  ok  "])
async def test_ok_replies(tcp_receiver: TcpReceiver, reply: str) -> None:
    tcp_receiver.replies.append(reply)
    sink = TcpSink(host="127.0.0.1", port=tcp_receiver.port, ack=True)
    try:
        await sink.deliver(job())
    finally:
        await sink.aclose()


@pytest.mark.parametrize(
    ("reply", "text", "retryable"),
    [
        ("error busy", "tcp plugin receiver error: busy", True),
        ("error", "tcp plugin receiver error", True),
        ("reject bad payload", "tcp plugin receiver rejected: bad payload", False),
        ("reject", "tcp plugin receiver rejected", False),
    ],
)
async def test_error_and_reject(
    tcp_receiver: TcpReceiver, reply: str, text: str, retryable: bool
) -> None:
    tcp_receiver.replies.append(reply)
    sink = TcpSink(host="127.0.0.1", port=tcp_receiver.port, ack=True)
    try:
        error = await failure(sink)
        assert (error.message, error.retryable, error.endpoint_failure) == (text, retryable, False)
        await sink.deliver(job(2))  # the connection stays usable
        assert tcp_receiver.connections == 1
    finally:
        await sink.aclose()


async def test_unexpected_reply_is_a_protocol_error_and_closes(tcp_receiver: TcpReceiver) -> None:
    tcp_receiver.replies.append("what?" + "x" * 100)
    sink = TcpSink(host="127.0.0.1", port=tcp_receiver.port, ack=True)
    try:
        error = await failure(sink)
        assert (
            error.message
            == "tcp plugin protocol error: unexpected reply '" + ("what?" + "x" * 100)[:80] + "'"
        )
        assert error.retryable
        await sink.deliver(job(2))
        assert tcp_receiver.connections == 2
    finally:
        await sink.aclose()


async def test_oversized_reply_is_a_protocol_error(tcp_receiver: TcpReceiver) -> None:
    tcp_receiver.replies.append("ok " + "y" * (70 * 1024))
    sink = TcpSink(host="127.0.0.1", port=tcp_receiver.port, ack=True)
    try:
        error = await failure(sink)
        assert (
            error.message
            == "tcp plugin protocol error: unexpected reply '" + ("ok " + "y" * 77) + "'"
        )
    finally:
        await sink.aclose()


async def test_ack_timeout_resets_the_waiting_lines(tcp_receiver: TcpReceiver) -> None:
    tcp_receiver.replies.extend([None, "ok", "ok"])
    sink = TcpSink(
        host="127.0.0.1", port=tcp_receiver.port, ack=True, timeout_secs=0.3, concurrency=4
    )
    try:
        first = asyncio.create_task(sink.deliver(job(1)))
        await wait_for(lambda: len(tcp_receiver.lines) == 1, what="first line")
        # the receiver stays silent on line 1, so the in-order replies to 2 and 3 never count
        tcp_receiver.replies.clear()
        tcp_receiver.replies.extend([None, None])
        others = [asyncio.create_task(sink.deliver(job(n))) for n in (2, 3)]
        results = await asyncio.gather(first, *others, return_exceptions=True)
    finally:
        await sink.aclose()
    messages = [r.message if isinstance(r, DeliveryError) else r for r in results]
    assert messages[0] == "tcp plugin ack timed out after 0.3s"
    assert set(messages[1:]) <= {
        "tcp plugin connection reset",
        "tcp plugin ack timed out after 0.3s",
    }
    assert isinstance(results[0], DeliveryError) and results[0].endpoint_failure


async def test_pipelining_keeps_replies_in_order(tcp_receiver: TcpReceiver) -> None:
    tcp_receiver.replies.extend(["ok", "error two", "ok", "reject four"])
    sink = TcpSink(host="127.0.0.1", port=tcp_receiver.port, ack=True, concurrency=4)
    try:
        results = await asyncio.gather(
            *(sink.deliver(job(n)) for n in range(1, 5)), return_exceptions=True
        )
    finally:
        await sink.aclose()
    assert results[0] is None and results[2] is None
    assert (
        isinstance(results[1], DeliveryError)
        and results[1].message == "tcp plugin receiver error: two"
    )
    assert (
        isinstance(results[3], DeliveryError)
        and results[3].message == "tcp plugin receiver rejected: four"
    )
    assert tcp_receiver.connections == 1


async def test_peer_closing_fails_the_waiting_line(tcp_receiver: TcpReceiver) -> None:
    tcp_receiver.replies.append("<close>")
    sink = TcpSink(host="127.0.0.1", port=tcp_receiver.port, ack=True)
    try:
        error = await failure(sink)
        assert error.message == "tcp plugin connection closed by peer"
        assert error.endpoint_failure
        await sink.deliver(job(2))
        assert tcp_receiver.connections == 2
    finally:
        await sink.aclose()


async def test_connect_failure_text() -> None:
    receiver = await TcpReceiver().start()
    port = receiver.port
    await receiver.go_away()
    sink = TcpSink(host="127.0.0.1", port=port, ack=True)
    try:
        error = await failure(sink)
    finally:
        await sink.aclose()
    assert error.message.startswith(f"tcp plugin connect to 127.0.0.1:{port} failed: ")
    assert error.retryable and error.endpoint_failure
    with pytest.raises(DeliveryError):
        await sink.check_ready()


async def test_idle_connection_closes(
    tcp_receiver: TcpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tcp_module, "IDLE_CLOSE_SECS", 0.05)
    sink = TcpSink(host="127.0.0.1", port=tcp_receiver.port, ack=True)
    try:
        await sink.deliver(job(1))
        await wait_for(lambda: tcp_receiver.open_connections == 0, what="idle close")
        await sink.deliver(job(2))
        assert tcp_receiver.connections == 2
    finally:
        await sink.aclose()


def test_parse_reply_table() -> None:
    assert parse_reply("ok") == (None, False)
    assert parse_reply("okay")[1] is True
    assert parse_reply("OK")[1] is True
    error, close = parse_reply("error  spaced out ")
    assert (
        error is not None and error.message == "tcp plugin receiver error: spaced out" and not close
    )
