"""How a claimed job's attempt ended (delivered, retry, dead, released, probe failed), for `PluginQueue`."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager

from eventdbx.domain.payload_mode import Ordering
from eventdbx.store import plugin_queue_claims as claims
from eventdbx.store.plugin_queue_claims import Attempt
from eventdbx.store.plugin_queue_model import Job, Outcome


def _delivered(items: Sequence[tuple[int, str, float, int | None]], *, now: float) -> list[Attempt]:
    return [
        Attempt(
            job_id=jid,
            token=token,
            started_at=started,
            now=now,
            outcome=Outcome.DELIVERED,
            http_status=status,
        )
        for jid, token, started, status in items
    ]


class AttemptOutcomes:
    """The outcome-recording half of `PluginQueue`: each method is one write transaction on its connection."""

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _clear_all(self, found: list[Job]) -> list[Job]:
        raise NotImplementedError

    def _record(self, attempt: Attempt, *, dead: bool = False) -> bool:
        with self._write() as conn:
            return claims.record(conn, attempt, dead=dead)

    def mark_delivered(
        self,
        job_id: int,
        token: str,
        *,
        started_at: float,
        now: float,
        http_status: int | None = None,
    ) -> bool:
        """done/delivered; False if the claim token no longer matches."""
        return self._record(_delivered([(job_id, token, started_at, http_status)], now=now)[0])

    def mark_delivered_many(
        self, items: Sequence[tuple[int, str, float, int | None]], *, now: float
    ) -> list[bool]:
        """`mark_delivered` for many jobs in ONE write transaction; items are (job_id, token, started_at, http_status).

        result[i] is False when that job's claim token no longer matches.
        """
        attempts = _delivered(items, now=now)
        with self._write() as conn:
            return claims.record_delivered_many(conn, attempts, now=now)

    def deliver_and_claim(
        self,
        items: Sequence[tuple[int, str, float, int | None]],
        *,
        now: float,
        plugin: str,
        limit: int,
        lease_secs: float,
        ordering: Ordering,
        unclaim: Sequence[tuple[int, str]] = (),
    ) -> tuple[list[bool], list[Job]]:
        """The dispatcher's hot path in ONE write transaction: `mark_delivered_many(items)`, `unclaim`,
        then `claim` (heads promoted by those deliveries are claimable at once)."""
        attempts = _delivered(items, now=now)
        with self._write() as conn:
            done = claims.record_delivered_many(conn, attempts, now=now) if attempts else []
            if unclaim:
                claims.unclaim(conn, list(unclaim))
            claimed = claims.claim(
                conn, plugin, now=now, limit=limit, lease_secs=lease_secs, ordering=ordering
            )
            return done, self._clear_all(claimed)

    def unclaim(self, items: Sequence[tuple[int, str]]) -> list[bool]:
        """Claimed jobs never started (claimed ahead, then not sent): pending again with the attempt
        given back and no history entry; items are (job_id, claim_token). result[i] is False when that
        token no longer matches."""
        with self._write() as conn:
            return claims.unclaim(conn, list(items))

    def mark_retry(
        self,
        job_id: int,
        token: str,
        *,
        started_at: float,
        now: float,
        error: str,
        next_retry_at: float,
        http_status: int | None = None,
    ) -> bool:
        """pending again at `next_retry_at` (history `failed`)."""
        return self._record(
            Attempt(
                job_id=job_id,
                token=token,
                started_at=started_at,
                now=now,
                outcome=Outcome.FAILED,
                error=error,
                http_status=http_status,
                next_retry_at=next_retry_at,
            )
        )

    def mark_dead(
        self,
        job_id: int,
        token: str,
        *,
        started_at: float,
        now: float,
        error: str,
        permanent: bool,
        http_status: int | None = None,
    ) -> bool:
        """dead (history `permanent` or `failed`)."""
        outcome = Outcome.PERMANENT if permanent else Outcome.FAILED
        return self._record(
            Attempt(
                job_id=job_id,
                token=token,
                started_at=started_at,
                now=now,
                outcome=outcome,
                error=error,
                http_status=http_status,
            ),
            dead=True,
        )

    def mark_released(self, job_id: int, token: str, *, started_at: float, now: float) -> bool:
        """Back to pending without using an attempt (shutdown; history `released`)."""
        return self._record(
            Attempt(
                job_id=job_id, token=token, started_at=started_at, now=now, outcome=Outcome.RELEASED
            )
        )

    def mark_probe_failed(
        self,
        job_id: int,
        token: str,
        *,
        started_at: float,
        now: float,
        error: str,
        next_retry_at: float,
        http_status: int | None = None,
    ) -> bool:
        """A failed circuit probe: pending at `next_retry_at`, attempt not counted (history `probe-failed`)."""
        return self._record(
            Attempt(
                job_id=job_id,
                token=token,
                started_at=started_at,
                now=now,
                outcome=Outcome.PROBE_FAILED,
                error=error,
                http_status=http_status,
                next_retry_at=next_retry_at,
            )
        )
