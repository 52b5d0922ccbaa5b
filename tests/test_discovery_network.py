"""Two governance nodes (registrars) and four organizations as processes on loopback, over real mutual TLS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from finp2p.errors import FinP2PError
from finp2p.network import adverts as adv
from finp2p.network.adverts import Advert
from finp2p.network.pubsub import inbox
from finp2p.store import Store
from tests.support.network import Net, client_of, make_net
from tests.support.ports import free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow
ORGS = ["org-a", "org-b", "org-c", "org-d"]


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    n = make_net(tmp_path_factory.mktemp("disc") / "net", ["gov-1", "gov-2"], auto_approve=True)
    for gov in n.governance.values():
        gov.start()
    for i, org in enumerate(ORGS):  # a, b register at gov-1; c, d at gov-2
        assert n.register(org, "--rendezvous", n.gov_url("gov-1" if i < 2 else "gov-2"))[0] == 0
        config = n.org_config(org)
        config.write_text(config.read_text() + f'\n[advert]\ncheck_s = 0.5\nledgers = ["ledger-{i % 2}"]\n')
        n.start_org(org)
    yield n
    n.stop_all()


def discover(net: Net, org: str, *args: str) -> list[dict[str, Any]]:
    r = net.cli(org, "discover", *args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def test_every_organization_discovers_every_other(net: Net) -> None:
    for org in ORGS:
        found = {a["org_id"]: a for a in discover(net, org, "all")}
        assert set(found) == {*ORGS, "gov-1", "gov-2"}, org
        assert found["org-c"]["addresses"] == [net.orgs["org-c"].address]
        assert "finp2p.discovery" in found["org-a"]["capabilities"]
    by_ledger = [a["org_id"] for a in discover(net, "org-a", "ledger", "ledger-1")]
    assert by_ledger == ["org-b", "org-d"]
    assert [a["org_id"] for a in discover(net, "org-b", "capability", "finp2p.asset-transaction")] == ORGS
    route = json.loads(net.cli("org-a", "discover", "route", "org-d:101:dora", "--json").stdout)
    assert route["address"] == net.orgs["org-d"].address
    bad = net.cli("org-a", "discover", "route", "org-d:1:dora")
    assert bad.returncode == 1 and "FP4001" in bad.stderr
    mine = json.loads(net.cli("org-a", "advert", "show", "--json").stdout)
    assert mine["org_id"] == "org-a" and mine["sequence"] >= 1


def test_a_shared_resource_is_advertised_without_a_restart_and_seen_only_by_whom_it_may(net: Net) -> None:
    pid = net.orgs["org-c"].info["pid"]
    assert net.cli("org-c", "advert", "share", "org-c:102:bond-2031", "--topic", "bonds/2031").returncode == 0
    assert net.cli("org-c", "advert", "share", "org-c:101:alice", "--visible-to", "org:org-a").returncode == 0
    found = wait_for(lambda: discover(net, "org-b", "resource", "org-c:102:bond-2031"), what="the shared bond")
    assert found[0]["org_id"] == "org-c"
    assert {r["resource_id"]: r["topic"] for r in found[0]["resources"]} == {"org-c:102:bond-2031": "bonds/2031"}
    assert [a["org_id"] for a in discover(net, "org-a", "resource", "org-c:101:alice")] == ["org-c"]
    assert discover(net, "org-b", "resource", "org-c:101:alice") == [], "alice is visible to org-a only"
    assert net.orgs["org-c"].info["pid"] == pid


def test_a_changed_address_is_reached_and_announced(net: Net) -> None:
    # org-b follows a topic of org-a; after org-b moves, org-a's deliveries must follow it to the new address.
    assert net.cli("org-a", "acl", "grant", "org:org-b", "subscribe", "moves/*").returncode == 0
    r = net.cli("org-b", "pubsub", "subscribe", net.orgs["org-a"].address, "org-a", "moves/feed")
    assert r.returncode == 0, r.stderr
    new_port = free_port()
    config = net.org_config("org-b")
    config.write_text(
        config.read_text() + f'\n[peer]\nport = {new_port}\npublic_url = "https://127.0.0.1:{new_port}"\n'
    )
    net.orgs["org-b"].stop()
    net.start_org("org-b")
    new_url = f"https://127.0.0.1:{new_port}"
    assert net.orgs["org-b"].address == new_url
    found = discover(net, "org-a", "org", "org-b")
    assert found[0]["addresses"] == [new_url]
    ping = net.cli("org-a", "node", "ping", found[0]["addresses"][0], "--json")
    assert ping.returncode == 0 and json.loads(ping.stdout)["org_id"] == "org-b"

    def announced() -> bool:  # the running org-a node was told, which invalidates its discovery cache
        store = Store(f"sqlite:///{net.org_data('org-a') / 'finp2p.db'}", pool_size=1)
        try:
            msgs = [json.loads(m.body) for m in inbox(store, "registrar/adverts")]
        finally:
            store.close()
        return any(m["org_id"] == "org-b" and m["sequence"] == found[0]["sequence"] for m in msgs)

    wait_for(announced, what="org-a to hear of org-b's new advert")

    assert net.cli("org-a", "pubsub", "publish", "moves/feed", "--body", '{"after": "the move"}').returncode == 0

    def delivered_at_new_address() -> bool:
        out = net.cli("org-b", "pubsub", "inbox", "moves/feed", "--json").stdout
        return [m["body"] for m in json.loads(out)] == [{"after": "the move"}]

    wait_for(delivered_at_new_address, what="org-a's delivery to org-b's new address")


def test_discovery_survives_a_registrar_down_which_then_catches_up(net: Net) -> None:
    gov1 = net.governance["gov-1"]
    gov1.stop()
    try:
        # gov-1 is first in the genesis: queries fail over to gov-2.
        assert {a["org_id"] for a in discover(net, "org-a", "all")} >= set(ORGS)
        assert net.cli("org-d", "advert", "share", "org-d:102:note-7").returncode == 0
        wait_for(lambda: discover(net, "org-a", "resource", "org-d:102:note-7"), what="org-d's note via gov-2")
    finally:
        gov1.start()
    # Restarted, gov-1 pulls what it missed from gov-2; queries go to gov-1 first again.
    found = wait_for(lambda: discover(net, "org-b", "resource", "org-d:102:note-7"), what="gov-1 to catch up")
    assert found[0]["org_id"] == "org-d"


def test_stale_forged_and_foreign_adverts_are_refused(net: Net, tmp_path: Path) -> None:
    async def scenario() -> dict[str, str]:
        store = Store(f"sqlite:///{tmp_path / 'client.db'}")
        store.migrate()
        client = await client_of(net.org_data("org-a"), net.genesis_file, store)
        gov = net.governance["gov-1"].address
        own = Store(f"sqlite:///{net.org_data('org-a') / 'finp2p.db'}", pool_size=1)
        try:
            from finp2p.store.models import OwnAdvertRow

            row = own.call(lambda s: s.get(OwnAdvertRow, 1))
            assert row is not None
            current = Advert.from_dict(json.loads(row.document))
            found: dict[str, str] = {}
            older = adv.make(
                client.key,
                client.chain,
                network_id=client.network_id,
                sequence=current.sequence - 1,
                addresses=list(current.addresses),
                software=current.software,
                caps=current.capabilities,
                ledgers=[],
                groups=[],
                resources=[],
                lifetime_s=600,
            )  # genuinely signed, but older
            for name, doc in {
                "replayed": current.to_dict(),
                "stale": older.to_dict(),
                "forged": replace(current, addresses=("https://127.0.0.1:1",)).to_dict(),
            }.items():
                try:
                    await client.request(gov, "advert.publish", {"advert": doc})
                    found[name] = "accepted"
                except FinP2PError as err:
                    found[name] = err.code.code
            b_store = Store(f"sqlite:///{net.org_data('org-b') / 'finp2p.db'}", pool_size=1)
            b_row = b_store.call(lambda s: s.get(OwnAdvertRow, 1))
            b_store.close()
            assert b_row is not None
            b_doc = json.loads(b_row.document)
            try:
                await client.request(gov, "advert.publish", {"advert": b_doc})
                found["foreign"] = "accepted"
            except FinP2PError as err:
                found["foreign"] = err.code.code
            return found
        finally:
            own.close()
            await client.transport.close()
            store.close()

    found = asyncio.run(scenario())
    assert found == {"replayed": "FP4004", "stale": "FP4004", "forged": "FP2002", "foreign": "FP4006"}


def test_registration_outside_a_devnet_needs_public_addresses(tmp_path: Path) -> None:
    from tests.support.cli import run_cli

    root = tmp_path / "prod"
    port = free_port()
    r = run_cli("network", "init", str(root), "--network-id", "prodnet", "--governance", f"gov-p=127.0.0.1:{port}")
    assert r.returncode == 0, r.stderr
    from tests.support.nodes import NodeProcess

    gov = NodeProcess(root / "governance" / "gov-p" / "node.toml").start()
    try:
        config = root / "orgs" / "bank" / "node.toml"
        run_cli("config", "init", str(config), "--genesis", str(root / "genesis.json"))
        r = run_cli(
            "-c",
            str(config),
            "org",
            "register",
            "--org-id",
            "bank",
            "--name",
            "Bank",
            "--public-url",
            f"https://127.0.0.1:{free_port()}",
        )
        assert r.returncode == 1 and "FP4003" in r.stderr and "loopback" in r.stderr
    finally:
        gov.stop()
