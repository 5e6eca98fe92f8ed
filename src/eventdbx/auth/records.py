"""Token ledger records (auth.md §4), issue requests and verified-token values; no I/O, no crypto."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class TokenStatus(StrEnum):
    """Ledger status of a token."""

    ACTIVE = "active"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenLimits:
    """`limits` claim: write quota (None = unlimited) and the reserved keep-alive flag."""

    write_events: int | None = None
    keep_alive: bool = False

    def to_dict(self) -> dict[str, Any]:
        """`{"write_events": …, "keep_alive": …}`."""
        return {"write_events": self.write_events, "keep_alive": self.keep_alive}

    @classmethod
    def from_dict(cls, data: Any) -> TokenLimits:
        """Read a `limits` object leniently (missing keys → defaults)."""
        if not isinstance(data, Mapping):
            return cls()
        write = data.get("write_events")
        return cls(
            write_events=write if isinstance(write, int) and not isinstance(write, bool) else None,
            keep_alive=bool(data.get("keep_alive", False)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRecord:
    """One ledger entry; also the `--json` output of `dbx token`."""

    token: str
    jti: str
    subject: str
    group: str
    user: str
    root: bool
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    issued_at: str
    not_before: str | None
    expires_at: str | None
    issued_by: str
    status: TokenStatus = TokenStatus.ACTIVE
    limits: TokenLimits = field(default_factory=TokenLimits)

    def to_dict(self) -> dict[str, Any]:
        """JSON object in auth.md §4 key order."""
        return {
            "token": self.token, "jti": self.jti, "subject": self.subject, "group": self.group,
            "user": self.user, "root": self.root, "actions": list(self.actions),
            "resources": list(self.resources), "issued_at": self.issued_at, "not_before": self.not_before,
            "expires_at": self.expires_at, "issued_by": self.issued_by, "status": str(self.status),
            "limits": self.limits.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenRecord:
        """Inverse of to_dict."""
        return cls(
            token=str(data["token"]), jti=str(data["jti"]), subject=str(data.get("subject", "")),
            group=str(data.get("group", "")), user=str(data.get("user", "")), root=bool(data.get("root")),
            actions=tuple(data.get("actions") or ()), resources=tuple(data.get("resources") or ()),
            issued_at=str(data.get("issued_at", "")), not_before=data.get("not_before"),
            expires_at=data.get("expires_at"), issued_by=str(data.get("issued_by", "")),
            status=TokenStatus(data.get("status", "active")), limits=TokenLimits.from_dict(data.get("limits")),
        )

    def revoked(self) -> TokenRecord:
        """A copy with status revoked."""
        return replace(self, status=TokenStatus.REVOKED)


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRequest:
    """What to issue: `ttl_secs` None = `[auth].default_ttl_secs`, 0 = never expires; `resources` None = `["*"]`."""

    group: str
    user: str
    subject: str | None = None
    root: bool = False
    actions: tuple[str, ...] = ()
    resources: tuple[str, ...] | None = None
    ttl_secs: int | None = None
    not_before: int | None = None
    issued_by: str = "cli"
    limits: TokenLimits = field(default_factory=TokenLimits)


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedToken:
    """A token that passed auth.md §5 checks 1–8."""

    jti: str
    subject: str
    group: str
    user: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    expires_at: int | None
    limits: TokenLimits
    root: bool
