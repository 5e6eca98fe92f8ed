"""Token-authorised appends: issued_by, action/resource scopes, write limits counted inside the transaction."""

from __future__ import annotations

import pytest
from service_helpers import req

from eventdbx.auth.keys import signing_keys
from eventdbx.auth.records import TokenLimits, TokenRequest
from eventdbx.auth.tokens import issue_token
from eventdbx.clock import FakeClock
from eventdbx.domain.records import IssuedBy
from eventdbx.errors import (
    InvalidSchemaError,
    InvalidTokenError,
    TokenLimitReachedError,
    UnauthorizedError,
)
from eventdbx.service import EventService
from eventdbx.store import tokens as ledger


def _token(service: EventService, clock: FakeClock, **kw: object) -> tuple[str, str]:
    request = TokenRequest(group="ops", user="alice", **kw)  # type: ignore[arg-type]
    record = issue_token(signing_keys(service.settings.auth), service.settings.auth, request, clock.time())
    with service.store.db.write() as conn:  # type: ignore[attr-defined]
        ledger.insert_token(conn, record)
    return record.token, record.jti


def _usage(service: EventService, jti: str) -> int:
    with service.store.reading() as session:
        return session.events_written(jti)


def test_token_sets_issued_by_and_counts_usage(service: EventService, clock: FakeClock) -> None:
    token, jti = _token(service, clock, actions=("aggregate.append",), resources=("aggregate:order:*",))
    out = service.append(req("order", "1", "order_created", token=token))
    assert out.record.issued_by == IssuedBy(group="ops", user="alice")
    assert _usage(service, jti) == 1
    with pytest.raises(UnauthorizedError):
        service.append(req("other", "1", "other_created", token=token))
    assert service.append(req("order", "2", "order_created")).record.issued_by is None


def test_write_limit(service: EventService, clock: FakeClock) -> None:
    token, jti = _token(service, clock, root=True, limits=TokenLimits(write_events=2))
    service.append(req("a", "1", "a_created", token=token))
    service.stage(req("a", "1", "a_updated", token=token))
    assert _usage(service, jti) == 1  # a staged event counts at commit
    service.commit_staged()
    assert _usage(service, jti) == 2
    with pytest.raises(TokenLimitReachedError, match="^token write limit reached$"):
        service.append(req("a", "1", "a_updated", token=token))
    assert [e.version for e in service.list_events("a", "1")] == [1, 2]
    assert service.list_events("a", "1")[1].issued_by == IssuedBy(group="ops", user="alice")


def test_batch_counts_per_request(service: EventService, clock: FakeClock) -> None:
    token, jti = _token(service, clock, root=True, limits=TokenLimits(write_events=2))
    results = service.append_batch([req("a", str(n), "a_created", token=token) for n in range(3)])
    assert [type(r).__name__ for r in results] == ["AppendOutcome", "AppendOutcome", "TokenLimitReachedError"]
    assert _usage(service, jti) == 2


def test_revoked_and_garbage_tokens(service: EventService, clock: FakeClock) -> None:
    token, jti = _token(service, clock, root=True)
    service.append(req("a", "1", "a_created", token=token))
    with service.store.db.write() as conn:  # type: ignore[attr-defined]
        ledger.revoke(conn, jti, "test", "2026-01-01T00:00:00Z")
    with pytest.raises(InvalidTokenError):
        service.append(req("a", "1", "a_updated", token=token))
    with pytest.raises(InvalidTokenError):
        service.append(req("a", "1", "a_updated", token="not-a-token"))


def test_socket_surface_order_and_messages(service: EventService, clock: FakeClock) -> None:
    token, _ = _token(service, clock, root=True)

    def sock(t: str, payload: str | None = "{}", **kw: object) -> None:
        service.append(req(t, "1", f"{t}_created", payload, surface="socket", **kw))  # type: ignore[arg-type]

    with pytest.raises(InvalidTokenError):  # socket writes always need a token
        sock("a")
    with pytest.raises(InvalidTokenError):  # the token is checked before the names
        sock("Bad", token="garbage")
    with pytest.raises(InvalidSchemaError, match="aggregate_type must be lowercase snake_case"):
        sock("Bad", token=token, note="n" * 200)
    with pytest.raises(InvalidSchemaError, match="metadata key 'x'"):  # metadata before note
        sock("a", token=token, metadata_json='{"x":1}', note="n" * 200)
    with pytest.raises(InvalidSchemaError, match="^invalid schema: event note cannot exceed 128 characters$"):
        sock("a", token=token, note="n" * 129)
    with pytest.raises(InvalidSchemaError, match="^invalid schema: invalid metadata_json: key must be a string"):
        sock("a", token=token, metadata_json="{x}")
    with pytest.raises(InvalidSchemaError, match="^invalid schema: invalid payload_json: key must be a string"):
        sock("a", "{x}", token=token)
    with pytest.raises(InvalidSchemaError, match="^invalid schema: invalid patch_json: "):
        sock("a", "", patch_json="[", token=token)
    with pytest.raises(InvalidSchemaError, match="payload_json must be provided when patch_json is absent"):
        sock("a", "  ", token=token)
    with pytest.raises(InvalidSchemaError, match="payload_json must be empty when patch_json is provided"):
        sock("a", "{}", patch_json="[]", token=token)
    sock("a", '{"ok":true}', token=token, metadata_json="", note="")
    record = service.list_events("a", "1")[0]
    assert record.extensions_json is None and record.note == ""
