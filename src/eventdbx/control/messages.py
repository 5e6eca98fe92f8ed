"""Typed encode/decode of control.capnp messages; capnp objects never leave this module."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eventdbx.control.wire import Message, Struct, WireError

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


class RequestDecodeError(Exception):
    """A well-framed message that is not a readable ControlRequest; `request_id` is 0 when unknown."""

    def __init__(self, request_id: int, detail: str) -> None:
        super().__init__(detail)
        self.request_id = request_id
        self.detail = detail


@dataclass(frozen=True, slots=True, kw_only=True)
class ListAggregates:
    """listAggregates: `take` None when `hasTake` is false."""

    id: int
    skip: int = 0
    take: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GetAggregate:
    """getAggregate."""

    id: int
    aggregate_type: str
    aggregate_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ListEvents:
    """listEvents: `take` None when `hasTake` is false."""

    id: int
    aggregate_type: str
    aggregate_id: str
    skip: int = 0
    take: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendEvent:
    """appendEvent with blank/unflagged optional fields already mapped to None."""

    id: int
    aggregate_type: str
    aggregate_id: str
    event_type: str
    token: str = ""
    payload_json: str | None = None
    patch_json: str | None = None
    note: str | None = None
    metadata_json: str | None = None
    expected_version: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyAggregate:
    """verifyAggregate."""

    id: int
    aggregate_type: str
    aggregate_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Authenticate:
    """authenticate (✚)."""

    id: int
    token: str


Request = ListAggregates | GetAggregate | ListEvents | AppendEvent | VerifyAggregate | Authenticate


def _blank_to_none(text: str) -> str | None:
    return None if not text.strip() else text


def decode_request(frame: bytes) -> Request:
    """Decode one framed ControlRequest; RequestDecodeError (with the id when readable) otherwise."""
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
_HEADER = struct.Struct("<IIQQQQ")  # seg count-1, seg size, root ptr, id, tag word, member ptr


def _text_reply(request_id: int, tag: int, texts: Sequence[str | bytes], data: bytes = b"") -> bytes:
    """Control{Request,Response}{id, member(data words, texts...)} as one segment (texts as str or UTF-8)."""
    blobs = [t if isinstance(t, bytes) else t.encode() for t in texts]
    data_words = len(data) // 8
    ptrs = len(blobs)
    inner = bytearray(data)
    pointer_area = bytearray(8 * ptrs)
    tail = bytearray()
    for index, blob in enumerate(blobs):
        # list pointer: offset from the end of this pointer word to the text start
        start_word = (ptrs - index - 1) + len(tail) // 8
        size = len(blob) + 1
        struct.pack_into("<Q", pointer_area, 8 * index, (start_word << 2) | 1 | (2 << 32) | (size << 35))
        tail += blob
        tail += b"\0" * (8 - len(blob) % 8)
    inner += pointer_area
    inner += tail
    words = 4 + len(inner) // 8
    root_ptr = (2 << 32) | (1 << 48)
    member_ptr = (data_words << 32) | (ptrs << 48)
    return _HEADER.pack(0, words, root_ptr, request_id, tag, member_ptr) + bytes(inner)


def encode_list_aggregates(request_id: int, aggregates_json: str | bytes) -> bytes:
    """ControlResponse{listAggregates{aggregatesJson}}."""
    return _text_reply(request_id, _TAG_LIST_AGGREGATES, (aggregates_json,))


def encode_get_aggregate(request_id: int, found: bool, aggregate_json: str | bytes) -> bytes:
    """ControlResponse{getAggregate{found, aggregateJson}}."""
    return _text_reply(request_id, _TAG_GET, (aggregate_json,), struct.pack("<Q", 1 if found else 0))


def encode_list_events(request_id: int, events_json: str | bytes) -> bytes:
    """ControlResponse{listEvents{eventsJson}}."""
    return _text_reply(request_id, _TAG_LIST_EVENTS, (events_json,))


def encode_append(request_id: int, event_json: str | bytes) -> bytes:
    """ControlResponse{appendEvent{eventJson}}."""
    return _text_reply(request_id, _TAG_APPEND, (event_json,))


def encode_verify(request_id: int, merkle_root: str) -> bytes:
    """ControlResponse{verifyAggregate{merkleRoot}}."""
    return _text_reply(request_id, _TAG_VERIFY, (merkle_root,))


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
