"""The client's hot path of the control codec: appendEvent requests framed in one pack, one-text replies read directly.

Both produce exactly what `messages.encode_request` and `messages.decode_response` produce (tests compare them on
generated and mutated frames); anything `read_text_reply` does not recognise is left to `decode_response`.
"""

from __future__ import annotations

import struct

from eventdbx.control.messages import Response
from eventdbx.control.wire import TEXT_KIND, single_segment_texts

_ROOT_POINTER = (2 << 32) | (1 << 48)  # struct at offset 0: 2 data words, 1 pointer
_TAG_APPEND = 3
# segment table, root pointer, id, tag word, member pointer; the member's 2 data words and 8 text pointers
_APPEND_HEAD = struct.Struct("<IIQQQQQQ8Q")
_APPEND_MEMBER = (2 << 32) | (8 << 48)  # appendEvent: 2 data words, 8 pointers, right after the root struct
_APPEND_WORDS = 4 + 2 + 8  # root pointer, root struct (2 data words, 1 pointer), member data and pointers
_PADS = tuple(b"\0" * (8 - k) for k in range(8))  # a text's NUL and its padding to a word, by length % 8
_REPLY_HEAD = struct.Struct("<IIQQQQ")  # segment table, root pointer, id, tag word, member pointer
_ONE_TEXT_MEMBER = 1 << 48  # a member struct of no data words and one pointer, right after the root struct
_ONE_TEXT_KINDS = {0: "listAggregates", 2: "listEvents", 3: "appendEvent", 4: "verifyAggregate"}


def encode_append_request(request_id: int, token: str, aggregate_type: str, aggregate_id: str, event_type: str,
                          payload_json: str | None, patch_json: str | None, note: str | None,
                          metadata_json: str | None, expected_version: int | None) -> bytes:
    """`encode_request(AppendEvent(...))` with the same bytes, without building the request object."""
    blobs = (token.encode(), aggregate_type.encode(), aggregate_id.encode(), event_type.encode(),
             payload_json.encode() if payload_json else b"", patch_json.encode() if patch_json else b"",
             note.encode() if note else b"", metadata_json.encode() if metadata_json else b"")
    pointers = []
    parts = [b""]
    offset = 7  # from the end of a pointer word to its text: the pointers after it and the texts before it
    for blob in blobs:
        length = len(blob)
        pointers.append((offset << 2) | TEXT_KIND | ((length + 1) << 35))
        parts += (blob, _PADS[length & 7])
        offset += length >> 3  # this text's words (with its NUL) less the pointer word left behind
    flags = (note is not None) | (metadata_json is not None) << 1 | (expected_version is not None) << 2
    parts[0] = _APPEND_HEAD.pack(0, _APPEND_WORDS + offset + 1, _ROOT_POINTER, request_id, _TAG_APPEND,
                                 _APPEND_MEMBER, flags, expected_version or 0, *pointers)
    return b"".join(parts)


def read_text_reply(frame: bytes) -> Response | None:
    """A canonical single-segment reply whose member is one text (list, events, append, verify), else None."""
    if len(frame) < 48:
        return None
    count, size, root, request_id, tag, member = _REPLY_HEAD.unpack_from(frame)
    kind = _ONE_TEXT_KINDS.get(tag)  # the whole tag word: the discriminant's neighbours must be zero
    if kind is None or count or root != _ROOT_POINTER or member != _ONE_TEXT_MEMBER or 8 + 8 * size > len(frame):
        return None
    texts = single_segment_texts(frame, size, 4, struct.unpack_from("<Q", frame, 40))
    if texts is None:
        return None
    return Response(id=request_id, kind=kind, text=texts[0])
