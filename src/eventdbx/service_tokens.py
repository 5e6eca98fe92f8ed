"""Token checks of group commits: ledger records and accepted (token, resource) verdicts kept in a WriteCache.

Both live exactly as long as the write cache: any commit by another connection (a revocation, a new token)
or any other write through this connection clears them. A remembered verdict is only reused while the
clock is still inside the token's validity window; otherwise the full auth.md §5 checks run again.
A token accepted for one aggregate is accepted for another after the resource check alone: every other
check of an append's verdict is the same for all resources (a new aggregate per append is common).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from eventdbx.auth.scopes import resource_allowed

if TYPE_CHECKING:
    from eventdbx.auth.records import TokenRecord
    from eventdbx.auth.tokens import TokenLedger
    from eventdbx.clock import Clock
    from eventdbx.config import AuthSettings
    from eventdbx.service_append import WriteCache
    from eventdbx.service_requests import Authorisation

FullCheck = Callable[[str, str, "TokenLedger | None"], "Authorisation"]


class LedgerMemo:
    """A TokenLedger that remembers records in a WriteCache (valid while the cache is)."""

    __slots__ = ("ledger", "records")

    def __init__(self, ledger: TokenLedger, records: dict[str, TokenRecord | None]) -> None:
        self.ledger = ledger
        self.records = records

    def get_token(self, jti: str) -> TokenRecord | None:
        """The ledger's record of `jti`, looked up once per cache lifetime."""
        records = self.records
        if jti in records:
            return records[jti]
        record = records[jti] = self.ledger.get_token(jti)
        return record

    def change_counter(self) -> int:
        """The ledger's change counter."""
        return self.ledger.change_counter()


def batch_verifier(
    full_check: FullCheck,
    ledger: TokenLedger | None,
    cache: WriteCache,
    auth: AuthSettings,
    clock: Clock,
) -> Callable[[str, str], Authorisation]:
    """A (token, resource) → Authorisation verifier for one write transaction seeded from `cache`."""
    if cache.accepted_for is not auth:  # new keys, issuer or audience: forget every verdict
        cache.accepted.clear()
        cache.accepted_tokens.clear()
        cache.accepted_for = auth
    memo = None if ledger is None else LedgerMemo(ledger, cache.tokens)
    accepted = cache.accepted
    by_token = cache.accepted_tokens
    skew = auth.clock_skew_secs

    def verify(token: str, resource: str) -> Authorisation:
        now = clock.time()
        hit = accepted.get((token, resource))
        if hit is None:
            hit = by_token.get(token)
            resources = None if hit is None else getattr(hit[0].token, "resources", None)
            if resources is None or not resource_allowed(resources, resource):
                hit = None  # the full check decides (and raises the error of the first check that fails)
        if hit is not None:
            authorisation, checked_at = hit
            expires = getattr(authorisation.token, "expires_at", None)
            # Checks 1-3 and 6-8 cannot change while the cache is valid; 4 and 5 depend on the clock.
            if checked_at <= now and (expires is None or now - skew <= expires):
                accepted[(token, resource)] = hit
                return authorisation
        authorisation = full_check(token, resource, memo)
        accepted[(token, resource)] = by_token[token] = (authorisation, now)
        return authorisation

    return verify
