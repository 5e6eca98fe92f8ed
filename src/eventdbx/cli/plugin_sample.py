"""The fixed sample event that `dbx plugin test` delivers (plugins.md §10.1 "test"), shaped by a payload mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventdbx.domain.payload_mode import PayloadMode
    from eventdbx.plugins.sink import DeliveryJob

SAMPLE_AGGREGATE_TYPE = "patient"
SAMPLE_AGGREGATE_ID = "p-001"
SAMPLE_EVENT_TYPE = "patient-updated"
SAMPLE_VERSION = 5
SAMPLE_EVENT_ID = 1234567890
SAMPLE_CREATED_AT = "2024-12-01T17:22:43.512345Z"
SAMPLE_HASH = "cafe" * 16
SAMPLE_MERKLE_ROOT = "deadbeef" * 8
SAMPLE_PAYLOAD_JSON = '{"comment":"Archived via API","status":"inactive"}'
SAMPLE_STATE = {"comment": "Archived via API", "status": "inactive"}
SAMPLE_SCHEMA: dict[str, Any] = {
    "aggregate": "patient",
    "events": {"patient-updated": {"fields": ["comment", "status"]}},
}


def sample_envelope(mode: PayloadMode) -> str:
    """The sample's wire-JSON envelope for `mode` (the same builder the enqueuer uses)."""
    from eventdbx.domain.envelope import build_envelope
    from eventdbx.domain.records import AggregateState, EventRecord, IssuedBy
    from eventdbx.schema.model import Schema

    event = EventRecord(
        aggregate_type=SAMPLE_AGGREGATE_TYPE,
        aggregate_id=SAMPLE_AGGREGATE_ID,
        event_type=SAMPLE_EVENT_TYPE,
        payload_json=SAMPLE_PAYLOAD_JSON,
        extensions_json=None,
        event_id=SAMPLE_EVENT_ID,
        created_at=SAMPLE_CREATED_AT,
        issued_by=IssuedBy(group="admin", user="jane"),
        note=None,
        version=SAMPLE_VERSION,
        hash=SAMPLE_HASH,
        merkle_root=SAMPLE_MERKLE_ROOT,
    )
    state = AggregateState(
        aggregate_type=SAMPLE_AGGREGATE_TYPE,
        aggregate_id=SAMPLE_AGGREGATE_ID,
        version=SAMPLE_VERSION,
        state=dict(SAMPLE_STATE),
        merkle_root=SAMPLE_MERKLE_ROOT,
        archived=False,
    )
    schema = Schema.from_dict(SAMPLE_SCHEMA).to_dict()
    envelope = build_envelope(mode, event, state, schema)
    if envelope is None:  # only schema-only without a schema; the sample always has one
        raise AssertionError("the sample envelope cannot be empty")
    return envelope


def sample_job(mode: PayloadMode, *, job_id: int) -> DeliveryJob:
    """One delivery of the sample (attempt 1, not a replay)."""
    from eventdbx.plugins.sink import DeliveryJob

    return DeliveryJob(
        job_id=job_id,
        event_id=SAMPLE_EVENT_ID,
        attempt=1,
        replay=False,
        body=sample_envelope(mode).encode("utf-8"),
        aggregate_type=SAMPLE_AGGREGATE_TYPE,
        aggregate_id=SAMPLE_AGGREGATE_ID,
        event_type=SAMPLE_EVENT_TYPE,
        version=SAMPLE_VERSION,
        event_created_at=SAMPLE_CREATED_AT,
    )
