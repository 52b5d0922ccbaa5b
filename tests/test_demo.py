"""`finp2p demo` runs its whole story on a real local network and stops every process it started."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from devnet.hardhat import HardhatNode
from tests.support.cli import run_cli

pytestmark = pytest.mark.slow


def test_the_demo_tells_its_whole_story(tmp_path: Path) -> None:
    keep = tmp_path / "demo"
    r = run_cli("demo", "--json", "--keep", str(keep), timeout=300)
    assert r.returncode == 0, r.stderr + r.stdout
    result = json.loads(r.stdout)
    assert result["ok"] and len(result["steps"]) == 16
    by_title = {step["step"]: step["result"] for step in result["steps"]}
    assert "4 of 4 checks hold" in by_title["an auditor verifies the receipt (genesis and ledger only, no node)"]
    assert "dave holds 250 by 2 answers" in by_title["broadcast to the ledger's nodes: dave's balance"]
    assert "receipt is valid, consistent" in result["steps"][-2]["result"]
    assert "the buyer holds 40" in result["steps"][-1]["result"]
    assert sorted(result["processes"]) == ["bank-a", "bank-b", "bank-c", "gov-1"]
    for pid in result["processes"].values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # stopped, not left running
    assert list(keep.glob("**/node.log")), "logs are kept with --keep"


@pytest.mark.hardhat
def test_devnet_up_on_a_hardhat_node_keeps_running_until_down(hardhat: HardhatNode, tmp_path: Path) -> None:
    root = tmp_path / "devnet"
    up = run_cli("devnet", "up", "--dir", str(root), "--rpc", hardhat.url, "--json", timeout=300)
    assert up.returncode == 0, up.stderr + up.stdout
    state = json.loads(up.stdout)
    assert state["ledger_id"] == "eip155:31337"
    assert sorted(state["processes"]) == ["bank-a", "bank-b", "bank-c", "gov-1"]
    try:
        assert run_cli("devnet", "status", "--dir", str(root)).returncode == 0, "still running after `up` returned"
        # The receipt, as bank-a keeps it, verifies through the auditor's own profile the devnet wrote.
        api = state["apis"]["bank-a"]
        request = urllib.request.Request(
            api["url"] + "/v1/receipts", headers={"Authorization": f"Bearer {api['token']}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            receipts = json.loads(response.read())["receipts"]
        assert receipts, "the devnet's issue has a receipt"
        bundle = tmp_path / "issue.json"
        bundle.write_text(json.dumps(receipts[0]))
        genesis, profile = state["genesis"], state["chain"]["auditor_profile"]
        verified = run_cli("receipt", "verify", str(bundle), "--genesis", genesis, "--ledger", profile, "--json")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        again = run_cli("devnet", "up", "--dir", str(root), "--rpc", hardhat.url)
        assert again.returncode == 1 and "runs already" in again.stderr
    finally:
        down = run_cli("devnet", "down", "--dir", str(root), "--json")
    assert down.returncode == 0 and sorted(json.loads(down.stdout)["stopped"]) == sorted(state["processes"])
    for pid in state["processes"].values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert run_cli("devnet", "status", "--dir", str(root)).returncode == 3
