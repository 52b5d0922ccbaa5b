"""Recording receipts in batches: the receipts that arrive within a few milliseconds of each other share one ledger
transaction that records their Merkle root, and each gets its proof. Under load this makes recording cost one
transaction per batch instead of one per receipt; alone, a receipt waits only the linger time.

A receipt asked for again (the same operation asked by several requests at once, or again later) gets the record
it already has, or the one being made: recording a receipt twice is never a failure. A batch whose root the
registry holds already (recorded before a restart) is answered with the transaction that recorded it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import merkle
from finp2p.ledger import Ledger, LedgerTransaction

#: The transaction that recorded a receipt (alone or in a batch), and the receipt's Merkle proof.
Recorded = tuple[LedgerTransaction, list[bytes]]
#: Receipts whose record (or the record being made) is remembered, so a repeat costs no transaction.
REMEMBERED = 4096


class ReceiptRecorder:
    def __init__(self, ledger: Ledger, *, max_batch: int = 256, linger_s: float = 0.025) -> None:
        self.ledger = ledger
        self.max_batch = max_batch
        self.linger_s = linger_s
        self._waiting: list[tuple[bytes, asyncio.Future[Recorded]]] = []
        self._known: OrderedDict[bytes, asyncio.Future[Recorded]] = OrderedDict()
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, receipt_hash: bytes) -> Recorded:
        """Record ``receipt_hash``; return the recording transaction and the hash's Merkle proof."""
        known = self._known.get(receipt_hash)
        if known is not None and not (known.done() and known.exception() is not None):
            return await asyncio.shield(known)
        future: asyncio.Future[Recorded] = asyncio.get_running_loop().create_future()
        self._known[receipt_hash] = future
        while len(self._known) > REMEMBERED:
            self._known.popitem(last=False)
        self._waiting.append((receipt_hash, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon())
        return await asyncio.shield(future)

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self.linger_s)
        while self._waiting:
            batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
            leaves = list(dict.fromkeys(h for h, _ in batch))  # one leaf per receipt, in arrival order
            try:
                tx = await self._record(leaves)
            except Exception as exc:
                for leaf, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                        future.exception()  # retrieved: a caller that gave up must not leave it unread
                    self._known.pop(leaf, None)
                continue
            proofs = dict(zip(leaves, merkle.proofs(leaves), strict=True))
            for leaf, future in batch:
                if not future.done():
                    future.set_result((tx, proofs[leaf]))

    async def _record(self, leaves: list[bytes]) -> LedgerTransaction:
        try:
            return await self.ledger.record_receipts(leaves)
        except FinP2PError as exc:
            if exc.code is not ErrorCode.LEDGER_ALREADY_RECORDED:
                raise
            found = await self.ledger.find_receipts_record(merkle.root(leaves))
            if found is None:
                raise
            return found

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._flusher
