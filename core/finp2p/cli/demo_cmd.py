"""``finp2p demo``."""

from __future__ import annotations

from pathlib import Path

import click

from finp2p.cli.output import Table, emit, err, json_option, out
from finp2p.demo.story import run_demo


@click.command(
    "demo",
    short_help="Run a local network on loopback (a governance node and three banks as processes) and tell its story.",
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    help="Build the network in this folder and keep it (configs, data, logs) afterwards.",
)
@click.option(
    "--fabric",
    is_flag=True,
    help="Add the Fabric story: a Fabric devnet started from Fabric's release archive (`make fabric` gets it), an "
    "asset of bank-a there transferred, its receipt recorded on Ethereum and verified by the auditor.",
)
@json_option
def demo_cmd(keep: Path | None, fabric: bool, as_json: bool) -> None:
    """Run a local network on loopback (a governance node and three banks as processes) and tell its story:
    network creation, registration with approval, credential verification, discovery, private data shared by pull
    and push, access withdrawn, a broadcast, an asset on Ethereum transferred and audited, a router's view through
    the ledger-adapter API (and with --fabric, an asset on Fabric). Exit status 0 when every step succeeded."""
    if not as_json:
        out.print("[bold]FinP2P demo[/]: a governance node and three banks on loopback")
    result = run_demo(keep, (lambda text: None) if as_json else out.print, fabric=fabric)

    def render() -> None:
        table = Table(title="summary", title_justify="left")
        table.add_column("step")
        table.add_column("s", justify="right")
        for s in result["steps"]:
            table.add_row(s["step"], f"{s['seconds']:.1f}")
        out.print(table)
        if result["ok"]:
            out.print(f"[green]all {len(result['steps'])} steps succeeded[/] in {result['seconds']} s")
        else:
            err.print(f"[red]stopped[/]: {result['error']}; files kept in {result['directory']}")

    emit(result, as_json, render)
    if not result["ok"]:
        raise SystemExit(1)
