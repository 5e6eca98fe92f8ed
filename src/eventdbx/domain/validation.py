"""Structural validation of appends (data-model.md §9): names, ids, metadata, sizes, notes, first event. Pure."""

from __future__ import annotations

import re

from eventdbx.domain.json_value import JSONValue
from eventdbx.domain.jsontext import dumps_canonical
from eventdbx.errors import CommandError, InvalidSchemaError

MAX_NAME_LENGTH = 128
MAX_AGGREGATE_ID_BYTES = 128
MAX_PAYLOAD_BYTES = 262144
MAX_METADATA_BYTES = 65536
MAX_NOTE_CHARS = 128

_SNAKE_CASE = re.compile(r"[a-z][a-z0-9_]*")
_AGGREGATE_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,127})?")
_METADATA_KEY = re.compile(r"@[A-Za-z0-9][A-Za-z0-9_-]*")
# Rust's `str::trim` strips Unicode White_Space, which differs from Python's str.strip().
_RUST_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def check_type_name(field: str, value: str) -> None:
    """`aggregate_type` / `event_type`: lowercase snake_case, at most 128 characters."""
    if _SNAKE_CASE.fullmatch(value) is None:
        raise InvalidSchemaError(f"{field} must be lowercase snake_case")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidSchemaError(f"{field} cannot exceed {MAX_NAME_LENGTH} characters")


def check_aggregate_id(value: str) -> None:
    """aggregate_id: no surrounding whitespace, not empty, ≤ 128 bytes, letters/digits/`_`/`-`."""
    if value.strip(_RUST_WHITESPACE) != value:
        raise InvalidSchemaError("aggregate_id cannot include leading or trailing whitespace")
    if not value:
        raise InvalidSchemaError("aggregate_id must not be empty")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_AGGREGATE_ID_BYTES:
        raise InvalidSchemaError(f"aggregate_id cannot exceed {MAX_AGGREGATE_ID_BYTES} characters")
    if _AGGREGATE_ID.fullmatch(value) is None:
        raise InvalidSchemaError(
            "aggregate_id may only contain letters, numbers, underscores, or hyphens"
        )


def check_metadata(value: JSONValue) -> str:
    """Metadata (extensions): an object with `@` keys, ≤ 65536 bytes; returns its canonical text."""
    if not isinstance(value, dict):
        raise InvalidSchemaError("metadata must be a JSON object")
    for key in sorted(value):
        if _METADATA_KEY.fullmatch(key) is None:
            raise InvalidSchemaError(
                f"metadata key '{key}' must start with '@' followed by letters, numbers, "
                "underscores, or hyphens"
            )
    canonical = dumps_canonical(value)
    if len(canonical.encode()) > MAX_METADATA_BYTES:
        raise InvalidSchemaError(f"metadata exceeds maximum size of {MAX_METADATA_BYTES} bytes")
    return canonical


def check_payload_size(canonical: str) -> None:
    """The compact canonical payload must fit in 262144 bytes."""
    if len(canonical) > MAX_PAYLOAD_BYTES // 4 and len(canonical.encode()) > MAX_PAYLOAD_BYTES:
        raise InvalidSchemaError(f"payload_json exceeds maximum size of {MAX_PAYLOAD_BYTES} bytes")


def check_note(note: str, *, socket: bool) -> None:
    """Notes are at most 128 characters (CLI and socket word the error differently)."""
    if len(note) > MAX_NOTE_CHARS:
        if socket:
            raise InvalidSchemaError(f"event note cannot exceed {MAX_NOTE_CHARS} characters")
        raise CommandError(f"note cannot exceed {MAX_NOTE_CHARS} characters")


def check_first_event(event_type: str) -> None:
    """The first event of a new aggregate must end with `_created`."""
    if not event_type.endswith("_created"):
        raise InvalidSchemaError("first event for a new aggregate must end with '_created'")
