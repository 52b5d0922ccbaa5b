"""`finp2p demo --fabric` and `finp2p devnet up --fabric` on a real Fabric devnet started from Fabric's release, and
what they say when Fabric is not there (a file of its own, so that the test workers run it beside `test_demo.py`)."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from finp2p.demo.ports import PORT_RANGE_ENV
from tests.support.cli import run_cli

pytestmark = pytest.mark.slow


@pytest.mark.fabric
def test_the_demo_adds_the_fabric_story(tmp_path: Path) -> None:
    """`finp2p demo --fabric`: a Fabric devnet beside the embedded chain, an asset of bank-a on the channel moved
    between bank-b's users, its receipt recorded on Ethereum and verified by the auditor; every process stopped."""
    r = run_cli("demo", "--fabric", "--json", "--keep", str(tmp_path / "demo"), timeout=600)
    assert r.returncode == 0, r.stderr + r.stdout
    result = json.loads(r.stdout)
    by_title = {step["step"]: step["result"] for step in result["steps"]}
    assert result["ok"] and len(result["steps"]) == 20, list(by_title)
    fabric = [title for title in by_title if "Fabric" in title]
    assert len(fabric) == 4, fabric
    assert "recorded the receipt on eip155:" in by_title[fabric[2]]
    assert "4 of 4 checks hold" in by_title[fabric[3]] and "qscc" in fabric[3]
    assert {"fabric-orderer", "fabric-peer", "fabric-chaincode"} <= set(result["processes"])
    for pid in result["processes"].values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # stopped, the Fabric devnet's too


def test_the_fabric_demo_says_how_to_get_fabric_when_it_is_not_there(tmp_path: Path) -> None:
    """Without Fabric the demo stops before it starts anything, and says how to get it."""
    env = {"FABRIC_HOME": str(tmp_path / "no-fabric")}
    r = run_cli("demo", "--fabric", "--json", "--keep", str(tmp_path / "demo"), env=env, timeout=120)
    assert r.returncode == 1
    result = json.loads(r.stdout)
    assert not result["ok"] and result["steps"] == [] and result["processes"] == {}
    assert "make fabric" in result["error"] and "FABRIC_HOME" in result["error"], result["error"]


@pytest.mark.fabric
def test_devnet_up_with_fabric_keeps_both_ledgers_running_until_down(tmp_path: Path) -> None:
    """`finp2p devnet up --fabric`: bank-a's asset on Fabric beside the one on the embedded chain, issued to
    carol; `status` counts the Fabric processes, `down` stops them with the nodes."""
    root = tmp_path / "devnet"
    up = run_cli("devnet", "up", "--dir", str(root), "--fabric", "--json", timeout=600)
    assert up.returncode == 0, up.stderr + up.stdout
    state = json.loads(up.stdout)
    fabric = state["fabric"]
    assert fabric["ledger_id"] == "fabric:finp2p" and fabric["asset_id"] == "bank-a:102:fabric-bond-2031"
    # Every port from the range this worker gives the commands it runs: none from the system's ephemeral ones,
    # which the Fabric processes' outgoing connections take too.
    low, high = map(int, os.environ[PORT_RANGE_ENV].split("-"))
    fabric_ports = json.loads((Path(fabric["state_dir"]) / "network.json").read_text())["ports"]
    ports = [*fabric_ports.values(), *(urlsplit(api["url"]).port for api in state["apis"].values())]
    assert all(low <= port < high for port in ports), (low, high, ports)
    try:
        status = run_cli("devnet", "status", "--dir", str(root), "--json")
        assert status.returncode == 0
        alive = json.loads(status.stdout)["alive"]
        assert all(alive[f"fabric-{name}"] for name in ("orderer", "peer", "chaincode")), alive
        from finp2p.identity.keys import load_key

        carol = load_key(Path(state["users"]["carol"]["key_file"])).fin_id
        api = state["apis"]["bank-b"]
        url = f"{api['url']}/v1/balances?asset_id={fabric['asset_id']}&fin_id={carol}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {api['token']}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            balance = json.loads(response.read())
        assert balance["available"] == "500" and balance["ledger_id"] == "fabric:finp2p", balance
    finally:
        down = run_cli("devnet", "down", "--dir", str(root), "--json")
    stopped = json.loads(down.stdout)["stopped"]
    assert down.returncode == 0 and {"fabric-peer", "fabric-orderer", "fabric-chaincode", "bank-a"} <= set(stopped)
    for pid in [*state["processes"].values(), *fabric["pids"].values()]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert run_cli("devnet", "status", "--dir", str(root)).returncode == 3
