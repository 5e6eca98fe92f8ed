"""Framing and message codec: the §1 example frame, multi-segment/far pointers, limits, hand-built replies."""

from __future__ import annotations

import random
import struct

import pytest
from control_wire import request, response, schema, segments_of

from eventdbx.control import messages as msg
from eventdbx.control.framing import FrameDecoder, FrameError, root_struct

EXAMPLE = bytes.fromhex(
    "00000000" "07000000" "00000000" "02000100" "01000000" "00000000" "00000000" "00000000"
    "00000000" "03000000" "00000000" "00000000" "0a000000" "00000000" "01000000" "00000000"
)


def test_example_frame_of_section_1_decodes_as_list_aggregates() -> None:
    assert len(EXAMPLE) == 64
    assert msg.decode_request(EXAMPLE) == msg.ListAggregates(id=1, skip=0, take=10)
    assert msg.encode_request(msg.ListAggregates(id=1, skip=0, take=10)) == EXAMPLE
    assert request(1, "listAggregates", take=10, hasTake=True) == EXAMPLE


def test_reference_client_frames_decode_with_all_fields() -> None:
    frame = request(3, "appendEvent", token=" tok \n", aggregateType="order", aggregateId="o-1",
                    eventType="item_created", payloadJson='{"a":1}', patchJson="  ", note="", hasNote=True,
                    metadataJson='{"@k":1}', hasMetadata=False)
    assert msg.decode_request(frame) == msg.AppendEvent(
        id=3, token="tok", aggregate_type="order", aggregate_id="o-1", event_type="item_created",
        payload_json='{"a":1}', patch_json=None, note="", metadata_json=None, expected_version=None)
    le = msg.decode_request(request(2, "listEvents", aggregateType="t", aggregateId="i", skip=5, take=0))
    assert le == msg.ListEvents(id=2, aggregate_type="t", aggregate_id="i", skip=5, take=None)


def test_expected_version_extension_fields() -> None:
    frame = msg.encode_request(msg.AppendEvent(id=1, aggregate_type="t", aggregate_id="i", event_type="e_created",
                                               expected_version=7))
    decoded = msg.decode_request(frame)
    assert isinstance(decoded, msg.AppendEvent) and decoded.expected_version == 7
    with schema("control").ControlRequest.from_bytes(frame) as m:
        assert m.appendEvent.hasExpectedVersion and m.appendEvent.expectedVersion == 7


def test_multi_segment_request_with_far_pointer() -> None:
    payload = '{"blob":"' + "x" * 20000 + '"}'
    frame = request(9, "appendEvent", aggregateType="t", aggregateId="i", eventType="e_created", payloadJson=payload)
    assert segments_of(frame) > 1
    decoded = msg.decode_request(frame)
    assert isinstance(decoded, msg.AppendEvent) and decoded.payload_json == payload and decoded.id == 9


def test_root_struct_follows_far_pointer() -> None:
    # hand-built: segment 0 = a single far pointer to a landing pad in segment 1
    landing = struct.pack("<Q", (0 << 2) | (2 << 32) | (1 << 48))  # struct ptr, offset 0: 2 data, 1 ptr
    body = struct.pack("<QQQ", 5, 1, 0)  # id 5, tag 1 (getAggregate), null member pointer
    seg0 = struct.pack("<Q", 2 | (0 << 3) | (1 << 32))  # far ptr → segment 1, word 0
    seg1 = landing + body
    frame = struct.pack("<III", 1, 1, len(seg1) // 8) + b"\0" * 4 + seg0 + seg1
    root = root_struct(frame)
    assert root is not None and (root.data_words, root.ptr_words) == (2, 1)
    assert msg.decode_request(frame) == msg.GetAggregate(id=5, aggregate_type="", aggregate_id="")


def test_unknown_variant_keeps_the_id() -> None:
    frame = bytearray(EXAMPLE)
    struct.pack_into("<H", frame, 24, 9)
    with pytest.raises(msg.RequestDecodeError) as info:
        msg.decode_request(bytes(frame))
    assert info.value.request_id == 1 and info.value.detail == "unknown request variant 9"


def test_hand_built_replies_match_pycapnp() -> None:
    assert response(msg.encode_error(4, "aggregate_not_found", "aggregate not found")) == {
        "id": 4, "which": "error", "code": "aggregate_not_found", "message": "aggregate not found"}
    for size in range(0, 20):
        text = "é" * size
        assert response(msg.encode_append(1, text))["eventJson"] == text
    assert response(msg.encode_get_aggregate(2, True, '{"a":1}')) == {
        "id": 2, "which": "getAggregate", "found": True, "aggregateJson": '{"a":1}'}
    big = "y" * 100_000
    assert response(msg.encode_list_events(3, big))["eventsJson"] == big


def test_refusal_replies() -> None:
    with schema("cli").CliResponse.from_bytes(msg.encode_cli_refusal()) as r:
        assert (r.exitCode, r.stdout, r.stderr) == (
            1, "", "Error: CLI proxy requests are not supported by this server\n")
    with schema("replication").ReplicationHelloResponse.from_bytes(msg.encode_replication_refusal()) as r:
        assert (r.accepted, r.message) == (False, "replication is not supported by this server")


def test_decoder_splits_byte_by_byte_and_enforces_limits() -> None:
    decoder = FrameDecoder(max_message_bytes=1024)
    stream = EXAMPLE * 3
    frames: list[bytes] = []
    for i in range(len(stream)):
        frames += decoder.feed(stream[i:i + 1])
        assert decoder.pending == (len(frames) * 64 != i + 1)
    assert frames == [EXAMPLE] * 3
    with pytest.raises(FrameError):
        FrameDecoder(max_message_bytes=1024).feed(struct.pack("<II", 0, 129))  # 1032 bytes > 1024
    with pytest.raises(FrameError):
        FrameDecoder().feed(struct.pack("<I", 512))  # 513 segments


def test_garbage_never_raises_anything_but_decode_errors() -> None:
    rng = random.Random(1234)
    for _ in range(3000):
        frame = bytearray(EXAMPLE if rng.random() < 0.5 else request(2, "getAggregate", aggregateType="t"))
        for _ in range(rng.randint(1, 6)):
            frame[rng.randrange(8, len(frame))] = rng.randrange(256)
        try:
            msg.decode_request(bytes(frame))
        except msg.RequestDecodeError:
            pass


def _pycapnp_decode(frame: bytes) -> msg.Request | None:
    """The same request read through pycapnp (the reference reader), None when it refuses the message."""
    names = msg.REQUEST_VARIANTS
    try:
        with schema("control").ControlRequest.from_bytes(frame) as m:
            which = str(m.which)
            rid = int(m.id)
            b = getattr(m, which)
            tag = names.index(which)
            if tag == 0:
                return msg.ListAggregates(id=rid, skip=b.skip, take=b.take if b.hasTake else None)
            if tag in (1, 4):
                cls = msg.GetAggregate if tag == 1 else msg.VerifyAggregate
                return cls(id=rid, aggregate_type=b.aggregateType, aggregate_id=b.aggregateId)
            if tag == 2:
                return msg.ListEvents(id=rid, aggregate_type=b.aggregateType, aggregate_id=b.aggregateId,
                                      skip=b.skip, take=b.take if b.hasTake else None)
            if tag == 3:
                return msg.AppendEvent(
                    id=rid, token=b.token.strip(), aggregate_type=b.aggregateType, aggregate_id=b.aggregateId,
                    event_type=b.eventType, payload_json=b.payloadJson if b.payloadJson.strip() else None,
                    patch_json=b.patchJson if b.patchJson.strip() else None,
                    note=b.note if b.hasNote else None,
                    metadata_json=(b.metadataJson if b.metadataJson.strip() else None) if b.hasMetadata else None,
                    expected_version=b.expectedVersion if b.hasExpectedVersion else None)
            return msg.Authenticate(id=rid, token=b.token.strip())
    except Exception:
        return None


def test_hand_reader_agrees_with_pycapnp_on_fuzzed_frames() -> None:
    rng = random.Random(99)
    seeds = [
        EXAMPLE,
        request(2, "getAggregate", aggregateType="order", aggregateId="o-1"),
        request(3, "appendEvent", token="t", aggregateType="a", aggregateId="b", eventType="c_created",
                payloadJson='{"x":1}', note="n", hasNote=True, metadataJson='{"@a":1}', hasMetadata=True),
        request(4, "listEvents", aggregateType="t", aggregateId="i", skip=1, take=3, hasTake=True),
        request(5, "appendEvent", aggregateType="big", aggregateId="b", eventType="e_created",
                payloadJson='"' + "q" * 9000 + '"'),
        request(6, "authenticate", token="jwt"),
    ]
    agreed = 0
    for _ in range(4000):
        frame = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            frame[rng.randrange(8, min(len(frame), 200))] = rng.randrange(256)
        ours: msg.Request | None
        try:
            ours = msg.decode_request(bytes(frame))
        except msg.RequestDecodeError:
            ours = None
        theirs = _pycapnp_decode(bytes(frame))
        # never accept what pycapnp refuses, never read other values; we may refuse more (like the Rust
        # reference, a pointer of the wrong kind is an error where C++ falls back to the default)
        if ours is not None:
            assert ours == theirs, bytes(frame).hex()
            agreed += 1
    assert agreed > 500


def test_encoded_requests_read_back_through_pycapnp() -> None:
    requests: list[msg.Request] = [
        msg.ListAggregates(id=1, skip=3, take=None),
        msg.ListAggregates(id=2, skip=0, take=0),
        msg.GetAggregate(id=3, aggregate_type="order", aggregate_id="o-é"),
        msg.ListEvents(id=4, aggregate_type="t", aggregate_id="i", skip=2, take=7),
        msg.VerifyAggregate(id=5, aggregate_type="t", aggregate_id="x" * 9000),
        msg.AppendEvent(id=6, token="jwt", aggregate_type="t", aggregate_id="i", event_type="e_created",
                        payload_json='{"a":1}', note="", metadata_json='{"@m":1}', expected_version=0),
        msg.AppendEvent(id=7, aggregate_type="t", aggregate_id="i", event_type="e", patch_json="[]"),
        msg.Authenticate(id=2**64 - 1, token="tok"),
    ]
    for req in requests:
        frame = msg.encode_request(req)
        assert _pycapnp_decode(frame) == req
        assert msg.decode_request(frame) == req


@pytest.mark.parametrize("body", [
    # getAggregate member pointer points far outside the segment
    struct.pack("<QQQQ", (2 << 32) | (1 << 48), 7, 1, (1000 << 2) | (0 << 32) | (2 << 48)),
    # aggregateType text pointer claims 1 MiB of bytes
    struct.pack("<QQQQQQ", (2 << 32) | (1 << 48), 7, 1, (0 << 32) | (2 << 48), 1 | (2 << 32) | (1 << 55), 0),
    # text without its NUL terminator
    struct.pack("<QQQQQQ", (2 << 32) | (1 << 48), 7, 1, (0 << 32) | (2 << 48), (1 << 2) | 1 | (2 << 32) | (3 << 35), 0)
    + b"abc\x01\0\0\0\0",
    # a capability pointer where a struct belongs
    struct.pack("<QQQQ", (2 << 32) | (1 << 48), 7, 1, 3),
    # a far pointer into a segment that does not exist
    struct.pack("<QQQQ", (2 << 32) | (1 << 48), 7, 1, 2 | (9 << 32)),
    # a far pointer landing on another far pointer
    struct.pack("<QQQQQ", (2 << 32) | (1 << 48), 7, 1, 2 | (4 << 3), 2 | (4 << 3)),
])
def test_unreadable_content_is_a_decode_error_with_the_id(body: bytes) -> None:
    frame = struct.pack("<II", 0, len(body) // 8) + body
    with pytest.raises(msg.RequestDecodeError) as info:
        msg.decode_request(frame)
    assert info.value.request_id == 7
