"""Token issue (auth.md §3) and verification (§5 checks 1–8, plus the check-9 helper); the ledger is a Protocol."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from eventdbx.auth.jws import parse_compact, sign_compact, verify_signature
from eventdbx.auth.records import (
    TokenLimits,
    TokenRecord,
    TokenRequest,
    TokenStatus,
    VerifiedToken,
)
from eventdbx.auth.scopes import action_allowed, resource_allowed
from eventdbx.errors import (
    CommandError,
    InvalidTokenError,
    TokenExpiredError,
    TokenLimitReachedError,
    UnauthorizedError,
)

if TYPE_CHECKING:
    from eventdbx.auth.keys import SigningKeys
    from eventdbx.config import AuthSettings

__all__ = [
    "TokenLedger", "TokenLimits", "TokenRecord", "TokenRequest", "TokenStatus", "VerifiedToken",
    "check_write_limit", "issue_token", "token_claims", "verify_token",
]

ROOT_ACTIONS: tuple[str, ...] = ("*.*",)
ROOT_RESOURCES: tuple[str, ...] = ("*",)
NON_ROOT_NEEDS_ACTION = "at least one --action must be provided for non-root tokens"


class TokenLedger(Protocol):
    """Where issued tokens are recorded (implemented by store/tokens.py)."""

    def get_token(self, jti: str) -> TokenRecord | None:
        """The record of `jti` (status revoked when it has a revocation), or None."""
        ...

    def change_counter(self) -> int:
        """A number that changes whenever any token record or revocation changes."""
        ...


def _ts(unix_seconds: int) -> str:
    from eventdbx.domain.timefmt import format_epoch

    return format_epoch(unix_seconds, suffix="+00:00")


def issue_token(keys: SigningKeys, auth: AuthSettings, request: TokenRequest, now: float) -> TokenRecord:
    """Sign a new token (claims in §3 order) and return its ledger record (not yet stored)."""
    import uuid

    if not request.root and not request.actions:
        raise CommandError(NON_ROOT_NEEDS_ACTION)
    actions = ROOT_ACTIONS if request.root else request.actions
    resources = ROOT_RESOURCES if request.root or request.resources is None else request.resources
    ttl = auth.default_ttl_secs if request.ttl_secs is None else request.ttl_secs
    if ttl < 0:
        raise CommandError("token ttl cannot be negative")
    iat = int(now)
    exp = iat + ttl if ttl > 0 else None
    jti = str(uuid.uuid4())
    subject = request.subject or f"{request.group}:{request.user}"
    claims: dict[str, Any] = {"iss": auth.issuer, "aud": auth.audience, "sub": subject, "jti": jti, "iat": iat}
    if exp is not None:
        claims["exp"] = exp
    if request.not_before is not None:
        claims["nbf"] = request.not_before
    claims.update({
        "group": request.group, "user": request.user, "actions": list(actions), "resources": list(resources),
        "issued_by": request.issued_by, "limits": request.limits.to_dict(),
    })
    header = {"typ": "JWT", "alg": "EdDSA", "kid": keys.key_id}
    token = sign_compact(header, claims, keys.private)
    return TokenRecord(
        token=token, jti=jti, subject=subject, group=request.group, user=request.user, root=request.root,
        actions=tuple(actions), resources=tuple(resources), issued_at=_ts(iat),
        not_before=_ts(request.not_before) if request.not_before is not None else None,
        expires_at=_ts(exp) if exp is not None else None, issued_by=request.issued_by,
        status=TokenStatus.ACTIVE, limits=request.limits,
    )


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a well-formed token without checking its signature (for `refresh` TTLs and lookups)."""
    return parse_compact(token.strip()).claims


def _int_claim(claims: Mapping[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidTokenError()
    return int(value)


def _str_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return ()
    return tuple(value)


def verify_token(
    token: str, *, keys: SigningKeys, auth: AuthSettings, ledger: TokenLedger, now: float,
    action: str | None, resource: str | None, write: bool,
) -> VerifiedToken:
    """auth.md §5 checks 1–8 in order; the first failure raises its error."""
    claims = verify_signature(token.strip() if token else "", keys.public, keys.verified).claims  # 1, 2
    aud = claims.get("aud")
    aud_ok = aud == auth.audience or (isinstance(aud, list) and auth.audience in aud)
    if claims.get("iss") != auth.issuer or not aud_ok:  # 3
        raise InvalidTokenError()
    skew = auth.clock_skew_secs
    exp = _int_claim(claims, "exp")
    if exp is not None and now - skew > exp:  # 4
        raise TokenExpiredError()
    for name in ("nbf", "iat"):  # 5
        moment = _int_claim(claims, name)
        if moment is not None and moment > now + skew:
            raise UnauthorizedError()
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise InvalidTokenError()
    record = ledger.get_token(jti)
    if record is None or record.status is not TokenStatus.ACTIVE:  # 6
        raise InvalidTokenError()
    actions, resources = _str_list(claims.get("actions")), _str_list(claims.get("resources"))
    if action is not None and not action_allowed(actions, action):  # 7
        raise UnauthorizedError()
    if resource is not None and not resource_allowed(resources, resource):
        raise UnauthorizedError()
    group, user = claims.get("group"), claims.get("user")
    group = group if isinstance(group, str) else ""
    user = user if isinstance(user, str) else ""
    if write and (not group or not user):  # 8
        raise UnauthorizedError()
    subject = claims.get("sub")
    return VerifiedToken(
        jti=jti, subject=subject if isinstance(subject, str) else "", group=group, user=user,
        actions=actions, resources=resources, expires_at=exp,
        limits=TokenLimits.from_dict(claims.get("limits")), root=record.root,
    )


def check_write_limit(token: VerifiedToken | TokenRecord, events_written: int, adding: int = 1) -> None:
    """Check 9, called inside the write transaction: `adding` more events must fit `write_events`."""
    limit = token.limits.write_events
    if limit is not None and events_written + adding > limit:
        raise TokenLimitReachedError()
