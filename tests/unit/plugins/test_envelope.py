"""Envelopes: the plugins.md §7 example lines byte for byte, every mode, and the Cap'n Proto field mapping."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from eventdbx.domain.envelope import build_envelope, plugin_event_fields
from eventdbx.domain.payload_mode import PayloadMode, parse_payload_mode
from eventdbx.domain.records import AggregateState, EventRecord, IssuedBy
from eventdbx.errors import ConfigError
from eventdbx.schema.model import Schema

H = "b76c75e55a2fb57f26e14a0cabe3d48e3aa335a0dae624bc1edf562b1d2ad509"
E = ('{"aggregate_id":"order-1","aggregate_type":"order","event_type":"order_created",'
     '"extensions":{"@trace_id":"abc123"},"hash":"H","merkle_root":"H","metadata":{"created_at":'
     '"2025-10-26T12:00:00.123456Z","event_id":"108172778397499392","issued_by":{"group":"admin",'
     '"user":"jane"},"note":"import"},"payload":{"status":"created","total":15},"version":1}').replace("H", H)
S = ('{"aggregate_id":"order-1","aggregate_type":"order","archived":false,"merkle_root":"H",'
     '"state":{"status":"created","total":"15"},"version":1}').replace('"H"', f'"{H}"')
C = ('{"aggregate":"order","column_types":{"status":"text","total":"integer"},"created_at":'
     '"2025-10-20T09:00:00Z","events":{"order_created":{"fields":["status","total"]}},"field_locks":[],'
     '"hidden":false,"hidden_fields":[],"locked":false,"snapshot_threshold":null,'
     '"updated_at":"2025-10-20T09:00:00Z"}')
E_NULL = E.replace('"payload":{"status":"created","total":15}', '"payload":null')

EVENT = EventRecord(
    aggregate_type="order", aggregate_id="order-1", event_type="order_created",
    payload_json='{"status":"created","total":15}', extensions_json='{"@trace_id":"abc123"}',
    event_id=108172778397499392, created_at="2025-10-26T12:00:00.123456Z",
    issued_by=IssuedBy(group="admin", user="jane"), note="import", version=1, hash=H, merkle_root=H,
)
STATE = AggregateState(aggregate_type="order", aggregate_id="order-1", version=1,
                       state={"status": "created", "total": "15"}, merkle_root=H)
SCHEMA = Schema.from_dict({
    "aggregate": "order", "column_types": {"status": "text", "total": "integer"},
    "created_at": "2025-10-20T09:00:00Z", "updated_at": "2025-10-20T09:00:00Z",
    "events": {"order_created": {"fields": ["status", "total"]}},
}).to_dict()


@pytest.mark.parametrize(("mode", "expected"), [
    ("all", f'{{"event":{E},"schema":{C},"state":{S}}}'),
    ("event-only", f'{{"event":{E}}}'),
    ("state-only", f'{{"state":{S}}}'),
    ("schema-only", f'{{"schema":{C}}}'),
    ("event-and-schema", f'{{"event":{E},"schema":{C}}}'),
    ("extensions-only", f'{{"event":{E_NULL}}}'),
])
def test_spec_example_lines_are_exact_wire_bytes(mode: str, expected: str) -> None:
    out = build_envelope(PayloadMode(mode), EVENT, STATE, SCHEMA)
    assert out is not None and out.encode() == expected.encode()


def test_absent_parts_are_omitted_never_null() -> None:
    assert build_envelope(PayloadMode.ALL, EVENT, STATE, None) == f'{{"event":{E},"state":{S}}}'
    assert build_envelope(PayloadMode.EVENT_AND_SCHEMA, EVENT, None, None) == f'{{"event":{E}}}'
    assert build_envelope(PayloadMode.SCHEMA_ONLY, EVENT, None, None) is None


def test_extensions_only_without_extensions_has_no_extensions_key() -> None:
    plain = dataclasses.replace(EVENT, extensions_json=None)
    out = build_envelope(PayloadMode.EXTENSIONS_ONLY, plain, None, None)
    assert out is not None
    event = orjson.loads(out)["event"]
    assert "extensions" not in event and event["payload"] is None and event["aggregate_id"] == "order-1"


def test_payload_numbers_and_unicode_stay_verbatim() -> None:
    event = dataclasses.replace(EVENT, payload_json='{"big":1e16,"n":100.0,"s":"é\\n"}')
    out = build_envelope(PayloadMode.EVENT_ONLY, event, None, None)
    assert out is not None and '"payload":{"big":1e16,"n":100.0,"s":"é\\n"}' in out


def test_capnp_mapping_all() -> None:
    envelope = build_envelope(PayloadMode.ALL, EVENT, STATE, SCHEMA)
    assert envelope is not None
    fields = plugin_event_fields(envelope, aggregate_type="order", aggregate_id="order-1",
                                 event_type="order_created", version=1, event_id=108172778397499392,
                                 created_at="2025-10-26T12:00:00.123456Z")
    assert fields.payload_json == '{"status":"created","total":15}'
    assert fields.metadata_json == ('{"event_id":"108172778397499392","created_at":"2025-10-26T12:00:00.123456Z",'
                                    '"issued_by":{"group":"admin","user":"jane"},"note":"import"}')
    assert (fields.hash, fields.merkle_root, fields.extensions_json) == (H, H, '{"@trace_id":"abc123"}')
    assert (fields.state_version, fields.state_archived, fields.state_merkle_root) == (1, False, H)
    assert fields.state_entries == (("status", "created"), ("total", "15"))
    assert fields.schema_json == C
    assert fields.created_at_epoch_micros == 1761480000123456 and fields.event_id == "108172778397499392"


@pytest.mark.parametrize("mode", ["state-only", "extensions-only", "schema-only"])
def test_capnp_mapping_defaults_for_missing_parts(mode: str) -> None:
    envelope = build_envelope(PayloadMode(mode), EVENT, STATE, SCHEMA)
    assert envelope is not None
    f = plugin_event_fields(envelope, aggregate_type="order", aggregate_id="order-1",
                            event_type="order_created", version=1, event_id=7,
                            created_at="2025-10-26T12:00:00Z")
    if mode == "state-only":
        assert (f.payload_json, f.metadata_json, f.hash, f.schema_json) == ("null", "null", "", "null")
        assert f.state_version == 1
    elif mode == "extensions-only":
        assert f.payload_json == "null" and f.extensions_json == '{"@trace_id":"abc123"}'
        assert (f.state_version, f.state_entries, f.schema_json) == (0, (), "null")
    else:
        assert f.schema_json == C and f.payload_json == "null" and f.state_merkle_root == ""


def test_parse_payload_mode() -> None:
    assert parse_payload_mode(" Event-Only ") is PayloadMode.EVENT_ONLY
    with pytest.raises(ConfigError, match="invalid payload mode 'x'"):
        parse_payload_mode("x")


def test_capnp_fields_feed_the_frame_codec() -> None:
    from eventdbx.control.plugin_codec import EventFrameFields, decode_envelope, encode_event

    envelope = build_envelope(PayloadMode.ALL, EVENT, STATE, SCHEMA)
    assert envelope is not None
    fields = plugin_event_fields(envelope, aggregate_type="order", aggregate_id="order-1",
                                 event_type="order_created", version=1, event_id=108172778397499392,
                                 created_at="2025-10-26T12:00:00.123456Z")
    which, body = decode_envelope(encode_event(EventFrameFields(**dataclasses.asdict(fields)), 3))
    assert which == "event" and body["sequence"] == 3 and body["schemaJson"] == C
    assert body["eventId"] == "108172778397499392" and body["stateVersion"] == 1
