"""Staging and commit (data-model.md §14): validation against committed + staged state, all-or-nothing commit."""

from __future__ import annotations

import pytest
from service_helpers import req

from eventdbx.errors import (
    AggregateArchivedError,
    AggregateNotFoundError,
    InvalidSchemaError,
    VersionConflictError,
)
from eventdbx.service import EventService


def test_new_aggregate_created_and_updated_in_one_batch(service: EventService) -> None:
    first = service.stage(req("order", "o1", "order_created", '{"status":"created","n":1e2}', note="n1"))
    second = service.stage(req("order", "o1", "order_updated", None,
                               patch_json='[{"op":"replace","path":"/status","value":"shipped"}]',
                               expected_version=1))
    assert first.to_json() == ('{"aggregate":"order","aggregate_id":"o1","event":"order_created",'
                               '"payload":{"n":100.0,"status":"created"},"metadata":null,"issued_by":null,"note":"n1"}')
    assert second.payload_json == '{"status":"shipped"}' and second.expected_version == 1
    assert [e.id for e in service.staged()] == [first.id, second.id]
    with pytest.raises(AggregateNotFoundError):
        service.get_aggregate("order", "o1")
    outcomes = service.commit_staged()
    assert [o.record.version for o in outcomes] == [1, 2]
    assert service.staged() == []
    assert service.get_aggregate("order", "o1").state == {"status": "shipped", "n": "100.0"}
    assert service.verify("order", "o1") == outcomes[-1].record.merkle_root
    assert service.commit_staged() == []


def test_stage_validates_against_committed_plus_staged(service: EventService) -> None:
    with pytest.raises(InvalidSchemaError, match="first event for a new aggregate"):
        service.stage(req("a", "1", "a_updated"))
    service.append(req("a", "1", "a_created"))
    service.stage(req("a", "1", "a_updated", expected_version=1))
    with pytest.raises(VersionConflictError, match="expected version 1 but a::1 is at version 2"):
        service.stage(req("a", "1", "a_updated", expected_version=1))
    assert len(service.staged()) == 1  # nothing staged on failure
    service.append(req("b", "1", "b_created"))
    service.archive("b", "1")
    with pytest.raises(AggregateArchivedError):
        service.stage(req("b", "1", "b_updated"))


def test_failed_commit_writes_nothing_and_keeps_entries(service: EventService) -> None:
    service.append(req("a", "1", "a_created"))
    service.stage(req("c", "1", "c_created"))
    service.stage(req("a", "1", "a_updated", expected_version=1))
    service.append(req("a", "1", "a_updated"))  # makes the staged expectation stale
    before = service.list_aggregates()
    with pytest.raises(VersionConflictError):
        service.commit_staged()
    assert service.list_aggregates() == before
    assert len(service.staged()) == 2
    with service.store.writing() as session:
        session.clear_staged("a", "1")
    assert [o.record.aggregate_type for o in service.commit_staged()] == ["c"]


def test_commit_revalidates_archive(service: EventService) -> None:
    service.append(req("a", "1", "a_created"))
    service.stage(req("a", "1", "a_updated"))
    service.archive("a", "1")
    with pytest.raises(AggregateArchivedError):
        service.commit_staged()
    assert len(service.staged()) == 1
