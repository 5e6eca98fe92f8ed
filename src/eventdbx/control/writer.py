"""Group commit: appends from every connection are committed together, on the loop when the lock is free, else on a writer thread.

The same batching hand-over serves point reads (handlers.py): any blocking batch function works.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Generic, TypeVar

from eventdbx.errors import EventDBXError, StorageError, WriteBusy

log = logging.getLogger("eventdbx.control.writer")

Req = TypeVar("Req")
Out = TypeVar("Out")
BatchFn = Callable[[Sequence[Req]], Sequence[Out | EventDBXError]]
DEFAULT_MAX_BATCH = 1024
DEFAULT_LINGER_SECS = 0.0008
_STOP = object()
_HOUSEKEEPING = object()
HOUSEKEEPING_EVERY = 1000  # inline batches between two housekeeping calls (a WAL checkpoint that rewinds the log)
HOUSEKEEPING_RETRY = 100  # inline batches before housekeeping that reported False (could not finish) runs again
Deliver = Callable[[Any], object]  # called on the loop with the outcome or the EventDBXError
_Item = tuple[Req, Deliver]


class GroupCommitWriter(Generic[Req, Out]):
    """One dedicated thread; each `submit` resolves with its own outcome or raises its own error.

    Requests submitted during one event-loop iteration are handed to the thread together (one queue put,
    one thread wake-up). The thread takes everything queued (up to `max_batch`) and hands it to
    `append_batch` at once, so concurrent clients share one transaction (one fsync) while a lone client pays
    only its own. When recent batches show concurrency, it lingers up to `linger_secs` for the batch to
    reach its usual size (clients answered by one commit come back together); a lone client never waits.
    The outcomes of a batch return to the loop in one callback. `on_commit()` runs on the event loop after
    each batch that committed at least one event.

    With `inline_batch`, a batch is first tried on the loop itself, saving the two thread wake-ups: the
    function must never wait (raise WriteBusy when the write lock is held elsewhere, never sync files);
    on WriteBusy, or while earlier appends are still with the thread, the batch goes to the thread as
    above, so commits keep request order. `housekeeping()` then runs on the thread every
    HOUSEKEEPING_EVERY inline batches (the loop's writes skip WAL checkpoints, which sync files), and again
    after HOUSEKEEPING_RETRY batches when it returns False (it could not finish).
    """

    def __init__(
        self,
        append_batch: BatchFn[Req, Out],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        on_commit: Callable[[], object] | None = None,
        name: str = "eventdbx-writer",
        linger_secs: float = DEFAULT_LINGER_SECS,
        inline_batch: BatchFn[Req, Out] | None = None,
        housekeeping: Callable[[], object] | None = None,
    ) -> None:
        self._append_batch = append_batch
        self._inline = inline_batch
        self._housekeeping = housekeeping
        self._in_thread = 0  # requests handed to the thread and not yet resolved (loop side)
        self._since_housekeeping = 0
        self._max_batch = max(1, max_batch)
        self._linger = linger_secs
        self._typical = 1.0  # moving average of batch sizes: the concurrency level seen lately
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._pending: list[
            _Item[Req]
        ] = []  # submitted during this loop iteration, not yet handed over
        self._carry: list[
            _Item[Req]
        ] = []  # writer thread: taken from the queue beyond max_batch
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.batches = 0
        self.events = 0
        self.inline_batches = 0
        self.busy_fallbacks = 0
        self.housekeeping_retries = 0

    def start(self) -> None:
        """Start the writer thread, bound to the running loop."""
        self._loop = asyncio.get_running_loop()
        self._thread.start()

    def submit_nowait(self, request: Req) -> asyncio.Future[Out]:
        """Queue one append; the future gets the outcome or the EventDBXError."""
        loop = self._loop
        if loop is None or self._closed:
            raise StorageError("the writer is not running")
        future: asyncio.Future[Out] = loop.create_future()
        self.submit_to(request, partial(settle_future, future))
        return future

    def submit_to(self, request: Req, deliver: Deliver) -> None:
        """Queue one append; `deliver(outcome or EventDBXError)` is called on the loop when its batch is done.

        Called directly from the batch's resolution, in submission order: no future, no extra loop callback.
        """
        loop = self._loop
        if loop is None or self._closed:
            raise StorageError("the writer is not running")
        pending = self._pending
        if not pending:
            loop.call_soon(self._hand_over)
        pending.append((request, deliver))

    async def submit(self, request: Req) -> Out:
        """Queue one append and wait for its own result."""
        return await self.submit_nowait(request)

    def _hand_over(self) -> None:
        """End of the loop iteration: pass everything submitted during it to the thread at once."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        if self._inline is not None and not self._in_thread and self._run_inline(pending):
            return
        self._in_thread += len(pending)
        self._queue.put(pending)

    def _run_inline(self, pending: list[_Item[Req]]) -> bool:
        """Commit on the loop; False (nothing ran) when the write lock is held elsewhere."""
        assert self._inline is not None
        requests = [request for request, _ in pending]
        results = self._call(self._inline, requests, inline=True)
        if results is None:
            self.busy_fallbacks += 1
            return False
        self.inline_batches += 1
        self._since_housekeeping += 1
        if self._housekeeping is not None and self._since_housekeeping >= HOUSEKEEPING_EVERY:
            self._since_housekeeping = 0
            self._queue.put(_HOUSEKEEPING)
        self._resolve([d for _, d in pending], results)
        return True

    def _call(
        self, fn: BatchFn[Req, Out], requests: list[Req], *, inline: bool = False
    ) -> Sequence[Out | BaseException] | None:
        """Run a batch function; every failure becomes each request's error (None: inline and busy)."""
        results: Sequence[Out | BaseException]
        try:
            results = fn(requests)
            if len(results) != len(requests):
                raise StorageError(
                    f"append_batch returned {len(results)} results for {len(requests)}"
                )
        except WriteBusy as exc:
            if inline:
                return None
            results = [exc] * len(requests)
        except EventDBXError as exc:
            results = [exc] * len(requests)
        except Exception as exc:  # a bug or a disk failure must fail the callers, not the thread
            log.exception("group commit failed")
            results = [StorageError(str(exc))] * len(requests)
        return results

    async def close(self) -> None:
        """Finish everything queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        if self._loop is None:
            return
        self._hand_over()
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        stopping = False
        while True:
            if self._carry:
                batch, self._carry = self._carry, []
            elif stopping:
                return
            else:
                first = self._queue.get()
                if first is _STOP:
                    return
                if first is _HOUSEKEEPING:
                    self._housekeep()
                    continue
                batch = list(first)  # type: ignore[call-overload]
            if not stopping:
                stopping = self._gather(batch)
            if len(batch) > self._max_batch:
                self._carry = batch[self._max_batch :]
                del batch[self._max_batch :]
            self._typical += (len(batch) - self._typical) * 0.2
            self._commit(batch)

    def _gather(self, batch: list[_Item[Req]]) -> bool:
        """Add what is queued (lingering briefly when concurrency is usual); True when stop was requested."""
        want = min(self._max_batch, int(self._typical + 0.5)) if self._linger > 0 else 1
        deadline = 0.0
        while len(batch) < self._max_batch:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                if len(batch) >= want:
                    return False
                now = time.monotonic()
                if not deadline:
                    deadline = now + self._linger
                if now >= deadline:
                    return False
                try:
                    more = self._queue.get(timeout=deadline - now)
                except queue.Empty:
                    return False
            if more is _STOP:
                return True
            if more is _HOUSEKEEPING:
                self._housekeep()
                continue
            batch.extend(more)  # type: ignore[arg-type]
        return False

    def _housekeep(self) -> None:
        if self._housekeeping is None:
            return
        try:
            finished = self._housekeeping()
        except Exception:
            log.exception("writer housekeeping failed")
            return
        if finished is False:  # e.g. a checkpoint that found others writing: again after HOUSEKEEPING_RETRY batches
            self.housekeeping_retries += 1
            self._since_housekeeping = max(self._since_housekeeping, HOUSEKEEPING_EVERY - HOUSEKEEPING_RETRY)

    def _commit(self, batch: list[_Item[Req]]) -> None:
        results = self._call(self._append_batch, [request for request, _ in batch])
        assert self._loop is not None and results is not None
        try:
            self._loop.call_soon_threadsafe(self._resolve_from_thread, [d for _, d in batch], results)
        except RuntimeError:  # loop already closed
            pass

    def _resolve_from_thread(
        self, delivers: list[Deliver], results: Sequence[Out | BaseException]
    ) -> None:
        self._in_thread -= len(delivers)
        self._resolve(delivers, results)

    def _resolve(self, delivers: list[Deliver], results: Sequence[Out | BaseException]) -> None:
        committed = 0
        for deliver, result in zip(delivers, results, strict=True):
            if not isinstance(result, BaseException):
                committed += 1
            try:
                deliver(result)
            except Exception:  # one caller's failure must not keep the others' results from them
                log.exception("delivering a group commit result failed")
        self.batches += 1
        self.events += committed
        if committed and self._on_commit is not None:
            try:
                self._on_commit()
            except Exception:
                log.exception("on_commit hook failed")


def settle_future(future: asyncio.Future[Any], outcome: object) -> None:
    """A `Deliver` for a future: its result, or its exception when `outcome` is one (ignored once done)."""
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
