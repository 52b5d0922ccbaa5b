"""Recording receipts in batches: the receipts that arrive within a few milliseconds of each other share one ledger
transaction that records their Merkle root, and each gets its proof. Under load this makes recording cost one
transaction per batch instead of one per receipt; alone, a receipt waits only the linger time."""

from __future__ import annotations

import asyncio
import contextlib

from finp2p.assets import merkle
from finp2p.ledger import Ledger


class ReceiptRecorder:
    def __init__(self, ledger: Ledger, *, max_batch: int = 256, linger_s: float = 0.025) -> None:
        self.ledger = ledger
        self.max_batch = max_batch
        self.linger_s = linger_s
        self._waiting: list[tuple[bytes, asyncio.Future[tuple[str, list[bytes]]]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, receipt_hash: bytes) -> tuple[str, list[bytes]]:
        """Record ``receipt_hash``; return the recording transaction's id and the hash's Merkle proof."""
        future: asyncio.Future[tuple[str, list[bytes]]] = asyncio.get_running_loop().create_future()
        self._waiting.append((receipt_hash, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon())
        return await future

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self.linger_s)
        while self._waiting:
            batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
            leaves = list(dict.fromkeys(h for h, _ in batch))  # one leaf per receipt, in arrival order
            try:
                tx = await self.ledger.record_receipts(leaves)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            proofs = dict(zip(leaves, merkle.proofs(leaves), strict=True))
            for leaf, future in batch:
                if not future.done():
                    future.set_result((tx.transaction_id, proofs[leaf]))

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._flusher
