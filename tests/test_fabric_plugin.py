"""The Fabric plugin as users meet it: installed with pip and listed, the devnet script, a ledger profile that a
node's config names, ``finp2p fabric status``, profile errors, and where Fabric's binaries come from."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devnet.fabric import FabricNetwork
from devnet.fabric_release import ARCHIVE_NAME, FabricNotFound, find_fabric
from finp2p.config import load_settings
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.keys import SigningKey
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
    plugin = next(p for p in json.loads(result.stdout)["plugins"] if p["name"] == "fabric")
    assert plugin["distribution"] == "finp2p-fabric" and not plugin["builtin"]
    assert plugin["provides"] == {"ledger": ["fabric"], "commands": ["fabric"]}


@pytest.mark.fabric
def test_devnet_fabric_up_status_down(tmp_path: Path) -> None:
    state, profile = tmp_path / "state", tmp_path / "chains" / "devnet-fabric.toml"
    python = [sys.executable, "-m", "devnet.fabric"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*python, *args, "--state", str(state)], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
        )

    up = run("up", "--profile", str(profile))
    assert up.returncode == 0, up.stderr + up.stdout
    pids = json.loads((state / "network.json").read_text())["pids"]
    assert set(pids) == {"orderer", "peer", "chaincode"}
    try:
        written = load_profile(profile)
        assert written.kind == "fabric" and written.ledger_id == "fabric:finp2p"
        assert written.settings["msp_id"] == "Org1MSP" and "User1@" in written.settings["cert"]
        status = run("status")
        assert status.returncode == 0 and f"pid {pids['peer']}" in status.stdout and "height" in status.stdout
        again = run("up")
        assert again.returncode == 0 and "runs already" in again.stdout
        checked = run_cli("fabric", "status", str(profile), "--json")
        assert checked.returncode == 0, checked.stderr
        found = json.loads(checked.stdout)
        assert found["matches_profile"] and found["is_operator"] and found["height"] >= 4
        assert found["operator"]["msp_id"] == "Org1MSP" and "User1@org1.example.com" in found["operator"]["id"]
    finally:
        down = run("down")
    assert down.returncode == 0, down.stderr
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert run("status").returncode == 3


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(path, start)


@pytest.mark.fabric
async def test_a_node_opens_the_profile(fabric_network: FabricNetwork, tmp_path: Path) -> None:
    """A node names the devnet's profile in its config and operates on the chaincode as its operator (User1);
    the profile's paths may be relative to its own directory."""
    settings = fabric_network.profile_settings()
    crypto = fabric_network.crypto
    for key in ("tls_ca", "cert", "key"):
        settings[key] = _relative(Path(settings[key]), tmp_path / "chains")
    assert not Path(settings["cert"]).is_absolute() and str(crypto) not in settings["cert"]
    save_profile(tmp_path / "chains" / "fabric.toml", LedgerProfile("fabric", fabric_network.ledger_id, settings))
    (tmp_path / "node.toml").write_text('[ledgers]\nprofiles = ["chains/fabric.toml"]\n')
    node = Node(load_settings(tmp_path / "node.toml", env={}), PluginManager())
    await node.start()
    try:
        ledger = node.ledgers["fabric:finp2p"]
        owner = SigningKey.generate()
        asset = f"org:102:profile-{owner.fin_id[:12]}"
        await ledger.create_asset(asset, {})
        tx = await ledger.issue(asset, owner.fin_id, 7, f"profile-issue-{asset}")
        assert tx.succeeded and (await ledger.balance(asset, owner.fin_id)).available == 7
    finally:
        await node.close()


@pytest.mark.fabric
async def test_the_profile_is_checked_as_the_node_starts(
    fabric_network: FabricNetwork, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Ledger.start() reads the chaincode's configuration: a chaincode or channel that is not there, or another
    EIP-712 chain id than the chaincode's, is FP6016 and the node does not start; an identity that is not the
    operator starts (it can read) with a warning."""
    from finp2p_fabric.factory import ledger_from, settings_from

    async def started(user: str = "User1", **changes: object) -> None:
        raw = {**fabric_network.profile_settings(user), "ledger_id": fabric_network.ledger_id, **changes}
        ledger = ledger_from(settings_from(raw))
        try:
            await ledger.start()
        finally:
            await ledger.close()

    await started()
    for changes, said in (
        ({"chaincode": "not-deployed"}, "not-deployed"),
        ({"channel": "nochannel"}, "nochannel"),
        ({"chain_id": 5}, "chainId '0', the profile's '5'"),
    ):
        with pytest.raises(FinP2PError) as exc:
            await started(**changes)
        assert exc.value.code is ErrorCode.LEDGER_PROFILE and said in exc.value.detail, changes
    with caplog.at_level("WARNING", logger="finp2p_fabric.ledger"):
        await started("User2")
    assert "not the chaincode's operator" in caplog.text and "User2@org1.example.com" in caplog.text

    settings = {**fabric_network.profile_settings(), "chain_id": 5}
    save_profile(tmp_path / "chains" / "fabric.toml", LedgerProfile("fabric", fabric_network.ledger_id, settings))
    (tmp_path / "node.toml").write_text('[ledgers]\nprofiles = ["chains/fabric.toml"]\n')
    with pytest.raises(FinP2PError) as exc:
        await Node(load_settings(tmp_path / "node.toml", env={}), PluginManager()).start()
    assert exc.value.code is ErrorCode.LEDGER_PROFILE


async def test_fabric_profile_errors(tmp_path: Path) -> None:
    async def start(settings: str) -> Node:
        (tmp_path / "chain.toml").write_text(f'kind = "fabric"\nledger_id = "fabric:finp2p"\n[settings]\n{settings}')
        (tmp_path / "node.toml").write_text('[ledgers]\nprofiles = ["chain.toml"]\n')
        node = Node(load_settings(tmp_path / "node.toml", env={}), PluginManager())
        await node.start()
        return node

    with pytest.raises(FinP2PError) as exc:
        await start('channel = "finp2p"\nmsp_id = "Org1MSP"\ncert = "c.pem"\nkey = "k.pem"\n')
    assert exc.value.code is ErrorCode.LEDGER_PROFILE and "peer" in exc.value.detail
    with pytest.raises(FinP2PError) as exc:
        await start('peer = "127.0.0.1:1"\nchannel = "finp2p"\nmsp_id = "Org1MSP"\ncert = "c.pem"\nkey = "k.pem"\n')
    assert exc.value.code is ErrorCode.LEDGER_PROFILE and "c.pem" in exc.value.detail

    # A real identity, a peer that is not there: the node starts (FP6013 is transient) and the first call is FP6013.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "user")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime.datetime(2020, 1, 1))
        .not_valid_after(datetime.datetime(2099, 1, 1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    node = await start(
        f'peer = "127.0.0.1:{free_port()}"\nchannel = "finp2p"\nmsp_id = "Org1MSP"\ncert = "c.pem"\nkey = "k.pem"\n'
        "timeout_s = 2\n"
    )
    try:
        with pytest.raises(FinP2PError) as exc:
            await node.ledgers["fabric:finp2p"].height()
        assert exc.value.code is ErrorCode.LEDGER_UNREACHABLE
    finally:
        await node.close()


def _fake_release(path: Path) -> str:
    """A small archive laid out like Fabric's release; its sha256."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        binaries = [f"bin/{b}" for b in ("peer", "orderer", "osnadmin", "configtxgen", "cryptogen")]
        for name in [*binaries, "config/core.yaml", "config/orderer.yaml"]:
            data = b"#!/bin/sh\n" if name.startswith("bin/") else b"x: 1\n"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def test_where_fabric_comes_from(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    base = {"XDG_CACHE_HOME": str(cache), "PATH": os.environ["PATH"]}
    archive_dir = tmp_path / "download"
    archive_dir.mkdir()
    archive = archive_dir / ARCHIVE_NAME
    digest = _fake_release(archive)

    # A damaged archive (its SHA256SUMS says otherwise) is refused, and nothing is left in the cache.
    (archive_dir / "SHA256SUMS").write_text(f"{'0' * 64}  {ARCHIVE_NAME}\n")
    with pytest.raises(FabricNotFound, match=r"FP6023 .* has sha256"):
        find_fabric({**base, "FABRIC_ARCHIVE": str(archive)}, allow_download=False)
    assert not (cache / "finp2p" / "fabric" / "3.1.5").exists()
    # The archive named by FABRIC_ARCHIVE, checked against its SHA256SUMS, is unpacked into the cache...
    (archive_dir / "SHA256SUMS").write_text(f"{digest}  {ARCHIVE_NAME}\n")
    home = find_fabric({**base, "FABRIC_ARCHIVE": str(archive)}, allow_download=False)
    assert home == cache / "finp2p" / "fabric" / "3.1.5" and os.access(home / "bin" / "peer", os.X_OK)
    # ...and found there next time, archive or not.
    assert find_fabric({**base, "FABRIC_ARCHIVE": str(tmp_path / "gone.tar.gz")}, allow_download=False) == home
    # FABRIC_HOME comes first, and must be a release.
    assert find_fabric({**base, "FABRIC_HOME": str(home)}, allow_download=False) == home
    with pytest.raises(FabricNotFound, match="FP6023 FABRIC_HOME"):
        find_fabric({**base, "FABRIC_HOME": str(tmp_path)}, allow_download=False)
    # Nothing anywhere: a sentence that says what to do.
    empty = {"XDG_CACHE_HOME": str(tmp_path / "empty"), "FABRIC_ARCHIVE": str(tmp_path / "none.tar.gz")}
    with pytest.raises(FabricNotFound, match="FABRIC_ARCHIVE"):
        find_fabric(empty, allow_download=False)


@pytest.mark.slow
def test_pip_install_into_a_fresh_venv(tmp_path: Path) -> None:
    """`pip install ./plugins/fabric` beside the core in a new venv is all it takes to add the ledger."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    constraints = ["-c", str(ROOT / "constraints.txt")]
    subprocess.run([*pip, *constraints, str(ROOT), str(ROOT / "plugins" / "fabric")], check=True, timeout=900)
    listed = subprocess.run(
        [str(venv / "bin" / "finp2p"), "plugins", "--json"], capture_output=True, text=True, timeout=60, check=True
    )
    names = {p["name"]: p for p in json.loads(listed.stdout)["plugins"]}
    assert names["fabric"]["provides"]["ledger"] == ["fabric"]
    assert names["fabric"]["distribution"] == "finp2p-fabric"
