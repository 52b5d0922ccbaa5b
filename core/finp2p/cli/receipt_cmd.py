"""``finp2p receipt``: look at a receipt bundle, and verify one as an auditor (no node needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from finp2p.cli.output import (
    emit,
    genesis_option,
    json_option,
    out,
    read_revocations,
    reports_errors,
    revocations_option,
)
from finp2p.errors import ErrorCode, FinP2PError


@click.group("receipt")
def receipt_group() -> None:
    """Receipts of asset transactions: show one, verify one against the genesis and the ledgers."""


def _bundle_data(file: Path) -> Any:
    from finp2p.edge.json_input import read_json_file

    try:
        return read_json_file(file)
    except FinP2PError as exc:
        raise FinP2PError(ErrorCode.RECEIPT_INVALID, exc.detail) from None


@receipt_group.command("show")
@click.argument("bundle_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@json_option
@reports_errors
def show_cmd(bundle_file: Path, as_json: bool) -> None:
    """Print what the receipt in BUNDLE_FILE says, without verifying anything."""
    from finp2p.assets.receipts import Bundle

    bundle = Bundle.from_dict(_bundle_data(bundle_file))
    r = bundle.receipt
    data = {**bundle.to_dict(), "digest": "0x" + bundle.digest().hex()}

    def render() -> None:
        out.print(
            f"{r.operation_type} of {r.quantity} {r.asset_id} on {bundle.asset_ledger.ledger_id}, transaction {r.id}"
        )
        out.print(
            f"  from {r.source_fin_id or '-'} to {r.destination_fin_id or '-'}, operation {r.operation_id or '-'}, "
            f"at {r.timestamp}"
        )
        out.print(f"  signed by {bundle.issuer.org_id} ({bundle.issuer.fin_id[:16]}…); receipt hash {data['digest']}")
        if bundle.record is not None:
            out.print(f"  recorded by {bundle.record.requester.org_id} in {bundle.record.transaction_id}")

    emit(data, as_json, render)


@receipt_group.command("verify")
@click.argument("bundle_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@genesis_option
@click.option(
    "--ledger",
    "ledger_files",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A ledger profile of yours (your own endpoint): the ledgers are read through these only. Repeatable.",
)
@click.option(
    "--use-bundle-endpoints",
    is_flag=True,
    help="Also reach ledgers where the bundle says, for ledgers no --ledger profile reaches. Nobody signs that part "
    "of a bundle: use it only with bundles whose source you trust.",
)
@revocations_option
@click.option(
    "--revocations-from",
    "revocation_urls",
    multiple=True,
    metavar="URL",
    help="A governance node (https://HOST:PORT) to fetch the current revocation lists from, each verified against "
    "the genesis before it applies. Repeatable.",
)
@json_option
@reports_errors
def verify_cmd(
    bundle_file: Path,
    genesis_file: Path,
    ledger_files: tuple[Path, ...],
    use_bundle_endpoints: bool,
    revocation_files: tuple[Path, ...],
    revocation_urls: tuple[str, ...],
    as_json: bool,
) -> None:
    """Verify the receipt in BUNDLE_FILE as an auditor, with no node: FinP2P's receipt proof, the issuer (its
    credentials up to the genesis, the asset's manager), the transaction on the asset's ledger (and who submitted
    it), and the record on the requester's ledger.

    Each check is held, failed, or unchecked (and why: a ledger no --ledger profile reaches, one that does not
    answer). Exit status 0 when every check held, 1 otherwise. docs/receipts.md says what is checked, and how to do
    it without this command.
    """
    from finp2p.assets.audit import Auditor
    from finp2p.assets.receipts import Bundle
    from finp2p.components import ComponentContext
    from finp2p.config import Settings
    from finp2p.identity.genesis import Genesis
    from finp2p.ledger import LedgerProfile
    from finp2p.ledger_profiles import load_profile, open_ledger
    from finp2p.plugins import PluginManager

    bundle = Bundle.from_dict(_bundle_data(bundle_file))
    genesis = Genesis.load(genesis_file)
    revocations = read_revocations(revocation_files)
    plugins = PluginManager()
    context = ComponentContext(Settings(), Path.cwd(), plugins)
    profiles = [load_profile(f) for f in ledger_files]

    async def work() -> list[dict[str, Any]]:
        from finp2p.governance.revocations import fetch_revocations

        for url in revocation_urls:
            revocations.extend(await fetch_revocations(url, genesis))
        ledgers = {
            p.ledger_id: open_ledger(LedgerProfile(p.kind, p.ledger_id, {**p.settings, "read_only": True}), context)
            for p in profiles
        }
        auditor = Auditor(genesis, ledgers, revocations, bundle_endpoints=use_bundle_endpoints, plugins=plugins)
        try:
            return [c.to_dict() for c in await auditor.verify(bundle)]
        finally:
            await auditor.close()
            for ledger in ledgers.values():
                await ledger.close()

    checks = asyncio.run(work())
    ok = all(c["ok"] for c in checks)
    marks = {"held": "[green]✓[/]", "failed": "[red]✗[/]", "unchecked": "[yellow]?[/]"}

    def render() -> None:
        for c in checks:
            out.print(f"{marks[c['status']]} {c['check']}: {c['detail']}", soft_wrap=True)
        out.print("[green]receipt verified[/]" if ok else "[red]receipt NOT verified[/]")

    emit({"ok": ok, "checks": checks, "receipt": bundle.receipt.id}, as_json, render)
    if not ok:
        raise SystemExit(1)
