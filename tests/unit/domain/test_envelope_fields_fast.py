"""plugin_event_fields' orjson fast path gives exactly what the exact-number implementation gave, for any envelope."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventdbx.domain.envelope import (
    PluginEventFields,
    _epoch_micros,
    _exact_values,
    _fast_values,
    build_envelope,
    plugin_event_fields,
    wire_json,
)
from eventdbx.domain.jsonnumbers import format_float
from eventdbx.domain.jsontext import dumps_canonical, load_canonical
from eventdbx.domain.payload_mode import PayloadMode
from eventdbx.domain.records import AggregateState, EventRecord, IssuedBy
from eventdbx.domain.timefmt import to_epoch_micros

# -- the reference: plugin_event_fields as it was before the fast path (verbatim) ---------------------------


def _ref_metadata_json(metadata: Mapping[str, Any]) -> str:
    ordered: dict[str, Any] = {
        "event_id": metadata.get("event_id"),
        "created_at": metadata.get("created_at"),
        "issued_by": metadata.get("issued_by"),
    }
    if "note" in metadata:
        ordered["note"] = metadata["note"]
    return orjson.dumps(ordered).decode()


def _ref_event_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "payload_json": wire_json(event.get("payload")),
        "metadata_json": _ref_metadata_json(event.get("metadata") or {}),
        "hash": str(event.get("hash", "")),
        "merkle_root": str(event.get("merkle_root", "")),
    }
    if "extensions" in event and event["extensions"] is not None:
        out["extensions_json"] = wire_json(event["extensions"])
    return out


def _ref_state_fields(state: Mapping[str, Any]) -> dict[str, Any]:
    entries = state.get("state") or {}
    return {
        "state_version": int(orjson.loads(wire_json(state.get("version", 0)))),
        "state_archived": bool(state.get("archived", False)),
        "state_merkle_root": str(state.get("merkle_root", "")),
        "state_entries": tuple(sorted((str(k), str(v)) for k, v in entries.items())),
    }


def reference_fields(envelope_json: str, *, created_at: str) -> PluginEventFields:
    """The pre-fast-path plugin_event_fields (job columns fixed but created_at)."""
    doc = load_canonical(envelope_json)
    values: dict[str, Any] = {}
    if isinstance(doc.get("event"), dict):
        values.update(_ref_event_fields(doc["event"]))
    if isinstance(doc.get("state"), dict):
        values.update(_ref_state_fields(doc["state"]))
    if doc.get("schema") is not None:
        values["schema_json"] = wire_json(doc["schema"])
    return PluginEventFields(
        aggregate_type="order",
        aggregate_id="order-1",
        event_type="order_updated",
        event_version=3,
        event_id="42",
        created_at_epoch_micros=to_epoch_micros(created_at),
        **values,
    )


def current_fields(envelope_json: str, *, created_at: str) -> PluginEventFields:
    """plugin_event_fields as shipped, with the same job columns as reference_fields."""
    return plugin_event_fields(
        envelope_json,
        aggregate_type="order",
        aggregate_id="order-1",
        event_type="order_updated",
        version=3,
        event_id=42,
        created_at=created_at,
    )


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """The value, or the error's type and message, so refusals are compared too."""
    try:
        return ("ok", call())
    except Exception as exc:
        return ("error", (type(exc).__name__, str(exc)))


# -- generated envelopes ---------------------------------------------------------------------------------------

AWKWARD_NUMBERS = [
    "0",
    "-0",
    "7",
    "-12",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "0.1",
    "1e-7",
    "1e-07",
    "1.5e300",
    "1.5e+300",
    "1E2",
    "-0.0",
    "1.50",
    "1e16",
    "1e+16",
    "0.00001",
    "1e-05",
    "5e-324",
    "2.5",
    "15.5",
    "1000000000000000.0",
    "1.7976931348623157e308",
]
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
number_tokens = st.one_of(
    st.sampled_from(AWKWARD_NUMBERS),
    st.integers().map(str),
    finite_floats.map(format_float),
    finite_floats.map(repr),
)
texts = st.text(max_size=8)
json_trees = st.recursive(
    st.none() | st.booleans() | texts | number_tokens.map(orjson.Fragment),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)


@st.composite
def json_texts(draw: st.DrawFn, *, objects_only: bool = False) -> str:
    """JSON text with arbitrary number tokens; usually key-sorted like stored text, sometimes not."""
    tree = draw(st.dictionaries(texts, json_trees, max_size=5) if objects_only else json_trees)
    option = orjson.OPT_SORT_KEYS if draw(st.integers(0, 4)) else 0
    return orjson.dumps(tree, option=option).decode()


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """Stored layouts (fraction none/3/6 digits, Z) and other RFC 3339 spellings that timefmt accepts."""
    moment = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
    head = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = draw(
        st.sampled_from(
            [
                "",
                f".{moment.microsecond:06d}",
                f".{moment.microsecond // 1000:03d}",
                ".1",
                ".123456789",
            ]
        )
    )
    suffix = draw(st.sampled_from(["Z", "Z", "z", "+00:00", "+05:30"]))
    return head + fraction + suffix


@st.composite
def envelopes(draw: st.DrawFn) -> str:
    """Envelopes from build_envelope in every payload mode, with awkward payloads, notes, extensions, schemas."""
    event = EventRecord(
        aggregate_type="order",
        aggregate_id=draw(texts),
        event_type="order_updated",
        payload_json=draw(json_texts()),
        extensions_json=draw(st.none() | json_texts(objects_only=True)),
        event_id=draw(st.integers(0, 2**63 - 1)),
        created_at=draw(timestamps()),
        issued_by=draw(st.none() | st.builds(IssuedBy, group=texts, user=texts)),
        note=draw(st.none() | st.text(max_size=12)),
        version=draw(st.integers(1, 2**63 - 1)),
        hash=draw(texts),
        merkle_root=draw(texts),
    )
    state = AggregateState(
        aggregate_type="order",
        aggregate_id=event.aggregate_id,
        version=draw(st.integers(0, 2**63 - 1)),
        state=draw(st.dictionaries(texts, st.text(max_size=12), max_size=6)),
        merkle_root=draw(texts),
        archived=draw(st.booleans()),
    )
    schema = draw(st.none() | st.dictionaries(texts, json_trees, max_size=4))
    envelope = build_envelope(draw(st.sampled_from(list(PayloadMode))), event, state, schema)
    return envelope if envelope is not None else "{}"


@settings(max_examples=600, deadline=None)
@given(envelope=envelopes(), created_at=timestamps())
def test_fields_equal_the_exact_implementation_for_generated_envelopes(
    envelope: str, created_at: str
) -> None:
    expected = outcome(lambda: reference_fields(envelope, created_at=created_at))
    assert outcome(lambda: current_fields(envelope, created_at=created_at)) == expected


@settings(max_examples=300, deadline=None)
@given(
    envelope=envelopes(),
    cut=st.integers(0, 10_000),
    insert=st.sampled_from([" ", "\n", '"', "1", "}", ",-0"]),
)
def test_damaged_or_non_canonical_text_gives_the_same_result_or_error(
    envelope: str, cut: int, insert: str
) -> None:
    at = cut % (len(envelope) + 1)
    damaged = envelope[:at] + insert + envelope[at:]
    expected = outcome(lambda: reference_fields(damaged, created_at="2025-10-26T12:00:00Z"))
    assert outcome(lambda: current_fields(damaged, created_at="2025-10-26T12:00:00Z")) == expected


canonical_trees = st.recursive(
    st.none()
    | st.booleans()
    | texts
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False, max_value=1e15, min_value=-1e15),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(payload=canonical_trees, mode=st.sampled_from(list(PayloadMode)))
def test_canonical_envelopes_take_the_fast_path(payload: Any, mode: PayloadMode) -> None:
    event = EventRecord(
        aggregate_type="order",
        aggregate_id="o-1",
        event_type="order_updated",
        payload_json=dumps_canonical(payload),
        extensions_json='{"@trace":1e-7}',
        event_id=9,
        created_at="2025-10-26T12:00:00Z",
        issued_by=IssuedBy(group="g", user="u"),
        note="n",
        version=2,
        hash="h",
        merkle_root="r",
    )
    state = AggregateState(
        aggregate_type="order",
        aggregate_id="o-1",
        version=2,
        state={"b": "1", "a": "é"},
        merkle_root="r",
    )
    envelope = build_envelope(
        mode, event, state, {"aggregate": "order", "snapshot_threshold": None}
    )
    assert envelope is not None
    fast = _fast_values(envelope)
    assert fast is not None and fast == _exact_values(envelope)


@pytest.mark.parametrize(
    "envelope",
    [
        '{"state":{"archived":false,"merkle_root":"r","state":{"a":"x"},"version":"7"}}',
        '{"state":{"archived":false,"merkle_root":"r","state":{"a":"x"},"version":2.0}}',
        '{"state":{"archived":false,"merkle_root":"r","state":{"a":"x"},"version":true}}',
        '{"state":{"archived":1,"merkle_root":"r","state":{"a":"x"},"version":1}}',
        '{"state":{"archived":null,"merkle_root":"r","state":{"a":"x"},"version":1}}',
        '{"state":{"archived":false,"merkle_root":null,"state":{"a":"x"},"version":1}}',
        '{"state":{"archived":false,"merkle_root":"r","state":[],"version":1}}',
        '{"state":{"archived":false,"merkle_root":"r","state":"","version":1}}',
        '{"state":{"archived":false,"merkle_root":"r","state":{"a":null,"b":true},"version":1}}',
        '{"state":{}}',
        '{"event":{"hash":null,"metadata":{},"payload":1}}',
        '{"event":{"hash":"h","merkle_root":false,"metadata":{},"payload":1}}',
        '{"event":{}}',
        '{"event":{"hash":"h","metadata":null,"payload":{"a":-0}}}',
        '{"event":{"hash":"h","metadata":false,"payload":[1e16,-0.0]}}',
        '{"event":{"hash":"h","metadata":0,"payload":1}}',
        '{"event":{"hash":"h","metadata":{"a":1,"a":2},"payload":{"b":1,"b":2}}}',
        '{"event":{"extensions":null,"hash":"h","merkle_root":"r","payload":null}}',
        '{"schema":{"x":1e+300}}',
        '{"event":' + "[" * 300 + "]" * 300 + "}",
        '{"event":"\\ud800"}',
        '["event"]',
        "not json",
    ],
)
def test_odd_envelopes_match_the_exact_implementation(envelope: str) -> None:
    expected = outcome(lambda: reference_fields(envelope, created_at="2025-10-26T12:00:00.5Z"))
    assert (
        outcome(lambda: current_fields(envelope, created_at="2025-10-26T12:00:00.5Z")) == expected
    )


@settings(max_examples=400, deadline=None)
@given(created_at=timestamps())
def test_epoch_micros_matches_timefmt(created_at: str) -> None:
    assert outcome(lambda: _epoch_micros(created_at)) == outcome(
        lambda: to_epoch_micros(created_at)
    )


@pytest.mark.parametrize(
    "created_at",
    [
        "2025-02-30T12:00:00Z",
        "2025-10-26T24:00:00Z",
        "2025-10-26T12:00:60Z",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
        "1969-12-31T23:59:59.999Z",
        " 2025-10-26T12:00:00Z",
        "2025-10-26t12:00:00Z",
        "2025-10-26T12:00:00.1234Z",
        "２０２５-10-26T12:00:00Z",
        "",
    ],
)
def test_epoch_micros_matches_timefmt_on_edges(created_at: str) -> None:
    assert outcome(lambda: _epoch_micros(created_at)) == outcome(
        lambda: to_epoch_micros(created_at)
    )


def test_epoch_micros_value() -> None:
    moment = datetime(2025, 10, 26, 12, 0, 0, 123456, tzinfo=UTC)
    expected = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert _epoch_micros("2025-10-26T12:00:00.123456Z") == expected == 1761480000123456
