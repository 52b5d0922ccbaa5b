"""``finp2p ethereum``: deploy the contracts to a chain and write its ledger profile; look a profile's chain over."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from finp2p.cli.output import emit, err, json_option, out, reports_errors

if TYPE_CHECKING:
    from finp2p.identity.keys import SigningKey


@click.group("ethereum")
def ethereum_group() -> None:
    """Ethereum ledgers: deploy the FinP2P contracts, inspect a ledger profile."""


def _key(ctx: click.Context, key_file: Path | None) -> SigningKey:
    from finp2p.identity.keys import load_key, passphrase_from
    from finp2p.identity.local import LocalIdentity

    if key_file is not None:
        return load_key(key_file, passphrase_from())
    from finp2p.cli.common import settings_of

    return LocalIdentity(settings_of(ctx).data_dir, passphrase_from()).key()


@ethereum_group.command("deploy")
@click.option("--rpc", required=True, metavar="URL", help="The chain's JSON-RPC endpoint, e.g. http://127.0.0.1:8545.")
@click.option(
    "--key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The operator's FinID key file. Default: the key of the node named by --config.",
)
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the ledger profile. Default: chains/eip155-<chain id>.toml.",
)
@click.option("--confirmations", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file holding the bearer token the chain's JSON-RPC needs (a served embedded chain); the profile names it.",
)
@click.option(
    "--fund/--no-fund",
    default=True,
    show_default=True,
    help="On a development node (Hardhat), give the operator ether from the node's first unlocked account.",
)
@json_option
@click.pass_context
@reports_errors
def deploy_cmd(
    ctx: click.Context,
    rpc: str,
    key_file: Path | None,
    out_file: Path | None,
    confirmations: int,
    token_file: Path | None,
    fund: bool,
    as_json: bool,
) -> None:
    """Deploy FinP2PAssets and ReceiptRegistry with the operator key, and write a ledger profile naming them.

    The operator (the primary node's FinID key) is the only account that may submit operations to these
    contracts. Name the profile in the node's config (`[ledgers] profiles = ["chains/....toml"]`).
    """
    from finp2p.edge.bearer import token_from_file
    from finp2p.ledger_profiles import save_profile
    from finp2p_ethereum.chain import rpc_chain
    from finp2p_ethereum.deploy import deploy_contracts, profile_for

    key = _key(ctx, key_file)
    token = token_from_file(token_file, "rpc token") if token_file else None
    token_path = str(token_file.resolve()) if token_file else None

    async def work() -> dict[str, Any]:
        chain = rpc_chain(rpc, token=token)
        try:
            await chain.connect()
            deployment = await deploy_contracts(
                chain, key, fund=fund, progress=lambda line: None if as_json else err.print(f"[dim]{line}[/]")
            )
            profile = profile_for(chain, deployment, confirmations=confirmations)
        finally:
            await chain.close()
        path = out_file or Path("chains") / f"{profile.ledger_id.replace(':', '-')}.toml"
        if token_path is not None:  # the profile names the token's file, never the token
            settings = {**profile.settings, "rpc_token_file": token_path}
            profile = type(profile)(profile.kind, profile.ledger_id, settings)
        save_profile(path, profile)
        return {"profile": str(path), "ledger_id": profile.ledger_id, "operator": key.address, **profile.settings}

    result = asyncio.run(work())
    emit(
        result,
        as_json,
        lambda: out.print(
            f"deployed on [bold]{result['ledger_id']}[/]: assets {result['assets_contract']}, "
            f"receipt registry {result['registry_contract']}\nprofile written to [bold]{result['profile']}[/]"
        ),
    )


@ethereum_group.command("status")
@click.argument("profile_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@reports_errors
def status_cmd(profile_file: Path, as_json: bool) -> None:
    """Check the chain of a ledger profile: reachable, the right chain id, the contracts deployed, their operator."""
    from finp2p.edge.bearer import token_from_file
    from finp2p.ledger_profiles import load_profile
    from finp2p_ethereum.chain import rpc_chain

    profile = load_profile(profile_file)

    async def work() -> dict[str, Any]:
        from finp2p_ethereum.artifacts import artifact

        settings = profile.settings
        token_file = settings.get("rpc_token_file")
        token = None
        if token_file:
            path = Path(str(token_file))
            token = token_from_file(path if path.is_absolute() else profile_file.parent / path, "rpc token")
        chain = rpc_chain(str(settings.get("rpc")), token=token)
        try:
            from finp2p_ethereum.submit import _unreachable

            try:
                await chain.connect()
                height = await chain.w3.eth.block_number
            except Exception as exc:
                raise _unreachable(chain, "status", exc) from None
            found: dict[str, Any] = {"ledger_id": chain.ledger_id, "height": height, "profile": str(profile_file)}
            found["matches_profile"] = chain.ledger_id == profile.ledger_id
            for key, name in (("assets_contract", "FinP2PAssets"), ("registry_contract", "ReceiptRegistry")):
                address = chain.w3.to_checksum_address(str(settings.get(key)))
                code = await chain.w3.eth.get_code(address)
                contract = chain.w3.eth.contract(address=address, abi=artifact(name).abi)
                operator = await contract.functions.operator().call() if len(code) else None
                found[name] = {"address": address, "deployed": len(code) > 0, "operator": operator}
            return found
        finally:
            await chain.close()

    result = asyncio.run(work())

    def render() -> None:
        out.print(f"{result['ledger_id']} at height {result['height']} (profile matches: {result['matches_profile']})")
        for name in ("FinP2PAssets", "ReceiptRegistry"):
            item = result[name]
            state = f"operator {item['operator']}" if item["deployed"] else "[red]no code at this address[/]"
            out.print(f"  {name} {item['address']}: {state}")

    emit(result, as_json, render)
    ok = result["matches_profile"] and all(result[n]["deployed"] for n in ("FinP2PAssets", "ReceiptRegistry"))
    if not ok:
        raise SystemExit(1)
