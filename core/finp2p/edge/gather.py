"""Work that arrives together, done together: the items submitted within a short window of the first one are
handed to one call (at most ``max_size`` at a time), and each submitter gets its own item's result or error.

A lone item waits the window and no longer; a full batch goes at once. What arrives while a batch is being done
starts the next one, so batches grow with the load: under load one call does the work of many, alone an item
costs one call as before. Used where one call costs about the same for one item as for many (a ledger
transaction, a Merkle root recorded for a batch of receipts).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Does a batch: one outcome per item, in the items' order, a result or the exception for that item alone.
Flush = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]


class Gatherer(Generic[T, R]):
    def __init__(self, flush: Flush[T, R], *, window_s: float, max_size: int) -> None:
        if window_s < 0 or max_size < 1:
            raise ValueError("a gatherer needs a window of 0 s or more and a batch size of 1 or more")
        self._flush = flush
        self.window_s = window_s
        self.max_size = max_size
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._full = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """Do ``item`` in the next batch; its outcome. Cancelling the caller does not take the item back: a
        batch that has started is done for every item in it."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if len(self._waiting) >= self.max_size:
            self._full.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._gather())
        return await asyncio.shield(future)

    async def _gather(self) -> None:
        while self._waiting:
            if len(self._waiting) < self.max_size:
                self._full.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.window_s)
            batch, self._waiting = self._waiting[: self.max_size], self._waiting[self.max_size :]
            # The batch runs on its own, so the next window starts now: batches overlap under load.
            task = asyncio.create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            outcomes = list(await self._flush([item for item, _ in batch]))
            if len(outcomes) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} came back with {len(outcomes)} outcomes")
        except Exception as exc:  # the whole batch failed: every item learns why
            outcomes = [exc] * len(batch)
        except BaseException as exc:  # cancelled: every item learns it, and the cancellation goes on
            _settle(batch, [exc] * len(batch))
            raise
        _settle(batch, outcomes)

    async def close(self) -> None:
        """Stop gathering; batches already running finish (their items are being done)."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        for _, future in self._waiting:
            if not future.done():
                future.cancel()
        self._waiting.clear()


def _settle(batch: list[tuple[T, asyncio.Future[R]]], outcomes: Sequence[R | BaseException]) -> None:
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
            future.exception()  # retrieved: a submitter that gave up must not leave it unread
        else:
            future.set_result(outcome)
