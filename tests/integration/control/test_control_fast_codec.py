"""The request fast paths (framing, decoding) agree with the general ones; replies match the former encoder."""

from __future__ import annotations

import dataclasses
import itertools
import random
import struct
from collections.abc import Callable, Sequence

import pytest
from control_wire import request, schema
from hypothesis import given, settings
from hypothesis import strategies as st

from eventdbx.control import messages as msg
from eventdbx.control.framing import FrameDecoder, FrameError

U64 = st.integers(0, 2**64 - 1)
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=40)
JSON_ISH = st.one_of(st.none(), st.sampled_from(["", "  ", "\n"]), TEXT)
OPTIONAL_JSON = st.one_of(st.none(), TEXT.filter(str.strip))


def _outcome(decode: Callable[[bytes], msg.Request], frame: bytes) -> object:
    """The decoded request, or the decode error as (request id, detail)."""
    try:
        return decode(frame)
    except msg.RequestDecodeError as exc:
        return ("error", exc.request_id, exc.detail)


def _check(frame: bytes) -> object:
    """decode_request (fast path first) and the general reader give the same result or the same error."""
    general = _outcome(msg._decode_general, frame)
    assert _outcome(msg.decode_request, frame) == general, frame.hex()
    fast = msg._decode_fast(frame)
    assert fast is None or fast == general, frame.hex()
    return general


requests = st.one_of(
    st.builds(msg.ListAggregates, id=U64, skip=U64, take=st.one_of(st.none(), U64)),
    st.builds(msg.GetAggregate, id=U64, aggregate_type=TEXT, aggregate_id=TEXT),
    st.builds(msg.ListEvents, id=U64, aggregate_type=TEXT, aggregate_id=TEXT, skip=U64,
              take=st.one_of(st.none(), U64)),
    st.builds(msg.AppendEvent, id=U64, token=TEXT.map(str.strip), aggregate_type=TEXT, aggregate_id=TEXT,
              event_type=TEXT, payload_json=OPTIONAL_JSON, patch_json=OPTIONAL_JSON,
              note=st.one_of(st.none(), TEXT), metadata_json=OPTIONAL_JSON,
              expected_version=st.one_of(st.none(), U64)),
    st.builds(msg.VerifyAggregate, id=U64, aggregate_type=TEXT, aggregate_id=TEXT),
    st.builds(msg.Authenticate, id=U64, token=TEXT.map(str.strip)),
)


@settings(max_examples=300, deadline=None)
@given(requests)
def test_encoded_requests_take_the_fast_path(req: msg.Request) -> None:
    frame = msg.encode_request(req)
    assert msg._decode_fast(frame) == req
    assert _check(frame) == req


@settings(max_examples=300, deadline=None)
@given(rid=U64, token=TEXT, names=st.tuples(TEXT, TEXT, TEXT), payload=JSON_ISH, patch=JSON_ISH,
       note=st.one_of(st.none(), TEXT), metadata=JSON_ISH, version=st.one_of(st.none(), U64))
def test_pycapnp_appends_take_the_fast_path(rid: int, token: str, names: tuple[str, str, str], payload: str | None,
                                            patch: str | None, note: str | None, metadata: str | None,
                                            version: int | None) -> None:
    frame = request(rid, "appendEvent", token=token, aggregateType=names[0], aggregateId=names[1],
                    eventType=names[2], payloadJson=payload or "", patchJson=patch or "", note=note or "",
                    hasNote=note is not None, metadataJson=metadata or "", hasMetadata=metadata is not None,
                    expectedVersion=version or 0, hasExpectedVersion=version is not None)
    assert msg._decode_fast(frame) is not None
    decoded = _check(frame)
    assert isinstance(decoded, msg.AppendEvent) and decoded.id == rid and decoded.event_type == names[2]
    assert decoded.expected_version == version and decoded.token == token.strip()


@settings(max_examples=500, deadline=None)
@given(requests, st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 255)), min_size=1, max_size=6),
       st.integers(0, 2**16))
def test_mutated_frames_decode_as_the_general_reader_does(req: msg.Request, edits: list[tuple[int, int]],
                                                          cut: int) -> None:
    frame = bytearray(msg.encode_request(req))
    for at, value in edits:
        frame[at % len(frame)] = value
    _check(bytes(frame))
    _check(bytes(frame[:cut % (len(frame) + 1)]))


def _seeds() -> list[bytes]:
    return [
        request(1, "listAggregates", skip=2, take=10, hasTake=True),
        request(2, "getAggregate", aggregateType="order", aggregateId="o-1"),
        request(3, "appendEvent", token="t", aggregateType="a", aggregateId="b", eventType="c_created",
                payloadJson='{"x":1}', note="n", hasNote=True, metadataJson='{"@a":1}', hasMetadata=True,
                expectedVersion=4, hasExpectedVersion=True),
        request(4, "listEvents", aggregateType="t", aggregateId="i", skip=1, take=3, hasTake=True),
        request(5, "appendEvent", aggregateType="big", aggregateId="b", eventType="e_created",
                payloadJson='"' + "q" * 9000 + '"'),  # two segments and a far pointer: general reader only
        request(6, "authenticate", token="jwt"),
        request(7, "verifyAggregate", aggregateType="t", aggregateId="é"),
        msg.encode_request(msg.AppendEvent(id=8, aggregate_type="t", aggregate_id="i", event_type="e")),
    ]


def _rewrite_word(rng: random.Random, frame: bytearray) -> None:
    """Rewrite one of the first words the way structural edge cases look (random bytes rarely hit them)."""
    at = 8 * rng.randrange(min(len(frame) // 8, 20))
    word = struct.unpack_from("<Q", frame, at)[0]
    word = rng.choice([
        word & ~(0x1FFFFFFF << 35),  # a text of length 0
        word | (1 << 31),  # a negative offset
        word ^ (1 << rng.randrange(64)),
        (word & ~3) | rng.randrange(4),  # another pointer kind (struct, list, far, capability)
        (word & ~(7 << 32)) | (rng.randrange(8) << 32),  # another list element size
        2 | (rng.randrange(4) << 32) | (rng.randrange(4) << 3) | (rng.randrange(2) << 2),  # a far pointer
        word + (1 << 35) * rng.choice([-1, 1, 8]),  # a text one byte or one word longer or shorter
        word + 4 * rng.choice([-1, 1]),  # an offset one word off
        word - (1 << 32) if at == 0 else word + (1 << 32),  # segment count/size; data words
    ]) & (2**64 - 1)
    struct.pack_into("<Q", frame, at, word)


def test_random_mutations_of_reference_frames_agree() -> None:
    rng = random.Random(4242)
    seeds = _seeds()
    fast_accepted = fast_refused = 0
    for _ in range(6000):
        frame = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            # mostly the header, the pointers and the first texts, where a byte changes the structure
            frame[rng.randrange(0, min(len(frame), 160 if rng.random() < 0.8 else len(frame)))] = rng.randrange(256)
        if rng.random() < 0.3:
            _rewrite_word(rng, frame)
        if rng.random() < 0.1:
            frame = frame[:rng.randrange(len(frame) + 1)]
        general = _check(bytes(frame))
        if msg._decode_fast(bytes(frame)) is not None:
            fast_accepted += 1
        elif not isinstance(general, tuple):
            fast_refused += 1
    # both branches are exercised: mutated frames the fast path reads itself and readable ones it hands on
    assert fast_accepted > 500 and fast_refused > 100


def test_unusual_but_readable_frames_fall_back_to_the_general_reader() -> None:
    body = struct.pack("<QQQQ", (2 << 32) | (1 << 48), 7, 1, 0)  # getAggregate with a null member pointer
    frame = struct.pack("<II", 0, len(body) // 8) + body
    assert msg._decode_fast(frame) is None
    assert msg.decode_request(frame) == msg.GetAggregate(id=7, aggregate_type="", aggregate_id="")
    big = _seeds()[4]
    assert msg._decode_fast(big) is None and isinstance(msg.decode_request(big), msg.AppendEvent)
    # an invalid note is ignored while hasNote is false (the general reader never reads it)
    frame = bytearray(msg.encode_request(msg.AppendEvent(id=9, aggregate_type="t", aggregate_id="i",
                                                         event_type="e")))
    note_pointer = 8 + 8 * (4 + 2 + 6)
    struct.pack_into("<Q", frame, note_pointer, 3)  # a capability pointer
    assert msg._decode_fast(bytes(frame)) is None
    assert msg.decode_request(bytes(frame)) == msg.AppendEvent(id=9, aggregate_type="t", aggregate_id="i",
                                                                event_type="e")


def test_the_append_builder_makes_the_constructors_object() -> None:
    values = {field.name: f"v{index}" for index, field in enumerate(dataclasses.fields(msg.AppendEvent))}
    built = msg._new_append_event(*values.values())
    assert type(built) is msg.AppendEvent and built == msg.AppendEvent(**values)  # type: ignore[arg-type]
    assert repr(built) == repr(msg.AppendEvent(**values))  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.id = 1  # type: ignore[misc]
    with pytest.raises(ValueError):
        msg._new_append_event(*list(values.values())[:-1])


def _former_text_reply(request_id: int, tag: int, texts: Sequence[str | bytes], data: bytes = b"") -> bytes:
    """The encoder as it was before the single-pack builders (the byte-for-byte reference)."""
    blobs = [t if isinstance(t, bytes) else t.encode() for t in texts]
    ptrs = len(blobs)
    inner = bytearray(data)
    pointer_area = bytearray(8 * ptrs)
    tail = bytearray()
    for index, blob in enumerate(blobs):
        start_word = (ptrs - index - 1) + len(tail) // 8
        size = len(blob) + 1
        struct.pack_into("<Q", pointer_area, 8 * index, (start_word << 2) | 1 | (2 << 32) | (size << 35))
        tail += blob
        tail += b"\0" * (8 - len(blob) % 8)
    inner += pointer_area
    inner += tail
    words = 4 + len(inner) // 8
    header = struct.pack("<IIQQQQ", 0, words, (2 << 32) | (1 << 48), request_id, tag,
                         (len(data) // 8 << 32) | (ptrs << 48))
    return header + bytes(inner)


TEXT_OR_BYTES = st.one_of(st.text(max_size=70), st.binary(max_size=70))


@settings(max_examples=300, deadline=None)
@given(U64, TEXT_OR_BYTES, st.text(max_size=30), st.booleans())
def test_replies_are_byte_identical_to_the_former_encoder(rid: int, text: str | bytes, other: str,
                                                          found: bool) -> None:
    ref = _former_text_reply
    assert msg.encode_append(rid, text) == ref(rid, 3, (text,))
    assert msg.encode_list_events(rid, text) == ref(rid, 2, (text,))
    assert msg.encode_list_aggregates(rid, text) == ref(rid, 0, (text,))
    assert msg.encode_verify(rid, other) == ref(rid, 4, (other,))
    assert msg.encode_get_aggregate(rid, found, text) == ref(rid, 1, (text,), struct.pack("<Q", found))
    assert msg.encode_error(rid, other, "m" if isinstance(text, bytes) else text) == \
        ref(rid, 5, (other, "m" if isinstance(text, bytes) else text))


@settings(max_examples=200, deadline=None)
@given(requests)
def test_encoded_requests_are_byte_identical_to_the_former_encoder(req: msg.Request) -> None:
    ref = _former_text_reply
    if isinstance(req, msg.ListAggregates | msg.ListEvents):
        data = struct.pack("<QQQ", req.skip, req.take or 0, req.take is not None)
        texts = (req.aggregate_type, req.aggregate_id) if isinstance(req, msg.ListEvents) else ()
        expected = ref(req.id, 2 if texts else 0, texts, data)
    elif isinstance(req, msg.GetAggregate | msg.VerifyAggregate):
        expected = ref(req.id, 1 if isinstance(req, msg.GetAggregate) else 4, (req.aggregate_type, req.aggregate_id))
    elif isinstance(req, msg.AppendEvent):
        flags = (req.note is not None) | (req.metadata_json is not None) << 1 | (req.expected_version is not None) << 2
        expected = ref(req.id, 3, (req.token, req.aggregate_type, req.aggregate_id, req.event_type,
                                   req.payload_json or "", req.patch_json or "", req.note or "",
                                   req.metadata_json or ""), struct.pack("<QQ", flags, req.expected_version or 0))
    else:
        expected = ref(req.id, 5, (req.token,))
    assert msg.encode_request(req) == expected
    with schema("control").ControlRequest.from_bytes(expected) as m:
        assert int(m.id) == req.id


def test_frame_decoder_returns_the_same_frames_for_any_chunking() -> None:
    rng = random.Random(77)
    seeds = _seeds()
    for _ in range(300):
        frames = [rng.choice(seeds) for _ in range(rng.randint(1, 5))]
        stream = b"".join(frames)
        cuts = sorted(rng.sample(range(1, len(stream)), min(rng.randint(0, 4), len(stream) - 1)))
        if rng.random() < 0.5:  # chunks on frame boundaries, each a whole frame (the common read)
            cuts = list(itertools.accumulate(len(f) for f in frames))[:-1]
        decoder = FrameDecoder(max_message_bytes=1 << 20)
        out: list[bytes] = []
        for start, end in itertools.pairwise([0, *cuts, len(stream)]):
            chunk = stream[start:end]
            out += decoder.feed(chunk if rng.random() < 0.5 else bytearray(chunk))
            assert decoder.pending == (sum(map(len, out)) != end)
        assert out == frames and all(type(f) is bytes for f in out)


def test_a_whole_frame_read_at_once_keeps_the_limits() -> None:
    at_limit = struct.pack("<II", 0, 16) + bytes(128)
    assert FrameDecoder(max_message_bytes=128).feed(at_limit) == [at_limit]
    with pytest.raises(FrameError):
        FrameDecoder(max_message_bytes=120).feed(at_limit)
    with pytest.raises(FrameError):
        FrameDecoder(max_segments=0).feed(at_limit)
    decoder = FrameDecoder()
    assert decoder.feed(at_limit + at_limit[:5]) == [at_limit] and decoder.pending
    assert decoder.feed(at_limit[5:]) == [at_limit] and not decoder.pending
    # the rest of a buffered frame that itself looks like a whole frame is still the rest
    inner = struct.pack("<II", 0, 1) + bytes(8)
    outer = struct.pack("<II", 0, 2) + inner
    assert decoder.feed(outer[:8]) == [] and decoder.feed(inner) == [outer]
