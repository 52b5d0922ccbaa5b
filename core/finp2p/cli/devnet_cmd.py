"""``finp2p devnet``: the demo's network (a governance node, three banks, an asset) left running on loopback."""

from __future__ import annotations

from pathlib import Path

import click

from finp2p.cli.output import emit, err, json_option, out

DIR_OPTION = click.option(
    "--dir",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".finp2p-devnet"),
    show_default=True,
    help="Where the network's files, logs and PIDs are kept.",
)


@click.group("devnet")
def devnet_group() -> None:
    """A local FinP2P network that keeps running: up, status, restart, kill, down."""


@devnet_group.command("up")
@DIR_OPTION
@click.option(
    "--rpc",
    metavar="URL",
    help="An Ethereum JSON-RPC node for the banks' contracts (`devnet/hardhat up` starts one on :8545). "
    "Default: an embedded chain in bank-a's node, served on loopback.",
)
@click.option(
    "--fabric",
    is_flag=True,
    help="Also start a Fabric devnet (orderer, peer and the FinP2P chaincode, from Fabric's release archive: "
    "`make fabric`) and give bank-a an asset there, beside the Ethereum one.",
)
@json_option
def up_cmd(root: Path, rpc: str | None, fabric: bool, as_json: bool) -> None:
    """Start a governance node and three banks as processes, each bank with its contracts on one Ethereum chain and
    its REST API, and an asset of bank-a issued to a user of bank-b (with --fabric, a second asset on a Fabric
    channel). They keep running after this command; their PIDs, REST URLs and API tokens are in DIR/devnet.json."""
    from finp2p.demo.devnet import devnet_up
    from finp2p.demo.network import DemoError

    try:
        state = devnet_up(root.resolve(), rpc, (lambda text: None) if as_json else out.print, fabric=fabric)
    except DemoError as exc:
        err.print(f"[red]devnet not started[/]: {exc}; files in {root}")
        raise SystemExit(1) from None

    def render() -> None:
        for bank, api in state["apis"].items():
            out.print(f"{bank}: REST {api['url']}  token {api['token']}")
        out.print(f"bank-c's ledger adapter: {state['adapter']['url']} (token in {state['adapter']['token_file']})")
        for user, keys in state["users"].items():
            out.print(f"user {user}: key {keys['key_file']} (0600): sign its consents with it")
        out.print(f"asset {state['asset_id']} on {state['ledger_id']}")
        if "fabric" in state:
            f = state["fabric"]
            out.print(f"asset {f['asset_id']} on {f['ledger_id']} (peer {f['peer']})")
            out.print(f"an auditor's profile of the channel: {f['auditor_profile']}")
        out.print(f"stop with `finp2p devnet down --dir {root}`")

    emit(state, as_json, render)


@devnet_group.command("status")
@DIR_OPTION
@json_option
def status_cmd(root: Path, as_json: bool) -> None:
    """Which of the devnet's processes run. Exit status 3 when none does."""
    from finp2p.demo.devnet import devnet_status

    state = devnet_status(root.resolve())
    emit(
        state,
        as_json,
        lambda: out.print(
            "\n".join(f"{n}: {'running' if a else 'stopped'}" for n, a in state.get("alive", {}).items())
            or "no devnet here"
        ),
    )
    if not state["running"]:
        raise SystemExit(3)


@devnet_group.command("down")
@DIR_OPTION
@json_option
def down_cmd(root: Path, as_json: bool) -> None:
    """Stop the devnet's processes by their PIDs."""
    from finp2p.demo.devnet import devnet_down

    stopped = devnet_down(root.resolve())
    emit({"stopped": stopped}, as_json, lambda: out.print(f"stopped {', '.join(stopped) or 'nothing'}"))


@devnet_group.command("restart")
@click.argument("name")
@DIR_OPTION
@json_option
def restart_cmd(name: str, root: Path, as_json: bool) -> None:
    """Stop the devnet's process NAME (gov-1, bank-a, ...) if it runs, and start it again with the command line,
    directory and environment it was first started with; waits until it serves."""
    from finp2p.demo.devnet import devnet_restart
    from finp2p.demo.network import DemoError

    try:
        done = devnet_restart(root.resolve(), name)
    except DemoError as exc:
        err.print(f"[red]not restarted[/]: {exc}")
        raise SystemExit(1) from None
    emit(done, as_json, lambda: out.print(f"{name} serves again (pid {done['pid']}, {done['seconds']} s)"))


@devnet_group.command("kill")
@click.argument("name")
@click.option("--term", is_flag=True, help="SIGTERM (a clean stop) instead of SIGKILL.")
@DIR_OPTION
@json_option
def kill_cmd(name: str, term: bool, root: Path, as_json: bool) -> None:
    """Kill the devnet's process NAME by its PID (SIGKILL: a crash; --term: a clean stop); `restart` starts it."""
    from finp2p.demo.devnet import devnet_kill
    from finp2p.demo.network import DemoError

    try:
        done = devnet_kill(root.resolve(), name, hard=not term)
    except DemoError as exc:
        err.print(f"[red]not killed[/]: {exc}")
        raise SystemExit(1) from None
    emit(done, as_json, lambda: out.print(f"{name} (pid {done['pid']}) {'stopped' if term else 'killed'}"))
