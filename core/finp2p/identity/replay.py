"""The replay window: an envelope is accepted once, and never again, also after the node restarts.

Within a run, the (sender, nonce) pairs of the window are kept in memory, per sender, and a pair seen already is
refused at once. Across a restart, two floors do the work, so that no envelope accepted before the restart is
accepted after it, and nearly none costs a durable write:

- the **restart floor**: a run that follows another (each run notes its start in the store before it accepts
  anything) refuses every envelope timestamped before its own start. An envelope an earlier run accepted with a
  timestamp at or behind that run's clock is below it, since it was accepted before this run started (the node's
  clock does not run backwards across a restart).
- a **horizon** per sender, for an envelope timestamped ahead of this node's clock (its sender's clock runs fast):
  before it is handled, the sender's horizon in the store is raised to its timestamp plus ``ahead_ms`` (one write
  covers that sender's next ``ahead_ms``; writes that wait at the same time share one commit). The earlier runs'
  horizons are floors too.

An envelope below a floor may have been accepted before, so it is refused, with FP2018: a transient refusal (send
it again, as a new envelope), which is also what an envelope sealed before a restart and delivered after it meets.
Memory holds each pair until its timestamp leaves the window (refused by its timestamp from then on), pruned in
passes.
"""

from __future__ import annotations

import asyncio
import functools
import os

from sqlmodel import Session

from finp2p import clock
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.store import Store
from finp2p.store.engine import placeholder

#: How far beyond an envelope's timestamp a fast-clocked sender's horizon is raised: a durable write per such
#: sender at most this often.
AHEAD_MS = 250
PRUNE_EVERY = 5000
#: The row that says a run has started on this store (no sender has an empty FinID).
RUN_MARK = ""


class ReplayGuard:
    def __init__(self, store: Store, window_ms: int, *, ahead_ms: int = AHEAD_MS) -> None:
        self.store = store
        self.window_ms = window_ms
        self.ahead_ms = ahead_ms
        self.boot_id = os.urandom(8).hex()  # tells this run's horizons from the floors an earlier run left
        self.started_ms = clock.now_ms()
        self._restart_floor_ms = -1  # this run's start, once the store says an earlier run was there
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
        if timestamp_ms < self._restart_floor_ms or timestamp_ms <= floors.get(sender, -1):
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
        if timestamp_ms <= clock.now_ms() or timestamp_ms <= self._horizons.get(sender, -1):
            return  # under the next run's restart floor, or under a horizon this run has written
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
                floors = await self.store.run(
                    functools.partial(_start_run, boot_id=self.boot_id, started_ms=self.started_ms)
                )
                if RUN_MARK in floors:  # not the first run on this store
                    self._restart_floor_ms = self.started_ms
                self._floors = floors
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


def _start_run(s: Session, boot_id: str, started_ms: int) -> dict[str, int]:
    """The earlier runs' horizons (with :data:`RUN_MARK` if there was an earlier run), and this run's start noted."""
    rows = s.connection().exec_driver_sql(
        "SELECT sender, horizon_ms FROM replay_horizon WHERE boot_id <> " + placeholder(s),  # noqa: S608 - a placeholder
        (boot_id,),
    )
    floors = {str(sender): int(horizon) for sender, horizon in rows}
    _upsert(s, {RUN_MARK: started_ms}, boot_id)
    return floors


def _upsert(s: Session, horizons: dict[str, int], boot_id: str) -> None:
    """Raise each sender's horizon in one statement (written out for the driver: SQLAlchemy would compile a
    multi-row statement of a varying size afresh each time, at more than the cost of the commit)."""
    m = placeholder(s)
    values = ",".join([f"({m},{m},{m})"] * len(horizons))
    params = tuple(v for sender, horizon in horizons.items() for v in (sender, horizon, boot_id))
    s.connection().exec_driver_sql(
        f"INSERT INTO replay_horizon (sender, horizon_ms, boot_id) VALUES {values} "  # noqa: S608 - placeholders only
        "ON CONFLICT (sender) DO UPDATE SET horizon_ms = excluded.horizon_ms, boot_id = excluded.boot_id "
        "WHERE excluded.horizon_ms > replay_horizon.horizon_ms",
        params,
    )
