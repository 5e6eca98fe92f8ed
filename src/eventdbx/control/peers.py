"""Per-connection authentication state (control-socket.md §5): trusted peers, bound tokens, re-checks."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from eventdbx.auth.records import VerifiedToken
from eventdbx.auth.scopes import action_allowed, resource_allowed
from eventdbx.errors import UnauthorizedError

READ_ACTION = "aggregate.read"
MAX_AUTH_FAILURES = 5
RECHECK_SECS = 0.5
AUTH_REQUIRED = "unauthorized: authentication required"

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: verify(token) -> VerifiedToken: auth.md §5 checks 1–6 (no action/resource); blocking (reads the ledger)
TokenVerifier = Callable[[str], VerifiedToken]


class PeerPolicy:
    """Which peers may read without a token (`[socket].trusted_networks`, loopback by default)."""

    def __init__(self, networks: Sequence[str]) -> None:
        self.networks: tuple[IpNetwork, ...] = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def trusted(self, host: str | None) -> bool:
        """True when `host` (an IP literal, maybe with a %scope) lies in a trusted network."""
        if not host:
            return False
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        mapped = getattr(address, "ipv4_mapped", None)
        for network in self.networks:
            if address.version == network.version and address in network:
                return True
            if mapped is not None and network.version == 4 and mapped in network:
                return True
        return False


@dataclass(slots=True)
class BoundToken:
    """The token a connection authenticated with and when it was last verified."""

    token: str
    verified: VerifiedToken
    checked_at: float


class ConnectionAuth:
    """Authentication state of one connection."""

    __slots__ = ("bound", "failures", "trusted")

    def __init__(self, *, trusted: bool) -> None:
        self.trusted = trusted
        self.bound: BoundToken | None = None
        self.failures = 0

    @property
    def token(self) -> str:
        """The bound token text, or "" when unauthenticated."""
        return self.bound.token if self.bound is not None else ""

    def needs_recheck(self, now: float | None = None) -> bool:
        """True when the bound token must be verified again before serving a request."""
        if self.bound is None:
            return False
        now = time.monotonic() if now is None else now
        return now - self.bound.checked_at >= RECHECK_SECS

    def bind(self, token: str, verified: VerifiedToken) -> None:
        """Successful authenticate: (re)bind the connection and reset the failure count."""
        self.bound = BoundToken(token=token, verified=verified, checked_at=time.monotonic())
        self.failures = 0

    def refreshed(self, verified: VerifiedToken) -> None:
        """A re-check passed."""
        if self.bound is not None:
            self.bound.verified = verified
            self.bound.checked_at = time.monotonic()

    def failed(self) -> bool:
        """Record an authenticate failure; True when the connection must now be closed."""
        self.failures += 1
        return self.failures >= MAX_AUTH_FAILURES

    def read_scope(self) -> VerifiedToken | None:
        """The token limiting reads (None = unrestricted trusted peer); raises when reads are not allowed."""
        if self.bound is None:
            if self.trusted:
                return None
            raise UnauthorizedError(AUTH_REQUIRED)
        verified = self.bound.verified
        if not action_allowed(verified.actions, READ_ACTION):
            raise UnauthorizedError()
        return verified


def may_read(scope: VerifiedToken | None, aggregate_type: str, aggregate_id: str) -> bool:
    """Whether `scope` grants `aggregate.read` on `aggregate:{type}:{id}` (None = everything)."""
    if scope is None:
        return True
    return resource_allowed(scope.resources, f"aggregate:{aggregate_type}:{aggregate_id}")
