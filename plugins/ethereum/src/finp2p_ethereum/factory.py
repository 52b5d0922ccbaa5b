"""Building an ``ethereum`` ledger from a profile's settings (imported when one is built: it brings web3)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from finp2p.components import ComponentContext
from finp2p.edge.bearer import is_loopback, token_from_file
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.keys import SigningKey, check_fin_id, eth_address, load_key, passphrase_from
from finp2p.identity.local import LocalIdentity
from finp2p.ledger import Ledger
from finp2p_ethereum.chain import EMBEDDED_CHAIN_ID, embedded_chain, rpc_chain
from finp2p_ethereum.deploy import Deployment
from finp2p_ethereum.ledger import MAX_BATCH, BatchOptions, EthereumLedger, Serving
from finp2p_ethereum.submit import SubmitOptions

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}", re.ASCII)


class EthereumSettings(BaseModel):
    """The ``[settings]`` of an ``ethereum`` ledger profile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ledger_id: str = f"eip155:{EMBEDDED_CHAIN_ID}"
    profile_dir: Path | None = None
    backend: Literal["embedded", "rpc"] = "embedded"
    rpc: str | None = Field(None, description="JSON-RPC URL (backend rpc).")
    chain: str = Field("default", description="Which embedded chain of this process (backend embedded).")
    chain_id: int | None = Field(
        None,
        ge=1,
        le=2**53 - 1,
        description="The chain id the chain presents (backend embedded; eth-tester's by default) or must have (rpc).",
    )
    assets_contract: str | None = Field(None, pattern=r"^0x[0-9a-fA-F]{40}$")
    registry_contract: str | None = Field(None, pattern=r"^0x[0-9a-fA-F]{40}$")
    deployed_block: int = Field(0, ge=0)
    confirmations: int = Field(1, ge=1, le=64, description="Blocks to wait for; 1 on chains that mine on demand.")
    timeout_s: float = Field(60.0, gt=0, le=3600)
    poll_s: float = Field(0.02, gt=0, le=10)
    gas_limit: int | None = Field(
        None, ge=0, description="Gas limit per operation (default 1,000,000; 0: estimate each transaction)."
    )
    batch_window_ms: float = Field(
        5.0,
        ge=0,
        le=1000,
        description="How long an operation waits for others to share its transaction (executeBatch); a lone one "
        "waits this long at most.",
    )
    batch_max: int = Field(
        MAX_BATCH,
        ge=1,
        le=MAX_BATCH,
        description=f"The most operations in one transaction ({MAX_BATCH} fit the 2**24 gas a transaction may ask "
        "for, EIP-7825); 1 sends each in its own.",
    )
    operator_key: Path | None = Field(None, description="The operator's key file; default: the node's FinID key.")
    read_only: bool = Field(False, description="Only read (an auditor): no operator key is needed or used.")
    serve_rpc: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9.\-]*:[0-9]{1,5}$",
        description="backend embedded: serve the chain over JSON-RPC at host:port, for other local processes.",
    )
    serve_rpc_token_file: Path | None = Field(
        None, description="backend embedded: the bearer token every JSON-RPC request to the served chain needs."
    )
    serve_rpc_open: bool = Field(
        False, description="backend embedded: serve without a token (loopback only; a demo's chain)."
    )
    fund_accounts: list[str] = Field(
        default_factory=list,
        description="backend embedded: FinIDs or 0x addresses given development ether when the chain is served.",
    )
    rpc_token_file: Path | None = Field(None, description="backend rpc: a bearer token to send to the node.")


def build_ledger(raw: dict[str, Any], context: ComponentContext) -> Ledger:
    try:
        settings = EthereumSettings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise FinP2PError(ErrorCode.LEDGER_PROFILE, f"ethereum profile: {problems}") from None
    if settings.chain_id is not None and settings.ledger_id != f"eip155:{settings.chain_id}":
        raise FinP2PError(
            ErrorCode.LEDGER_PROFILE,
            f"the profile's chain_id {settings.chain_id} is not its ledger id {settings.ledger_id}: make the ledger "
            f"id eip155:{settings.chain_id}",
        )
    operator = _operator_key(settings, context)
    deployment = None
    if settings.backend == "rpc":
        contracts = settings.assets_contract and settings.registry_contract
        if not settings.rpc or not (contracts or settings.read_only):
            raise FinP2PError(
                ErrorCode.LEDGER_PROFILE, "an rpc profile needs rpc, assets_contract and registry_contract"
            )
        token = (
            token_from_file(_path(settings, settings.rpc_token_file), "rpc token") if settings.rpc_token_file else None
        )
        chain = rpc_chain(settings.rpc, timeout_s=settings.timeout_s, token=token)
        if settings.assets_contract and settings.registry_contract:  # a read-only profile may name none
            deployment = Deployment(settings.assets_contract, settings.registry_contract, settings.deployed_block)
    else:
        chain = embedded_chain(settings.chain, settings.chain_id)
        if settings.assets_contract and settings.registry_contract:
            deployment = Deployment(settings.assets_contract, settings.registry_contract, settings.deployed_block)
    serving = None
    if settings.backend == "embedded" and settings.serve_rpc:
        serving = _serving(settings)
    return EthereumLedger(
        chain,
        operator,
        deployment,
        ledger_id=settings.ledger_id,
        options=SubmitOptions(settings.confirmations, settings.timeout_s, settings.poll_s, settings.gas_limit),
        serving=serving,
        batch=BatchOptions(settings.batch_window_ms / 1000, settings.batch_max),
    )


def _path(settings: EthereumSettings, path: Path) -> Path:
    return path if path.is_absolute() or settings.profile_dir is None else settings.profile_dir / path


def _serving(settings: EthereumSettings) -> Serving:
    """How an embedded chain is served: a token (or an explicit, loopback-only opening) and whom to fund."""
    assert settings.serve_rpc is not None
    host, _, port = settings.serve_rpc.rpartition(":")
    host = host or "127.0.0.1"
    token = None
    if settings.serve_rpc_token_file is not None:
        token = token_from_file(_path(settings, settings.serve_rpc_token_file), "served chain's token")
    elif not settings.serve_rpc_open:
        raise FinP2PError(
            ErrorCode.LEDGER_PROFILE,
            "serve_rpc needs serve_rpc_token_file (the bearer token callers send), or serve_rpc_open = true for a "
            "demo on loopback",
        )
    elif not is_loopback(host):
        raise FinP2PError(ErrorCode.LEDGER_PROFILE, f"serve_rpc_open serves without a token: loopback only, not {host}")
    fund = []
    for account in settings.fund_accounts:
        if _ADDRESS.fullmatch(account):
            fund.append(account)
        else:
            try:
                fund.append(eth_address(check_fin_id(account, "fund_accounts entry")))
            except FinP2PError:
                raise FinP2PError(
                    ErrorCode.LEDGER_PROFILE, f"fund_accounts: {account[:20]!r} is neither a FinID nor an address"
                ) from None
    return Serving(host, int(port), token, tuple(fund))


def _operator_key(settings: EthereumSettings, context: ComponentContext) -> SigningKey:
    if settings.read_only:
        return SigningKey.generate()  # never the contracts' operator: anything it submitted would be refused
    if settings.operator_key is not None:
        return load_key(_path(settings, settings.operator_key), passphrase_from())
    return LocalIdentity(context.data_dir, passphrase_from()).key()
