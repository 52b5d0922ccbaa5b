"""Recording receipts in batches: the receipts that arrive within a few milliseconds of each other share one ledger
transaction that records their Merkle root, and each gets its proof. Under load this makes recording cost one
transaction per batch instead of one per receipt; alone, a receipt waits only the linger time.

A receipt asked for again (the same operation asked by several requests at once, or again later) gets the record
it already has, or the one being made: recording a receipt twice is never a failure. A batch whose root the
registry holds already (recorded before a restart) is answered with the transaction that recorded it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from finp2p.edge.gather import Gatherer
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
        self._batches: Gatherer[bytes, Recorded] = Gatherer(self._record_batch, window_s=linger_s, max_size=max_batch)
        self._known: OrderedDict[bytes, asyncio.Future[Recorded]] = OrderedDict()

    async def record(self, receipt_hash: bytes) -> Recorded:
        """Record ``receipt_hash``; return the recording transaction and the hash's Merkle proof."""
        known = self._known.get(receipt_hash)
        if known is not None and not (known.done() and known.exception() is not None):
            return await asyncio.shield(known)
        future = asyncio.ensure_future(self._batches.submit(receipt_hash))
        self._known[receipt_hash] = future
        while len(self._known) > REMEMBERED:
            self._known.popitem(last=False)
        try:
            return await asyncio.shield(future)
        except Exception:
            if self._known.get(receipt_hash) is future:
                del self._known[receipt_hash]  # not recorded: the next ask tries again
            raise

    async def _record_batch(self, batch: list[bytes]) -> list[Recorded]:
        leaves = list(dict.fromkeys(batch))  # one leaf per receipt, in arrival order
        tx = await self._record(leaves)
        proofs = dict(zip(leaves, merkle.proofs(leaves), strict=True))
        return [(tx, proofs[leaf]) for leaf in batch]

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
        await self._batches.close()
