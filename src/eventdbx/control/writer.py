"""Group commit: appends from every connection queue to one writer thread that commits them in one transaction.

The same batching hand-over serves point reads (handlers.py): any blocking batch function works.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from eventdbx.errors import EventDBXError, StorageError

log = logging.getLogger("eventdbx.control.writer")

Req = TypeVar("Req")
Out = TypeVar("Out")
BatchFn = Callable[[Sequence[Req]], Sequence[Out | EventDBXError]]
DEFAULT_MAX_BATCH = 1024
DEFAULT_LINGER_SECS = 0.0008
_STOP = object()
_Item = tuple[Req, "asyncio.Future[Out]"]


class GroupCommitWriter(Generic[Req, Out]):
    """One dedicated thread; each `submit` resolves with its own outcome or raises its own error.

    Requests submitted during one event-loop iteration are handed to the thread together (one queue put,
    one thread wake-up). The thread takes everything queued (up to `max_batch`) and hands it to
    `append_batch` at once, so concurrent clients share one transaction (one fsync) while a lone client pays
    only its own. When recent batches show concurrency, it lingers up to `linger_secs` for the batch to
    reach its usual size (clients answered by one commit come back together); a lone client never waits.
    The outcomes of a batch return to the loop in one callback. `on_commit()` runs on the event loop after
    each batch that committed at least one event.
    """

    def __init__(
        self,
        append_batch: BatchFn[Req, Out],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        on_commit: Callable[[], object] | None = None,
        name: str = "eventdbx-writer",
        linger_secs: float = DEFAULT_LINGER_SECS,
    ) -> None:
        self._append_batch = append_batch
        self._max_batch = max(1, max_batch)
        self._linger = linger_secs
        self._typical = 1.0  # moving average of batch sizes: the concurrency level seen lately
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._pending: list[
            _Item[Req, Out]
        ] = []  # submitted during this loop iteration, not yet handed over
        self._carry: list[
            _Item[Req, Out]
        ] = []  # writer thread: taken from the queue beyond max_batch
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.batches = 0
        self.events = 0

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
        pending = self._pending
        if not pending:
            loop.call_soon(self._hand_over)
        pending.append((request, future))
        return future

    async def submit(self, request: Req) -> Out:
        """Queue one append and wait for its own result."""
        return await self.submit_nowait(request)

    def _hand_over(self) -> None:
        """End of the loop iteration: pass everything submitted during it to the thread at once."""
        pending, self._pending = self._pending, []
        if pending:
            self._queue.put(pending)

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
                batch = list(first)  # type: ignore[call-overload]
            if not stopping:
                stopping = self._gather(batch)
            if len(batch) > self._max_batch:
                self._carry = batch[self._max_batch :]
                del batch[self._max_batch :]
            self._typical += (len(batch) - self._typical) * 0.2
            self._commit(batch)

    def _gather(self, batch: list[_Item[Req, Out]]) -> bool:
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
            batch.extend(more)  # type: ignore[arg-type]
        return False

    def _commit(self, batch: list[_Item[Req, Out]]) -> None:
        requests = [request for request, _ in batch]
        results: Sequence[Out | BaseException]
        try:
            results = self._append_batch(requests)
            if len(results) != len(requests):
                raise StorageError(
                    f"append_batch returned {len(results)} results for {len(requests)}"
                )
        except EventDBXError as exc:
            results = [exc] * len(requests)
        except Exception as exc:  # a bug or a disk failure must fail the callers, not the thread
            log.exception("group commit failed")
            results = [StorageError(str(exc))] * len(requests)
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._resolve, [f for _, f in batch], results)
        except RuntimeError:  # loop already closed
            pass

    def _resolve(
        self, futures: list[asyncio.Future[Out]], results: Sequence[Out | BaseException]
    ) -> None:
        committed = 0
        for future, result in zip(futures, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                committed += 1
                future.set_result(result)
        self.batches += 1
        self.events += committed
        if committed and self._on_commit is not None:
            try:
                self._on_commit()
            except Exception:
                log.exception("on_commit hook failed")
