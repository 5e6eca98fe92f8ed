"""The stored records of EventDBX (EventRecord, AggregateState, Snapshot) and their JSON key layouts."""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from dataclasses import dataclass
else:  # dataclass fields without import-time code generation (dbx start-up)
    from eventdbx.frozen import frozen_record as dataclass

EMPTY_MERKLE_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedBy:
    """Group and user of the token that authorised a write."""

    group: str
    user: str

    def to_dict(self) -> dict[str, str]:
        """`{"group", "user"}`."""
        return {"group": self.group, "user": self.user}


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    """One immutable event; payload and extensions are kept as canonical compact JSON text."""

    aggregate_type: str
    aggregate_id: str
    event_type: str
    payload_json: str
    extensions_json: str | None
    event_id: int
    created_at: str
    issued_by: IssuedBy | None
    note: str | None
    version: int
    hash: str
    merkle_root: str

    def metadata_dict(self) -> dict[str, Any]:
        """The `metadata` object: event_id (string), created_at, issued_by (always), note (when set)."""
        meta: dict[str, Any] = {
            "event_id": str(self.event_id),
            "created_at": self.created_at,
            "issued_by": None if self.issued_by is None else self.issued_by.to_dict(),
        }
        if self.note is not None:
            meta["note"] = self.note
        return meta

    def to_dict(self) -> dict[str, Any]:
        """Record key order of data-model.md §2; payload/extensions as orjson Fragments (raw canonical text)."""
        out: dict[str, Any] = {
            "aggregate_type": self.aggregate_type,
            "aggregate_id": self.aggregate_id,
            "event_type": self.event_type,
            "payload": orjson.Fragment(self.payload_json),
        }
        if self.extensions_json is not None:
            out["extensions"] = orjson.Fragment(self.extensions_json)
        out["metadata"] = self.metadata_dict()
        out["version"] = self.version
        out["hash"] = self.hash
        out["merkle_root"] = self.merkle_root
        return out

    def to_json(self) -> str:
        """Compact EventRecord JSON (socket replies)."""
        return orjson.dumps(self.to_dict()).decode()


@dataclass(frozen=True, slots=True, kw_only=True)
class AggregateState:
    """The materialised state of one aggregate at some version."""

    aggregate_type: str
    aggregate_id: str
    version: int
    state: dict[str, str]
    merkle_root: str
    archived: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Record key order of data-model.md §3; state keys sorted."""
        return {
            "aggregate_type": self.aggregate_type,
            "aggregate_id": self.aggregate_id,
            "version": self.version,
            "state": dict(sorted(self.state.items())),
            "merkle_root": self.merkle_root,
            "archived": self.archived,
        }

    def to_json(self) -> str:
        """Compact AggregateState JSON."""
        return orjson.dumps(self.to_dict()).decode()


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """A saved state of an aggregate at a version."""

    aggregate_type: str
    aggregate_id: str
    version: int
    state: dict[str, str]
    merkle_root: str
    created_at: str
    comment: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Record key order of data-model.md §12."""
        return {
            "aggregate_type": self.aggregate_type,
            "aggregate_id": self.aggregate_id,
            "version": self.version,
            "state": dict(sorted(self.state.items())),
            "merkle_root": self.merkle_root,
            "created_at": self.created_at,
            "comment": self.comment,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class AggregateRow:
    """What the store keeps per aggregate to make appends O(log n): state, root and Merkle frontier."""

    aggregate_type: str
    aggregate_id: str
    version: int
    state: dict[str, str]
    merkle_root: str
    merkle_frontier: list[str] = field(default_factory=list)
    archived: bool = False
    archived_at: str | None = None
    archive_comment: str | None = None

    def as_state(self) -> AggregateState:
        """The public AggregateState view."""
        return AggregateState(
            aggregate_type=self.aggregate_type, aggregate_id=self.aggregate_id,
            version=self.version, state=self.state, merkle_root=self.merkle_root,
            archived=self.archived,
        )
