"""The client's codec hot path gives exactly what encode_request / decode_response give, on generated and mutated frames."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from eventdbx.control import messages as msg
from eventdbx.control.client_codec import encode_append_request, read_text_reply

U64 = st.integers(0, 2**64 - 1)
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=40)
MAYBE_TEXT = st.one_of(st.none(), st.just(""), TEXT)
ONE_TEXT_REPLIES = (msg.encode_list_aggregates, msg.encode_list_events, msg.encode_append, msg.encode_verify)


@settings(max_examples=400, deadline=None)
@given(st.builds(msg.AppendEvent, id=U64, token=TEXT, aggregate_type=TEXT, aggregate_id=TEXT, event_type=TEXT,
                 payload_json=MAYBE_TEXT, patch_json=MAYBE_TEXT, note=MAYBE_TEXT, metadata_json=MAYBE_TEXT,
                 expected_version=st.one_of(st.none(), U64)))
def test_append_requests_are_byte_identical(request: msg.AppendEvent) -> None:
    frame = encode_append_request(request.id, request.token, request.aggregate_type, request.aggregate_id,
                                  request.event_type, request.payload_json, request.patch_json, request.note,
                                  request.metadata_json, request.expected_version)
    assert frame == msg.encode_request(request)


@settings(max_examples=300, deadline=None)
@given(U64, TEXT, st.sampled_from(ONE_TEXT_REPLIES))
def test_one_text_replies_read_as_decode_response_reads_them(request_id: int, text: str, encode: object) -> None:
    frame = encode(request_id, text)  # type: ignore[operator]
    reply = read_text_reply(frame)
    assert reply is not None and reply == msg.decode_response(frame)


def test_other_replies_are_left_to_decode_response() -> None:
    assert read_text_reply(msg.encode_get_aggregate(1, True, "{}")) is None  # a data word besides the text
    assert read_text_reply(msg.encode_error(2, "io", "io error: x")) is None  # two texts
    assert read_text_reply(b"") is None
    assert read_text_reply(msg.encode_append(3, "{}")[:40]) is None  # truncated


def _decoded(frame: bytes) -> object:
    try:
        return msg.decode_response(frame)
    except ValueError as exc:
        return ("error", str(exc))


def test_mutated_replies_are_read_as_decode_response_reads_them_or_left_to_it() -> None:
    rng = random.Random(20261127)
    checked = taken = 0
    for n in range(4000):
        text = "".join(rng.choice("ab{}é\"") for _ in range(rng.randrange(0, 30)))
        frame = bytearray(rng.choice(ONE_TEXT_REPLIES)(rng.randrange(2**64), text))
        for _ in range(rng.randrange(1, 4)):  # flip bytes of the header and pointer words mostly
            at = rng.randrange(min(len(frame), 48 if n % 2 else len(frame)))
            frame[at] = rng.randrange(256)
        if n % 7 == 0:
            frame = frame[: rng.randrange(len(frame) + 1)]
        fast = read_text_reply(bytes(frame))
        checked += 1
        if fast is not None:
            taken += 1
            assert fast == _decoded(bytes(frame)), bytes(frame).hex()
    assert checked == 4000 and taken > 100  # the fast path took a fair share of the mutants
