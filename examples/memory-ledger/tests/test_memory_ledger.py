"""The memory ledger against the ledger conformance suite (:mod:`finp2p.testing.ledger`): every behaviour the node
relies on, through the :class:`~finp2p.ledger.Ledger` interface alone. A copy of the plugin keeps this file and
replaces :class:`MemoryWorld` with a world around its own ledger."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.keys import SigningKey
from finp2p.testing import LedgerConformance, LedgerWorld, refused
from finp2p_memory_ledger.ledger import MemoryLedger


class MemoryWorld:
    """A fresh memory ledger whose clock the tests move, and what the suite needs around it."""

    #: The clock is the world's own: a hold may expire hours later.
    max_expiry_step_s = 7200

    def __init__(self) -> None:
        self.offset = 0
        self.ledger = MemoryLedger("memory:test", clock=self.clock)

    def clock(self) -> int:
        return int(time.time()) + self.offset

    async def new_asset(self) -> str:
        asset_id = f"bank-{uuid.uuid4().hex[:8]}:102:{uuid.uuid4()}"
        await self.ledger.create_asset(asset_id, {})
        return asset_id

    async def now(self) -> int:
        return self.clock()

    async def advance_time(self, seconds: int) -> None:
        self.offset += seconds

    def other_ledger(self, key: SigningKey) -> MemoryLedger:
        return self.ledger.as_submitter(key.fin_id)

    async def supply(self, asset_id: str) -> int:
        return self.ledger.supply(asset_id)

    async def close(self) -> None:
        await self.ledger.close()


class TestMemoryLedger(LedgerConformance):
    @pytest.fixture
    async def ledger_world(self) -> AsyncIterator[LedgerWorld]:
        world = MemoryWorld()
        try:
            yield world  # mypy checks here that a MemoryWorld is a LedgerWorld
        finally:
            await world.close()

    # -- what the suite leaves to each ledger --------------------------------------------------------------------
    async def test_balance_at_a_past_height_and_time(self, ledger_world: MemoryWorld) -> None:
        """The memory ledger keeps its history: a balance at any past height is what it was, and ``height_at``
        finds the block of a time."""
        ledger = ledger_world.ledger
        asset = await ledger_world.new_asset()
        alice = SigningKey.generate()
        before = await ledger.height()
        await ledger_world.advance_time(10)
        issued = await ledger.issue(asset, alice.fin_id, 5, f"i-{asset}")
        assert (await ledger.balance(asset, alice.fin_id, before)).available == 0
        assert (await ledger.balance(asset, alice.fin_id, issued.height)).available == 5
        assert await ledger.height_at(issued.timestamp) == issued.height
        assert await ledger.height_at(issued.timestamp - 1) == before
        await refused(ledger.height_at(0), ErrorCode.LEDGER_NO_HISTORY)

    async def test_accounts_are_fin_ids(self, ledger_world: MemoryWorld) -> None:
        ledger = ledger_world.ledger
        fin_id = SigningKey.generate().fin_id
        assert ledger.account_of(fin_id) == {"ledgerAccountId": fin_id}
        assert ledger.check_account("ledgerAccountId", fin_id.upper()) == fin_id
        with pytest.raises(FinP2PError) as caught:
            ledger.check_account("ledgerAccountId", "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf")
        assert caught.value.code is ErrorCode.OPERATION_INVALID
