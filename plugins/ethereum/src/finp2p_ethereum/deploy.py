"""Deploying the contracts for one operator, and the ledger profile that names them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from eth_abi.abi import encode as abi_encode

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.keys import SigningKey
from finp2p.ledger import LedgerProfile
from finp2p_ethereum.artifacts import artifact
from finp2p_ethereum.chain import Chain
from finp2p_ethereum.submit import Submitter


@dataclass(frozen=True)
class Deployment:
    """Where the contracts of one operator live on one chain."""

    assets: str
    registry: str
    block: int


async def deploy_contracts(
    chain: Chain,
    operator: SigningKey,
    *,
    fund: bool = True,
    progress: Callable[[str], None] = lambda _: None,
) -> Deployment:
    """Deploy FinP2PAssets and ReceiptRegistry with ``operator`` as their operator (and the deployer).

    ``fund``: on a development chain (the embedded one, a Hardhat node), top the operator up from the node's first
    unlocked account when it has no ether. Production chains have none, and the operator must be funded already.
    """
    submitter = Submitter(chain, operator)
    if fund and await chain.fund_for_development(submitter.address):
        progress(f"funded the operator {submitter.address} from the node's development account")
    addresses: list[str] = []
    block = 0
    for name in ("FinP2PAssets", "ReceiptRegistry"):
        code = bytes.fromhex(artifact(name).bytecode.removeprefix("0x"))
        receipt = await submitter.submit(None, code + abi_encode(["address"], [submitter.address]), f"deploy {name}")
        address = receipt.get("contractAddress")
        if not address:
            raise FinP2PError(ErrorCode.LEDGER_REVERTED, f"deploy {name}: the receipt names no contract address")
        addresses.append(str(address))
        block = block or int(receipt["blockNumber"])
        progress(f"deployed {name} at {address} (block {receipt['blockNumber']})")
    return Deployment(assets=addresses[0], registry=addresses[1], block=block)


def profile_for(chain: Chain, deployment: Deployment, *, confirmations: int = 1) -> LedgerProfile:
    """The ledger profile of a deployment on a JSON-RPC chain."""
    if chain.url is None:
        raise ValueError("an embedded chain has no profile to write: it is gone when the process exits")
    return LedgerProfile(
        kind="ethereum",
        ledger_id=chain.ledger_id,
        settings={
            "backend": "rpc",
            "rpc": chain.url,
            "chain_id": chain.chain_id,
            "assets_contract": deployment.assets,
            "registry_contract": deployment.registry,
            "deployed_block": deployment.block,
            "confirmations": confirmations,
        },
    )
