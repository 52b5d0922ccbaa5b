"""The replay window, persisted: a (sender, nonce) pair is accepted once while its timestamp is in the window.

The pair is committed before the message is handled, so a node killed and restarted still refuses the replay.
Concurrent messages share one commit (group commit): each waits for the batch that holds its pair, which keeps the
guarantee and spares a disk flush per message. Rows expire with the window (a message that old is refused by its
timestamp anyway) and are pruned in batches.
"""

from __future__ import annotations

import asyncio
import functools

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, delete

from finp2p import clock
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.store import Store
from finp2p.store.models import SeenNonceRow

PRUNE_EVERY = 5000
MAX_BATCH = 512


class ReplayGuard:
    def __init__(self, store: Store, window_ms: int) -> None:
        self.store = store
        self.window_ms = window_ms
        self._pending: list[tuple[SeenNonceRow, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._since_prune = 0

    def check_time(self, timestamp_ms: int, now_ms: int | None = None) -> None:
        now = now_ms if now_ms is not None else clock.now_ms()
        if abs(now - timestamp_ms) > self.window_ms:
            raise FinP2PError(
                ErrorCode.CLOCK_SKEW,
                f"the timestamp is {(timestamp_ms - now) / 1000:+.1f} s from this node's clock "
                f"(accepted: ±{self.window_ms / 1000:.0f} s)",
            )

    async def record(self, sender: str, nonce: str, timestamp_ms: int) -> None:
        """Remember the pair (committed when this returns), or raise FP2010 if it was seen already."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(
            (SeenNonceRow(sender=sender, nonce=nonce, expires_ms=timestamp_ms + self.window_ms), future)
        )
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        await future

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            self._since_prune += len(batch)
            prune = self._since_prune >= PRUNE_EVERY
            if prune:
                self._since_prune = 0
            rows = [row for row, _ in batch]
            try:
                outcome = await self.store.run(functools.partial(_insert, rows=rows, prune=prune))
            except Exception as exc:  # the store failed: every waiter learns it, none is acknowledged
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (row, fut), fresh in zip(batch, outcome, strict=True):
                if fut.done():
                    continue
                if fresh:
                    fut.set_result(None)
                else:
                    fut.set_exception(
                        FinP2PError(
                            ErrorCode.REPLAYED, f"nonce {row.nonce[:8]}… of {row.sender[:12]}… was used already"
                        )
                    )


def _insert(s: Session, rows: list[SeenNonceRow], prune: bool) -> list[bool]:
    """Insert the new pairs of ``rows`` in one statement; for each, whether it was new."""
    if prune:
        s.exec(delete(SeenNonceRow).where(col(SeenNonceRow.expires_ms) < clock.now_ms()))
    unique: dict[tuple[str, str], int] = {}
    for r in rows:
        unique.setdefault((r.sender, r.nonce), r.expires_ms)
    table = SeenNonceRow.__table__  # type: ignore[attr-defined]
    insert = sqlite_insert if s.get_bind().dialect.name == "sqlite" else pg_insert
    stmt = (
        insert(table)
        .values([{"sender": k[0], "nonce": k[1], "expires_ms": v} for k, v in unique.items()])
        .on_conflict_do_nothing()
        .returning(table.c.sender, table.c.nonce)
    )
    inserted = {(sender, nonce) for sender, nonce in s.connection().execute(stmt)}
    fresh: list[bool] = []
    for r in rows:  # a pair twice in one batch: the first is new, the second a replay
        key = (r.sender, r.nonce)
        fresh.append(key in inserted)
        inserted.discard(key)
    return fresh
