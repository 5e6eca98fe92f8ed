"""Token issue (auth.md §3 layout, checked independently with PyJWT) and every §5 verification check."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import jwt
import pytest

from eventdbx.auth.keys import generate_keys, signing_keys
from eventdbx.auth.records import TokenLimits, TokenRecord, TokenStatus
from eventdbx.auth.tokens import (
    TokenRequest,
    check_write_limit,
    issue_token,
    verify_token,
)
from eventdbx.config import AuthSettings
from eventdbx.errors import (
    CommandError,
    InvalidTokenError,
    TokenExpiredError,
    TokenLimitReachedError,
    UnauthorizedError,
)

NOW = 1761480000.0


class DictLedger:
    """In-memory TokenLedger."""

    def __init__(self) -> None:
        self.records: dict[str, TokenRecord] = {}
        self.counter = 0
        self.lookups = 0

    def add(self, record: TokenRecord) -> TokenRecord:
        self.records[record.jti] = record
        self.counter += 1
        return record

    def get_token(self, jti: str) -> TokenRecord | None:
        self.lookups += 1
        return self.records.get(jti)

    def change_counter(self) -> int:
        return self.counter


def _auth() -> AuthSettings:
    m = generate_keys(NOW)
    return AuthSettings(private_key=m.private_key, public_key=m.public_key, key_id=m.key_id)


AUTH = _auth()
KEYS = signing_keys(AUTH)


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _issue(ledger: DictLedger | None = None, **kw: object) -> TokenRecord:
    req = TokenRequest(**{"group": "g", "user": "u", "actions": ("aggregate.append",), **kw})  # type: ignore[arg-type]
    record = issue_token(KEYS, AUTH, req, NOW)
    if ledger is not None:
        ledger.add(record)
    return record


def _verify(token: str, ledger: DictLedger, *, now: float = NOW, auth: AuthSettings = AUTH,
            action: str | None = "aggregate.append", resource: str | None = "aggregate:order:1",
            write: bool = True) -> object:
    return verify_token(token, keys=KEYS, auth=auth, ledger=ledger, now=now, action=action,
                        resource=resource, write=write)


def test_jws_layout_and_claim_order() -> None:
    rec = _issue(ttl_secs=60, limits=TokenLimits(write_events=5))
    head, claims, sig = rec.token.split(".")
    assert "=" not in rec.token
    assert _b64(head) == b'{"typ":"JWT","alg":"EdDSA","kid":"' + AUTH.key_id.encode() + b'"}'
    parsed = json.loads(_b64(claims))
    assert list(parsed) == ["iss", "aud", "sub", "jti", "iat", "exp", "group", "user", "actions", "resources",
                            "issued_by", "limits"]
    assert parsed["iss"] == "eventdbx://self" and parsed["aud"] == "eventdbx-clients"
    assert parsed["sub"] == "g:u" and parsed["exp"] == parsed["iat"] + 60 == int(NOW) + 60
    assert parsed["resources"] == ["*"] and parsed["issued_by"] == "cli"
    assert parsed["limits"] == {"write_events": 5, "keep_alive": False}
    assert len(_b64(sig)) == 64
    assert rec.expires_at == "2025-10-26T12:01:00+00:00" and rec.issued_at == "2025-10-26T12:00:00+00:00"
    # independent check with PyJWT against the raw public key
    decoded = jwt.decode(rec.token, KEYS.public, algorithms=["EdDSA"], audience="eventdbx-clients",
                         issuer="eventdbx://self", options={"verify_exp": False, "verify_iat": False})
    assert decoded["jti"] == rec.jti


def test_ttl_zero_never_expires_nbf_and_root() -> None:
    rec = _issue(ttl_secs=0, not_before=int(NOW) + 5, root=True, actions=())
    claims = json.loads(_b64(rec.token.split(".")[1]))
    assert "exp" not in claims and claims["nbf"] == int(NOW) + 5
    assert list(claims).index("nbf") == list(claims).index("iat") + 1
    assert rec.expires_at is None and rec.root and rec.actions == ("*.*",) and rec.resources == ("*",)


def test_record_to_dict_order() -> None:
    rec = _issue()
    assert list(rec.to_dict()) == ["token", "jti", "subject", "group", "user", "root", "actions", "resources",
                                   "issued_at", "not_before", "expires_at", "issued_by", "status", "limits"]
    assert TokenRecord.from_dict(rec.to_dict()) == rec


def test_non_root_needs_action() -> None:
    with pytest.raises(CommandError, match="at least one --action must be provided for non-root tokens"):
        _issue(actions=())


def test_valid_token_verifies() -> None:
    ledger = DictLedger()
    rec = _issue(ledger, limits=TokenLimits(write_events=3))
    v = _verify(rec.token, ledger)
    assert v.jti == rec.jti and v.group == "g" and v.user == "u" and v.limits.write_events == 3  # type: ignore[attr-defined]


def _forge(token: str, **changes: object) -> str:
    head, claims, sig = token.split(".")
    data = json.loads(_b64(claims))
    data.update(changes)
    body = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{head}.{body}.{sig}"


@pytest.mark.parametrize("bad", [
    "", "abc", "a.b", "a.b.c.d", "!!.e30.e30", "e30.e30.e30",
    base64.urlsafe_b64encode(b'{"alg":"HS256"}').decode().rstrip("=") + ".e30.AAAA",
    base64.urlsafe_b64encode(b"[1]").decode().rstrip("=") + ".e30.AAAA",
])
def test_check1_malformed(bad: str) -> None:
    with pytest.raises(InvalidTokenError) as info:
        _verify(bad, DictLedger())
    assert str(info.value) == "token not found or inactive"


def test_check2_signature() -> None:
    ledger = DictLedger()
    rec = _issue(ledger)
    with pytest.raises(InvalidTokenError):
        _verify(_forge(rec.token, group="other"), ledger)
    other = _auth()
    with pytest.raises(InvalidTokenError):
        verify_token(rec.token, keys=signing_keys(other), auth=other, ledger=ledger, now=NOW,
                     action=None, resource=None, write=False)


@pytest.mark.parametrize("field", ["issuer", "audience"])
def test_check3_issuer_audience(field: str) -> None:
    ledger = DictLedger()
    rec = _issue(ledger)
    with pytest.raises(InvalidTokenError):
        _verify(rec.token, ledger, auth=replace(AUTH, **{field: "someone-else"}))


def test_check4_expiry_with_skew() -> None:
    ledger = DictLedger()
    rec = _issue(ledger, ttl_secs=60)
    _verify(rec.token, ledger, now=NOW + 60 + 30)
    with pytest.raises(TokenExpiredError) as info:
        _verify(rec.token, ledger, now=NOW + 60 + 31)
    assert str(info.value) == "token has expired"
    ledger.add(rec.revoked())  # expiry is checked before the ledger
    with pytest.raises(TokenExpiredError):
        _verify(rec.token, ledger, now=NOW + 100)


def test_check5_not_before_and_issued_in_future() -> None:
    ledger = DictLedger()
    rec = _issue(ledger, not_before=int(NOW) + 100)
    with pytest.raises(UnauthorizedError):
        _verify(rec.token, ledger)
    _verify(rec.token, ledger, now=NOW + 70)
    future = _issue(ledger)
    with pytest.raises(UnauthorizedError):
        _verify(future.token, ledger, now=NOW - 31)


def test_check6_ledger() -> None:
    ledger = DictLedger()
    rec = _issue()
    with pytest.raises(InvalidTokenError):
        _verify(rec.token, ledger)
    ledger.add(rec)
    _verify(rec.token, ledger)
    ledger.add(replace(rec, status=TokenStatus.REVOKED))
    with pytest.raises(InvalidTokenError):  # signature cached, ledger re-read
        _verify(rec.token, ledger)


def test_check7_action_then_resource() -> None:
    ledger = DictLedger()
    rec = _issue(ledger, actions=("aggregate.read",), resources=("aggregate:order:*",))
    with pytest.raises(UnauthorizedError) as info:
        _verify(rec.token, ledger)
    assert str(info.value) == "unauthorized"
    _verify(rec.token, ledger, action="aggregate.read", write=False)
    with pytest.raises(UnauthorizedError):
        _verify(rec.token, ledger, action="aggregate.read", resource="aggregate:user:1")
    empty = _issue(ledger, resources=())
    _verify(empty.token, ledger, resource="aggregate:anything:1")


def test_check8_write_needs_group_and_user() -> None:
    ledger = DictLedger()
    rec = _issue(ledger, group="", user="u", subject="s")
    _verify(rec.token, ledger, write=False)
    with pytest.raises(UnauthorizedError):
        _verify(rec.token, ledger, write=True)


def test_check9_helper() -> None:
    rec = _issue(limits=TokenLimits(write_events=2))
    check_write_limit(rec, 1)
    with pytest.raises(TokenLimitReachedError) as info:
        check_write_limit(rec, 2)
    assert str(info.value) == "token write limit reached"
    with pytest.raises(TokenLimitReachedError):
        check_write_limit(rec, 1, adding=2)
    check_write_limit(_issue(), 10**9)


def test_signature_cache_keeps_rechecking_expiry() -> None:
    ledger = DictLedger()
    rec = _issue(ledger, ttl_secs=60)
    _verify(rec.token, ledger)
    assert KEYS.verified.get(rec.token) is not None
    with pytest.raises(TokenExpiredError):
        _verify(rec.token, ledger, now=NOW + 1000)
