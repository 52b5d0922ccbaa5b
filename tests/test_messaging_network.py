"""Request/response, pub/sub and broadcast between node processes on loopback over real mutual TLS."""

from __future__ import annotations

import asyncio
import functools
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.network import pubsub
from finp2p.network.messaging import Messenger
from finp2p.store import Store
from tests.support.network import Net, client_of, make_net
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


async def as_org(net: Net, org_id: str, tmp_path: Path) -> tuple[Messenger, Store]:
    store = Store(f"sqlite:///{tmp_path / f'client-{org_id}.db'}")
    store.migrate()
    return await client_of(net.org_data(org_id), net.genesis_file, store), store


# -- request/response --------------------------------------------------------------------------------------------
@pytest.fixture
def pair(tmp_path: Path, good_plugin_site: Path) -> Iterator[Net]:
    net = make_net(tmp_path / "net", ["gov-1"], auto_approve=True, site=good_plugin_site)
    net.governance["gov-1"].start()
    for org in ("org-a", "org-b"):
        assert net.register(org)[0] == 0
    net.start_org("org-b")
    yield net
    net.stop_all()


def test_a_retried_request_runs_once_also_across_a_restart(pair: Net, tmp_path: Path) -> None:
    org_b = pair.orgs["org-b"]

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], FinP2PError]:
        client, store = await as_org(pair, "org-a", tmp_path)
        try:
            # The handler takes 1 s; each attempt gives up after 0.3 s, so the request is sent again while the
            # first attempt still runs (answered "in progress"), and once more after it finished.
            first = await client.request(
                org_b.address,
                "paper.slow_count",
                {"id": "t1", "sleep_ms": 1000},
                timeout=0.3,
                attempts=12,
                backoff_s=0.1,
                idempotency_key="key-t1",
            )
            org_b.stop()
            pair.start_org("org-b")
            again = await client.request(
                pair.orgs["org-b"].address, "paper.slow_count", {"id": "t1", "sleep_ms": 1000}, idempotency_key="key-t1"
            )
            try:
                await client.request(
                    pair.orgs["org-b"].address, "paper.slow_count", {"id": "other"}, idempotency_key="key-t1"
                )
            except FinP2PError as err:
                conflict = err
            return first, again, conflict
        finally:
            await client.transport.close()
            store.close()

    first, again, conflict = asyncio.run(scenario())
    assert first == {"id": "t1", "count": 1, "by": "org-b"}
    assert again == first, "the answer of the first execution, replayed after a restart"
    counts = json.loads((pair.org_data("org-b") / "paper-count.json").read_text())
    assert counts == {"t1": 1}, "executed exactly once"
    assert conflict.code is ErrorCode.IDEMPOTENCY_CONFLICT


def test_bad_input_is_refused_and_the_node_keeps_serving(pair: Net, tmp_path: Path) -> None:
    import ssl

    import aiohttp

    from finp2p.builtins.https import PATH
    from finp2p.identity.local import LocalIdentity
    from finp2p.network.envelope import seal

    org_b = pair.orgs["org-b"]
    url = org_b.address

    async def scenario() -> dict[str, Any]:
        client, store = await as_org(pair, "org-a", tmp_path)
        found: dict[str, Any] = {}
        try:

            async def code_of(payload: bytes) -> str:
                raw = await client.transport.request(url, payload, timeout=5)
                return str(json.loads(raw)["body"]["error"]["code"])

            ok = seal(
                client.key,
                network_id=client.network_id,
                type="node.ping",
                body={},
                sender_org="org-a",
                chain=client.chain,
            )
            assert json.loads(await client.transport.request(url, ok.encode(), timeout=5))["body"]["ok"]
            found["replay"] = await code_of(ok.encode())
            found["malformed"] = await code_of(b'{"version": 1, "type": 7}')
            unknown = seal(
                client.key,
                network_id=client.network_id,
                type="no.such.type",
                body={},
                sender_org="org-a",
                chain=client.chain,
            )
            found["unknown type"] = await code_of(unknown.encode())
            # Signed by org-b's own key, sent over org-a's TLS connection: the sender is not the TLS peer.
            b_key = LocalIdentity(pair.org_data("org-b")).key()
            spoofed = seal(b_key, network_id=client.network_id, type="node.ping", body={}, sender_org="org-b")
            found["spoofed sender"] = await code_of(spoofed.encode())
            try:
                await client.transport.request(url, b"x" * (2 << 20), timeout=5)
            except FinP2PError as err:
                found["oversized"] = err.code.code
            # Plain HTTP to a TLS port, and TLS without a client certificate: the connection is refused.
            async with aiohttp.ClientSession() as session:
                try:
                    await session.post(
                        url.replace("https", "http") + PATH, data=b"{}", timeout=aiohttp.ClientTimeout(5)
                    )
                    found["plain http"] = "answered"
                except (aiohttp.ClientError, OSError):
                    found["plain http"] = "refused"
                anon = ssl.create_default_context(cadata=client.trust.genesis.trust_pem)
                try:
                    resp = await session.post(url + PATH, data=ok.encode(), ssl=anon, timeout=aiohttp.ClientTimeout(5))
                    await resp.read()
                    found["no client certificate"] = "answered"
                except (aiohttp.ClientError, OSError):
                    found["no client certificate"] = "refused"
            # After all that, the node still answers a proper request.
            found["still serving"] = (await client.request(url, "node.ping", {}))["org_id"]
            return found
        finally:
            await client.transport.close()
            store.close()

    found = asyncio.run(scenario())
    assert found == {
        "replay": "FP2010",
        "malformed": "FP2001",
        "unknown type": "FP3004",
        "spoofed sender": "FP3003",
        "oversized": "FP3005",
        "plain http": "refused",
        "no client certificate": "refused",
        "still serving": "org-b",
    }


def test_a_certificate_from_outside_the_network_is_refused(pair: Net, tmp_path: Path) -> None:
    """A node of another network (its own founders, its own CA) cannot complete the TLS handshake."""
    other = make_net(tmp_path / "other", ["gov-x"], auto_approve=True)
    try:
        other.governance["gov-x"].start()
        assert other.register("org-z")[0] == 0
        r = other.cli("org-z", "node", "ping", pair.orgs["org-b"].address)
        assert r.returncode == 1 and "FP3002" in r.stderr
    finally:
        other.stop_all()
    assert pair.cli("org-a", "node", "ping", pair.orgs["org-b"].address).returncode == 0


# -- pub/sub -----------------------------------------------------------------------------------------------------
def inbox(net: Net, org: str, topic: str) -> list[dict[str, Any]]:
    """The subscriber's inbox, read from its database while it runs (the CLI's `pubsub inbox` reads the same)."""
    store = Store(f"sqlite:///{net.org_data(org) / 'finp2p.db'}", pool_size=1)
    try:
        return [{"seq": r.seq, "body": json.loads(r.body)} for r in pubsub.inbox(store, topic)]
    finally:
        store.close()


def has_all(net: Net, org: str) -> bool:
    return len(inbox(net, org, "news/bonds")) >= 50


def test_pubsub_with_a_subscriber_and_the_publisher_killed_and_restarted(tmp_path: Path) -> None:
    net = make_net(tmp_path / "net", ["gov-1"], auto_approve=True)
    orgs = ["pub", "s1", "s2", "s3"]
    try:
        net.governance["gov-1"].start()
        for org in orgs:
            assert net.register(org)[0] == 0
        for sub in ("s1", "s2", "s3"):
            assert net.cli("pub", "acl", "grant", f"org:{sub}", "subscribe", "news/*").returncode == 0
        for org in orgs:
            net.start_org(org)
        pub_url = net.orgs["pub"].address
        for sub in ("s1", "s2", "s3"):
            r = net.cli(sub, "pubsub", "subscribe", pub_url, "pub", "news/bonds")
            assert r.returncode == 0, r.stderr
        denied = net.cli("s3", "pubsub", "subscribe", pub_url, "pub", "secret/board")
        assert denied.returncode == 1 and "FP5001" in denied.stderr

        assert (
            net.cli("pub", "pubsub", "publish", "news/bonds", "--body", '{"batch": 1}', "--count", "20").returncode == 0
        )
        wait_for(lambda: len(inbox(net, "s2", "news/bonds")) >= 1, what="s2's first messages")
        net.orgs["s2"].stop(signal.SIGKILL)  # mid-stream
        assert (
            net.cli("pub", "pubsub", "publish", "news/bonds", "--body", '{"batch": 2}', "--count", "20").returncode == 0
        )
        net.orgs["pub"].stop(signal.SIGKILL)  # the publisher too, with messages not yet delivered to s2
        net.start_org("pub")
        assert (
            net.cli("pub", "pubsub", "publish", "news/bonds", "--body", '{"batch": 3}', "--count", "10").returncode == 0
        )
        net.start_org("s2")
        for sub in ("s1", "s2", "s3"):
            wait_for(functools.partial(has_all, net, sub), what=f"{sub}'s 50 messages")
        expected = [(b, n) for b, count in ((1, 20), (2, 20), (3, 10)) for n in range(1, count + 1)]
        cli_view = json.loads(net.cli("s2", "pubsub", "inbox", "news/bonds", "--json").stdout)
        assert [m["seq"] for m in cli_view] == list(range(1, 51))
        for sub in ("s1", "s2", "s3"):
            got = inbox(net, sub, "news/bonds")
            assert [m["seq"] for m in got] == list(range(1, 51)), f"{sub}: every message, in order, once"
            assert [(m["body"]["batch"], m["body"]["n"]) for m in got] == expected
    finally:
        net.stop_all()


# -- broadcast ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seven(tmp_path_factory: pytest.TempPathFactory, good_plugin_site: Path) -> Iterator[Net]:
    """Two rendezvous nodes; an origin o0 and six members o1..o6 of group 'pilot', split between them."""
    net = make_net(
        tmp_path_factory.mktemp("seven") / "net", ["gov-1", "gov-2"], auto_approve=True, site=good_plugin_site
    )
    for gov in net.governance.values():
        gov.start()
    for i in range(7):
        home = net.gov_url("gov-1" if i <= 3 else "gov-2")
        assert net.register(f"o{i}", "--rendezvous", home)[0] == 0
        if i:  # o1..o6 advertise membership of the group 'pilot'
            config = net.org_config(f"o{i}")
            config.write_text(config.read_text() + '\n[advert]\ngroups = ["pilot"]\n')
    for i in range(7):
        net.start_org(f"o{i}")
    net.orgs["o6"].stop()  # advertised, then down
    yield net
    net.stop_all()


def ask(net: Net, *args: str) -> dict[str, Any]:
    r = net.cli("o0", "broadcast", "paper.value", "--json", *args)
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def calls(net: Net, org: str, broadcast_tag: str) -> int:
    path = net.org_data(org) / "paper-broadcasts.jsonl"
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if json.loads(line)["id"] == broadcast_tag)


def answers_as(net: Net, confs: dict[str, dict[str, Any]]) -> None:
    """Set what each member answers to paper.value (default: the payload's 'expect', at height 10)."""
    for i in range(1, 7):
        path = net.org_data(f"o{i}") / "paper-value.json"
        conf = confs.get(f"o{i}")
        if conf is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(json.dumps(conf))


def test_broadcast_quorum_4_of_6_with_one_down_one_differing_and_one_stale(seven: Net) -> None:
    answers_as(seven, {"o3": {"delay": 2}, "o4": {"value": "v0", "height": 9}, "o5": {"value": "v2"}})
    result = ask(
        seven,
        "--payload",
        json.dumps({"id": "q1", "expect": "v1"}),
        "--group",
        "pilot",
        "--quorum",
        "4",
        "--deadline",
        "4",
    )
    assert result["reached_quorum"] and not result["consistent"]
    assert result["value"] == "v1"
    assert [a["org_id"] for a in result["answers"]] == ["o1", "o2", "o4", "o5"]  # o3 is slow, o6 is down
    assert [(a["org_id"], a["value"]) for a in result["differing"]] == [("o5", "v2")]
    assert [(a["org_id"], a["height"]) for a in result["out_of_date"]] == [("o4", 9)]
    assert result["missing"] == ["o3", "o6"]
    assert result["expected"] == ["o1", "o2", "o3", "o4", "o5", "o6"]


def test_broadcast_through_the_rendezvous_reaches_every_node_once(seven: Net) -> None:
    answers_as(seven, {})  # everyone agrees this time
    result = ask(
        seven,
        "--payload",
        json.dumps({"id": "q2", "expect": "v1"}),
        "--group",
        "pilot",
        "--quorum",
        "7",
        "--deadline",
        "4",
        "--via-rendezvous",
        "--encrypt",
    )
    by_org = {a["org_id"]: a for a in result["answers"]}
    assert sorted(by_org) == ["gov-1", "gov-2", "o1", "o2", "o3", "o4", "o5"]
    assert by_org["gov-1"]["role"] == "governance", "the rendezvous answers as an independent value"
    assert result["missing"] == ["o6"] and result["consistent"] is True  # 2 rendezvous + 5 live members = 7
    assert result["value"] == "v1" and result["differing"] == []
    for org in ("o1", "o2", "o3", "o4", "o5"):
        assert calls(seven, org, "q2") == 1, f"{org} answered more or less than once"
