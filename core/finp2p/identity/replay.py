"""The replay window, persisted: a (sender, nonce) pair is accepted once while its timestamp is in the window.

The pair is written before the message is handled, so a node killed and restarted still refuses the replay. Rows
expire with the window (a message that old is refused by its timestamp anyway) and are pruned in batches.
"""

from __future__ import annotations

import time

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.store import Store
from finp2p.store.models import SeenNonceRow

PRUNE_EVERY = 1000


class ReplayGuard:
    def __init__(self, store: Store, window_ms: int) -> None:
        self.store = store
        self.window_ms = window_ms
        self._since_prune = 0

    def check_time(self, timestamp_ms: int, now_ms: int | None = None) -> None:
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        if abs(now - timestamp_ms) > self.window_ms:
            raise FinP2PError(
                ErrorCode.CLOCK_SKEW,
                f"the timestamp is {(timestamp_ms - now) / 1000:+.1f} s from this node's clock "
                f"(accepted: ±{self.window_ms / 1000:.0f} s)",
            )

    async def record(self, sender: str, nonce: str, timestamp_ms: int) -> None:
        """Remember the pair, or raise FP2010 if it was seen already."""
        expires = timestamp_ms + self.window_ms
        self._since_prune += 1
        prune = self._since_prune >= PRUNE_EVERY
        if prune:
            self._since_prune = 0

        def op(s: Session) -> None:
            if prune:
                s.exec(delete(SeenNonceRow).where(col(SeenNonceRow.expires_ms) < int(time.time() * 1000)))
            s.add(SeenNonceRow(sender=sender, nonce=nonce, expires_ms=expires))

        try:
            await self.store.run(op)
        except IntegrityError:
            raise FinP2PError(ErrorCode.REPLAYED, f"nonce {nonce[:8]}… of {sender[:12]}… was used already") from None
