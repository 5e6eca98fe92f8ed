"""PluginEnvelope frames (plugin.capnp): encode init/event/ack/error, decode replies, split a byte stream."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eventdbx.domain.envelope import PluginEventFields as EventFrameFields

__all__ = ["EventFrameFields", "Incoming", "InitFields", "Reply"]
from eventdbx.errors import SerializationError

SCHEMA_PATH = Path(__file__).with_name("schemas") / "plugin.capnp"
MAX_SEGMENTS = 512


@cache
def _schema() -> Any:
    import capnp

    return capnp.load(str(SCHEMA_PATH))


@dataclass(frozen=True, slots=True, kw_only=True)
class InitFields:
    """The PluginInit fields sent to a process plugin after each spawn."""

    plugin_name: str
    version: str
    target: str
    transport: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """An `ack` (message None) or `error` envelope from a plugin."""

    sequence: int
    message: str | None = None


def encode_event(fields: EventFrameFields, sequence: int) -> bytes:
    """One framed PluginEnvelope{event}."""
    message = _schema().PluginEnvelope.new_message()
    event = message.init("event")
    event.sequence = sequence
    event.aggregateType = fields.aggregate_type
    event.aggregateId = fields.aggregate_id
    event.eventType = fields.event_type
    event.eventVersion = fields.event_version
    event.eventId = fields.event_id
    event.createdAtEpochMicros = fields.created_at_epoch_micros
    event.payloadJson = fields.payload_json
    event.metadataJson = fields.metadata_json
    event.hash = fields.hash
    event.merkleRoot = fields.merkle_root
    event.stateVersion = fields.state_version
    event.stateArchived = fields.state_archived
    event.stateMerkleRoot = fields.state_merkle_root
    entries = event.init("stateEntries", len(fields.state_entries))
    for slot, (key, value) in zip(entries, fields.state_entries, strict=True):
        slot.key = key
        slot.value = value
    event.schemaJson = fields.schema_json
    event.extensionsJson = fields.extensions_json
    data: bytes = message.to_bytes()
    return data


def encode_init(fields: InitFields) -> bytes:
    """One framed PluginEnvelope{init}."""
    message = _schema().PluginEnvelope.new_message()
    init = message.init("init")
    init.pluginName = fields.plugin_name
    init.version = fields.version
    init.target = fields.target
    init.transport = fields.transport
    data: bytes = message.to_bytes()
    return data


# A PluginEnvelope{ack} in canonical single-segment layout (what pycapnp writes, byte for byte): segment
# table, root pointer, envelope data word (union tag 2 = ack), its pointer to the PluginAck, then the
# sequence. Acks are the hot path of ack mode, so they are packed and recognised without pycapnp.
_ACK = struct.Struct("<IIQHxxxxxxQQ")
_ACK_PREFIX = _ACK.pack(0, 4, (1 << 32) | (1 << 48), 2, 1 << 32, 0)[:32]


def encode_reply(reply: Reply) -> bytes:
    """One framed PluginEnvelope{ack} or {error} (what a plugin writes back)."""
    if reply.message is None:
        return _ACK.pack(0, 4, (1 << 32) | (1 << 48), 2, 1 << 32, reply.sequence)
    message = _schema().PluginEnvelope.new_message()
    if reply.message is None:
        message.init("ack").sequence = reply.sequence
    else:
        error = message.init("error")
        error.sequence = reply.sequence
        error.message = reply.message
    data: bytes = message.to_bytes()
    return data


def decode_reply(frame: bytes) -> Reply:
    """Read an ack/error envelope; any other variant is a SerializationError."""
    if len(frame) == _ACK.size and frame.startswith(_ACK_PREFIX):
        return Reply(sequence=int.from_bytes(frame[32:], "little"))
    try:
        with _schema().PluginEnvelope.from_bytes(frame) as envelope:
            which = envelope.which()
            if which == "ack":
                return Reply(sequence=int(envelope.ack.sequence))
            if which == "error":
                return Reply(
                    sequence=int(envelope.error.sequence), message=str(envelope.error.message)
                )
    except SerializationError:
        raise
    except Exception as exc:
        raise SerializationError(f"invalid plugin envelope: {exc}") from exc
    raise SerializationError(f"unexpected plugin envelope variant '{which}'")


def decode_envelope(frame: bytes) -> tuple[str, dict[str, Any]]:
    """Decode any envelope into its variant name and a plain dict of its fields (SDK side)."""
    try:
        with _schema().PluginEnvelope.from_bytes(frame) as envelope:
            which = str(envelope.which())
            body = getattr(envelope, which).to_dict()
    except Exception as exc:
        raise SerializationError(f"invalid plugin envelope: {exc}") from exc
    return which, body


@dataclass(frozen=True, slots=True, kw_only=True)
class Incoming:
    """What a plugin reads from one frame: an init, an event with its sequence, or neither (other variants)."""

    init: InitFields | None = None
    sequence: int = 0
    event: EventFrameFields | None = None


def decode_incoming(frame: bytes) -> Incoming:
    """Decode a frame sent to a plugin, reading fields directly (twice as fast as `to_dict`)."""
    try:
        with _schema().PluginEnvelope.from_bytes(frame) as envelope:
            which = envelope.which()
            if which == "event":
                e = envelope.event
                fields = EventFrameFields(
                    aggregate_type=e.aggregateType,
                    aggregate_id=e.aggregateId,
                    event_type=e.eventType,
                    event_version=e.eventVersion,
                    event_id=e.eventId,
                    created_at_epoch_micros=e.createdAtEpochMicros,
                    payload_json=e.payloadJson,
                    metadata_json=e.metadataJson,
                    hash=e.hash,
                    merkle_root=e.merkleRoot,
                    state_version=e.stateVersion,
                    state_archived=e.stateArchived,
                    state_merkle_root=e.stateMerkleRoot,
                    state_entries=tuple((entry.key, entry.value) for entry in e.stateEntries),
                    schema_json=e.schemaJson,
                    extensions_json=e.extensionsJson,
                )
                return Incoming(sequence=e.sequence, event=fields)
            if which == "init":
                i = envelope.init
                return Incoming(
                    init=InitFields(
                        plugin_name=i.pluginName,
                        version=i.version,
                        target=i.target,
                        transport=i.transport,
                    )
                )
    except Exception as exc:
        raise SerializationError(f"invalid plugin envelope: {exc}") from exc
    return Incoming()


def frame_length(header: bytes | bytearray) -> tuple[int, int]:
    """From the first 4 bytes: (bytes of segment table still to read, segment count)."""
    (count_minus_one,) = struct.unpack("<I", header[:4])
    segments = count_minus_one + 1
    if segments > MAX_SEGMENTS:
        raise SerializationError(f"too many segments ({segments})")
    table = 4 * segments + (4 if segments % 2 == 0 else 0)
    return table, segments


def body_length(table: bytes | bytearray, segments: int) -> int:
    """Total bytes of the segments given the segment-size table."""
    sizes: tuple[int, ...] = struct.unpack(f"<{segments}I", table[: 4 * segments])
    return 8 * sum(sizes)


def take_frames(buffer: bytearray, *, max_bytes: int) -> list[bytes]:
    """Remove and return every complete frame at the start of `buffer` (a partial one stays)."""
    frames: list[bytes] = []
    start, end = 0, len(buffer)
    while end - start >= 4:
        table, segments = frame_length(buffer[start : start + 4])
        if end - start < 4 + table:
            break
        size = body_length(buffer[start + 4 : start + 4 + table], segments)
        if size > max_bytes:
            raise SerializationError(f"reply frame of {size} bytes exceeds {max_bytes} bytes")
        total = 4 + table + size
        if end - start < total:
            break
        frames.append(bytes(buffer[start : start + total]))
        start += total
    del buffer[:start]
    return frames
