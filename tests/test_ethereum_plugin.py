"""The Ethereum plugin as users meet it: installed with pip, listed, deploying with its command, named by a
node's config through a ledger profile, and the devnet script that runs a Hardhat node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devnet.hardhat import HardhatNode
from finp2p.config import load_settings
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.keys import SigningKey, save_key
from finp2p.ledger import LedgerProfile
from finp2p.ledger_profiles import load_profile, save_profile
from finp2p.node import Node
from finp2p.plugins import PluginManager
from tests.support.cli import run_cli
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_the_installed_plugin_is_listed() -> None:
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugin = next(p for p in json.loads(result.stdout)["plugins"] if p["name"] == "ethereum")
    assert plugin["distribution"] == "finp2p-ethereum" and not plugin["builtin"]
    assert plugin["provides"] == {"ledger": ["ethereum"], "commands": ["ethereum"]}


@pytest.mark.hardhat
def test_deploy_writes_a_profile_that_a_node_opens(hardhat: HardhatNode, tmp_path: Path) -> None:
    key_file = tmp_path / "operator.key"
    key = SigningKey.generate()
    save_key(key_file, key)
    profile_file = tmp_path / "chains" / "hardhat.toml"
    result = run_cli(
        "ethereum", "deploy", "--rpc", hardhat.url, "--key", str(key_file), "--out", str(profile_file), "--json"
    )
    assert result.returncode == 0, result.stderr
    deployed = json.loads(result.stdout)
    assert deployed["ledger_id"] == "eip155:31337" and deployed["operator"] == key.address
    profile = load_profile(profile_file)
    assert profile.kind == "ethereum" and profile.settings["assets_contract"] == deployed["assets_contract"]

    status = run_cli("ethereum", "status", str(profile_file), "--json")
    assert status.returncode == 0, status.stderr
    found = json.loads(status.stdout)
    assert found["matches_profile"] and found["FinP2PAssets"]["operator"] == key.address

    # The node names the profile in its config and signs as its own FinID key (placed as the node's identity).
    node_dir = tmp_path / "node"
    (node_dir / "data" / "identity").mkdir(parents=True)
    save_key(node_dir / "data" / "identity" / "finid.key", key)
    config = node_dir / "node.toml"
    config.write_text(f'[ledgers]\nprofiles = ["{profile_file}"]\n')
    result = subprocess.run(
        [sys.executable, "-c", _NODE_SCRIPT, str(config)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"ledgers": ["eip155:31337"], "issued": True, "available": 7}


_NODE_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from finp2p.node import Node
from finp2p.identity.keys import SigningKey

async def main():
    node = Node.from_config(Path(sys.argv[1]))
    await node.start()
    try:
        ledger = node.ledgers["eip155:31337"]
        owner = SigningKey.generate()
        await ledger.create_asset("org:102:profile-test", {})
        tx = await ledger.issue("org:102:profile-test", owner.fin_id, 7, "profile-issue")
        balance = await ledger.balance("org:102:profile-test", owner.fin_id)
        print(json.dumps({"ledgers": sorted(node.ledgers), "issued": tx.succeeded, "available": balance.available}))
    finally:
        await node.close()

asyncio.run(main())
"""


def test_profiles_are_checked(tmp_path: Path) -> None:
    cases = {
        "nokind.toml": 'ledger_id = "eip155:1"\n',
        "noid.toml": 'kind = "ethereum"\n',
        "badid.toml": 'kind = "ethereum"\nledger_id = "31337"\n',
        "extra.toml": 'kind = "ethereum"\nledger_id = "eip155:1"\nrpc = "x"\n',
        "broken.toml": "kind = \n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(FinP2PError) as exc:
            load_profile(tmp_path / name)
        assert exc.value.code is ErrorCode.LEDGER_PROFILE, name
        assert name in str(exc.value)
    with pytest.raises(FinP2PError) as exc:
        load_profile(tmp_path / "missing.toml")
    assert exc.value.code is ErrorCode.LEDGER_PROFILE
    written = LedgerProfile("ethereum", "eip155:5", {"rpc": 'http://h:1/"q"', "confirmations": 2, "on": True})
    save_profile(tmp_path / "round.toml", written)
    read = load_profile(tmp_path / "round.toml")
    assert read.ledger_id == "eip155:5"
    assert {k: v for k, v in read.settings.items() if k != "profile_dir"} == written.settings


async def test_ethereum_settings_errors(tmp_path: Path) -> None:
    key = SigningKey.generate()
    save_key(tmp_path / "op.key", key)

    async def start(settings: str) -> Node:
        (tmp_path / "chain.toml").write_text(f'kind = "ethereum"\nledger_id = "eip155:31337"\n[settings]\n{settings}')
        (tmp_path / "node.toml").write_text('[ledgers]\nprofiles = ["chain.toml"]\n')
        node = Node(load_settings(tmp_path / "node.toml", env={}), PluginManager())
        await node.start()
        return node

    with pytest.raises(FinP2PError) as exc:
        await start('backend = "rpc"\noperator_key = "op.key"\n')
    assert exc.value.code is ErrorCode.LEDGER_PROFILE and "rpc" in exc.value.detail
    with pytest.raises(FinP2PError) as exc:
        await start('backend = "moon"\noperator_key = "op.key"\n')
    assert exc.value.code is ErrorCode.LEDGER_PROFILE and "backend" in exc.value.detail

    contracts = 'assets_contract = "0x' + "11" * 20 + '"\nregistry_contract = "0x' + "22" * 20 + '"\n'
    dead = f'backend = "rpc"\nrpc = "http://127.0.0.1:{free_port()}"\noperator_key = "op.key"\n{contracts}'
    node = await start(dead)  # a ledger that does not answer yet does not stop the node
    try:
        with pytest.raises(FinP2PError) as exc:
            await node.ledgers["eip155:31337"].height()
        assert exc.value.code is ErrorCode.LEDGER_UNREACHABLE
    finally:
        await node.close()

    with pytest.raises(FinP2PError) as exc:  # says 31337, is the embedded chain: refused as the node starts
        await start('backend = "embedded"\noperator_key = "op.key"\n')
    assert exc.value.code is ErrorCode.LEDGER_PROFILE and "131277322940537" in exc.value.detail


def test_devnet_hardhat_up_status_down(tmp_path: Path) -> None:
    state, profile, port = tmp_path / "state", tmp_path / "devnet.toml", free_port()
    python = [sys.executable, "-m", "devnet.hardhat"]
    common = ["--state", str(state)]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*python, *args, *common], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )

    up = run("up", "--port", str(port), "--profile", str(profile))
    assert up.returncode == 0, up.stderr + up.stdout
    pid = json.loads((state / "node.json").read_text())["pid"]
    try:
        assert load_profile(profile).settings["rpc"] == f"http://127.0.0.1:{port}"
        status = run("status")
        assert status.returncode == 0 and f"pid {pid}" in status.stdout
        again = run("up", "--port", str(port))
        assert again.returncode == 0 and "runs already" in again.stdout
    finally:
        down = run("down")
    assert down.returncode == 0, down.stderr
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert run("status").returncode == 3


@pytest.mark.slow
def test_pip_install_into_a_fresh_venv(tmp_path: Path) -> None:
    """`pip install ./plugins/ethereum` beside the core in a new venv is all it takes to add the ledger."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    constraints = ["-c", str(ROOT / "constraints.txt")]
    subprocess.run([*pip, *constraints, str(ROOT), str(ROOT / "plugins" / "ethereum")], check=True, timeout=900)
    listed = subprocess.run(
        [str(venv / "bin" / "finp2p"), "plugins", "--json"], capture_output=True, text=True, timeout=60, check=True
    )
    names = {p["name"]: p for p in json.loads(listed.stdout)["plugins"]}
    assert names["ethereum"]["provides"]["ledger"] == ["ethereum"]


async def test_an_embedded_chain_served_over_json_rpc() -> None:
    """Another organization deploys and operates on a node's embedded chain through its JSON-RPC view."""
    from finp2p.ledger import OperationType
    from finp2p_ethereum.chain import embedded_chain, rpc_chain
    from finp2p_ethereum.consent import Operation, sign_consent
    from finp2p_ethereum.deploy import deploy_contracts
    from finp2p_ethereum.ledger import EthereumLedger, Serving

    other_key, alice, bob = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    serving = Serving("127.0.0.1", 0, "served-token", fund=(other_key.address,))
    host = EthereumLedger(embedded_chain("served"), SigningKey.generate(), None, serving=serving)
    url = await host.serve()
    assert host.public_settings()["rpc"] == url and host.public_settings()["backend"] == "rpc"
    chain = rpc_chain(url, token="served-token")
    try:
        await chain.connect()
        deployment = await deploy_contracts(chain, other_key)  # funded by the chain's operator when it served
        other = EthereumLedger(chain, other_key, deployment, ledger_id=chain.ledger_id)
        assert other.ledger_id == host.chain.ledger_id
        await other.create_asset("z:102:a", {})
        await other.issue("z:102:a", alice.fin_id, 10, "i-1")
        op = Operation("t-1", "z:102:a", alice.fin_id, bob.fin_id, 3)
        consent = sign_consent(alice, "Transfer", op, chain.chain_id, deployment.assets)
        tx = await other.transfer("z:102:a", alice.fin_id, bob.fin_id, 3, "t-1", consent)
        with pytest.raises(FinP2PError) as exc:  # a revert comes through with its custom error
            await other.transfer("z:102:a", alice.fin_id, bob.fin_id, 3, "t-1", consent)
        assert exc.value.code is ErrorCode.LEDGER_OPERATION_ID_USED
        assert await other.find_operation("t-1", OperationType.TRANSFER) == tx
        assert (await other.balance("z:102:a", bob.fin_id)).available == 3
    finally:
        await chain.close()
        await host.close()
