"""Ethereum ledgers for tests: a fresh deployment on the embedded chain or on a real Hardhat node.

:class:`EthWorld` is a :class:`finp2p.testing.LedgerWorld` (and reports supply), so the ledger conformance suite
runs on it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from devnet.hardhat import HardhatNode, rpc
from finp2p.identity.keys import SigningKey
from finp2p.ledger import OwnerConsent
from finp2p_ethereum.chain import Chain, EmbeddedProvider, embedded_chain, rpc_chain
from finp2p_ethereum.consent import Operation, sign_consent
from finp2p_ethereum.deploy import Deployment, deploy_contracts
from finp2p_ethereum.ledger import EthereumLedger

#: The embedded chain the tests share (each test deploys its own contracts on it).
TEST_CHAIN = "tests"


@dataclass
class EthWorld:
    """One fresh deployment, its operator's ledger, and what tests need around it."""

    backend: str
    chain: Chain
    operator: SigningKey
    ledger: EthereumLedger
    deployment: Deployment
    hardhat: HardhatNode | None = None
    #: Both chains mine a block at any time asked for: a hold's expiry can be hours away.
    max_expiry_step_s: int = 7200
    _others: list[EthereumLedger] = field(default_factory=list)

    async def other_ledger(self, key: SigningKey) -> EthereumLedger:
        """A ledger on the same contracts that signs with ``key`` (not the operator, unless it is), its address
        funded so that what refuses it is the contract; closed with the world."""
        await self.chain.fund_for_development(key.address)
        chain = embedded_chain(TEST_CHAIN) if self.hardhat is None else rpc_chain(self.hardhat.url)
        other = EthereumLedger(chain, key, self.deployment, ledger_id=self.ledger.ledger_id)
        self._others.append(other)
        return other

    def consent(self, key: SigningKey, kind: str, op: Operation) -> OwnerConsent:
        return sign_consent(key, kind, op, self.chain.chain_id, self.deployment.assets)

    async def new_asset(self) -> str:
        asset_id = f"bank-{uuid.uuid4().hex[:8]}:102:{uuid.uuid4()}"
        await self.ledger.create_asset(asset_id, {})
        return asset_id

    async def now(self) -> int:
        return int((await self.chain.w3.eth.get_block("latest"))["timestamp"])

    async def advance_time(self, seconds: int) -> None:
        """Make the next block ``seconds`` later than the latest one."""
        if self.hardhat is not None:
            rpc(self.hardhat.url, "evm_increaseTime", [seconds])
            rpc(self.hardhat.url, "evm_mine")
        else:
            provider = self.chain.w3.provider
            assert isinstance(provider, EmbeddedProvider)
            provider.time_travel(await self.now() + seconds)

    async def supply(self, asset_id: str) -> int:
        """All units of the asset in existence, as the contract counts them."""
        return await self.ledger.supply(asset_id)

    async def close(self) -> None:
        for other in self._others:
            await other.close()
        await self.ledger.close()


async def make_eth_world(backend: str, hardhat: HardhatNode | None) -> EthWorld:
    operator = SigningKey.generate()
    chain = embedded_chain(TEST_CHAIN) if hardhat is None else rpc_chain(hardhat.url)
    await chain.connect()
    deployment = await deploy_contracts(chain, operator)
    ledger = EthereumLedger(chain, operator, deployment, ledger_id=chain.ledger_id)
    return EthWorld(backend, chain, operator, ledger, deployment, hardhat)


def op_fields(op: Operation) -> dict[str, Any]:
    return {"operationId": op.operation_id, "assetId": op.asset_id, "source": op.source}
