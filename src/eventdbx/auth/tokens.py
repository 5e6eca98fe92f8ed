"""Token issue (auth.md §3) and verification (§5 checks 1–8, plus the check-9 helper); the ledger is a Protocol."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from eventdbx.auth.jws import ParsedToken, parse_compact, sign_compact, verify_signature
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


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Facts:
    """The claims of a signature-checked token, decoded once and cached with it."""

    iss: Any
    aud: tuple[Any, ...]
    exp: int | None
    nbf: int | None
    iat: int | None
    jti: str
    subject: str
    group: str
    user: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    limits: TokenLimits


def _facts(parsed: ParsedToken) -> _Facts:
    c = parsed.claims
    aud = c.get("aud")
    return _Facts(
        iss=c.get("iss"), aud=tuple(aud) if isinstance(aud, list) else (aud,), exp=_int_claim(c, "exp"),
        nbf=_int_claim(c, "nbf"), iat=_int_claim(c, "iat"), jti=_text(c.get("jti")), subject=_text(c.get("sub")),
        group=_text(c.get("group")), user=_text(c.get("user")), actions=_str_list(c.get("actions")),
        resources=_str_list(c.get("resources")), limits=TokenLimits.from_dict(c.get("limits")),
    )


def verify_token(
    token: str, *, keys: SigningKeys, auth: AuthSettings, ledger: TokenLedger, now: float,
    action: str | None, resource: str | None, write: bool,
) -> VerifiedToken:
    """auth.md §5 checks 1–8 in order; the first failure raises its error."""
    f = verify_signature(token.strip() if token else "", keys.public, keys.verified, _facts)  # 1, 2
    if f.iss != auth.issuer or auth.audience not in f.aud:  # 3
        raise InvalidTokenError()
    skew = auth.clock_skew_secs
    if f.exp is not None and now - skew > f.exp:  # 4
        raise TokenExpiredError()
    if (f.nbf is not None and f.nbf > now + skew) or (f.iat is not None and f.iat > now + skew):  # 5
        raise UnauthorizedError()
    record = ledger.get_token(f.jti) if f.jti else None
    if record is None or record.status is not TokenStatus.ACTIVE:  # 6
        raise InvalidTokenError()
    if action is not None and not action_allowed(f.actions, action):  # 7
        raise UnauthorizedError()
    if resource is not None and not resource_allowed(f.resources, resource):
        raise UnauthorizedError()
    if write and (not f.group or not f.user):  # 8
        raise UnauthorizedError()
    return VerifiedToken(
        jti=f.jti, subject=f.subject, group=f.group, user=f.user, actions=f.actions, resources=f.resources,
        expires_at=f.exp, limits=f.limits, root=record.root,
    )


def check_write_limit(token: VerifiedToken | TokenRecord, events_written: int, adding: int = 1) -> None:
    """Check 9, called inside the write transaction: `adding` more events must fit `write_events`."""
    limit = token.limits.write_events
    if limit is not None and events_written + adding > limit:
        raise TokenLimitReachedError()
