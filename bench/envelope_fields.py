"""Micro-benchmark of plugin_event_fields (capnp/process sinks): the exact-number path vs the orjson fast path.

"old" is the pre-fast-path computation (load_canonical + wire_json re-print, timefmt's RFC 3339 parse), "new" is
plugin_event_fields as shipped. Envelopes: a typical ~100-byte payload in `all` (event + state, no schema) and in
`event-only` mode, built with build_envelope. Reported: ops/s per variant (median of 5 runs of ~0.5 s CPU each,
measured with time.process_time) and the new/old ratio.
Run: .venv/bin/python bench/envelope_fields.py [--runs 5] [--seconds 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from eventdbx.domain.envelope import (
    PluginEventFields,
    _exact_values,
    build_envelope,
    plugin_event_fields,
)
from eventdbx.domain.payload_mode import PayloadMode
from eventdbx.domain.records import AggregateState, EventRecord, IssuedBy
from eventdbx.domain.timefmt import to_epoch_micros

ROOT = "cd" * 32
CREATED_AT = "2025-10-26T12:00:00.123456Z"
EVENT = EventRecord(
    aggregate_type="order",
    aggregate_id="order-17",
    event_type="order_updated",
    payload_json='{"customer":"c-0042","n":17,"status":"paid","tags":["a","b"],"total":15.5}',
    extensions_json=None,
    event_id=1_000_017,
    created_at=CREATED_AT,
    issued_by=IssuedBy(group="admin", user="jane"),
    note=None,
    version=17,
    hash="ab" * 32,
    merkle_root=ROOT,
)
STATE = AggregateState(
    aggregate_type="order",
    aggregate_id="order-17",
    version=17,
    state={
        "customer": "c-0042",
        "n": "17",
        "status": "paid",
        "tags": '["a","b"]',
        "total": "15.5",
    },
    merkle_root=ROOT,
)
COLUMNS = {
    "aggregate_type": "order",
    "aggregate_id": "order-17",
    "event_type": "order_updated",
    "version": 17,
    "event_id": 1_000_017,
    "created_at": CREATED_AT,
}


def old_fields(envelope: str) -> PluginEventFields:
    """plugin_event_fields before the fast path: exact-number parse for every envelope."""
    return PluginEventFields(
        aggregate_type="order",
        aggregate_id="order-17",
        event_type="order_updated",
        event_version=17,
        event_id="1000017",
        created_at_epoch_micros=to_epoch_micros(CREATED_AT),
        **_exact_values(envelope),
    )


def new_fields(envelope: str) -> PluginEventFields:
    """plugin_event_fields as shipped."""
    return plugin_event_fields(envelope, **COLUMNS)  # type: ignore[arg-type]


def ops_per_cpu_second(
    call: Callable[[str], PluginEventFields], envelope: str, seconds: float
) -> float:
    """Calls per CPU second over about `seconds` of process CPU time."""
    count = 0
    start = time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        for _ in range(1000):
            call(envelope)
        count += 1000
    return count / elapsed


def main() -> None:
    """Print old/new ops/s per mode (medians) and the ratio."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()
    for mode in (PayloadMode.ALL, PayloadMode.EVENT_ONLY):
        envelope = build_envelope(mode, EVENT, STATE, None)
        assert envelope is not None and old_fields(envelope) == new_fields(envelope)
        old, new = [], []
        for _ in range(args.runs):
            old.append(ops_per_cpu_second(old_fields, envelope, args.seconds))
            new.append(ops_per_cpu_second(new_fields, envelope, args.seconds))
        old_median, new_median = statistics.median(old), statistics.median(new)
        print(
            f"{mode.value:<11} envelope {len(envelope)} B: old {old_median:>9,.0f} ops/s "
            f"({1e6 / old_median:.2f} us CPU/op)  new {new_median:>9,.0f} ops/s "
            f"({1e6 / new_median:.2f} us CPU/op)  ratio {new_median / old_median:.2f}x"
        )


if __name__ == "__main__":
    main()
