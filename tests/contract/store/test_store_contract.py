"""Contract suite for the store Protocols: every backend must pass it unchanged."""

from __future__ import annotations

import pytest

from eventdbx.domain.records import AggregateRow, EventRecord, IssuedBy, Snapshot
from eventdbx.store.protocols import Store
from eventdbx.store.staging import StagedEntry


def _event(t: str, i: str, v: int, event_id: int, **kw: object) -> EventRecord:
    fields: dict[str, object] = {
        "aggregate_type": t, "aggregate_id": i, "event_type": "x_created" if v == 1 else "x_updated",
        "payload_json": f'{{"n":{v}}}', "extensions_json": None, "event_id": event_id,
        "created_at": "2026-01-01T00:00:00Z", "issued_by": None, "note": None, "version": v,
        "hash": f"{v:064x}", "merkle_root": f"{v + 100:064x}",
    }
    fields.update(kw)
    return EventRecord(**fields)  # type: ignore[arg-type]


def _row(t: str, i: str, v: int, **kw: object) -> AggregateRow:
    fields: dict[str, object] = {
        "aggregate_type": t, "aggregate_id": i, "version": v, "state": {"n": str(v)},
        "merkle_root": f"{v:064x}", "merkle_frontier": ["", f"{v:064x}"],
    }
    fields.update(kw)
    return AggregateRow(**fields)  # type: ignore[arg-type]


def test_empty_store(store: Store) -> None:
    with store.reading() as s:
        assert s.head_seq() == 0
        assert s.events_after(0, 10) == []
        assert s.load_aggregate("a", "1") is None
        assert s.list_aggregates() == []
        assert s.last_event_id() is None
        assert s.list_staged() == []
        assert s.latest_snapshot("a", "1") is None


def test_events_round_trip_and_global_order(store: Store) -> None:
    rec = _event("order", "o1", 1, 11, extensions_json='{"@a":1}', note="", issued_by=IssuedBy(group="g", user="u"))
    with store.writing() as s:
        seq1 = s.insert_event(rec)
        seq2 = s.insert_event(_event("other", "x", 1, 12))
        seq3 = s.insert_event(_event("order", "o1", 2, 13))
    assert seq1 < seq2 < seq3
    with store.reading() as s:
        assert s.head_seq() == seq3
        after = s.events_after(0, 10)
        assert [seq for seq, _ in after] == [seq1, seq2, seq3]
        assert after[0][1] == rec
        assert [r.event_id for _, r in s.events_after(seq1, 1)] == [12]
        assert [r.version for r in s.events_of("order", "o1")] == [1, 2]
        assert [r.version for r in s.events_of("order", "o1", up_to=1)] == [1]
        assert [r.version for r in s.events_of("order", "o1", after=1)] == [2]
        assert [r.version for r in s.events_page("order", "o1", skip=1)] == [2]
        assert [r.version for r in s.events_page("order", "o1", take=1)] == [1]
        assert s.count_events("order", "o1") == 2


def test_duplicate_version_or_event_id_is_refused(store: Store) -> None:
    from eventdbx.errors import StorageError

    with store.writing() as s:
        s.insert_event(_event("a", "1", 1, 1))
    with pytest.raises(StorageError), store.writing() as s:
        s.insert_event(_event("a", "1", 1, 2))
    with pytest.raises(StorageError), store.writing() as s:
        s.insert_event(_event("a", "2", 1, 1))


def test_aggregates_binary_order_paging_and_archive(store: Store) -> None:
    with store.writing() as s:
        for t, i in [("b", "1"), ("a", "b"), ("a", "B"), ("a", "a")]:
            s.save_aggregate(_row(t, i, 1))
        s.save_aggregate(_row("a", "a", 2))
    with store.reading() as s:
        keys = [(r.aggregate_type, r.aggregate_id) for r in s.list_aggregates()]
        assert keys == [("a", "B"), ("a", "a"), ("a", "b"), ("b", "1")]
        assert [r.aggregate_id for r in s.list_aggregates(skip=1, take=2)] == ["a", "b"]
        row = s.load_aggregate("a", "a")
        assert row is not None and row.version == 2 and row.state == {"n": "2"}
        assert row.merkle_frontier == ["", f"{2:064x}"]
    with store.writing() as s:
        assert s.set_archived("a", "a", archived=True, archived_at="2026-01-01T00:00:00Z", comment="c")
        assert not s.set_archived("z", "z", archived=True, archived_at=None, comment=None)
    with store.reading() as s:
        row = s.load_aggregate("a", "a")
        assert row is not None and row.archived and row.archive_comment == "c"


def test_snapshots_are_kept_and_picked_by_version(store: Store) -> None:
    def snap(v: int, comment: str | None) -> Snapshot:
        return Snapshot(aggregate_type="a", aggregate_id="1", version=v, state={"v": str(v)},
                        merkle_root="r", created_at="2026-01-01T00:00:00Z", comment=comment)

    with store.writing() as s:
        s.save_snapshot(snap(3, "auto snapshot v3"))
        s.save_snapshot(snap(6, None))
        s.save_snapshot(snap(6, "again"))
    with store.reading() as s:
        assert s.latest_snapshot("a", "1", up_to=2) is None
        latest5 = s.latest_snapshot("a", "1", up_to=5)
        assert latest5 is not None and latest5.version == 3
        latest = s.latest_snapshot("a", "1")
        assert latest is not None and latest.comment == "again"
        assert [x.comment for x in s.list_snapshots("a", "1")] == ["auto snapshot v3", None, "again"]


def test_staging_round_trip_keeps_canonical_text(store: Store) -> None:
    entry = StagedEntry(id=0, aggregate_type="a", aggregate_id="1", event_type="a_created",
                        payload_json='{"big":1.2345678901234567e23,"x":100.0}', metadata_json='{"@k":1}',
                        issued_by=IssuedBy(group="g", user="u"), note="n", expected_version=0, token_jti="j")
    with store.writing() as s:
        stored = s.add_staged(entry)
        s.add_staged(StagedEntry(id=0, aggregate_type="b", aggregate_id="2", event_type="b_created",
                                 payload_json="null", metadata_json=None, issued_by=None, note=None))
    assert stored.id > 0
    with store.reading() as s:
        listed = s.list_staged()
        assert listed[0] == stored
        assert [e.aggregate_type for e in s.list_staged("b", "2")] == ["b"]
    assert stored.to_json() == (
        '{"aggregate":"a","aggregate_id":"1","event":"a_created",'
        '"payload":{"big":1.2345678901234567e23,"x":100.0},"metadata":{"@k":1},'
        '"issued_by":{"group":"g","user":"u"},"note":"n","expected_version":0}'
    )
    with store.writing() as s:
        assert s.clear_staged("b", "2") == 1
        assert s.clear_staged() == 1
    with store.reading() as s:
        assert s.list_staged() == []


def test_counters(store: Store) -> None:
    with store.writing() as s:
        s.set_last_event_id(42)
        s.add_events_written("j", 1)
        s.add_events_written("j", 2)
    with store.reading() as s:
        assert s.last_event_id() == 42
        assert s.events_written("j") == 3
        assert s.events_written("other") == 0


def test_savepoint_rolls_back_alone(store: Store) -> None:
    with store.writing() as s:
        s.insert_event(_event("a", "1", 1, 1))
        with pytest.raises(RuntimeError), s.savepoint():
            s.insert_event(_event("a", "1", 2, 2))
            raise RuntimeError("one request fails")
        with s.savepoint():
            s.insert_event(_event("a", "1", 2, 3))
    with store.reading() as s:
        assert [r.event_id for r in s.events_of("a", "1")] == [1, 3]


def test_write_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.writing() as s:
        s.insert_event(_event("a", "1", 1, 1))
        raise RuntimeError("boom")
    with store.reading() as s:
        assert s.head_seq() == 0


def test_data_version_moves_on_foreign_commit(store: Store) -> None:
    import threading

    before = store.data_version()

    def write() -> None:
        with store.writing() as s:
            s.set_last_event_id(1)

    t = threading.Thread(target=write)
    t.start()
    t.join()
    assert store.data_version() != before


def test_change_token(store: Store) -> None:
    import threading

    with store.writing() as s:
        token = store.change_token()
        s.set_last_event_id(1)
    expected = store.token_after_commit(token)
    with store.writing():
        assert store.change_token() == expected  # nothing else was written in between
    with store.writing():
        assert store.change_token() != expected  # ...but the empty transaction above counts as a write

    def other() -> None:
        with store.writing() as s:
            s.set_last_event_id(2)

    with store.writing():
        before = store.change_token()
    t = threading.Thread(target=other)
    t.start()
    t.join()
    with store.writing():
        assert store.change_token() != store.token_after_commit(before)
