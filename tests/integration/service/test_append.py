"""EventService.append and reads: spec vectors, normalisation, versions, ids, archive, snapshots, patch."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from service_helpers import req

from eventdbx.clock import FakeClock, snowflake_ms
from eventdbx.domain.integrity import EMPTY_ROOT
from eventdbx.domain.restrict import RestrictMode
from eventdbx.errors import (
    AggregateArchivedError,
    AggregateNotFoundError,
    CommandError,
    InvalidSchemaError,
    SchemaViolationError,
    StorageError,
    VersionConflictError,
)
from eventdbx.schema.model import new_schema
from eventdbx.service import EventService

V1 = "2f227e08db5d01f2187411b846608cf906ce4d1673e34a4ac45d7d339d681eb2"
V2 = "2d4c1885c62f5c9b279fcbc69944104806ed9688a6d740fec7c3ff923ad60590"
R2 = "bca912c4a0bab01a2121abf101065df894db533a191f8e40fbb42e25de926b51"
V3 = "9533c5ee95dd2626d9d7b79c89756739f257ecad64231886f8641fd700e33157"
R3 = "f5ff8549b48a94fc66d27ded6354a4d78996392db78c0bc4f335e143fee94c4b"


def _spec_events(service: EventService) -> None:
    service.append(req("order", "order-1", "order_created", '{"status":"created"}'))
    service.append(req("order", "order-1", "order_updated",
                       '{"status":"shipped","tracking":"abc123","n":5,"obj":{"b":1,"a":[1,"x",null]}}'))
    service.append(req("order", "order-1", "order_noted", "null"))


def test_spec_vectors(service: EventService) -> None:
    _spec_events(service)
    events = service.list_events("order", "order-1")
    assert [(e.hash, e.merkle_root) for e in events] == [(V1, V1), (V2, R2), (V3, R3)]
    state = service.get_aggregate("order", "order-1")
    assert state.version == 3 and state.merkle_root == R3
    assert state.state == {"status": "shipped", "tracking": "abc123", "n": "5", "obj": '{"a":[1,"x",null],"b":1}'}
    assert service.verify("order", "order-1") == R3
    assert events[1].payload_json == '{"n":5,"obj":{"a":[1,"x",null],"b":1},"status":"shipped","tracking":"abc123"}'


def test_state_normalisation_and_record_fields(service: EventService, clock: FakeClock) -> None:
    out = service.append(req("acct", "a1", "acct_created", '{"z":1e2,"b":null,"c":true,"d":{"y":1,"x":-0}}',
                             metadata_json='{"@trace":"t"}', note="hello"))
    rec = out.record
    assert rec.payload_json == '{"b":null,"c":true,"d":{"x":-0.0,"y":1},"z":100.0}'
    assert rec.extensions_json == '{"@trace":"t"}' and rec.note == "hello" and rec.issued_by is None
    assert rec.version == 1 and not out.auto_snapshot
    assert snowflake_ms(rec.event_id) == int(clock.now * 1000)
    assert rec.created_at.endswith("Z")
    assert service.get_aggregate("acct", "a1").state == {"z": "100.0", "b": "", "c": "true", "d": '{"x":-0.0,"y":1}'}
    service.append(req("acct", "a1", "acct_set", '"plain"'))
    assert service.get_aggregate("acct", "a1").state["_value"] == "plain"


def test_event_ids_increase_even_when_the_clock_steps_back(service: EventService, clock: FakeClock) -> None:
    ids = [service.append(req("a", "1", "a_created")).record.event_id]
    clock.now -= 60
    for _ in range(5):
        ids.append(service.append(req("a", "1", "a_updated")).record.event_id)
    assert ids == sorted(set(ids))


def test_first_event_rule_and_not_found(service: EventService) -> None:
    with pytest.raises(InvalidSchemaError, match="first event for a new aggregate must end with '_created'"):
        service.append(req("a", "1", "a_updated"))
    with pytest.raises(AggregateNotFoundError):
        service.get_aggregate("a", "1")
    with pytest.raises(AggregateNotFoundError):
        service.list_events("a", "1")
    with pytest.raises(AggregateNotFoundError):
        service.verify("a", "1")


def test_expected_version(service: EventService) -> None:
    with pytest.raises(VersionConflictError) as info:
        service.append(req("a", "1", "a_created", expected_version=1))
    assert str(info.value) == "version conflict: expected version 1 but a::1 is at version 0"
    service.append(req("a", "1", "a_created", expected_version=0))
    with pytest.raises(VersionConflictError, match="expected version 0 but a::1 is at version 1"):
        service.append(req("a", "1", "a_created", expected_version=0))
    assert service.append(req("a", "1", "a_updated", expected_version=1)).record.version == 2


def test_validation_messages_and_order(service: EventService) -> None:
    with pytest.raises(InvalidSchemaError, match="aggregate_type must be lowercase snake_case"):
        service.append(req("Bad", "1", "x_created"))
    with pytest.raises(InvalidSchemaError, match="aggregate_id may only contain"):
        service.append(req("a", "a b", "a_created"))
    with pytest.raises(CommandError, match="^note cannot exceed 128 characters$"):
        service.append(req("Bad", "1", "x_created", note="n" * 129))  # CLI: note before names
    with pytest.raises(InvalidSchemaError, match="metadata key 'foo' must start with '@'"):
        service.append(req("a", "1", "a_created", metadata_json='{"foo":1}'))
    with pytest.raises(CommandError, match="failed to parse JSON payload provided via --payload: key must be a string"):
        service.append(req("a", "1", "a_created", "{x}"))
    big = '{"k":"' + "x" * 262144 + '"}'
    with pytest.raises(InvalidSchemaError, match="payload_json exceeds maximum size of 262144 bytes"):
        service.append(req("a", "1", "a_created", big))


def test_archive_and_restore(service: EventService, clock: FakeClock) -> None:
    service.append(req("a", "1", "a_created"))
    state = service.archive("a", "1", comment="old")
    assert state.archived
    with pytest.raises(AggregateArchivedError, match="^aggregate is archived and cannot accept new events$"):
        service.append(req("a", "1", "a_updated"))
    assert service.list_aggregates()[0].archived
    assert service.get_aggregate("a", "1").archived
    assert not service.restore("a", "1").archived
    assert service.append(req("a", "1", "a_updated")).record.version == 2
    with pytest.raises(AggregateNotFoundError):
        service.archive("a", "2")


def test_auto_snapshots_from_config_and_schema(make_service: Callable[..., EventService]) -> None:
    service = make_service(snapshot_threshold=3)
    flags = [service.append(req("a", "1", "a_created" if v == 1 else "a_updated", f'{{"v":{v}}}')).auto_snapshot
             for v in range(1, 8)]
    assert flags == [False, False, True, False, False, True, False]
    snaps = service.snapshots("a", "1")
    assert [(s.version, s.comment, s.state["v"]) for s in snaps] == [
        (3, "auto snapshot v3", "3"), (6, "auto snapshot v6", "6")]
    with service.store.writing() as session:
        session.save_schema(new_schema("b", ["b_created", "b_updated"], 2, "2026-01-01T00:00:00Z"))
    flags = [service.append(req("b", "1", "b_created" if v == 1 else "b_updated")).auto_snapshot
             for v in range(1, 5)]
    assert flags == [False, True, False, True]


def test_state_as_of_version_uses_snapshots(make_service: Callable[..., EventService]) -> None:
    service = make_service(snapshot_threshold=2)
    roots = []
    for v in range(1, 6):
        roots.append(service.append(req("a", "1", "a_created" if v == 1 else "a_updated",
                                        f'{{"v":{v},"k{v}":1}}')).record.merkle_root)
    for v in range(1, 6):
        past = service.get_aggregate("a", "1", version=v)
        assert past.version == v and past.merkle_root == roots[v - 1]
        assert past.state["v"] == str(v) and f"k{v}" in past.state and f"k{v + 1}" not in past.state
    zero = service.get_aggregate("a", "1", version=0)
    assert zero.state == {} and zero.merkle_root == EMPTY_ROOT and zero.version == 0
    assert service.get_aggregate("a", "1", version=99).version == 5
    assert [e.version for e in service.list_events("a", "1", up_to=3)] == [1, 2, 3]
    assert [e.version for e in service.list_events("a", "1", skip=1, take=2)] == [2, 3]


def test_manual_snapshot(service: EventService) -> None:
    service.append(req("a", "1", "a_created", '{"status":"x"}'))
    snap = service.snapshot("a", "1", comment="manual")
    assert snap.version == 1 and snap.state == {"status": "x"} and snap.comment == "manual"
    with pytest.raises(AggregateNotFoundError):
        service.snapshot("a", "2")


def test_patch(service: EventService) -> None:
    service.append(req("a", "1", "a_created", '{"count":"5","obj":{"x":1}}'))
    out = service.append(req("a", "1", "a_updated", None,
                             patch_json='[{"op":"replace","path":"/obj/x","value":2},{"op":"add","path":"/new","value":true}]'))
    assert out.record.payload_json == '{"new":true,"obj":{"x":2}}'
    assert service.get_aggregate("a", "1").state == {"count": "5", "obj": '{"x":2}', "new": "true"}
    with pytest.raises(InvalidSchemaError, match="patch must modify at least one path"):
        service.append(req("a", "1", "a_updated", None, patch_json="[]"))
    created = service.append(req("b", "1", "b_created", None, patch_json='[{"op":"add","path":"/s","value":1}]'))
    assert created.record.payload_json == '{"s":1}'


def test_restrict_modes_and_schema_validation(make_service: Callable[..., EventService]) -> None:
    service = make_service(restrict=RestrictMode.STRICT)
    with pytest.raises(SchemaViolationError, match="aggregate order requires a schema"):
        service.append(req("order", "1", "order_created"))
    with service.store.writing() as session:
        session.save_schema(new_schema("order", ["order_created"], None, "2026-01-01T00:00:00Z"))
    service.append(req("order", "1", "order_created"))
    with pytest.raises(SchemaViolationError, match="event order_shipped is not defined for aggregate order"):
        service.append(req("order", "1", "order_shipped"))
    service.refresh_settings(dataclasses.replace(service.settings, restrict=RestrictMode.OFF))
    assert service.append(req("order", "1", "order_shipped")).record.version == 2


def test_verify_detects_tampering(service: EventService) -> None:
    import sqlite3

    _spec_events(service)
    path = service.settings.paths.event_store
    raw = sqlite3.connect(path)
    raw.execute("UPDATE events SET payload = '{\"status\":\"forged\"}' WHERE version = 2")
    raw.commit()
    with pytest.raises(StorageError) as info:
        service.verify("order", "order-1")
    assert str(info.value) == "storage error: integrity check failed for order::order-1: hash mismatch at version 2"
    raw.execute("UPDATE events SET payload = ?, merkle_root = 'x' WHERE version = 2",
                ('{"n":5,"obj":{"a":[1,"x",null],"b":1},"status":"shipped","tracking":"abc123"}',))
    raw.commit()
    with pytest.raises(StorageError, match="merkle root mismatch at version 2$"):
        service.verify("order", "order-1")
    raw.execute("UPDATE events SET merkle_root = ? WHERE version = 2", (R2,))
    raw.execute("UPDATE aggregates SET merkle_root = 'y'")
    raw.commit()
    raw.close()
    with pytest.raises(StorageError, match="aggregate merkle root mismatch$"):
        service.verify("order", "order-1")


def test_list_aggregates_order_and_paging(service: EventService) -> None:
    for t, i in [("b", "1"), ("a", "b"), ("a", "B"), ("a", "a")]:
        service.append(req(t, i, f"{t}_created"))
    keys = [(s.aggregate_type, s.aggregate_id) for s in service.list_aggregates()]
    assert keys == [("a", "B"), ("a", "a"), ("a", "b"), ("b", "1")]
    assert [s.aggregate_id for s in service.list_aggregates(skip=1, take=2)] == ["a", "b"]


def test_remove(service: EventService) -> None:
    service.append(req("a", "1", "a_created"))
    with pytest.raises(StorageError) as info:
        service.remove("a", "1")
    assert str(info.value) == "storage error: aggregate a:1 cannot be removed while events exist"
    with pytest.raises(AggregateNotFoundError):
        service.remove("a", "2")
    service.stage(req("a", "2", "a_created"))
    service.stage(req("b", "9", "b_created"))
    assert service.remove("a", "2") == 1
    assert [e.aggregate_type for e in service.staged()] == ["b"]


def test_append_batch_isolates_failures(service: EventService) -> None:
    service.append(req("a", "1", "a_created"))
    results = service.append_batch([
        req("a", "1", "a_updated", '{"n":1}'),
        req("a", "1", "a_updated", expected_version=1),  # stale after the first
        req("b", "1", "b_updated"),  # first-event rule
        req("Bad", "1", "x_created"),  # rejected before the transaction
        req("a", "1", "a_updated", '{"n":3}', expected_version=2),
        req("c", "1", "c_created"),
    ])
    kinds = [type(r).__name__ for r in results]
    assert kinds == ["AppendOutcome", "VersionConflictError", "InvalidSchemaError", "InvalidSchemaError",
                     "AppendOutcome", "AppendOutcome"]
    assert [e.version for e in service.list_events("a", "1")] == [1, 2, 3]
    assert service.get_aggregate("a", "1").state["n"] == "3"
    assert service.verify("a", "1") == service.get_aggregate("a", "1").merkle_root


def test_write_cache_sees_other_writers(make_service: Callable[..., EventService]) -> None:
    first, second = make_service(), make_service()
    first.append(req("a", "1", "a_created"))
    assert second.append(req("a", "1", "a_updated")).record.version == 2
    out = first.append(req("a", "1", "a_updated"))
    assert out.record.version == 3 and out.record.event_id > second.list_events("a", "1")[1].event_id
    assert first.verify("a", "1") == out.record.merkle_root
    first.archive("a", "1")
    with pytest.raises(AggregateArchivedError):
        first.append(req("a", "1", "a_updated"))
    first.restore("a", "1")
    with first.store.writing() as session:
        session.save_schema(new_schema("a", ["a_created"], None, "2026-01-01T00:00:00Z"))
    with pytest.raises(SchemaViolationError, match="event a_updated is not defined"):
        first.append(req("a", "1", "a_updated"))


def test_threads_share_a_service(service: EventService) -> None:
    import threading

    service.append(req("a", "1", "a_created"))
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            for n in range(100):
                service.append(req("a", "1", "a_updated", f'{{"{name}":{n}}}'))
                service.get_aggregate("a", "1")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"t{k}",)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    events = service.list_events("a", "1")
    assert [e.version for e in events] == list(range(1, 302))
    assert len({e.event_id for e in events}) == 301
    assert service.verify("a", "1") == service.get_aggregate("a", "1").merkle_root


def test_long_history_reads_page_through(service: EventService, monkeypatch: pytest.MonkeyPatch) -> None:
    from eventdbx import service_reads

    monkeypatch.setattr(service_reads, "PAGE", 7)
    roots = [service.append(req("a", "1", "a_created" if v == 1 else "a_updated", f'{{"v":{v}}}')).record.merkle_root
             for v in range(1, 31)]
    assert service.verify("a", "1") == roots[-1]
    past = service.get_aggregate("a", "1", version=23)
    assert past.state == {"v": "23"} and past.merkle_root == roots[22]
