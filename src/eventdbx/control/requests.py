"""The decoded ControlRequest variants (control.capnp) and the error of an unreadable request."""

from __future__ import annotations

from dataclasses import dataclass


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
