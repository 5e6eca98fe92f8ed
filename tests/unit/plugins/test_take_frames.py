"""take_frames splits a byte stream of PluginEnvelope replies into whole frames, keeping a partial tail."""

from __future__ import annotations

import pytest

from eventdbx.control.plugin_codec import Reply, decode_reply, encode_reply, take_frames
from eventdbx.errors import SerializationError


def _stream() -> tuple[list[Reply], bytes]:
    replies = [Reply(sequence=0), Reply(sequence=1, message="permanent: bad"), Reply(sequence=2)]
    return replies, b"".join(encode_reply(r) for r in replies)


def test_whole_frames_come_out_in_order_and_the_buffer_empties() -> None:
    replies, data = _stream()
    buffer = bytearray(data)
    frames = take_frames(buffer, max_bytes=1 << 20)
    assert [decode_reply(f) for f in frames] == replies
    assert buffer == bytearray()


def test_byte_by_byte_arrival_yields_each_frame_once_complete() -> None:
    replies, data = _stream()
    buffer, seen = bytearray(), []
    for byte in data:
        buffer.append(byte)
        seen.extend(decode_reply(f) for f in take_frames(buffer, max_bytes=1 << 20))
        assert len(buffer) < len(data)
    assert seen == replies
    assert buffer == bytearray()


def test_a_partial_tail_stays_in_the_buffer() -> None:
    _, data = _stream()
    first = len(encode_reply(Reply(sequence=0)))
    buffer = bytearray(data[: first + 5])
    assert len(take_frames(buffer, max_bytes=1 << 20)) == 1
    assert bytes(buffer) == data[first : first + 5]


def test_an_oversized_frame_is_a_serialization_error() -> None:
    _, data = _stream()
    with pytest.raises(SerializationError, match="exceeds 8 bytes"):
        take_frames(bytearray(data), max_bytes=8)
