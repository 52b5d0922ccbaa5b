"""``finp2p devnet``: the demo's network with an asset issued, left running; its processes stopped, killed and
restarted by the PIDs and command lines ``devnet.json`` keeps."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from finp2p.demo import processes
from finp2p.demo.network import ASSET_NAME, FABRIC_ASSET_NAME, Demo, DemoError
from finp2p.demo.processes import NodeCommand, ProcessError
from finp2p.demo.story import tell
from finp2p.edge.files import write_private

DEVNET_FILE = "devnet.json"


def devnet_up(root: Path, chain_rpc: str | None, say: Callable[[str], None], *, fabric: bool = False) -> dict[str, Any]:
    """Build the demo's network in ``root`` with an asset issued (and with ``fabric``, a Fabric devnet and an asset
    of bank-a there), and leave its processes running (their PIDs in ``root/devnet.json``). On a failure, everything
    started is stopped."""
    if (root / DEVNET_FILE).exists() and devnet_status(root)["running"]:
        raise DemoError(f"a devnet runs already in {root}: `finp2p devnet down --dir {root}` stops it")
    root.mkdir(parents=True, exist_ok=True)
    demo = Demo(root, say, story="devnet", chain_rpc=chain_rpc, fabric=fabric)
    try:
        tell(demo)
    except (DemoError, KeyboardInterrupt):
        demo.stop_all()
        raise
    state = {
        "processes": {name: proc.pid for name, proc in demo.procs.items()},
        "commands": {name: command.to_dict() for name, command in demo.commands.items()},
        "nodes": demo.nodes,
        "apis": {bank: {"url": url, "token": token} for bank, (url, token) in demo.apis.items()},
        "adapter": {"url": demo.adapter_url, "token_file": str(root / "bank-c" / "adapter.token")},
        "chain": {"url": demo.chain_url, "auditor_profile": str(demo.auditor_profile())},
        "users": {user: {"key_file": str(path)} for user, path in demo.user_keys.items()},
        "genesis": str(root / "net" / "genesis.json"),
        "ledger_id": demo.ledger_id,
        "asset_id": f"bank-a:102:{ASSET_NAME}",
        "steps": demo.steps,
    }
    if demo.fabric_devnet is not None:
        fabric_state = demo.fabric_devnet.state()
        state["fabric"] = {
            "state_dir": str(demo.fabric_devnet.state_dir),
            "pids": fabric_state["pids"],
            "ledger_id": demo.fabric_ledger_id,
            "asset_id": f"bank-a:102:{FABRIC_ASSET_NAME}",
            "peer": f"127.0.0.1:{fabric_state['ports']['peer']}",
            "auditor_profile": str(demo.auditor_profiles()[-1]),
        }
    write_private(root / DEVNET_FILE, json.dumps(state, indent=2))  # it holds API tokens
    return state


def devnet_status(root: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads((root / DEVNET_FILE).read_text())
    except (OSError, ValueError):
        return {"running": False, "processes": {}}
    alive = {name: processes.alive(pid) for name, pid in _pids(state).items()}
    return {**state, "alive": alive, "running": any(alive.values())}


def _pids(state: dict[str, Any]) -> dict[str, int]:
    """Every process of the devnet by name: the FinP2P nodes, and the Fabric devnet's (``fabric-peer``, ...)."""
    fabric = state.get("fabric", {}).get("pids", {})
    return {**state["processes"], **{f"fabric-{name}": pid for name, pid in fabric.items()}}


def devnet_down(root: Path) -> list[str]:
    """Stop the devnet's processes by their PIDs (SIGTERM, then SIGKILL after 15 s). Returns the names stopped."""
    state = devnet_status(root)
    pids = _pids(state)
    stopped = [name for name, pid in pids.items() if processes.alive(pid)]
    for pid in pids.values():
        if processes.alive(pid):
            os.kill(pid, signal.SIGTERM)
    for pid in pids.values():
        processes.stop(pid)
    (root / DEVNET_FILE).unlink(missing_ok=True)
    return stopped


def _devnet_process(root: Path, name: str) -> tuple[dict[str, Any], NodeCommand]:
    state = devnet_status(root)
    if not state["processes"]:
        raise DemoError(f"no devnet in {root}: `finp2p devnet up --dir {root}` starts one")
    if name not in state["processes"]:
        raise DemoError(f"the devnet in {root} has no process {name!r} (it has {', '.join(state['processes'])})")
    if name not in state.get("commands", {}):
        raise DemoError(f"{name} was started by an older finp2p that kept no command line: run devnet up again")
    return state, NodeCommand.from_dict(state["commands"][name])


def devnet_restart(root: Path, name: str) -> dict[str, Any]:
    """Stop ``name`` (SIGTERM, SIGKILL after 15 s) if it runs, start it again with its recorded command, and wait
    until it serves; its new PID is written to devnet.json. Returns the PID and how long the start took."""
    state, command = _devnet_process(root, name)
    processes.stop(state["processes"][name])
    started = time.monotonic()
    proc = command.launch(detached=True)
    try:
        info = command.wait_serving(proc, name)
    except ProcessError as exc:
        raise DemoError(str(exc)) from None
    seconds = time.monotonic() - started
    fresh = json.loads((root / DEVNET_FILE).read_text())
    fresh["processes"][name] = proc.pid
    fresh.setdefault("nodes", {})[name] = {**fresh.get("nodes", {}).get(name, {}), **info}
    write_private(root / DEVNET_FILE, json.dumps(fresh, indent=2))
    return {"name": name, "pid": proc.pid, "seconds": round(seconds, 2)}


def devnet_kill(root: Path, name: str, *, hard: bool = True) -> dict[str, Any]:
    """SIGKILL ``name`` (with ``hard=False``: SIGTERM, then SIGKILL after 15 s); ``finp2p devnet restart`` starts it
    again."""
    state, _ = _devnet_process(root, name)
    pid = state["processes"][name]
    was_alive = processes.alive(pid)
    if hard:
        processes.kill(pid)
    else:
        processes.stop(pid)
    return {"name": name, "pid": pid, "was_running": was_alive}
