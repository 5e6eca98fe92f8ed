"""Group-commit batches reuse cached token records and usage counts only while no other connection wrote."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from service_helpers import req

from eventdbx.auth.keys import signing_keys
from eventdbx.auth.records import TokenLimits, TokenRequest
from eventdbx.auth.tokens import issue_token
from eventdbx.clock import FakeClock
from eventdbx.errors import (
    AggregateNotFoundError,
    InvalidTokenError,
    TokenExpiredError,
    UnauthorizedError,
)
from eventdbx.service import AppendOutcome, EventService
from eventdbx.store import tokens as ledger


def _issue(service: EventService, clock: FakeClock, **kw: object) -> tuple[str, str]:
    request = TokenRequest(group="ops", user="alice", **kw)  # type: ignore[arg-type]
    record = issue_token(
        signing_keys(service.settings.auth), service.settings.auth, request, clock.time()
    )
    with service.store.db.write() as conn:  # type: ignore[attr-defined]
        ledger.insert_token(conn, record)
    return record.token, record.jti


def _kinds(results: list[object]) -> list[str]:
    return [type(r).__name__ for r in results]


def test_revocation_by_another_connection_reaches_the_next_batch(
    make_service: Callable[..., EventService], clock: FakeClock
) -> None:
    writer, other = make_service(), make_service()
    token, jti = _issue(writer, clock, root=True)
    sock = [req("a", "1", "a_created", token=token, surface="socket")]
    assert _kinds(writer.append_batch(sock)) == ["AppendOutcome"]  # the token record is cached now
    with other.store.db.write() as conn:  # type: ignore[attr-defined]
        ledger.revoke(conn, jti, "test", "2026-01-01T00:00:00Z")
    again = [req("a", "1", "a_updated", token=token, surface="socket")]
    assert _kinds(writer.append_batch(again)) == ["InvalidTokenError"]
    assert [e.version for e in writer.list_events("a", "1")] == [1]


def test_usage_counts_follow_other_writers(
    make_service: Callable[..., EventService], clock: FakeClock
) -> None:
    first, second = make_service(), make_service()
    token, jti = _issue(first, clock, root=True, limits=TokenLimits(write_events=3))

    def batch(svc: EventService, *ids: str) -> list[str]:
        return _kinds(
            svc.append_batch([req("a", i, "a_created", token=token, surface="socket") for i in ids])
        )

    assert batch(first, "1") == ["AppendOutcome"]
    assert batch(second, "2") == ["AppendOutcome"]
    assert batch(first, "3", "4") == ["AppendOutcome", "TokenLimitReachedError"]
    with first.store.reading() as session:
        assert session.events_written(jti) == 3


def test_versions_never_repeat_when_writers_alternate(
    make_service: Callable[..., EventService],
) -> None:
    first, second = make_service(), make_service()
    for n in range(20):
        svc = first if n % 3 else second
        event = "a_created" if n == 0 else "a_updated"
        results = svc.append_batch(
            [req("a", "1", event, f'{{"n":{n}}}'), req("a", "1", "a_updated")]
        )
        assert all(isinstance(r, AppendOutcome) for r in results)
    events = first.list_events("a", "1")
    assert [e.version for e in events] == list(range(1, 41))
    assert len({e.event_id for e in events}) == 40
    assert second.verify("a", "1") == first.get_aggregate("a", "1").merkle_root


def test_rejected_requests_write_nothing(service: EventService, clock: FakeClock) -> None:
    token, jti = _issue(service, clock, root=True)
    results = service.append_batch(
        [
            req("a", "1", "a_created", token=token, surface="socket"),
            req("a", "1", "a_updated", token=token, surface="socket", expected_version=7),
            req(
                "a",
                "1",
                "a_updated",
                None,
                patch_json='[{"op":"test","path":"/x","value":1}]',
                token=token,
                surface="socket",
            ),
            req("a", "1", "a_updated", '{"n":2}', token=token, surface="socket"),
        ]
    )
    assert _kinds(results)[0] == "AppendOutcome" and _kinds(results)[-1] == "AppendOutcome"
    assert _kinds(results)[1] == "VersionConflictError" and not isinstance(
        results[2], AppendOutcome
    )
    assert [e.version for e in service.list_events("a", "1")] == [1, 2]
    with service.store.reading() as session:
        assert session.events_written(jti) == 2


def test_cached_tokens_still_expire(service: EventService, clock: FakeClock) -> None:
    token, _ = _issue(service, clock, root=True, ttl_secs=60)
    assert _kinds(
        service.append_batch([req("a", "1", "a_created", token=token, surface="socket")])
    ) == ["AppendOutcome"]
    clock.advance(3600)
    out = service.append_batch([req("a", "1", "a_updated", token=token, surface="socket")])
    assert isinstance(out[0], TokenExpiredError)


def test_verify_token_api(service: EventService, clock: FakeClock) -> None:
    token, jti = _issue(
        service, clock, actions=("aggregate.read",), resources=("aggregate:order:*",)
    )
    verified = service.verify_token(token)
    assert (verified.jti, verified.group, verified.user) == (jti, "ops", "alice")
    assert (
        service.verify_token(token, action="aggregate.read", resource="aggregate:order:1").jti
        == jti
    )
    with pytest.raises(UnauthorizedError):
        service.verify_token(token, action="aggregate.append")
    with pytest.raises(UnauthorizedError):
        service.verify_token(token, resource="aggregate:other:1")
    with service.store.db.write() as conn:  # type: ignore[attr-defined]
        ledger.revoke(conn, jti, "test", "2026-01-01T00:00:00Z")
    with pytest.raises(InvalidTokenError):
        service.verify_token(token)
    with pytest.raises(InvalidTokenError):
        service.verify_token("garbage")


def test_read_aggregate_and_events_share_one_snapshot(service: EventService) -> None:
    assert service.read_aggregate("a", "1") == (None, None)
    assert service.read_events("a", "1") == (None, None)
    for n in range(5):
        service.append(req("a", "1", "a_created" if n == 0 else "a_updated", f'{{"n":{n}}}'))
    schema, state = service.read_aggregate("a", "1")
    assert schema is None and state is not None and state.version == 5
    _, page = service.read_events("a", "1", skip=1, take=2)
    assert page is not None and [e.version for e in page] == [2, 3]
    assert service.read_events("a", "1", take=0) == (None, [])
    with pytest.raises(AggregateNotFoundError):
        service.get_aggregate("a", "2")


def test_new_signing_keys_forget_cached_verdicts(
    make_service: Callable[..., EventService], clock: FakeClock
) -> None:
    import dataclasses

    from eventdbx.auth.keys import generate_keys

    service = make_service()
    token, _ = _issue(service, clock, root=True)
    assert _kinds(
        service.append_batch([req("a", "1", "a_created", token=token, surface="socket")])
    ) == ["AppendOutcome"]
    keys = generate_keys(clock.time())
    auth = dataclasses.replace(
        service.settings.auth,
        private_key=keys.private_key,
        public_key=keys.public_key,
        key_id=keys.key_id,
    )
    service.refresh_settings(dataclasses.replace(service.settings, auth=auth))
    out = service.append_batch([req("a", "1", "a_updated", token=token, surface="socket")])
    assert _kinds(out) == ["InvalidTokenError"]


def _counting_full_checks(service: EventService, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the resource of every full auth.md §5 check the service runs for appends."""
    calls: list[str] = []
    full = service._verify

    def counted(token: str, resource: str, ledger: object = None) -> object:
        calls.append(resource)
        return full(token, resource, ledger)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "_verify", counted)
    return calls


def test_a_token_accepted_once_covers_new_aggregates_within_its_resources(
    service: EventService, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, _ = _issue(service, clock, actions=("aggregate.append",), resources=("aggregate:order:*",))
    calls = _counting_full_checks(service, monkeypatch)
    first = [req("order", f"o-{n}", "order_created", token=token, surface="socket") for n in range(20)]
    assert set(_kinds(service.append_batch(first))) == {"AppendOutcome"}
    more = [req("order", f"o-{n}", "order_created", token=token, surface="socket") for n in range(20, 40)]
    assert set(_kinds(service.append_batch(more))) == {"AppendOutcome"}
    assert calls == ["aggregate:order:o-0"]  # one full check; the other 39 aggregates needed the resource check only
    outside = [req("invoice", "i-1", "invoice_created", token=token, surface="socket"),
               req("order", "o-40", "order_created", token=token, surface="socket")]
    assert _kinds(service.append_batch(outside)) == ["UnauthorizedError", "AppendOutcome"]
    assert calls[1:] == ["aggregate:invoice:i-1"]  # outside the token's resources: the full check decides
    with pytest.raises(AggregateNotFoundError):
        service.list_events("invoice", "i-1")


def test_a_token_accepted_for_one_aggregate_still_expires_for_the_next(
    service: EventService, clock: FakeClock
) -> None:
    token, _ = _issue(service, clock, root=True, ttl_secs=60)
    assert _kinds(service.append_batch([req("a", "1", "a_created", token=token, surface="socket")])) == [
        "AppendOutcome"
    ]
    clock.advance(3600)
    out = service.append_batch([req("a", "2", "a_created", token=token, surface="socket")])
    assert isinstance(out[0], TokenExpiredError)


def test_revocation_reaches_appends_to_new_aggregates(
    make_service: Callable[..., EventService], clock: FakeClock
) -> None:
    writer, other = make_service(), make_service()
    token, jti = _issue(writer, clock, root=True)
    assert _kinds(writer.append_batch([req("a", "1", "a_created", token=token, surface="socket")])) == [
        "AppendOutcome"
    ]
    with other.store.db.write() as conn:  # type: ignore[attr-defined]
        ledger.revoke(conn, jti, "test", "2026-01-01T00:00:00Z")
    again = [req("a", "2", "a_created", token=token, surface="socket")]
    assert _kinds(writer.append_batch(again)) == ["InvalidTokenError"]
