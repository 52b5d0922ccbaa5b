"""``finp2p fabric``: look a Fabric ledger profile's network over."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from finp2p.cli.output import emit, json_option, out, reports_errors
from finp2p.ledger_profiles import load_profile


@click.group("fabric")
def fabric_group() -> None:
    """Hyperledger Fabric ledgers: inspect a ledger profile."""


@fabric_group.command("status")
@click.argument("profile_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@reports_errors
def status_cmd(profile_file: Path, as_json: bool) -> None:
    """Check the network of a ledger profile: the peer reachable, the channel's height, the chaincode deployed and
    configured, its operator, and whether the profile's identity is that operator."""
    from finp2p_fabric.factory import ledger_from, settings_from

    profile = load_profile(profile_file)
    settings = settings_from({**profile.settings, "ledger_id": profile.ledger_id})

    async def work() -> dict[str, Any]:
        ledger = ledger_from(settings)
        try:
            height = await ledger.height()
            config = await ledger.config()
            identity = ledger.gateway.identity
            operator = str(config["operatorId"])
            return {
                "profile": str(profile_file),
                "ledger_id": ledger.ledger_id,
                "peer": settings.peer,
                "height": height,
                "channel": config["channel"],
                "chaincode": config["chaincode"],
                "operator": {"msp_id": config["operatorMsp"], "id": operator},
                "chain_id": int(config["chainId"]),
                "verifying_contract": config["verifyingContract"],
                "identity": {"msp_id": identity.msp_id, "subject": identity.subject},
                "is_operator": config["operatorMsp"] == identity.msp_id and identity.subject in operator,
                "matches_profile": int(config["chainId"]) == settings.chain_id
                and config["verifyingContract"] == ledger.verifying_contract,
            }
        finally:
            await ledger.close()

    result = asyncio.run(work())

    def render() -> None:
        out.print(
            f"{result['ledger_id']} at height {result['height']} on {result['peer']} "
            f"(profile matches: {result['matches_profile']})"
        )
        op = result["operator"]
        mark = "this profile's identity" if result["is_operator"] else "[yellow]not this profile's identity[/]"
        out.print(f"  chaincode {result['chaincode']}: operator {op['msp_id']} {op['id']} ({mark})")
        out.print(f"  EIP-712 domain: chain id {result['chain_id']}, verifyingContract {result['verifying_contract']}")

    emit(result, as_json, render)
    if not result["matches_profile"]:
        raise SystemExit(1)
