"""The outbox enqueuer (plugins.md §2): tails event_store.db by global sequence and writes plugin jobs.

Per plugin, one BEGIN IMMEDIATE transaction on plugin_queue.db re-reads the cursor, reads up to 500 events after it,
inserts their jobs and moves the cursor, so a kill -9 anywhere neither loses nor duplicates a job (invariant I1).
It never delivers anything (the dispatcher does) and never writes event_store.db.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from eventdbx.clock import Clock, SystemClock
from eventdbx.plugins.envelope_source import EnvelopeSource
from eventdbx.plugins.registry import PluginDefinition, PluginRegistry
from eventdbx.store import events as store_events
from eventdbx.store.database import Database
from eventdbx.store.plugin_queue import PluginQueue
from eventdbx.store.plugin_queue_model import NewJob, PluginState

if TYPE_CHECKING:
    from eventdbx.config import Settings

log = logging.getLogger("eventdbx.plugin")
BATCH = 500
POLL_SECS = 0.5
# Passes run at most this often, so under a stream of appends one pass covers many events and the enqueuer's
# per-append CPU (and the GIL time it takes from the socket) shrinks; delivery latency grows by at most this much.
MIN_PASS_GAP_SECS = 0.004
# `plugin config` writes the cursor just before plugins.json; never purge a row that young
REMOVAL_GRACE_SECS = 5.0


def _head(db: Database) -> int:
    with db.read() as conn:
        return store_events.head_seq(conn)


class Enqueuer:
    """Runs enqueue passes: on `wake()`, and at least every POLL_SECS for other writers (daemon)."""

    def __init__(
        self,
        settings: Settings,
        *,
        queue: PluginQueue | None = None,
        db: Database | None = None,
        clock: Clock | None = None,
        on_jobs: Callable[[set[str]], None] | None = None,
        thread_setup: Callable[[], object] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.on_jobs = on_jobs
        self.thread_setup = thread_setup  # runs first on the pass thread (the pipeline process lowers its priority)
        self._own_queue = queue is None
        self._own_db = db is None
        self.queue = queue or PluginQueue.open(
            settings.paths.plugin_queue,
            durability=settings.durability,
            dek=settings.data_encryption_key,
        )
        self.db = db or Database.open(settings.paths.event_store, settings.durability, create=True)
        self.registry = PluginRegistry(
            settings.paths.plugins_json, warn=lambda m: log.warning("%s", m)
        )
        self.source = EnvelopeSource(settings.data_encryption_key)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    def close(self) -> None:
        """Close what this enqueuer opened."""
        if self._own_queue:
            self.queue.close()
        if self._own_db:
            self.db.close()

    def refresh_settings(self, settings: Settings) -> None:
        """Adopt new settings (paths are fixed for the daemon's life)."""
        self.settings = settings

    def wake(self) -> None:
        """Ask for a pass now (thread-safe; cheap when nothing is new)."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None:
            loop.call_soon_threadsafe(event.set)

    def run_pass(self) -> int:
        """One pass over every configured plugin; returns the number of jobs created."""
        return sum(self._pass().values())

    def _pass(self) -> dict[str, int]:
        definitions = self.registry.current()
        self.source.clear()
        # States before the head: a cursor only ever moves to a head some enqueuer read earlier, so read in this
        # order a cursor past the head is a real loss, never a concurrent enqueuer's progress (see `_clamp`).
        states = {s.name: s for s in self.queue.list_states()}
        head = _head(self.db)
        if self.registry.healthy:
            self._remove_unconfigured({d.name for d in definitions}, states)
        emitting: list[PluginDefinition] = []
        for definition in definitions:
            state = states.get(definition.name)
            cursor = None if state is None else state.cursor
            if cursor is None:
                self._start_at_head(definition.name)
            elif cursor > head:
                self._clamp(definition.name)
            elif cursor < head and definition.enabled:
                if definition.emit_events:
                    emitting.append(definition)
                else:
                    self._follow_head(definition.name, head)
        return self._drain(emitting)

    def _remove_unconfigured(self, configured: set[str], states: dict[str, PluginState]) -> None:
        """Purge plugins that left plugins.json; rows younger than the grace period are a `config` in flight."""
        now = time.time()
        for name in sorted(set(states) - configured):
            born = states[name].created_at
            if born is not None and now - born < REMOVAL_GRACE_SECS:
                continue
            purged = self.queue.remove_plugin(name)
            log.info(
                "plugin '%s' was removed; deleted its cursor and %d queued job(s)", name, purged
            )

    def _drain(self, emitting: list[PluginDefinition]) -> dict[str, int]:
        """One batch per plugin per round, so one plugin's large backlog never starves the others."""
        created: dict[str, int] = {}
        while emitting:
            behind = []
            for definition in emitting:
                count, more = self._batch(definition)
                if count:
                    created[definition.name] = created.get(definition.name, 0) + count
                if more:
                    behind.append(definition)
            emitting = behind
        return created

    def _start_at_head(self, name: str) -> None:
        with self.queue.transaction() as tx:
            if tx.cursor(name) is not None:
                return
            head = _head(self.db)
            tx.set_cursor(name, head)
        log.info("plugin '%s' has no cursor; starting at the log head (seq %d)", name, head)

    def _clamp(self, name: str) -> None:
        """Power loss under `normal`: the queue kept more than the log. Clamp; jobs of lost events go dead.

        Both are re-read here, cursor first, under the write lock: another enqueuer (the CLI's `enqueue_once` beside
        the daemon) may have moved the cursor since the pass looked, and clamping to a stale head would move it
        back and make the next batch insert duplicates. The head never moves back except in a power loss.
        """
        with self.queue.transaction() as tx:
            current = tx.cursor(name)
            head = _head(self.db)
            if current is None or current <= head:
                return
            with self.db.read() as conn:
                last = (
                    store_events.events_after(conn, head - 1, 1, dek=self.source.dek)
                    if head > 0
                    else []
                )
            last_event_id = last[-1][1].event_id if last else 0
            tx.set_cursor(name, head)
            lost = tx.kill_vanished(name, last_event_id=last_event_id, now=self.clock.time())
        log.error(
            "plugin '%s' cursor (seq %d) is ahead of the log head (seq %d); clamped, %d job(s) of lost events dead",
            name,
            current,
            head,
            lost,
        )

    def _follow_head(self, name: str, head: int) -> None:
        """`emit_events=false`: the cursor follows the head; the events are never owed."""
        with self.queue.transaction() as tx:
            current = tx.cursor(name)
            if current is not None and current < head:
                tx.set_cursor(name, head)

    def _batch(self, definition: PluginDefinition) -> tuple[int, bool]:
        """One transaction: re-read cursor, read ≤500 events, insert jobs, move cursor. (jobs, maybe more)."""
        with self.queue.transaction() as tx:
            cursor = tx.cursor(definition.name)
            if cursor is None:
                return 0, False
            with self.db.read() as conn:
                batch = store_events.events_after(conn, cursor, BATCH, dek=self.source.dek)
                jobs = [self.source.job(conn, definition, record) for _, record in batch]
            if not batch:
                return 0, False
            tx.insert_jobs(jobs, now=self.clock.time())
            tx.set_cursor(definition.name, batch[-1][0])
        return len(jobs), len(batch) == BATCH

    async def run(self, stop_event: asyncio.Event) -> None:
        """Run passes until `stop_event` is set; SQLite work happens on one dedicated thread."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="enqueuer", initializer=self.thread_setup
        )
        try:
            while not stop_event.is_set():
                self._wake.clear()
                try:
                    created = await self._loop.run_in_executor(executor, self._pass)
                except Exception as exc:
                    # a broken pass must never stop the daemon; it is retried next poll
                    level = logging.ERROR if "invariant I1" in str(exc) else logging.WARNING
                    log.log(level, "plugin enqueue pass failed: %s", exc)
                    created = {}
                if created and self.on_jobs is not None:
                    self.on_jobs(set(created))
                await _first_of(stop_event, timeout=MIN_PASS_GAP_SECS)
                await _first_of(stop_event, self._wake, timeout=POLL_SECS)
        finally:
            executor.shutdown(wait=True)
            self._loop = self._wake = None


async def _first_of(*events: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


@contextmanager
def _stores(settings: Settings) -> Iterator[tuple[Database, PluginQueue]]:
    db = Database.open(settings.paths.event_store, settings.durability, create=True)
    try:
        queue = PluginQueue.open(
            settings.paths.plugin_queue,
            durability=settings.durability,
            dek=settings.data_encryption_key,
        )
        try:
            yield db, queue
        finally:
            queue.close()
    finally:
        db.close()


def enqueue_once(settings: Settings, *, clock: Clock | None = None) -> int:
    """One pass over all plugins (the CLI calls it after a direct apply or commit); jobs created."""
    with _stores(settings) as (db, queue):
        enqueuer = Enqueuer(settings, queue=queue, db=db, clock=clock)
        return enqueuer.run_pass()


def init_cursor(settings: Settings, name: str) -> int:
    """`plugin config` of a new name: its cursor starts at the log head. Returns the head."""
    with _stores(settings) as (db, queue), queue.transaction() as tx:
        head = _head(db)
        tx.set_cursor(name, head)
        return head


def backlog(settings: Settings, name: str) -> int:
    """Events owed to the plugin: head − cursor (0 without a cursor)."""
    with _stores(settings) as (db, queue):
        state = queue.get_state(name)
        if state is None or state.cursor is None:
            return 0
        return max(0, _head(db) - state.cursor)


def skip_backlog(settings: Settings, name: str) -> int:
    """`enable --skip-backlog`: move the cursor to the head first. Returns the events skipped."""
    with _stores(settings) as (db, queue), queue.transaction() as tx:
        head = _head(db)
        cursor = tx.cursor(name)
        tx.set_cursor(name, head)
        return 0 if cursor is None else max(0, head - cursor)


def purge_plugin(settings: Settings, name: str) -> int:
    """`plugin remove`: delete the cursor and the pending, processing and dead jobs. Returns jobs purged."""
    with _stores(settings) as (_db, queue):
        return queue.remove_plugin(name)


def _aggregate_ids(
    conn: Any, aggregate_type: str, aggregate_id: str | None, dek: str | None
) -> list[str]:
    if aggregate_id is not None:
        found = store_events.load_aggregate(conn, aggregate_type, aggregate_id, dek=dek)
        return [] if found is None else [aggregate_id]
    rows = store_events.list_aggregates(conn, dek=dek)
    return [row.aggregate_id for row in rows if row.aggregate_type == aggregate_type]


def count_replay(
    settings: Settings, aggregate_type: str, aggregate_id: str | None
) -> tuple[int, int]:
    """(events, aggregates) a replay would queue (`--dry-run` and the confirmation prompt)."""
    with _stores(settings) as (db, _queue), db.read() as conn:
        ids = _aggregate_ids(conn, aggregate_type, aggregate_id, settings.data_encryption_key)
        events = sum(store_events.count_events(conn, aggregate_type, i) for i in ids)
        return events, len(ids)


def enqueue_replay(
    settings: Settings,
    definition: PluginDefinition,
    aggregate_type: str,
    aggregate_id: str | None,
    *,
    progress: Callable[[int], None] | None = None,
    clock: Clock | None = None,
) -> tuple[int, int]:
    """Queue replay jobs (current payload mode, state as of each event), committed in batches of 500."""
    clock = clock or SystemClock()
    source = EnvelopeSource(settings.data_encryption_key)
    total = 0
    with _stores(settings) as (db, queue):
        with db.read() as conn:
            ids = _aggregate_ids(conn, aggregate_type, aggregate_id, source.dek)
        waiting: list[NewJob] = []
        for agg_id in ids:
            for jobs in _replay_pages(db, source, definition, aggregate_type, agg_id):
                waiting.extend(jobs)
                while len(waiting) >= BATCH:
                    total += _commit(queue, waiting[:BATCH], clock, progress)
                    waiting = waiting[BATCH:]
        if waiting:
            total += _commit(queue, waiting, clock, progress)
    return total, len(ids)


def _replay_pages(
    db: Database,
    source: EnvelopeSource,
    definition: PluginDefinition,
    aggregate_type: str,
    aggregate_id: str,
) -> Iterator[list[NewJob]]:
    """An aggregate's replay jobs, read ≤500 events at a time in version order."""
    after = 0
    while True:
        with db.read() as conn:
            records = store_events.events_of(
                conn, aggregate_type, aggregate_id, after=after, up_to=after + BATCH, dek=source.dek
            )
            jobs = [source.job(conn, definition, r, replay=True) for r in records]
        if not records:
            return
        yield jobs
        after = records[-1].version


def _commit(
    queue: PluginQueue, jobs: Sequence[NewJob], clock: Clock, progress: Callable[[int], None] | None
) -> int:
    with queue.transaction() as tx:
        tx.insert_jobs(jobs, now=clock.time())
    if progress is not None:
        progress(len(jobs))
    return len(jobs)
