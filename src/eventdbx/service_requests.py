"""Append requests and outcomes, and the checks that run before the write transaction (data-model.md §9 "Order").

`prepare` turns an AppendRequest into a PreparedAppend: JSON parsed, names/id/metadata/note validated and the
token verified, in the order of the request's surface. Nothing here touches the store's write lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from eventdbx.domain.json_value import JSONValue
from eventdbx.domain.jsontext import parse_json
from eventdbx.domain.records import EventRecord, IssuedBy
from eventdbx.domain.validation import (
    check_aggregate_id,
    check_metadata,
    check_note,
    check_type_name,
)
from eventdbx.errors import CommandError, InvalidSchemaError, InvalidTokenError, JsonSyntaxError

if TYPE_CHECKING:
    from dataclasses import dataclass
else:  # dataclass fields without import-time code generation (dbx start-up)
    from eventdbx.frozen import frozen_record as dataclass

if TYPE_CHECKING:
    from eventdbx.auth.records import TokenRecord, VerifiedToken

APPEND_ACTION = "aggregate.append"


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendRequest:
    """One event to append (or stage), as received from a surface."""

    aggregate_type: str
    aggregate_id: str
    event_type: str
    payload_json: str | None = None
    patch_json: str | None = None
    metadata_json: str | None = None
    note: str | None = None
    token: str | None = None
    expected_version: int | None = None
    surface: Literal["cli", "socket"] = "cli"


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendOutcome:
    """A committed event and whether its append took an automatic snapshot."""

    record: EventRecord
    auto_snapshot: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Authorisation:
    """Who authorised a write: issuer shown on the event, jti counted in token_usage, the token's limits."""

    issued_by: IssuedBy | None
    jti: str | None
    token: VerifiedToken | TokenRecord | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedAppend:
    """A request whose stateless checks passed; payload XOR patch is set (parsed values)."""

    aggregate_type: str
    aggregate_id: str
    event_type: str
    payload: JSONValue = None
    patch: JSONValue = None
    is_patch: bool = False
    metadata_json: str | None = None
    note: str | None = None
    expected_version: int | None = None
    auth: Authorisation | None = None


Verifier = Callable[[str, str], Authorisation]
"""(token, resource) → Authorisation, raising the auth.md §5 errors."""

_CLI_SOURCES = {
    "payload": "JSON payload provided via --payload",
    "patch": "JSON patch provided via --patch",
    "metadata": "JSON metadata provided via --metadata",
}


def _parse(text: str, what: str, surface: str) -> JSONValue:
    try:
        return parse_json(text)
    except JsonSyntaxError as exc:
        if surface == "socket":
            raise InvalidSchemaError(f"invalid {what}_json: {exc.message}") from None
        raise CommandError(f"failed to parse {_CLI_SOURCES[what]}: {exc.message}") from None


def _blank(text: str | None, surface: str) -> str | None:
    if text is None:
        return None
    if surface == "socket" and not text.strip():
        return None
    return text


def _check_names(request: AppendRequest) -> None:
    check_type_name("aggregate_type", request.aggregate_type)
    check_type_name("event_type", request.event_type)
    check_aggregate_id(request.aggregate_id)


def _socket_body(request: AppendRequest) -> tuple[str | None, str | None]:
    payload, patch = _blank(request.payload_json, "socket"), _blank(request.patch_json, "socket")
    if patch is None and payload is None:
        raise InvalidSchemaError("payload_json must be provided when patch_json is absent")
    if patch is not None and payload is not None:
        raise InvalidSchemaError("payload_json must be empty when patch_json is provided")
    return payload, patch


def prepare(request: AppendRequest, verify: Verifier | None) -> PreparedAppend:
    """Run the pre-transaction checks in the surface's order; first failure wins."""
    token = (request.token or "").strip() or None
    resource = f"aggregate:{request.aggregate_type}:{request.aggregate_id}"
    if request.surface == "socket":
        if token is None:  # auth.md §5 check 1: every socket write carries a token
            raise InvalidTokenError()
        auth = verify(token, resource) if verify is not None else None
        _check_names(request)
        metadata = _metadata(request, "socket")
        if request.note is not None:
            check_note(request.note, socket=True)
        payload_text, patch_text = _socket_body(request)
        payload = None if payload_text is None else _parse(payload_text, "payload", "socket")
        patch = None if patch_text is None else _parse(patch_text, "patch", "socket")
    else:
        if request.patch_json is not None and request.payload_json is not None:
            raise CommandError("--patch cannot be combined with --payload or --field")
        patch_text = request.patch_json
        payload = None if request.payload_json is None else _parse(request.payload_json, "payload", "cli")
        if patch_text is None and request.payload_json is None:
            payload = {}
        patch = None if patch_text is None else _parse(patch_text, "patch", "cli")
        raw_meta = None if request.metadata_json is None else _parse(request.metadata_json, "metadata", "cli")
        if request.note is not None:
            check_note(request.note, socket=False)
        metadata = None if request.metadata_json is None else check_metadata(raw_meta)
        _check_names(request)
        auth = verify(token, resource) if token is not None and verify is not None else None
    if request.expected_version is not None and request.expected_version < 0:
        raise InvalidSchemaError("expected version cannot be negative")
    return PreparedAppend(
        aggregate_type=request.aggregate_type, aggregate_id=request.aggregate_id,
        event_type=request.event_type, payload=payload, patch=patch, is_patch=patch_text is not None,
        metadata_json=metadata, note=request.note, expected_version=request.expected_version, auth=auth,
    )


def _metadata(request: AppendRequest, surface: str) -> str | None:
    text = _blank(request.metadata_json, surface)
    return None if text is None else check_metadata(_parse(text, "metadata", surface))
