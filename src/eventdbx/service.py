"""EventService: the use cases every surface (CLI, control socket, plugins) goes through.

Appends: stateless checks and token verification first (service_requests), then one write transaction
(service_append). Reads: state as of a version, events, verification (service_reads). Staging, snapshots,
archive/restore/remove. Owns no SQL: it speaks to the store Protocols.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from eventdbx.clock import Clock, SystemClock
from eventdbx.domain.jsontext import parse_canonical
from eventdbx.domain.records import AggregateState, EventRecord, IssuedBy, Snapshot
from eventdbx.domain.timefmt import format_epoch
from eventdbx.errors import AggregateNotFoundError, EventDBXError, StorageError, WriteBusy
from eventdbx.service_append import Appender, AppendPolicy, WriteCache, staged_view
from eventdbx.service_reads import require_row, state_as_of, verify_aggregate
from eventdbx.service_requests import (
    APPEND_ACTION,
    AppendOutcome,
    AppendRequest,
    Authorisation,
    PreparedAppend,
    prepare,
)
from eventdbx.service_tokens import batch_verifier
from eventdbx.store.staging import StagedEntry

if TYPE_CHECKING:
    from eventdbx.auth.records import VerifiedToken
    from eventdbx.auth.tokens import TokenLedger
    from eventdbx.config import Settings
    from eventdbx.schema.model import Schema
    from eventdbx.store.protocols import Store

__all__ = ["AppendOutcome", "AppendRequest", "EventService", "PreparedAppend", "StagedEntry"]


class EventService:
    """Append, stage, read, verify, snapshot and archive aggregates in one event store."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        clock: Clock | None = None,
        ledger: TokenLedger | None = None,
    ) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self._settings = settings
        self._ledger = ledger
        self._local = threading.local()
        self._policy_cache: AppendPolicy | None = None
        self._policy_for: Settings | None = None

    @classmethod
    def open(
        cls, settings: Settings, *, create: bool = True, clock: Clock | None = None
    ) -> EventService:
        """Open the settings' event store (created when allowed) with its SQLite token ledger."""
        from eventdbx.store.session import SqliteStore
        from eventdbx.store.tokens import SqliteTokenLedger

        store = SqliteStore.open(
            settings.paths.event_store,
            settings.durability,
            create=create,
            dek=settings.data_encryption_key,
        )
        return cls(store, settings, clock=clock, ledger=SqliteTokenLedger(store.db.read))

    @property
    def settings(self) -> Settings:
        """The settings in effect."""
        return self._settings

    def refresh_settings(self, settings: Settings) -> None:
        """Adopt live keys (restrict, page sizes, snapshot threshold, worker id) of freshly loaded settings."""
        self._settings = settings

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def data_version(self) -> int:
        """Changes whenever another connection commits to the store."""
        return self.store.data_version()

    # -- appends
    def _policy(self) -> AppendPolicy:
        s = self._settings
        policy = self._policy_cache
        if policy is None or self._policy_for is not s:
            policy = AppendPolicy(
                restrict=s.restrict,
                snapshot_threshold=s.snapshot_threshold,
                worker_id=s.snowflake_worker_id,
            )
            self._policy_cache, self._policy_for = policy, s
        return policy

    def _verify(
        self, token: str, resource: str, ledger: TokenLedger | None = None
    ) -> Authorisation:
        """auth.md §5 checks 1–8 for an append (check 9 runs inside the transaction)."""
        from eventdbx.auth.keys import signing_keys
        from eventdbx.auth.tokens import verify_token

        ledger = ledger or self._ledger
        if ledger is None:
            raise StorageError("no token ledger is configured")
        auth = self._settings.auth
        verified = verify_token(
            token,
            keys=signing_keys(auth),
            auth=auth,
            ledger=ledger,
            now=self.clock.time(),
            action=APPEND_ACTION,
            resource=resource,
            write=True,
        )
        return Authorisation(
            issued_by=IssuedBy(group=verified.group, user=verified.user),
            jti=verified.jti,
            token=verified,
        )

    def verify_token(
        self,
        token: str,
        *,
        action: str | None = None,
        resource: str | None = None,
        write: bool = False,
    ) -> VerifiedToken:
        """auth.md §5 checks 1–8 for `token` (action/resource scopes only when given; blocking: reads the ledger)."""
        from eventdbx.auth.keys import signing_keys
        from eventdbx.auth.tokens import verify_token

        if self._ledger is None:
            raise StorageError("no token ledger is configured")
        auth = self._settings.auth
        return verify_token(
            token,
            keys=signing_keys(auth),
            auth=auth,
            ledger=self._ledger,
            now=self.clock.time(),
            action=action,
            resource=resource,
            write=write,
        )

    def prepare(self, request: AppendRequest) -> PreparedAppend:
        """The pre-transaction checks of one request (exposed for surfaces that batch appends)."""
        return prepare(request, self._verify)

    @contextmanager
    def _appending(self, wait: bool = True) -> Iterator[Appender]:
        """A write transaction with an Appender seeded from this thread's cache while it is still valid."""
        cache: WriteCache | None = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = WriteCache()
        try:
            with self.store.writing(wait=wait) as session:
                token = self.store.change_token()
                if token != cache.token:
                    cache.clear()
                appender = Appender(session, self._policy(), self.clock, cache)
                yield appender
                appender.finish()
        except BaseException:
            cache.clear()
            raise
        cache.adopt(appender, self.store.token_after_commit(token))

    def append(self, request: AppendRequest) -> AppendOutcome:
        """Validate, authorise and commit one event in one transaction."""
        prepared = prepare(request, self._verify)
        with self._appending() as appender:
            return appender.append(prepared)

    def append_batch(
        self, requests: Sequence[AppendRequest], *, wait: bool = True
    ) -> list[AppendOutcome | EventDBXError]:
        """Group commit: one transaction; each request gets its own outcome or error.

        The pre-transaction checks run inside the write transaction here, so token look-ups share the
        write cache (valid while no other connection has committed) instead of a read transaction each.
        A request that fails its checks writes nothing; a store failure fails every request of the batch.
        With `wait=False`, a write lock held by another connection raises WriteBusy before anything ran.
        """
        results: list[AppendOutcome | EventDBXError | None] = [None] * len(requests)
        try:
            with self._appending(wait) as appender:
                verify = batch_verifier(
                    self._verify, self._ledger, appender.base, self._settings.auth, self.clock
                )
                append = appender.append
                for n, request in enumerate(requests):
                    try:
                        results[n] = append(prepare(request, verify))
                    except EventDBXError as exc:  # a rejected request; the others go on
                        results[n] = exc
        except WriteBusy:  # wait=False and the lock is held elsewhere: nothing ran, the caller retries
            raise
        except EventDBXError as exc:
            results = [exc if isinstance(r, AppendOutcome) or r is None else r for r in results]
        return [r if r is not None else StorageError("request was not processed") for r in results]

    def checkpoint(self) -> bool:
        """A WAL checkpoint (RESTART, ≤ 100 ms wait) from this thread (the loop's non-waiting writes never checkpoint).

        False when it could not rewind the log (busy): the writer then tries again sooner.
        """
        return self.store.checkpoint()

    # -- staging
    def stage(self, request: AppendRequest) -> StagedEntry:
        """Validate against committed plus earlier staged entries and stage the resolved event."""
        prepared = prepare(request, self._verify)
        t, i = prepared.aggregate_type, prepared.aggregate_id
        with self.store.writing() as session:
            appender = Appender(session, self._policy(), self.clock)
            view = staged_view(appender.row(t, i), session.list_staged(t, i))
            resolved = appender.resolve(prepared, view)
            auth = prepared.auth
            return session.add_staged(
                StagedEntry(
                    id=0,
                    aggregate_type=t,
                    aggregate_id=i,
                    event_type=prepared.event_type,
                    payload_json=resolved.payload_json,
                    metadata_json=prepared.metadata_json,
                    issued_by=None if auth is None else auth.issued_by,
                    note=prepared.note,
                    expected_version=prepared.expected_version,
                    token_jti=None if auth is None else auth.jti,
                )
            )

    def staged(self) -> list[StagedEntry]:
        """Staged entries in staging order."""
        with self.store.reading() as session:
            return session.list_staged()

    def commit_staged(self) -> list[AppendOutcome]:
        """Re-validate and append every staged entry in one transaction; staging is emptied on success."""
        with self._appending() as appender:
            entries = appender.session.list_staged()
            outcomes = [appender.append(self._from_entry(entry)) for entry in entries]
            if entries:
                appender.session.clear_staged()
        return outcomes

    def _from_entry(self, entry: StagedEntry) -> PreparedAppend:
        token = None
        if entry.token_jti is not None and self._ledger is not None:
            token = self._ledger.get_token(entry.token_jti)
        auth = None
        if entry.issued_by is not None or entry.token_jti is not None:
            auth = Authorisation(issued_by=entry.issued_by, jti=entry.token_jti, token=token)
        return PreparedAppend(
            aggregate_type=entry.aggregate_type,
            aggregate_id=entry.aggregate_id,
            event_type=entry.event_type,
            payload=parse_canonical(entry.payload_json),
            metadata_json=entry.metadata_json,
            note=entry.note,
            expected_version=entry.expected_version,
            auth=auth,
        )

    # -- reads
    def list_aggregates(self, *, skip: int = 0, take: int | None = None) -> list[AggregateState]:
        """Aggregates in (type, id) binary order."""
        with self.store.reading() as session:
            return [row.as_state() for row in session.list_aggregates(skip=skip, take=take)]

    def get_aggregate(
        self, aggregate_type: str, aggregate_id: str, *, version: int | None = None
    ) -> AggregateState:
        """Current state, or as of min(version, current) (0 → {} and the empty root)."""
        with self.store.reading() as session:
            return state_as_of(session, require_row(session, aggregate_type, aggregate_id), version)

    def list_events(
        self,
        aggregate_type: str,
        aggregate_id: str,
        *,
        skip: int = 0,
        take: int | None = None,
        up_to: int | None = None,
    ) -> list[EventRecord]:
        """An aggregate's events in version order (versions ≤ up_to), after skipping `skip`."""
        with self.store.reading() as session:
            require_row(session, aggregate_type, aggregate_id)
            if up_to is None:
                return session.events_page(aggregate_type, aggregate_id, skip=skip, take=take)
            records = session.events_of(aggregate_type, aggregate_id, up_to=up_to)
        end = None if take is None else skip + take
        return records[skip:end]

    def verify(self, aggregate_type: str, aggregate_id: str) -> str:
        """Recompute every hash and the Merkle root; returns the root or raises a StorageError."""
        with self.store.reading() as session:
            return verify_aggregate(session, require_row(session, aggregate_type, aggregate_id))

    def read_aggregate(
        self, aggregate_type: str, aggregate_id: str
    ) -> tuple[Schema | None, AggregateState | None]:
        """The type's schema and the aggregate's current state (None when missing) from one read snapshot."""
        with self.store.reading() as session:
            row = session.load_aggregate(aggregate_type, aggregate_id)
            return session.load_schema(aggregate_type), None if row is None else row.as_state()

    def read_events(
        self, aggregate_type: str, aggregate_id: str, *, skip: int = 0, take: int | None = None
    ) -> tuple[Schema | None, list[EventRecord] | None]:
        """The type's schema and a page of the aggregate's events (None when it is missing), one snapshot."""
        with self.store.reading() as session:
            schema = session.load_schema(aggregate_type)
            if session.load_aggregate(aggregate_type, aggregate_id) is None:
                return schema, None
            if take is not None and take <= 0:
                return schema, []
            return schema, session.events_page(aggregate_type, aggregate_id, skip=skip, take=take)

    def schema(self, aggregate_type: str) -> Schema | None:
        """The aggregate type's schema (for hidden-field filtering on socket reads)."""
        with self.store.reading() as session:
            return session.load_schema(aggregate_type)

    def snapshots(self, aggregate_type: str, aggregate_id: str) -> list[Snapshot]:
        """An aggregate's snapshots in creation order."""
        with self.store.reading() as session:
            return session.list_snapshots(aggregate_type, aggregate_id)

    # -- maintenance
    def snapshot(
        self, aggregate_type: str, aggregate_id: str, *, comment: str | None = None
    ) -> Snapshot:
        """Save the current state as a snapshot."""
        with self.store.writing() as session:
            row = require_row(session, aggregate_type, aggregate_id)
            snap = Snapshot(
                aggregate_type=row.aggregate_type,
                aggregate_id=row.aggregate_id,
                version=row.version,
                state=dict(row.state),
                merkle_root=row.merkle_root,
                created_at=format_epoch(self.clock.time()),
                comment=comment,
            )
            session.save_snapshot(snap)
        return snap

    def archive(
        self, aggregate_type: str, aggregate_id: str, *, comment: str | None = None
    ) -> AggregateState:
        """Mark an aggregate archived (appends then fail); it stays listed and readable."""
        return self._set_archived(aggregate_type, aggregate_id, True, comment)

    def restore(
        self, aggregate_type: str, aggregate_id: str, *, comment: str | None = None
    ) -> AggregateState:
        """Clear the archive flag (the comment is only echoed by the CLI)."""
        return self._set_archived(aggregate_type, aggregate_id, False, comment)

    def _set_archived(self, t: str, i: str, archived: bool, comment: str | None) -> AggregateState:
        with self.store.writing() as session:
            require_row(session, t, i)
            session.set_archived(
                t,
                i,
                archived=archived,
                archived_at=format_epoch(self.clock.time()) if archived else None,
                comment=comment if archived else None,
            )
            return require_row(session, t, i).as_state()

    def remove(self, aggregate_type: str, aggregate_id: str) -> int:
        """Discard a staged-only aggregate's entries (returns how many); refused once events exist."""
        with self.store.writing() as session:
            if session.load_aggregate(aggregate_type, aggregate_id) is not None:
                raise StorageError(
                    f"aggregate {aggregate_type}:{aggregate_id} cannot be removed while events exist"
                )
            removed = session.clear_staged(aggregate_type, aggregate_id)
            if not removed:
                raise AggregateNotFoundError()
        return removed
