"""The replay window: an envelope is accepted once, and never again, also after the node restarts.

Within a run, the (sender, nonce) pairs of the window are kept in memory, per sender, and a pair seen already is
refused at once. Across a restart, a durable **horizon** per sender does the work: before an envelope is handled,
its timestamp is at or below its sender's horizon in the store. A horizon is raised ``ahead_ms`` beyond the
timestamp that passed it, so one write covers a sender's next ``ahead_ms`` of envelopes, and writes that wait at
the same time share one commit. After a restart, the horizons of the earlier run are floors: an envelope of a
sender timestamped at or below its floor may have been accepted before, so it is refused; every envelope accepted
before the restart is among them. A sender's fresh envelopes pass its floor within ``ahead_ms`` of its last one
before the restart (a node restarted sooner refuses them that long, with FP2010: send again).

The cost is one durable write per sender per ``ahead_ms``, not one per envelope; the guarantee is the one a
durable nonce table gave. Memory holds each pair until its timestamp leaves the window (refused by its timestamp
from then on), pruned in passes.
"""

from __future__ import annotations

import asyncio
import functools
import os

from sqlmodel import Session

from finp2p import clock
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.store import Store

#: How far beyond an envelope's timestamp its sender's horizon is raised: a durable write per sender at most this
#: often, and a node restarted within this long of a sender's last envelope refuses its next ones until then.
AHEAD_MS = 250
PRUNE_EVERY = 5000


class ReplayGuard:
    def __init__(self, store: Store, window_ms: int, *, ahead_ms: int = AHEAD_MS) -> None:
        self.store = store
        self.window_ms = window_ms
        self.ahead_ms = ahead_ms
        self.boot_id = os.urandom(8).hex()  # tells this run's horizons from the floors an earlier run left
        self._floors: dict[str, int] | None = None
        self._loading: asyncio.Lock | None = None
        self._horizons: dict[str, int] = {}  # committed by this run
        self._seen: dict[str, dict[int, int]] = {}  # sender → nonce (as an integer) → expiry, unix ms
        self._recorded = 0
        self._raise_to: dict[str, int] = {}  # horizons waiting for the writer
        self._waiting: list[asyncio.Future[None]] = []
        self._writer: asyncio.Task[None] | None = None

    def check_time(self, timestamp_ms: int, now_ms: int | None = None) -> None:
        now = now_ms if now_ms is not None else clock.now_ms()
        if abs(now - timestamp_ms) > self.window_ms:
            raise FinP2PError(
                ErrorCode.CLOCK_SKEW,
                f"the timestamp is {(timestamp_ms - now) / 1000:+.1f} s from this node's clock "
                f"(accepted: ±{self.window_ms / 1000:.0f} s)",
            )

    async def record(self, sender: str, nonce: str, timestamp_ms: int) -> None:
        """Accept the pair once (durably covered when this returns), or raise FP2010 if it may have been seen."""
        floors = self._floors if self._floors is not None else await self._load()
        if timestamp_ms <= floors.get(sender, -1):
            raise FinP2PError(
                ErrorCode.SENT_BEFORE_RESTART,
                f"an envelope of {sender[:12]}… timestamped before this node restarted may have been accepted "
                "already; send it again as a new envelope",
            )
        seen = self._seen.setdefault(sender, {})
        key = int(nonce, 16)
        if key in seen:
            raise FinP2PError(ErrorCode.REPLAYED, f"nonce {nonce[:8]}… of {sender[:12]}… was used already")
        seen[key] = timestamp_ms + self.window_ms
        self._recorded += 1
        if self._recorded % PRUNE_EVERY == 0:
            self._prune()
        if timestamp_ms <= self._horizons.get(sender, -1):
            return
        try:
            await self._raise_horizon(sender, timestamp_ms + self.ahead_ms)
        except BaseException:  # not covered, so not accepted: the pair may come again
            seen.pop(key, None)
            raise

    async def _load(self) -> dict[str, int]:
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:
            if self._floors is None:
                self._floors = await self.store.run(functools.partial(_floors, boot_id=self.boot_id))
        return self._floors

    async def _raise_horizon(self, sender: str, horizon_ms: int) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._raise_to[sender] = max(self._raise_to.get(sender, -1), horizon_ms)
        self._waiting.append(future)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        await future

    async def _write(self) -> None:
        while self._waiting:  # what arrives during a commit goes in the next one
            waiting, self._waiting = self._waiting, []
            horizons, self._raise_to = self._raise_to, {}
            try:
                await self.store.run(functools.partial(_upsert, horizons=horizons, boot_id=self.boot_id))
            except Exception as exc:  # the store failed: every waiter learns it, none is acknowledged
                for fut in waiting:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for sender, horizon in horizons.items():
                self._horizons[sender] = max(self._horizons.get(sender, -1), horizon)
            for fut in waiting:
                if not fut.done():
                    fut.set_result(None)

    def _prune(self) -> None:
        now = clock.now_ms()
        for sender in list(self._seen):
            live = {k: v for k, v in self._seen[sender].items() if v >= now}
            if live:
                self._seen[sender] = live
            else:
                del self._seen[sender]


def _floors(s: Session, boot_id: str) -> dict[str, int]:
    rows = s.connection().exec_driver_sql(
        "SELECT sender, horizon_ms FROM replay_horizon WHERE boot_id <> " + _mark(s),  # noqa: S608 - a placeholder
        (boot_id,),
    )
    return {str(sender): int(horizon) for sender, horizon in rows}


def _upsert(s: Session, horizons: dict[str, int], boot_id: str) -> None:
    """Raise each sender's horizon in one statement (written out for the driver: SQLAlchemy would compile a
    multi-row statement of a varying size afresh each time, at more than the cost of the commit)."""
    m = _mark(s)
    values = ",".join([f"({m},{m},{m})"] * len(horizons))
    params = tuple(v for sender, horizon in horizons.items() for v in (sender, horizon, boot_id))
    s.connection().exec_driver_sql(
        f"INSERT INTO replay_horizon (sender, horizon_ms, boot_id) VALUES {values} "  # noqa: S608 - placeholders only
        "ON CONFLICT (sender) DO UPDATE SET horizon_ms = excluded.horizon_ms, boot_id = excluded.boot_id "
        "WHERE excluded.horizon_ms > replay_horizon.horizon_ms",
        params,
    )


def _mark(s: Session) -> str:
    return "?" if s.connection().dialect.paramstyle == "qmark" else "%s"
