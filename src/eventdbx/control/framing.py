"""Standard unpacked Cap'n Proto stream framing with limits, and a raw look at a message's root struct."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

MAX_SEGMENTS = 512
FRAME_STALL_SECS = 30.0
DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_U16 = struct.Struct("<H")
_SINGLE_HEADER = struct.Struct("<II")


class FrameError(Exception):
    """A framing violation: the connection is closed without a reply."""


def _table_bytes(segments: int) -> int:
    """Bytes of the segment-size table including the count word and padding."""
    return 4 * (segments + 1) + (4 if segments % 2 == 0 else 0)


class FrameDecoder:
    """Incremental frame splitter: feed bytes, get whole frames; raises FrameError on a bad header."""

    __slots__ = ("_buf", "_need", "max_message_bytes", "max_segments")

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 max_segments: int = MAX_SEGMENTS) -> None:
        self._buf = bytearray()
        self._need = 0  # total length of the frame at the head of the buffer, 0 = unknown
        self.max_message_bytes = max_message_bytes
        self.max_segments = max_segments

    @property
    def pending(self) -> bool:
        """True while a started frame is incomplete."""
        return bool(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Append bytes and return every frame now complete (each as its own bytes object)."""
        buf = self._buf
        if not buf and len(data) >= 8:
            # the usual read: exactly one whole single-segment frame, returned without buffering it
            count, size = _SINGLE_HEADER.unpack_from(data)
            if not count and len(data) == 8 + 8 * size and 8 * size <= self.max_message_bytes \
                    and self.max_segments >= 1:
                return [bytes(data)]
        buf += data
        frames: list[bytes] = []
        pos = 0
        end = len(buf)
        while True:
            need = self._need
            if need == 0:
                need = self._frame_length(buf, pos, end)
                if need == 0:
                    break
                self._need = need
            if end - pos < need:
                break
            frames.append(bytes(buf[pos:pos + need]))
            pos += need
            self._need = 0
        if pos:
            del buf[:pos]
        return frames

    def _frame_length(self, buf: bytearray, pos: int, end: int) -> int:
        """Total frame length once the header is complete (0 while it is not); checks the limits."""
        if end - pos < 4:
            return 0
        segments = _U32.unpack_from(buf, pos)[0] + 1
        if segments > self.max_segments:
            raise FrameError(f"too many segments ({segments})")
        table = _table_bytes(segments)
        if end - pos < table:
            return 0
        sizes = struct.unpack_from(f"<{segments}I", buf, pos + 4)
        body = 8 * sum(sizes)
        if body > self.max_message_bytes:
            raise FrameError(f"message of {body} bytes exceeds the limit of {self.max_message_bytes}")
        return int(table + body)


async def read_frame(reader: asyncio.StreamReader, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                     stall_secs: float = FRAME_STALL_SECS) -> bytes | None:
    """Read one frame from a stream (client side); None on a clean EOF between frames."""
    try:
        first = await reader.readexactly(4)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise FrameError("EOF inside a frame") from exc
        return None
    try:
        async with asyncio.timeout(stall_secs):
            segments = _U32.unpack(first)[0] + 1
            if segments > MAX_SEGMENTS:
                raise FrameError(f"too many segments ({segments})")
            rest = await reader.readexactly(_table_bytes(segments) - 4)
            body = 8 * sum(struct.unpack_from(f"<{segments}I", rest, 0))
            if body > max_message_bytes:
                raise FrameError(f"message of {body} bytes exceeds the limit of {max_message_bytes}")
            payload = await reader.readexactly(body)
    except asyncio.IncompleteReadError as exc:
        raise FrameError("EOF inside a frame") from exc
    except TimeoutError as exc:
        raise FrameError("frame stalled") from exc
    return first + rest + payload


@dataclass(frozen=True, slots=True)
class RootStruct:
    """Where the root struct of a frame lives (absolute byte offset of its data section) and its shape."""

    data_offset: int
    data_words: int
    ptr_words: int
    segment_end: int

    def u64(self, frame: bytes, word: int) -> int:
        """Data word `word` (0 when outside the data section)."""
        if word >= self.data_words:
            return 0
        return int(_U64.unpack_from(frame, self.data_offset + 8 * word)[0])

    def u16(self, frame: bytes, byte: int) -> int:
        """The u16 at data byte `byte` (0 when outside the data section)."""
        if byte + 2 > 8 * self.data_words:
            return 0
        return int(_U16.unpack_from(frame, self.data_offset + byte)[0])


def root_struct(frame: bytes) -> RootStruct | None:
    """Follow the root pointer (also through far pointers); None when it is not a readable struct pointer."""
    try:
        segments = _U32.unpack_from(frame, 0)[0] + 1
        sizes = struct.unpack_from(f"<{segments}I", frame, 4)
    except struct.error:
        return None
    starts: list[int] = []
    offset = _table_bytes(segments)
    for size in sizes:
        starts.append(offset)
        offset += 8 * size
    if offset > len(frame) or sizes[0] < 1:
        return None
    return _follow(frame, starts, sizes, 0, 0)


def _follow(frame: bytes, starts: list[int], sizes: tuple[int, ...], seg: int, word: int) -> RootStruct | None:
    """Resolve the pointer at (segment, word) to a struct location."""
    pointer = _U64.unpack_from(frame, starts[seg] + 8 * word)[0]
    kind = pointer & 3
    if kind == 0:
        if pointer == 0:
            return None
        rel = (pointer & 0xFFFFFFFF) >> 2
        if rel >= 1 << 29:
            rel -= 1 << 30
        return _place(starts, sizes, seg, word + 1 + rel, pointer)
    if kind != 2:
        return None
    double = (pointer >> 2) & 1
    pad = (pointer & 0xFFFFFFFF) >> 3
    target = pointer >> 32
    if target >= len(sizes) or pad + 1 + double > sizes[target]:
        return None
    if not double:
        landing = _U64.unpack_from(frame, starts[target] + 8 * pad)[0]
        if landing & 3 != 0 or landing == 0:
            return None
        rel = (landing & 0xFFFFFFFF) >> 2
        if rel >= 1 << 29:
            rel -= 1 << 30
        return _place(starts, sizes, target, pad + 1 + rel, landing)
    far = _U64.unpack_from(frame, starts[target] + 8 * pad)[0]
    tag = _U64.unpack_from(frame, starts[target] + 8 * pad + 8)[0]
    if far & 7 != 2 or tag & 3 != 0:
        return None
    content_seg = far >> 32
    if content_seg >= len(sizes):
        return None
    return _place(starts, sizes, content_seg, (far & 0xFFFFFFFF) >> 3, tag)


def _place(starts: list[int], sizes: tuple[int, ...], seg: int, word: int, pointer: int) -> RootStruct | None:
    """Bounds-check a struct of the pointer's shape at (segment, word)."""
    data_words = (pointer >> 32) & 0xFFFF
    ptr_words = pointer >> 48
    if word < 0 or word + data_words + ptr_words > sizes[seg]:
        return None
    return RootStruct(data_offset=starts[seg] + 8 * word, data_words=data_words, ptr_words=ptr_words,
                      segment_end=starts[seg] + 8 * sizes[seg])
