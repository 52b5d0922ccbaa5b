"""Fabric ledgers for tests: the session's devnet (one orderer, one peer, the chaincode as a service) and, per
test, the operator's ledger on it with what tests need around it.

:class:`FabricWorld` has the shape of :class:`tests.support.ethereum.EthWorld` (``ledger``, ``consent(key, kind,
op)``, ``new_asset()``, ``now()``, ``advance_time(s)``), so that a test written against one runs on the other.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from devnet.fabric import FabricNetwork
from finp2p.identity.keys import SigningKey
from finp2p.ledger import OwnerConsent
from finp2p_fabric.consent import Operation, sign_consent
from finp2p_fabric.factory import ledger_from, settings_from
from finp2p_fabric.ledger import FabricLedger


@dataclass
class Clock:
    """The clock the ledger's transactions take their time from (Fabric's transaction time is its client's):
    tests move it forward to reach a hold's expiry. The peer accepts up to 15 minutes of difference."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class FabricWorld:
    network: FabricNetwork
    ledger: FabricLedger
    clock: Clock = field(default_factory=Clock)
    _others: list[FabricLedger] = field(default_factory=list)

    def other_ledger(self, user: str = "User2") -> FabricLedger:
        """A ledger on the same chaincode that signs as another identity of the peer's organization."""
        other = fabric_ledger(self.network, user)
        self._others.append(other)
        return other

    def consent(self, key: SigningKey, kind: str, op: Operation) -> OwnerConsent:
        return sign_consent(key, kind, op, self.ledger.chain_id, self.ledger.verifying_contract)

    async def new_asset(self) -> str:
        asset_id = f"bank-{uuid.uuid4().hex[:8]}:102:{uuid.uuid4()}"
        await self.ledger.create_asset(asset_id, {})
        return asset_id

    async def now(self) -> int:
        return int(self.clock())

    async def advance_time(self, seconds: int) -> None:
        """Make the next transactions ``seconds`` later (at most 15 minutes in all: the peer's time window)."""
        self.clock.offset += seconds

    async def close(self) -> None:
        for other in self._others:
            await other.close()
        await self.ledger.close()


def fabric_ledger(network: FabricNetwork, user: str = "User1", clock: Clock | None = None) -> FabricLedger:
    settings = settings_from({**network.profile_settings(user), "ledger_id": network.ledger_id})
    ledger = ledger_from(settings)
    if clock is not None:
        ledger.gateway.clock = clock
    return ledger


def make_fabric_world(network: FabricNetwork) -> FabricWorld:
    clock = Clock()
    return FabricWorld(network, fabric_ledger(network, clock=clock), clock)
