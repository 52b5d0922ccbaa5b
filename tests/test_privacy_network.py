"""Private data between organizations as processes on loopback over mutual TLS: pull, push, denial, revocation,
ACL changes reaching the parties, replicas through updates and restarts, and a replaced ACL backend."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.privacy import records
from finp2p.store import Store
from tests.support.cli import run_cli
from tests.support.network import Net, client_of, make_net
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow
ALICE = "bank-a:101:alice"
ALICE_DATA = {
    "legal_name": "Alice Martin",
    "nationality": "FR",
    "kyc_status": "verified",
    "accreditation": "professional",
}


def local(net: Net, org: str, resource: str) -> dict[str, Any] | None:
    store = Store(f"sqlite:///{net.org_data(org) / 'finp2p.db'}", pool_size=1)
    try:
        row = store.call(lambda s: records.get(s, resource))
        return records.as_answer(row) if row else None
    finally:
        store.close()


def notices(net: Net, org: str) -> list[tuple[str, str]]:
    store = Store(f"sqlite:///{net.org_data(org) / 'finp2p.db'}", pool_size=1)
    try:
        return [(n.resource, n.event) for n in store.call(records.notices)]
    finally:
        store.close()


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    n = make_net(tmp_path_factory.mktemp("privacy") / "net", ["gov-1"], auto_approve=True)
    n.governance["gov-1"].start()
    for org in ("bank-a", "bank-b", "bank-c", "bank-d"):
        assert n.register(org)[0] == 0
        config = n.org_config(org)
        config.write_text(config.read_text() + "\n[advert]\ncheck_s = 0.5\n")
        n.start_org(org)
    r = n.cli("bank-a", "data", "put", ALICE, "--body", json.dumps(ALICE_DATA))
    assert r.returncode == 0, r.stderr
    yield n
    n.stop_all()


def get(net: Net, org: str, resource: str = ALICE) -> tuple[int, str, str]:
    r = net.cli(org, "data", "get", resource, "--json")
    return r.returncode, r.stdout, r.stderr


def test_pull_an_allowed_organization_reads_and_a_denied_one_gets_no_byte(net: Net) -> None:
    assert net.cli("bank-a", "data", "share", ALICE, "--to", "bank-b").returncode == 0
    code, out, err = get(net, "bank-b")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["data"]["legal_name"] == "Alice Martin" and answer["owner"] == "bank-a" and answer["version"] == 1
    wait_for(lambda: (ALICE, "available") in notices(net, "bank-b"), what="the pull announcement")
    assert (ALICE, "granted") in notices(net, "bank-b")

    code, out, err = get(net, "bank-d")
    assert code == 1 and "FP5001" in err
    for value in ALICE_DATA.values():
        assert value not in out and value not in err, "no byte of the data reaches a denied organization"


def test_push_a_replica_stays_current_through_updates_and_a_restart(net: Net) -> None:
    assert net.cli("bank-a", "data", "share", ALICE, "--to", "bank-c", "--push").returncode == 0
    replica = wait_for(lambda: local(net, "bank-c", ALICE), what="the replica")
    assert replica["replica"] and replica["data"]["legal_name"] == "Alice Martin"
    net.cli("bank-a", "data", "put", ALICE, "--body", json.dumps({**ALICE_DATA, "legal_name": "Alice M. Durand"}))
    wait_for(lambda: (local(net, "bank-c", ALICE) or {}).get("version") == 2, what="version 2 pushed")
    net.orgs["bank-c"].stop(signal.SIGKILL)  # offline while the owner updates
    net.cli("bank-a", "data", "put", ALICE, "--body", json.dumps({**ALICE_DATA, "kyc_status": "expired"}))
    net.start_org("bank-c")
    caught_up = wait_for(lambda: (r := local(net, "bank-c", ALICE)) and r["version"] == 3 and r, what="catch-up")
    assert caught_up["data"]["kyc_status"] == "expired"
    # The pull reader was told of each new version, and reads the newest.
    wait_for(lambda: notices(net, "bank-b").count((ALICE, "available")) >= 3, what="announcements")
    assert json.loads(get(net, "bank-b")[1])["version"] == 3


def test_access_withdrawn_takes_effect_at_once_and_reaches_the_parties(net: Net) -> None:
    assert get(net, "bank-d")[0] == 1
    assert net.cli("bank-a", "data", "share", ALICE, "--to", "bank-d").returncode == 0
    assert get(net, "bank-d")[0] == 0, "granted: readable on the very next request"
    r = net.cli("bank-a", "data", "unshare", ALICE, "--from", "bank-d", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["withdrawn"] is True
    code, _, err = get(net, "bank-d")
    assert code == 1 and "FP5001" in err, "withdrawn: refused on the very next request"
    assert notices(net, "bank-d")[-1] == (ALICE, "withdrawn")

    # Withdrawing the push reader stops the pushes and deletes its replica.
    r = net.cli("bank-a", "data", "unshare", ALICE, "--from", "bank-c", "--json")
    assert json.loads(r.stdout)["replica_deleted"] is True
    assert local(net, "bank-c", ALICE) is None
    net.cli("bank-a", "data", "put", ALICE, "--body", json.dumps(ALICE_DATA))
    time.sleep(1.5)
    assert local(net, "bank-c", ALICE) is None, "no more pushes after the withdrawal"


def test_the_rest_api_serves_private_data_to_authorised_applications(net: Net) -> None:
    import urllib.error
    import urllib.request

    from finp2p.api.server import openapi
    from tests.support.ports import free_port

    config = net.org_config("bank-b")
    config.write_text(config.read_text() + f"\n[api]\nport = {free_port()}\n")
    net.orgs["bank-b"].stop()
    node = net.start_org("bank-b")
    token = net.cli("bank-b", "api", "token", "kyc-desk").stdout.strip()
    assert token.startswith("fp2p_")

    def call(path: str, token: str | None = token) -> tuple[int, Any]:
        req = urllib.request.Request(
            node.info["api"] + path, headers={"Authorization": f"Bearer {token}"} if token else {}
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    status, body = call(f"/v1/data/{ALICE}")
    assert status == 200 and body["owner"] == "bank-a" and body["data"]["nationality"] == "FR"
    status, body = call(f"/v1/data/{ALICE}", token=None)
    assert status == 401 and body["error"]["code"] == "FP8001"
    status, body = call(f"/v1/data/{ALICE}", token="fp2p_not-a-token")
    assert status == 401
    status, body = call("/v1/data/bank-a:101:nobody")
    assert status == 403 and body["error"]["code"] == "FP5001", "no grant on that record at its owner"
    status, body = call("/v1/data/not-a-resource-id")
    assert status == 400 and body["error"]["code"] == "FP4001"
    assert call("/openapi.json") == (200, openapi())


def test_a_revoked_organization_is_denied_on_its_next_request(net: Net, tmp_path: Path) -> None:
    assert get(net, "bank-b")[0] == 0
    gov = net.root / "governance" / "gov-1" / "node.toml"
    assert run_cli("-c", str(gov), "governance", "revoke", "bank-b", "--reason", "test").returncode == 0

    async def ask() -> FinP2PError:
        store = Store(f"sqlite:///{tmp_path / 'b.db'}")
        store.migrate()
        client = await client_of(net.org_data("bank-b"), net.genesis_file, store)  # as a rogue bank-b would
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    await client.request(net.orgs["bank-a"].address, "private.get", {"resource_id": ALICE})
                except FinP2PError as err:
                    return err
                await asyncio.sleep(0.1)
            raise AssertionError("bank-a kept answering a revoked organization")
        finally:
            await client.transport.close()
            store.close()

    err = asyncio.run(ask())
    assert err.code is ErrorCode.CREDENTIAL_REVOKED and err.detail.startswith(net.orgs["bank-a"].address)


def test_a_replaced_acl_backend_is_used(tmp_path: Path, good_plugin_site: Path) -> None:
    n = make_net(tmp_path / "net", ["gov-1"], auto_approve=True, site=good_plugin_site)
    try:
        n.governance["gov-1"].start()
        for org in ("own", "friend", "stranger"):
            assert n.register(org)[0] == 0
        owner = n.org_config("own")
        owner.write_text(owner.read_text().replace('backend = "sql"', 'backend = "file"'))
        for org in ("own", "friend", "stranger"):
            n.start_org(org)
        assert n.cli("own", "data", "put", "own:102:bond", "--body", '{"name": "Own Bond 2031"}').returncode == 0
        (n.org_data("own") / "acl.json").write_text(json.dumps({"rules": [["org:friend", "read", "own:102:*"]]}))
        # The file backend is read on every request; the node's cache of it refreshes within seconds.
        r = wait_for(
            lambda: (x := n.cli("friend", "data", "get", "own:102:bond", "--json")).returncode == 0 and x,
            what="the file backend's grant",
        )
        assert json.loads(r.stdout)["data"]["name"] == "Own Bond 2031"
        denied = n.cli("stranger", "data", "get", "own:102:bond")
        assert denied.returncode == 1 and "FP5001" in denied.stderr
        rules = json.loads(n.cli("own", "acl", "list", "--json").stdout)
        assert rules == [{"subject": "org:friend", "action": "read", "resource": "own:102:*"}], "listed from the file"
    finally:
        n.stop_all()


def test_the_rest_api_grants_and_withdraws_access_as_the_command_does(net: Net) -> None:
    """bank-a's own application shares a user's record with bank-c through the REST API (as `finp2p data share`
    does), bank-c reads it, the application withdraws the access, bank-c is refused; bad requests are 400 with the
    field named, another organization's record is not bank-a's to share."""
    import urllib.error
    import urllib.request

    from tests.support.ports import free_port

    zoe = "bank-a:101:zoe"
    assert (
        net.cli(
            "bank-a", "data", "put", zoe, "--body", json.dumps({"legal_name": "Zoe", "kyc_status": "verified"})
        ).returncode
        == 0
    )
    config = net.org_config("bank-a")
    config.write_text(config.read_text() + f"\n[api]\nport = {free_port()}\n")
    net.orgs["bank-a"].stop()
    node = net.start_org("bank-a")
    token = net.cli("bank-a", "api", "token", "kyc-desk").stdout.strip()

    def post(path: str, body: Any) -> tuple[int, Any]:
        req = urllib.request.Request(
            node.info["api"] + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    assert get(net, "bank-c", zoe)[0] != 0, "not shared yet"
    status, body = post(f"/v1/data/{zoe}/share", {"org_id": "bank-c"})
    assert (status, body) == (200, {"resource_id": zoe, "org_id": "bank-c", "mode": "pull"}), body
    code, out, _ = get(net, "bank-c", zoe)
    assert code == 0 and json.loads(out)["data"]["kyc_status"] == "verified"
    status, body = post(f"/v1/data/{zoe}/unshare", {"org_id": "bank-c"})
    assert status == 200 and body["withdrawn"] is True, body
    code, _, err = get(net, "bank-c", zoe)
    assert code != 0 and "FP5001" in err

    bads: list[Any] = [{"org_id": "Bank C!"}, {"org_id": "bank-c", "push": "yes"}, {"org_id": "bank-c", "extra": 1}, []]
    for bad in bads:
        status, body = post(f"/v1/data/{zoe}/share", bad)
        assert status == 400 and body["error"]["code"] in ("FP2001", "FP7010"), (bad, body)
    status, body = post("/v1/data/bank-b:101:someone/share", {"org_id": "bank-c"})
    assert status == 403 and body["error"]["code"] == "FP5001", body
    status, body = post("/v1/data/bank-b:101:someone/unshare", {"org_id": "bank-c"})
    assert status == 403, body
