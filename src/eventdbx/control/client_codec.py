"""The client's hot path of the control codec: appendEvent requests framed without a request object, one-text replies read directly.

Both produce exactly what `messages.encode_request` and `messages.decode_response` produce (tests compare them on
generated and mutated frames); anything `read_text_reply` does not recognise is left to `decode_response`.
"""

from __future__ import annotations

import struct

from eventdbx.control.messages import _HEADER, _RESPONSE_KINDS, _ROOT_POINTER, Response, _text_reply
from eventdbx.control.wire import single_segment_texts

_TAG_APPEND = 3
_FLAGS_VERSION = struct.Struct("<QQ")  # appendEvent's data words: has-note/metadata/version bits, expected version
_POINTER = struct.Struct("<Q")
_ONE_TEXT_MEMBER = 1 << 48  # a member struct of no data words and one pointer, right after the root struct
_ONE_TEXT_KINDS = {tag: _RESPONSE_KINDS[tag] for tag in (0, 2, 3, 4)}  # list/events, append, verify replies


def encode_append_request(request_id: int, token: str, aggregate_type: str, aggregate_id: str, event_type: str,
                          payload_json: str | None, patch_json: str | None, note: str | None,
                          metadata_json: str | None, expected_version: int | None) -> bytes:
    """`encode_request(AppendEvent(...))` with the same bytes, without building the request object."""
    flags = (note is not None) | (metadata_json is not None) << 1 | (expected_version is not None) << 2
    texts = (token, aggregate_type, aggregate_id, event_type, payload_json or "", patch_json or "", note or "",
             metadata_json or "")
    return _text_reply(request_id, _TAG_APPEND, texts, _FLAGS_VERSION.pack(flags, expected_version or 0))


def read_text_reply(frame: bytes) -> Response | None:
    """A canonical single-segment reply whose member is one text (list, events, append, verify), else None."""
    if len(frame) < 48:
        return None
    count, size, root, request_id, tag, member = _HEADER.unpack_from(frame)
    kind = _ONE_TEXT_KINDS.get(tag)  # the whole tag word: the discriminant's neighbours must be zero
    if kind is None or count or root != _ROOT_POINTER or member != _ONE_TEXT_MEMBER or 8 + 8 * size > len(frame):
        return None
    texts = single_segment_texts(frame, size, 4, _POINTER.unpack_from(frame, 40))
    if texts is None:
        return None
    return Response(id=request_id, kind=kind, text=texts[0])
