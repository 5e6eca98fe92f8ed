"""A minimal, bounds-checked Cap'n Proto reader for the control messages (structs, text, far pointers).

Requests that single_segment_texts (the fast path for canonical one-segment frames) does not take are decoded with
Message (pycapnp costs more per message than the rest of a request); tests compare both against pycapnp on fuzzed
frames. Limits: each read is bounded by the frame, requests are two levels deep and read a fixed number of fields,
so traversal and nesting stay far below 8 Mi words / 64.
"""

from __future__ import annotations

import struct

_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
TEXT_KIND = (2 << 32) | 1  # a list pointer to bytes
_PLAIN_TEXT_MASK = (7 << 32) | (1 << 31) | 3  # pointer kind, element size and the offset's sign bit


class WireError(Exception):
    """The message is not a readable instance of the expected struct."""


class Message:
    """The segments of one framed message (the frame bytes are shared, not copied)."""

    __slots__ = ("frame", "sizes", "starts")

    def __init__(self, frame: bytes) -> None:
        if len(frame) < 8:
            raise WireError("message too short")
        count = _U32.unpack_from(frame, 0)[0] + 1
        table = 4 * (count + 1) + (4 if count % 2 == 0 else 0)
        if len(frame) < table:
            raise WireError("truncated segment table")
        self.sizes: tuple[int, ...] = struct.unpack_from(f"<{count}I", frame, 4)
        starts = []
        offset = table
        for size in self.sizes:
            starts.append(offset)
            offset += 8 * size
        if offset > len(frame):
            raise WireError("truncated message")
        self.frame = frame
        self.starts: list[int] = starts

    def root(self) -> Struct:
        """The root struct."""
        if not self.sizes or self.sizes[0] < 1:
            raise WireError("message has no root pointer")
        return self.struct_at(0, 0)

    def _resolve(self, seg: int, word: int) -> tuple[int, int, int]:
        """Follow far pointers: (segment, word of the object, pointer word describing it)."""
        pointer = _U64.unpack_from(self.frame, self.starts[seg] + 8 * word)[0]
        if pointer & 3 != 2:
            return seg, word + 1 + _offset(pointer), pointer
        target, pad, double = pointer >> 32, (pointer >> 3) & 0x1FFFFFFF, (pointer >> 2) & 1
        if target >= len(self.sizes) or pad + 1 + double > self.sizes[target]:
            raise WireError("far pointer out of bounds")
        base = self.starts[target] + 8 * pad
        landing = _U64.unpack_from(self.frame, base)[0]
        if not double:
            if landing & 3 == 2:
                raise WireError("far pointer lands on a far pointer")
            return target, pad + 1 + _offset(landing), landing
        tag = _U64.unpack_from(self.frame, base + 8)[0]
        content = landing >> 32
        if landing & 7 != 2 or tag & 3 == 2 or content >= len(self.sizes):
            raise WireError("malformed double-far pointer")
        return content, (landing >> 3) & 0x1FFFFFFF, tag

    def struct_at(self, seg: int, word: int) -> Struct:
        """The struct the pointer at (segment, word) refers to (an empty struct for a null pointer)."""
        if _U64.unpack_from(self.frame, self.starts[seg] + 8 * word)[0] == 0:
            return Struct(self, 0, 0, 0, 0)
        seg, at, pointer = self._resolve(seg, word)
        if pointer & 3 != 0:
            raise WireError("expected a struct pointer")
        data, ptrs = (pointer >> 32) & 0xFFFF, pointer >> 48
        if at < 0 or at + data + ptrs > self.sizes[seg]:
            raise WireError("struct out of bounds")
        return Struct(self, seg, at, data, ptrs)

    def text_at(self, seg: int, word: int) -> str:
        """The Text the pointer at (segment, word) refers to ("" for a null pointer)."""
        pointer = _U64.unpack_from(self.frame, self.starts[seg] + 8 * word)[0]
        if pointer == 0:
            return ""
        if pointer & 3 == 1:  # the common case: a list pointer in the same segment
            at = word + 1 + _offset(pointer)
        else:
            seg, at, pointer = self._resolve(seg, word)
        if pointer & 3 != 1 or (pointer >> 32) & 7 != 2:
            raise WireError("expected a text pointer")
        size = pointer >> 35
        if at < 0 or at + (size + 7) // 8 > self.sizes[seg]:
            raise WireError("text out of bounds")
        start = self.starts[seg] + 8 * at
        if size < 1 or self.frame[start + size - 1] != 0:
            raise WireError("text is not NUL-terminated")
        try:
            return self.frame[start:start + size - 1].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WireError(f"invalid UTF-8 in text field: {exc.reason}") from None


def single_segment_texts(frame: bytes, size: int, word: int, pointers: tuple[int, ...]) -> list[str] | None:
    """The texts of `pointers`, stored from word `word` on in the only segment of `frame` (`size` words).

    None when one is not a plain forward text pointer to a NUL-terminated UTF-8 text inside the segment (a null
    pointer is ""): the caller then reads the message with Message, which gives the precise error if any.
    """
    texts: list[str] = []
    append = texts.append
    limit = 8 + 8 * size
    try:
        for pointer in pointers:
            word += 1
            if pointer & _PLAIN_TEXT_MASK != TEXT_KIND:
                if pointer:
                    return None
                append("")
                continue
            start = 8 + 8 * (word + ((pointer & 0xFFFFFFFF) >> 2))
            nul = start + (pointer >> 35) - 1  # the text ends inside the segment, NUL-terminated
            if not start <= nul < limit or frame[nul]:
                return None
            append(frame[start:nul].decode())
    except UnicodeDecodeError:
        return None
    return texts


def _offset(pointer: int) -> int:
    offset = (pointer & 0xFFFFFFFF) >> 2
    return offset - (1 << 30) if offset >= 1 << 29 else offset


class Struct:
    """A struct reader: fields outside the sections read as their defaults (Cap'n Proto evolution rules)."""

    __slots__ = ("data", "message", "ptrs", "seg", "word")

    def __init__(self, message: Message, seg: int, word: int, data: int, ptrs: int) -> None:
        self.message = message
        self.seg = seg
        self.word = word
        self.data = data
        self.ptrs = ptrs

    def u64(self, index: int) -> int:
        """Data word `index` as UInt64."""
        if index >= self.data:
            return 0
        return int(_U64.unpack_from(self.message.frame, self.message.starts[self.seg] + 8 * (self.word + index))[0])

    def u16(self, byte: int) -> int:
        """The UInt16 at data byte `byte`."""
        if byte + 2 > 8 * self.data:
            return 0
        base = self.message.starts[self.seg] + 8 * self.word + byte
        return int.from_bytes(self.message.frame[base:base + 2], "little")

    def bit(self, index: int) -> bool:
        """Data bit `index` as Bool."""
        if index >= 64 * self.data:
            return False
        return bool(self.message.frame[self.message.starts[self.seg] + 8 * self.word + index // 8] >> (index % 8) & 1)

    def text(self, index: int) -> str:
        """Pointer `index` as Text."""
        if index >= self.ptrs:
            return ""
        return self.message.text_at(self.seg, self.word + self.data + index)

    def struct(self, index: int) -> Struct:
        """Pointer `index` as a struct."""
        if index >= self.ptrs:
            return Struct(self.message, 0, 0, 0, 0)
        return self.message.struct_at(self.seg, self.word + self.data + index)
