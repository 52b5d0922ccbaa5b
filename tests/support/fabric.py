"""Fabric ledgers for tests: the session's devnet (one orderer, one peer, the chaincode as a service) and, per
test, the operator's ledger on it with what tests need around it.

:class:`FabricWorld` is a :class:`finp2p.testing.LedgerWorld` (and reports supply), so the ledger conformance suite
runs on it; like :class:`tests.support.ethereum.EthWorld` it also makes an owner's consent (``consent(key, kind,
op)``).
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
    """The operator's ledger on the session's devnet (a :class:`finp2p.testing.LedgerWorld` that reports supply, so
    the ledger conformance suite runs on it), with the clock its transactions take their time from."""

    network: FabricNetwork
    ledger: FabricLedger
    clock: Clock = field(default_factory=Clock)
    #: How far a test may move the clock: the transactions' time is the client's, and the peer refuses one more than
    #: 15 minutes from its own clock (peer.authentication.timewindow).
    max_expiry_step_s: int = 600
    _others: list[FabricLedger] = field(default_factory=list)

    def other_ledger(self, key: SigningKey | None = None, user: str = "User2") -> FabricLedger:
        """A ledger on the same chaincode that signs as another identity of the peer's organization (``user``, a
        Fabric client identity: ``key``, a FinID key, cannot be one, and is ignored); closed with the world."""
        other = fabric_ledger(self.network, user, self.clock)
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

    async def supply(self, asset_id: str) -> int:
        """All units of the asset in existence, as the chaincode counts them."""
        return await self.ledger.supply(asset_id)

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
