"""The node's main job on Hyperledger Fabric, and across Fabric and Ethereum, with organizations as processes on
loopback over mutual TLS, a real Fabric devnet and a real Hardhat node.

- bank-a manages two assets: one on the Fabric channel (its own chaincode there) and one on Ethereum (its own
  contracts);
- bank-b serves Ethereum only and records its receipts there: the receipts of the Fabric asset's operations;
- bank-c serves the Fabric channel only (a chaincode of its own) and records its receipts there: the receipts of
  the Ethereum asset's operations.

Transfers with the user query, holds released and rolled back, redeems, all routed to bank-a and executed once
through the Fabric plugin (also when bank-a is killed at each step); the auditor verifies both kinds of bundle
through its own profiles of both ledgers; the balance and receipt-validation broadcasts reach the nodes that serve
the channel.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devnet.fabric import FabricNetwork
from devnet.hardhat import HardhatNode
from finp2p.identity.keys import SigningKey
from finp2p.ledger import LedgerProfile
from finp2p.ledger_profiles import save_profile
from tests.support.cli import run_cli
from tests.support.network import Net, make_net
from tests.support.nodes import NodeProcess
from tests.support.rest import Org, call, consented, run_operation, until_done

pytestmark = [pytest.mark.slow, pytest.mark.hardhat, pytest.mark.fabric]
FABRIC_ASSET, ETH_ASSET = "bank-a:102:fbond", "bank-a:102:ebond"
ETH = "eip155:31337"


@dataclass
class World:
    net: Net
    fabric: FabricNetwork
    orgs: dict[str, Org]
    users: dict[str, SigningKey]
    chaincodes: dict[str, str]
    auditor: list[Path]

    def key(self, user: str) -> SigningKey:
        return self.users[user]


def _fabric_profile(path: Path, network: FabricNetwork, user: str, chaincode: str, read_only: bool = False) -> str:
    settings = {**network.profile_settings(user, chaincode), **({"read_only": True} if read_only else {})}
    save_profile(path, LedgerProfile("fabric", network.ledger_id, settings))
    return path.name


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, hardhat: HardhatNode, fabric_network: FabricNetwork
) -> Iterator[World]:
    root = tmp_path_factory.mktemp("fabric-net")
    # Each organization's deployment on the channel is a chaincode of its own, operated by its own identity.
    tag = uuid.uuid4().hex[:6]
    chaincodes = {"bank-a": f"a-{tag}", "bank-c": f"c-{tag}"}
    operators = {"bank-a": "User3", "bank-c": "User4"}
    for org, name in chaincodes.items():
        fabric_network.deploy_chaincode(name, operators[org])
    net = make_net(root / "net", ["gov-1"], auto_approve=True)
    net.governance["gov-1"].start()
    try:
        orgs: dict[str, Org] = {}
        for org in ("bank-a", "bank-b", "bank-c"):
            assert net.register(org)[0] == 0
        folder = {org: net.org_config(org).parent for org in ("bank-a", "bank-b", "bank-c")}
        a_profiles = [
            net.deploy_ethereum("bank-a", hardhat.url),
            _fabric_profile(folder["bank-a"] / "fabric.toml", fabric_network, "User3", chaincodes["bank-a"]),
        ]
        orgs["bank-a"] = Org("bank-a", *net.join("bank-a", a_profiles))
        orgs["bank-b"] = Org("bank-b", *net.join("bank-b", [net.deploy_ethereum("bank-b", hardhat.url)], ETH))
        c_profile = _fabric_profile(folder["bank-c"] / "fabric.toml", fabric_network, "User4", chaincodes["bank-c"])
        orgs["bank-c"] = Org("bank-c", *net.join("bank-c", [c_profile], fabric_network.ledger_id))
        # The auditor's own profiles: a client identity of its own on the channel, and the chain's endpoint.
        auditor = root / "auditor"
        auditor.mkdir()
        _fabric_profile(auditor / "fabric.toml", fabric_network, "User2", fabric_network.chaincode, read_only=True)
        eth = LedgerProfile("ethereum", ETH, {"backend": "rpc", "rpc": hardhat.url, "read_only": True})
        save_profile(auditor / "chain.toml", eth)
        users = {name: SigningKey.generate() for name in ("alice", "bob", "carol", "dave", "erin")}
        yield World(net, fabric_network, orgs, users, chaincodes, [auditor / "fabric.toml", auditor / "chain.toml"])
    finally:
        net.stop_all()


async def _users(world: World, bank: str, names: tuple[str, ...], share_with: tuple[str, ...]) -> None:
    for name in names:
        info = {"user_id": name, "fin_id": world.key(name).fin_id, "legal_name": name.title(), "kyc_status": "verified"}
        status, made = await call(world.orgs[bank], "POST", "/v1/users", info)
        assert status == 201, made
    for name in share_with:
        assert world.net.cli(bank, "data", "share", f"{bank}:101:{name}", "--to", "bank-a").returncode == 0


def _body(kind: str, asset: str, quantity: int, source: str | None, dest: str | None, **more: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "operation": kind,
        "asset_id": asset,
        "quantity": quantity,
        "operation_id": more.pop("operation_id", f"{kind[:2]}-{uuid.uuid4().hex[:12]}"),
        **more,
    }
    if source is not None:
        body["source"] = source
    if dest is not None:
        body["destination"] = dest
    return body


async def _balances(world: World, asset: str, *users: str) -> list[tuple[int, int]]:
    found = []
    for user in users:
        path = f"/v1/balances?asset_id={asset}&fin_id={world.key(user).fin_id}"
        status, b = await call(world.orgs["bank-b"], "GET", path)
        assert status == 200, b
        found.append((int(b["available"]), int(b["held"])))
    return found


def _audit(world: World, bundle: dict[str, Any], name: str) -> dict[str, Any]:
    path = world.net.root / f"{name}.json"
    path.write_text(json.dumps(bundle))
    args = ["--genesis", str(world.net.genesis_file), "--json"]
    for profile in world.auditor:
        args += ["--ledger", str(profile)]
    verified = run_cli("receipt", "verify", str(path), *args, timeout=120)
    report: dict[str, Any] = json.loads(verified.stdout)
    report["returncode"] = verified.returncode
    return report


@pytest.fixture(scope="module")
def fabric_asset(world: World) -> str:
    """bank-a's asset on the channel, 1,000 units issued to bank-b's user alice; bank-b's users shared with bank-a."""
    asyncio.run(_make_fabric_asset(world))
    return FABRIC_ASSET


async def _make_fabric_asset(world: World) -> None:
    a = world.orgs["bank-a"]
    status, asset = await call(a, "POST", "/v1/assets", {"name": "fbond", "ledger_id": world.fabric.ledger_id}, "f-1")
    assert status == 201, asset
    assert asset["asset_id"] == FABRIC_ASSET and asset["ledger_id"] == "fabric:finp2p", asset
    await _users(world, "bank-b", ("alice", "bob", "carol"), share_with=("alice", "bob", "carol"))
    issue = _body("issue", FABRIC_ASSET, 1000, None, world.key("alice").fin_id, operation_id="f-issue-1")
    issued = await run_operation(a, issue)
    assert issued["state"] == "recorded", issued


async def test_the_story_on_a_fabric_asset(world: World, fabric_asset: str) -> None:
    """Transfer with the user query, hold then partial release, hold then rollback, redeem: each routed from bank-b
    to bank-a, executed by bank-a's chaincode, its receipt signed by bank-a, recorded by bank-b on Ethereum, and
    the transfer's verified by the auditor on both ledgers."""
    b, alice, bob = world.orgs["bank-b"], world.key("alice"), world.key("bob")
    users = {"source_user": "bank-b:101:alice", "destination_user": "bank-b:101:bob"}
    before = await _balances(world, fabric_asset, "alice", "bob")

    body = await consented(b, _body("transfer", fabric_asset, 30, alice.fin_id, bob.fin_id, **users), alice)
    idem = uuid.uuid4().hex
    done = await run_operation(b, body, idem)
    assert done["state"] == "recorded", done.get("error")
    bundle = done["receipt"]
    assert bundle["issuer"]["org_id"] == "bank-a" and bundle["receipt"]["quantity"] == "30"
    assert bundle["asset_ledger"]["ledger_id"] == "fabric:finp2p"
    assert bundle["asset_ledger"]["settings"]["chaincode"] == world.chaincodes["bank-a"]
    assert bundle["record"]["ledger"]["ledger_id"] == ETH, "bank-b records on its registry on Ethereum"
    status, again = await call(b, "POST", "/v1/operations", body, idem)
    assert status == 202 and again["receipt"] == bundle, "a retry gets the same receipt, nothing executed again"
    assert await _balances(world, fabric_asset, "alice", "bob") == [
        (before[0][0] - 30, 0),
        (before[1][0] + 30, 0),
    ]

    report = _audit(world, bundle, "fabric-transfer")
    assert report["returncode"] == 0 and [c["status"] for c in report["checks"]] == ["held"] * 4, report
    assert "fabric:finp2p" in report["checks"][2]["detail"] and ETH in report["checks"][3]["detail"]

    # A hold for bob, then a partial release: 6 paid to bob, 4 back to alice.
    hold = _body("hold", fabric_asset, 10, alice.fin_id, bob.fin_id, expiry=int(time.time()) + 3600, **users)
    held = await run_operation(b, await consented(b, hold, alice))
    assert held["state"] == "recorded", held.get("error")
    assert "destination" not in held["receipt"]["receipt"] or held["receipt"]["receipt"]["destination"] is None
    assert (await _balances(world, fabric_asset, "alice"))[0] == (before[0][0] - 40, 10)
    release = _body("release", fabric_asset, 6, alice.fin_id, bob.fin_id, operation_id=hold["operation_id"], **users)
    released = await run_operation(b, release)
    assert released["state"] == "recorded", released.get("error")
    assert await _balances(world, fabric_asset, "alice", "bob") == [
        (before[0][0] - 36, 0),
        (before[1][0] + 36, 0),
    ]

    # A hold rolled back whole, then a redeem of alice's units by her consent.
    hold = _body("hold", fabric_asset, 5, alice.fin_id, bob.fin_id, expiry=int(time.time()) + 3600, **users)
    assert (await run_operation(b, await consented(b, hold, alice)))["state"] == "recorded"
    back = {"operation_id": hold["operation_id"], "source_user": users["source_user"]}
    rollback = _body("rollback", fabric_asset, 5, alice.fin_id, None, **back)
    rolled = await run_operation(b, rollback)
    assert rolled["state"] == "recorded", rolled.get("error")
    redeem = _body("redeem", fabric_asset, 2, alice.fin_id, None, source_user=users["source_user"])
    redeemed = await run_operation(b, await consented(b, redeem, alice))
    assert redeemed["state"] == "recorded", redeemed.get("error")
    assert await _balances(world, fabric_asset, "alice", "bob") == [
        (before[0][0] - 38, 0),
        (before[1][0] + 36, 0),
    ]
    report = _audit(world, released["receipt"], "fabric-release")
    assert [c["status"] for c in report["checks"]] == ["held"] * 4, report

    # Refusals come back from the chaincode with their codes: more than alice has, a forged consent.
    too_much = await consented(b, _body("transfer", fabric_asset, 10**6, alice.fin_id, bob.fin_id), alice)
    failed = await run_operation(b, too_much)
    assert failed["state"] == "failed" and failed["error"]["code"] == "FP6001", failed
    forged = await consented(b, _body("transfer", fabric_asset, 1, alice.fin_id, bob.fin_id), alice, signer=bob)
    failed = await run_operation(b, forged)
    assert failed["state"] == "failed" and failed["error"]["code"] == "FP7009", failed


async def test_an_ethereum_receipt_recorded_on_fabric(world: World) -> None:
    """bank-c, whose registry is its chaincode on the Fabric channel, asks for a transfer on bank-a's Ethereum
    asset: the receipt of the Ethereum transaction is recorded on Fabric, and the auditor verifies the transaction
    by its Ethereum receipt and the record through qscc. A record pointed at another chaincode fails its check."""
    a, c = world.orgs["bank-a"], world.orgs["bank-c"]
    status, asset = await call(a, "POST", "/v1/assets", {"name": "ebond", "ledger_id": ETH}, "e-1")
    assert status == 201 and asset["asset_id"] == ETH_ASSET, asset
    await _users(world, "bank-c", ("dave", "erin"), share_with=("dave", "erin"))
    dave, erin = world.key("dave"), world.key("erin")
    issued = await run_operation(a, _body("issue", ETH_ASSET, 50, None, dave.fin_id))
    assert issued["state"] == "recorded", issued
    users = {"source_user": "bank-c:101:dave", "destination_user": "bank-c:101:erin"}
    body = await consented(c, _body("transfer", ETH_ASSET, 20, dave.fin_id, erin.fin_id, **users), dave)
    done = await run_operation(c, body)
    assert done["state"] == "recorded", done.get("error")
    bundle = done["receipt"]
    assert bundle["asset_ledger"]["ledger_id"] == ETH and bundle["receipt"]["id"].startswith("0x")
    record = bundle["record"]
    assert record["ledger"]["ledger_id"] == "fabric:finp2p", record
    assert record["ledger"]["settings"]["chaincode"] == world.chaincodes["bank-c"]
    assert "key" not in record["ledger"]["settings"] and "tls_ca" not in record["ledger"]["settings"]

    report = _audit(world, bundle, "eth-on-fabric")
    assert report["returncode"] == 0 and [c["status"] for c in report["checks"]] == ["held"] * 4, report
    assert "fabric:finp2p" in report["checks"][3]["detail"]

    # The same record, said to be in bank-a's chaincode: that registry does not hold it (and the requester's
    # signature over the record no longer matches).
    moved = json.loads(json.dumps(bundle))
    moved["record"]["ledger"]["settings"]["chaincode"] = world.chaincodes["bank-a"]
    report = _audit(world, moved, "eth-on-fabric-moved")
    assert report["returncode"] != 0 and report["checks"][3]["status"] == "failed", report
    assert report["checks"][2]["status"] == "held", "the Ethereum transaction itself still checks out"


async def test_balance_and_receipt_broadcasts_reach_the_channel(world: World, fabric_asset: str) -> None:
    """bank-b (Ethereum only) asks for bob's balance in the Fabric asset: bank-a and bank-c, the nodes serving the
    channel, answer, bank-c reading bank-a's chaincode through its own connection; then whether a Fabric receipt's
    transaction is on the channel as it says."""
    b, bob = world.orgs["bank-b"], world.key("bob")
    status, direct = await call(b, "GET", f"/v1/balances?asset_id={fabric_asset}&fin_id={bob.fin_id}")
    assert status == 200, direct
    path = f"/v1/balances/broadcast?asset_id={fabric_asset}&fin_id={bob.fin_id}&quorum=2"
    status, result = await call(b, "GET", path)
    assert status == 200 and result["reached_quorum"] and result["consistent"], result
    assert {x["org_id"] for x in result["answers"]} == {"bank-a", "bank-c"}, "only the nodes serving the channel"
    assert result["value"]["available"] == direct["available"]

    status, listed = await call(b, "GET", "/v1/receipts")
    bundle = next(r for r in listed["receipts"] if r["asset_ledger"]["ledger_id"] == "fabric:finp2p")
    status, result = await call(b, "POST", "/v1/receipts/validate", {"bundle": bundle, "quorum": 2})
    assert status == 200 and result["reached_quorum"] and result["consistent"], result
    assert result["value"]["valid"] is True and {x["org_id"] for x in result["answers"]} == {"bank-a", "bank-c"}
    forged = json.loads(json.dumps(bundle))
    forged["receipt"]["quantity"] = str(int(forged["receipt"]["quantity"]) + 7)
    status, result = await call(b, "POST", "/v1/receipts/validate", {"bundle": forged, "quorum": 2})
    assert status == 200 and result["reached_quorum"], result
    assert result["value"]["valid"] is False and "quantity" in result["value"]["detail"]


@pytest.mark.parametrize("step", ["received", "executing", "on-ledger", "done"])
async def test_the_primary_killed_at_any_step_moves_fabric_units_once(
    world: World, fabric_asset: str, good_plugin_site: Path, step: str
) -> None:
    """bank-a dies by SIGKILL at ``step`` of a transfer on its Fabric asset; started again, it finishes the transfer
    through the chaincode exactly once, and bank-b records it."""
    b, alice, bob = world.orgs["bank-b"], world.key("alice"), world.key("bob")
    config = world.net.org_config("bank-a")
    world.net.orgs["bank-a"].stop()
    doomed = NodeProcess(config, site=good_plugin_site, env={"FINP2P_TEST_CRASH_AT": step}).start()
    world.net.orgs["bank-a"] = doomed
    try:
        before = await _balances(world, fabric_asset, "alice", "bob")
        body = await consented(b, _body("transfer", fabric_asset, 1, alice.fin_id, bob.fin_id), alice)
        status, accepted = await call(b, "POST", "/v1/operations", body, uuid.uuid4().hex)
        assert status == 202, accepted
        assert doomed.proc is not None
        doomed.proc.wait(timeout=60)
        assert doomed.proc.returncode == -signal.SIGKILL, f"bank-a should have died at {step}"
    finally:
        world.net.orgs["bank-a"] = NodeProcess(config, site=good_plugin_site).start()
    done = await until_done(b, accepted["id"], timeout=120)
    assert done["state"] == "recorded", done.get("error")
    after = await _balances(world, fabric_asset, "alice", "bob")
    assert after == [(before[0][0] - 1, 0), (before[1][0] + 1, 0)], f"executed more than once after dying at {step}"
