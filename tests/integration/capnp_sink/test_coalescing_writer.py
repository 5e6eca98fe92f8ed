"""CoalescingWriter: frames of one loop turn in one write; each frame's future reports that write's outcome."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from eventdbx.plugins.sinks.coalescing_writer import CoalescingWriter


class _Transport:
    def __init__(self) -> None:
        self.closing = False
        self.buffered = 0

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered


class _Writer:
    """Records write calls; `fail` makes write raise, `drained` gates drain()."""

    def __init__(self) -> None:
        self.transport = _Transport()
        self.writes: list[bytes] = []
        self.fail: BaseException | None = None
        self.drained = asyncio.Event()

    def write(self, data: bytes) -> None:
        if self.fail is not None:
            raise self.fail
        self.writes.append(data)

    async def drain(self) -> None:
        await self.drained.wait()
        self.transport.buffered = 0


def _writer(fake: _Writer) -> CoalescingWriter:
    return CoalescingWriter(fake)  # type: ignore[arg-type]


async def test_frames_of_one_turn_share_one_write() -> None:
    fake = _Writer()
    out = _writer(fake)
    waiters = [out.write(b"a"), out.write(b"bc"), out.write(b"d")]
    assert not any(w.done() for w in waiters)
    await asyncio.gather(*waiters)
    assert fake.writes == [b"abcd"]
    await out.write(b"e")
    assert fake.writes == [b"abcd", b"e"]


async def test_a_full_buffer_waits_for_drain() -> None:
    fake = _Writer()
    fake.transport.buffered = 1 << 20
    out = _writer(fake)
    waiter = out.write(b"x")
    await asyncio.sleep(0.01)
    assert not waiter.done()
    fake.drained.set()
    await asyncio.wait_for(waiter, 1)


@pytest.mark.parametrize(
    "failure", [RuntimeError("the handler is closed"), BrokenPipeError(32, "Broken pipe")]
)
async def test_a_failing_write_fails_every_frame_of_the_batch(failure: BaseException) -> None:
    fake = _Writer()
    fake.fail = failure
    out = _writer(fake)
    results = await asyncio.gather(out.write(b"a"), out.write(b"b"), return_exceptions=True)
    assert results == [failure, failure]


async def test_a_closing_transport_is_a_failed_write_not_a_silent_drop() -> None:
    fake = _Writer()
    fake.transport.closing = True
    out = _writer(fake)
    with pytest.raises(ConnectionResetError):
        await out.write(b"a")
    assert fake.writes == []


async def test_over_a_real_socket_after_the_peer_is_gone() -> None:
    left, right = socket.socketpair()
    _, writer = await asyncio.open_connection(sock=left)
    out = CoalescingWriter(writer)
    await out.write(b"hello")
    assert right.recv(5) == b"hello"
    right.close()
    outcome: Any = None
    for _ in range(50):  # the kernel reports the closed peer on a later write
        try:
            await out.write(b"x" * 1024)
        except (OSError, RuntimeError) as exc:
            outcome = exc
            break
        await asyncio.sleep(0.01)
    writer.close()
    assert isinstance(outcome, (OSError, RuntimeError))
