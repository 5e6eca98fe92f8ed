"""Typed encode/decode of control.capnp messages; capnp objects never leave this module."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

from eventdbx.control.requests import AppendEvent as AppendEvent
from eventdbx.control.requests import Authenticate as Authenticate
from eventdbx.control.requests import GetAggregate as GetAggregate
from eventdbx.control.requests import ListAggregates as ListAggregates
from eventdbx.control.requests import ListEvents as ListEvents
from eventdbx.control.requests import Request as Request
from eventdbx.control.requests import RequestDecodeError as RequestDecodeError
from eventdbx.control.requests import VerifyAggregate as VerifyAggregate
from eventdbx.control.wire import TEXT_KIND, Message, Struct, WireError, single_segment_texts

SCHEMA_DIR = Path(__file__).with_name("schemas")
NESTING_LIMIT = 64
REQUEST_VARIANTS = ("listAggregates", "getAggregate", "listEvents", "appendEvent", "verifyAggregate",
                    "authenticate")
CLI_REFUSAL = "Error: CLI proxy requests are not supported by this server\n"
REPLICATION_REFUSAL = "replication is not supported by this server"


@cache
def _schema(name: str) -> Any:
    import capnp

    return capnp.load(str(SCHEMA_DIR / f"{name}.capnp"))


def _blank_to_none(text: str) -> str | None:
    return None if not text.strip() else text


def decode_request(frame: bytes) -> Request:
    """Decode one framed ControlRequest; RequestDecodeError (with the id when readable) otherwise."""
    request = _decode_fast(frame)
    return request if request is not None else _decode_general(frame)


# The fast path reads what reference clients send (one segment, plain forward pointers, the struct sizes of
# this schema) with a few unpacks; anything else, including every error, goes to the general reader, so
# results and error messages are the general reader's by construction.
_HEADER = struct.Struct("<IIQQQQ")  # seg count-1, seg size, root ptr, id, tag word, member ptr
_ROOT_POINTER = (2 << 32) | (1 << 48)  # struct at offset 0: 2 data words, 1 pointer
_ONE = struct.Struct("<Q")
_TWO = struct.Struct("<QQ")
_THREE = struct.Struct("<QQQ")
_EIGHT = struct.Struct("<8Q")


_APPEND_SLOTS = tuple(vars(AppendEvent)[field.name].__set__ for field in fields(AppendEvent))


def _new_append_event(*values: object) -> AppendEvent:
    """AppendEvent(...) from its fields' values in order, without the frozen __init__'s object.__setattr__ per field."""
    event = object.__new__(AppendEvent)
    for setter, value in zip(_APPEND_SLOTS, values, strict=True):
        setter(event, value)
    return event


def _decode_fast(frame: bytes) -> Request | None:
    """A canonical single-segment ControlRequest, or None when the general reader must look at it."""
    if len(frame) < 40:
        return None
    count, size, root, request_id, tag, member = _HEADER.unpack_from(frame)
    tag &= 0xFFFF
    if count or root != _ROOT_POINTER or size < 4 or 8 + 8 * size > len(frame) or member & 0x80000003:
        return None
    at = 4 + ((member & 0xFFFFFFFF) >> 2)
    data, ptrs = (member >> 32) & 0xFFFF, member >> 48
    if at + data + ptrs > size:
        return None
    if tag == 3:
        return _fast_append(frame, size, at, data, request_id) if data >= 2 and ptrs >= 8 else None
    return _fast_other(frame, size, at, data, ptrs, request_id, tag)


def _fast_append(frame: bytes, size: int, at: int, data: int, request_id: int) -> AppendEvent | None:
    """appendEvent on the fast path (its member struct at segment word `at`)."""
    texts = single_segment_texts(frame, size, at + data, _EIGHT.unpack_from(frame, 8 + 8 * (at + data)))
    if texts is None:
        return None
    flags, version = _TWO.unpack_from(frame, 8 + 8 * at)
    token, aggregate_type, aggregate_id, event_type, payload, patch, note, metadata = texts
    return _new_append_event(  # the fields in AppendEvent's order
        request_id, aggregate_type, aggregate_id, event_type, token.strip(), _blank_to_none(payload),
        _blank_to_none(patch), note if flags & 1 else None, _blank_to_none(metadata) if flags & 2 else None,
        version if flags & 4 else None,
    )


def _fast_other(frame: bytes, size: int, at: int, data: int, ptrs: int, request_id: int,
                tag: int) -> Request | None:
    """The other variants on the fast path."""
    pointers_at = 8 + 8 * (at + data)
    if tag == 5:
        token = single_segment_texts(frame, size, at + data, _ONE.unpack_from(frame, pointers_at)) if ptrs else None
        return None if token is None else Authenticate(id=request_id, token=token[0].strip())
    if tag >= 6 or (tag != 0 and ptrs < 2) or (tag in (0, 2) and data < 3):
        return None
    pair = single_segment_texts(frame, size, at + data, _TWO.unpack_from(frame, pointers_at)) if tag else []
    if pair is None:
        return None
    if tag == 1 or tag == 4:
        kind = GetAggregate if tag == 1 else VerifyAggregate
        return kind(id=request_id, aggregate_type=pair[0], aggregate_id=pair[1])
    skip, take, has_take = _THREE.unpack_from(frame, 8 + 8 * at)
    if tag == 0:
        return ListAggregates(id=request_id, skip=skip, take=take if has_take & 1 else None)
    return ListEvents(id=request_id, aggregate_type=pair[0], aggregate_id=pair[1], skip=skip,
                      take=take if has_take & 1 else None)


def _decode_general(frame: bytes) -> Request:
    """decode_request through the general reader (any segment layout, far pointers, every error)."""
    request_id = 0
    try:
        root = Message(frame).root()
        request_id = root.u64(0)
        tag = root.u16(8)
        if tag >= len(REQUEST_VARIANTS):
            raise RequestDecodeError(request_id, f"unknown request variant {tag}")
        return _read(root.struct(0), tag, request_id)
    except WireError as exc:
        raise RequestDecodeError(request_id, f"invalid control request: {exc}") from None
    except (IndexError, struct.error) as exc:
        raise RequestDecodeError(request_id, f"invalid control request: {exc}") from None


def _read(body: Struct, tag: int, request_id: int) -> Request:
    if tag == 3:
        return AppendEvent(
            id=request_id, token=body.text(0).strip(), aggregate_type=body.text(1), aggregate_id=body.text(2),
            event_type=body.text(3), payload_json=_blank_to_none(body.text(4)),
            patch_json=_blank_to_none(body.text(5)), note=body.text(6) if body.bit(0) else None,
            metadata_json=_blank_to_none(body.text(7)) if body.bit(1) else None,
            expected_version=body.u64(1) if body.bit(2) else None,
        )
    if tag == 0:
        return ListAggregates(id=request_id, skip=body.u64(0), take=body.u64(1) if body.bit(128) else None)
    if tag == 1:
        return GetAggregate(id=request_id, aggregate_type=body.text(0), aggregate_id=body.text(1))
    if tag == 2:
        return ListEvents(id=request_id, aggregate_type=body.text(0), aggregate_id=body.text(1),
                          skip=body.u64(0), take=body.u64(1) if body.bit(128) else None)
    if tag == 4:
        return VerifyAggregate(id=request_id, aggregate_type=body.text(0), aggregate_id=body.text(1))
    return Authenticate(id=request_id, token=body.text(0).strip())


def encode_request(request: Request) -> bytes:
    """Frame a request the way reference clients do: every field set (client side and tests)."""
    rid = request.id
    if isinstance(request, ListAggregates):
        data = struct.pack("<QQQ", request.skip, request.take or 0, request.take is not None)
        return _text_reply(rid, 0, (), data)
    if isinstance(request, GetAggregate | VerifyAggregate):
        tag = 1 if isinstance(request, GetAggregate) else 4
        return _text_reply(rid, tag, (request.aggregate_type, request.aggregate_id))
    if isinstance(request, ListEvents):
        data = struct.pack("<QQQ", request.skip, request.take or 0, request.take is not None)
        return _text_reply(rid, 2, (request.aggregate_type, request.aggregate_id), data)
    if isinstance(request, AppendEvent):
        flags = (request.note is not None) | (request.metadata_json is not None) << 1 \
            | (request.expected_version is not None) << 2
        texts = (request.token, request.aggregate_type, request.aggregate_id, request.event_type,
                 request.payload_json or "", request.patch_json or "", request.note or "",
                 request.metadata_json or "")
        return _text_reply(rid, 3, texts, struct.pack("<QQ", flags, request.expected_version or 0))
    return _text_reply(rid, 5, (request.token,))


# ---- text-only messages are built directly (one copy); authenticate replies go through pycapnp ----

_TAG_LIST_AGGREGATES, _TAG_GET, _TAG_LIST_EVENTS, _TAG_APPEND, _TAG_VERIFY, _TAG_ERROR, _TAG_AUTH = range(7)
_PADS = tuple(b"\0" * (8 - k) for k in range(8))  # a text's NUL and its padding to a word, by length % 8
_SINGLE_TEXT = struct.Struct("<IIQQQQQ")  # the header, then the member's one text pointer


def _text_reply(request_id: int, tag: int, texts: Sequence[str | bytes], data: bytes = b"") -> bytes:
    """Control{Request,Response}{id, member(data words, texts...)} as one segment (texts as str or UTF-8)."""
    ptrs = len(texts)
    parts = [b"", data, b""]  # the header and the pointer section follow once the sizes are known
    pointers = []
    offset = ptrs - 1  # from the end of a pointer word to its text: the pointers after it, the texts before it
    for text in texts:
        blob = text if isinstance(text, bytes) else text.encode()
        length = len(blob)
        pointers.append((offset << 2) | TEXT_KIND | ((length + 1) << 35))
        parts += (blob, _PADS[length & 7])
        offset += length >> 3  # this text's words (with its NUL) less the pointer word left behind
    data_words = len(data) >> 3
    words = 4 + data_words + ptrs + offset + 1  # offset + 1: the texts' words
    parts[0] = _HEADER.pack(0, words, _ROOT_POINTER, request_id, tag, (data_words << 32) | (ptrs << 48))
    parts[2] = _pointer_section(ptrs).pack(*pointers)
    return b"".join(parts)


@cache
def _pointer_section(count: int) -> struct.Struct:
    """The packer of `count` pointer words."""
    return struct.Struct(f"<{count}Q")


def _single_text(request_id: int, tag: int, text: str | bytes) -> bytes:
    """_text_reply for a member that is one text and no data words (the hot replies), in one pack."""
    blob = text if isinstance(text, bytes) else text.encode()
    length = len(blob)
    head = _SINGLE_TEXT.pack(0, 6 + (length >> 3), _ROOT_POINTER, request_id, tag, 1 << 48,
                             TEXT_KIND | ((length + 1) << 35))
    return b"".join((head, blob, _PADS[length & 7]))


def encode_list_aggregates(request_id: int, aggregates_json: str | bytes) -> bytes:
    """ControlResponse{listAggregates{aggregatesJson}}."""
    return _single_text(request_id, _TAG_LIST_AGGREGATES, aggregates_json)


def encode_get_aggregate(request_id: int, found: bool, aggregate_json: str | bytes) -> bytes:
    """ControlResponse{getAggregate{found, aggregateJson}}."""
    return _text_reply(request_id, _TAG_GET, (aggregate_json,), struct.pack("<Q", 1 if found else 0))


def encode_list_events(request_id: int, events_json: str | bytes) -> bytes:
    """ControlResponse{listEvents{eventsJson}}."""
    return _single_text(request_id, _TAG_LIST_EVENTS, events_json)


def encode_append(request_id: int, event_json: str | bytes) -> bytes:
    """ControlResponse{appendEvent{eventJson}}."""
    return _single_text(request_id, _TAG_APPEND, event_json)


def encode_verify(request_id: int, merkle_root: str) -> bytes:
    """ControlResponse{verifyAggregate{merkleRoot}}."""
    return _single_text(request_id, _TAG_VERIFY, merkle_root)


def encode_error(request_id: int, code: str, message: str) -> bytes:
    """ControlResponse{error{code, message}}."""
    return _text_reply(request_id, _TAG_ERROR, (code, message))


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthenticateReply:
    """The identity and scopes of an accepted token."""

    subject: str
    group: str
    user: str
    expires_at: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]


def encode_authenticate(request_id: int, reply: AuthenticateReply) -> bytes:
    """ControlResponse{authenticate{...}}."""
    message = _schema("control").ControlResponse.new_message()
    message.id = request_id
    body = message.init("authenticate")
    body.subject = reply.subject
    body.group = reply.group
    body.user = reply.user
    body.expiresAt = reply.expires_at
    for name, values in (("actions", reply.actions), ("resources", reply.resources)):
        items = body.init(name, len(values))
        for index, value in enumerate(values):
            items[index] = value
    data: bytes = message.to_bytes()
    return data


def encode_cli_refusal() -> bytes:
    """CliResponse{exitCode=1, stdout="", stderr=<refusal>}."""
    message = _schema("cli").CliResponse.new_message()
    message.exitCode = 1
    message.stdout = ""
    message.stderr = CLI_REFUSAL
    data: bytes = message.to_bytes()
    return data


def encode_replication_refusal() -> bytes:
    """ReplicationHelloResponse{accepted=false, message=<refusal>}."""
    message = _schema("replication").ReplicationHelloResponse.new_message()
    message.accepted = False
    message.message = REPLICATION_REFUSAL
    data: bytes = message.to_bytes()
    return data


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """A decoded ControlResponse (client side): `kind` is the union member name."""

    id: int
    kind: str
    text: str = ""
    found: bool = False
    error_code: str = ""
    error_message: str = ""
    auth: AuthenticateReply | None = None



_RESPONSE_KINDS = ("listAggregates", "getAggregate", "listEvents", "appendEvent", "verifyAggregate", "error",
                   "authenticate")


def decode_response(frame: bytes) -> Response:
    """Decode one framed ControlResponse; ValueError when unreadable."""
    try:
        root = Message(frame).root()
        request_id, tag = root.u64(0), root.u16(8)
        if tag >= len(_RESPONSE_KINDS):
            raise WireError(f"unknown response variant {tag}")
        kind = _RESPONSE_KINDS[tag]
        body = root.struct(0)
        if kind == "error":
            return Response(id=request_id, kind=kind, error_code=body.text(0), error_message=body.text(1))
        if kind == "authenticate":
            return Response(id=request_id, kind=kind, auth=_decode_auth(frame))
        if kind == "getAggregate":
            return Response(id=request_id, kind=kind, found=body.bit(0), text=body.text(0))
        return Response(id=request_id, kind=kind, text=body.text(0))
    except (WireError, IndexError, struct.error) as exc:
        raise ValueError(f"unreadable control response: {exc}") from exc


def _decode_auth(frame: bytes) -> AuthenticateReply:
    with _schema("control").ControlResponse.from_bytes(frame, nesting_limit=NESTING_LIMIT) as message:
        body = message.authenticate
        return AuthenticateReply(
            subject=str(body.subject), group=str(body.group), user=str(body.user),
            expires_at=str(body.expiresAt), actions=tuple(str(a) for a in body.actions),
            resources=tuple(str(r) for r in body.resources))
