"""Helpers shared by the service integration tests."""

from __future__ import annotations

from typing import Any

from eventdbx.service_requests import AppendRequest


def req(t: str, i: str, event: str, payload: str | None = "{}", **kw: Any) -> AppendRequest:
    """Shorthand for an AppendRequest."""
    return AppendRequest(aggregate_type=t, aggregate_id=i, event_type=event, payload_json=payload, **kw)
