"""Registration, approval and revocation across processes on loopback, over real mutual TLS."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.store import Store
from tests.support.cli import run_cli
from tests.support.network import Net, client_of, make_net

pytestmark = pytest.mark.slow


@pytest.fixture
def net(tmp_path: Path):
    n = make_net(tmp_path / "net", ["gov-1", "gov-2"])
    yield n
    n.stop_all()


def test_registration_with_operator_approval_and_a_rendezvous_that_is_down(net: Net) -> None:
    net.governance["gov-2"].start()  # gov-1, first in the genesis, is down
    code, result, stderr = net.register("org-a")
    assert code == 1 and result["status"] == "pending"
    assert result["rendezvous"] == f"https://127.0.0.1:{net.gov_ports['gov-2']}"
    assert "trying the next rendezvous address" in stderr

    listing = run_cli("-c", str(net.gov_config("gov-2")), "governance", "list", "--status", "pending", "--json")
    pending = json.loads(listing.stdout)
    assert [p["org_id"] for p in pending] == ["org-a"]
    assert code == 1 and not (net.root / "orgs/org-a/data/identity/credentials.json").exists()

    approve = run_cli("-c", str(net.gov_config("gov-2")), "governance", "approve", pending[0]["id"])
    assert approve.returncode == 0, approve.stderr
    code, result, _ = net.register("org-a")
    assert code == 0 and result["status"] == "approved"

    chain_file = net.root / "orgs/org-a/data/identity/credentials.json"
    verify = run_cli("credential", "verify", str(chain_file), "--genesis", str(net.genesis_file), "--json")
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["org_id"] == "org-a"

    # A member from now on: it serves, and the governance node reaches it over mutual TLS (and back).
    org = net.start_org("org-a")
    ping = run_cli("-c", str(net.gov_config("gov-2")), "node", "ping", org.address, "--json")
    assert ping.returncode == 0, ping.stderr
    assert json.loads(ping.stdout) == {**json.loads(ping.stdout), "org_id": "org-a", "from": "gov-2"}
    back = run_cli("-c", str(net.org_config("org-a")), "node", "ping", net.governance["gov-2"].address, "--json")
    assert json.loads(back.stdout)["from"] == "org-a"


def test_a_taken_org_id_and_a_rejection(net: Net) -> None:
    net.governance["gov-1"].start()
    assert net.register("org-a")[0] == 1
    # Another node (another FinID) asking for the same organization id is refused.
    other = net.root / "orgs" / "imposter" / "node.toml"
    run_cli("config", "init", str(other), "--name", "imposter", "--genesis", str(net.genesis_file))
    r = run_cli(
        "-c",
        str(other),
        "org",
        "register",
        "--org-id",
        "org-a",
        "--name",
        "Fake",
        "--public-url",
        "https://127.0.0.1:9",
    )
    assert r.returncode == 1 and "FP2104" in r.stderr
    pending = json.loads(run_cli("-c", str(net.gov_config("gov-1")), "governance", "list", "--json").stdout)
    run_cli("-c", str(net.gov_config("gov-1")), "governance", "reject", pending[0]["id"], "--reason", "unknown bank")
    code, _, stderr = net.register("org-a")
    assert code == 1 and "FP2102" in stderr and "unknown bank" in stderr
    code, result, _ = net.register("org-a")  # told once; registering again files a new request
    assert code == 1 and result["status"] == "pending" and result["registration_id"] != pending[0]["id"]


def test_revocation_reaches_a_running_node_and_takes_effect_on_the_next_request(tmp_path: Path) -> None:
    net = make_net(tmp_path / "net", ["gov-1", "gov-2"], auto_approve=True)
    try:
        for gov in net.governance.values():
            gov.start()
        assert net.register("org-a")[0] == 0
        assert net.register("org-b")[0] == 0
        org_b = net.start_org("org-b")
        pid_b = org_b.info["pid"]

        async def scenario() -> FinP2PError:
            store = Store(f"sqlite:///{tmp_path / 'client.db'}")
            store.migrate()
            client = await client_of(net.root / "orgs/org-a/data", net.genesis_file, store)
            try:
                assert (await client.request(org_b.address, "node.ping", {}))["from"] == "org-a"
                revoke = run_cli(
                    "-c", str(net.gov_config("gov-1")), "governance", "revoke", "org-a", "--reason", "licence withdrawn"
                )
                assert revoke.returncode == 0, revoke.stderr
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    try:
                        await client.request(org_b.address, "node.ping", {})
                    except FinP2PError as err:
                        return err
                    await asyncio.sleep(0.1)
                raise AssertionError("org-b kept serving a revoked organization")
            finally:
                await client.transport.close()
                store.close()

        err = asyncio.run(scenario())
        assert err.code is ErrorCode.CREDENTIAL_REVOKED
        assert err.detail.startswith(org_b.address) and "licence withdrawn" in err.detail
        assert org_b.proc is not None and org_b.proc.poll() is None and org_b.info["pid"] == pid_b, "no restart"
        # gov-2 did not issue the credential, yet refuses it too (gov-1 pushed its list to the other rendezvous).
        gov2 = net.governance["gov-2"].address
        r = run_cli("-c", str(net.org_config("org-b")), "node", "ping", gov2)
        assert r.returncode == 0
    finally:
        net.stop_all()


def test_certifying_a_governance_node_by_hand(tmp_path: Path) -> None:
    """The founding operator's path when the governance node is run by someone else, with encrypted keys."""
    secret = tmp_path / "passphrase"
    secret.write_text("founders only\n")
    net = tmp_path / "net"
    r = run_cli(
        "network",
        "init",
        str(net),
        "--network-id",
        "manual",
        "--rendezvous",
        "https://gov.example:443",
        "--passphrase-file",
        str(secret),
    )
    assert r.returncode == 0, r.stderr
    assert "finid.key" in {p.name for p in (net / "founding" / "founding-1").iterdir()}
    assert "encrypted" in (net / "founding" / "founding-1" / "finid.key").read_text()

    gov_config = tmp_path / "gov" / "node.toml"
    run_cli("config", "init", str(gov_config), "--name", "gov-x", "--genesis", str(net / "genesis.json"))
    request = tmp_path / "request.json"
    r = run_cli(
        "-c",
        str(gov_config),
        "governance",
        "request",
        "--name",
        "gov-x",
        "--public-url",
        "https://gov.example:443",
        "--out",
        str(request),
    )
    assert r.returncode == 0, r.stderr
    certified = tmp_path / "certified.json"
    args = [
        "governance",
        "certify-governance",
        str(request),
        "--founding",
        str(net / "founding" / "founding-1"),
        "--genesis",
        str(net / "genesis.json"),
        "--out",
        str(certified),
    ]
    wrong = run_cli(*args)  # without the passphrase the founding key stays locked
    assert wrong.returncode == 1 and "FP2014" in wrong.stderr
    assert run_cli(*args, "--passphrase-file", str(secret)).returncode == 0
    r = run_cli("-c", str(gov_config), "governance", "install", str(certified))
    assert r.returncode == 0, r.stderr
    chain = tmp_path / "gov" / "data" / "identity" / "credentials.json"
    shown = json.loads(run_cli("credential", "show", str(chain), "--json").stdout)
    assert [c["role"] for c in shown] == ["governance"]
    verified = run_cli("credential", "verify", str(chain), "--genesis", str(net / "genesis.json"), "--json")
    assert json.loads(verified.stdout)["role"] == "governance"
    # A request altered after it was signed is refused by the founding operator.
    doc = json.loads(request.read_text())
    doc["name"] = "gov-evil"
    request.write_text(json.dumps(doc))
    tampered = run_cli(*args, "--passphrase-file", str(secret))
    assert tampered.returncode == 1 and "FP2002" in tampered.stderr
