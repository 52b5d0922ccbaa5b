"""A bank whose node keeps its state in PostgreSQL (as production nodes do), in a network with a SQLite one:
registration, mutual-TLS requests (replay window and idempotency on PostgreSQL), pub/sub both ways, push sharing."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from finp2p.store import Store
from tests.support.network import client_of, make_net
from tests.support.postgres import PostgresServer
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_a_node_on_postgresql(tmp_path: Path, postgres: PostgresServer) -> None:
    url = postgres.create_database(f"node_{uuid.uuid4().hex[:10]}")
    net = make_net(tmp_path / "net", ["gov-1"], auto_approve=True)
    try:
        net.governance["gov-1"].start()
        pg_config = net.org_config("bank-pg")
        text = pg_config.read_text().replace(
            'sqlite_synchronous = "FULL"', f'sqlite_synchronous = "FULL"\nurl = "{url}"'
        )
        pg_config.write_text(text)
        for org in ("bank-pg", "bank-lite"):
            assert net.register(org)[0] == 0
            config = net.org_config(org)
            config.write_text(config.read_text() + "\n[advert]\ncheck_s = 0.5\n")
            net.start_org(org)
        assert not (net.org_data("bank-pg") / "finp2p.db").exists(), "bank-pg keeps its state in PostgreSQL"

        # Requests to the PostgreSQL node: replay window and idempotency keys live in PostgreSQL.
        async def requests() -> tuple[dict[str, object], str]:
            store = Store(f"sqlite:///{tmp_path / 'client.db'}")
            store.migrate()
            client = await client_of(net.org_data("bank-lite"), net.genesis_file, store)
            try:
                first = await client.request(net.orgs["bank-pg"].address, "node.ping", {}, idempotency_key="k1")
                again = await client.request(net.orgs["bank-pg"].address, "node.ping", {}, idempotency_key="k1")
                assert again == first, "the stored first answer"
                from finp2p.network.envelope import seal

                env = seal(
                    client.key,
                    network_id=client.network_id,
                    type="node.ping",
                    body={},
                    sender_org="bank-lite",
                    chain=client.chain,
                )
                await client.transport.request(net.orgs["bank-pg"].address, env.encode(), timeout=5)
                replay = json.loads(
                    await client.transport.request(net.orgs["bank-pg"].address, env.encode(), timeout=5)
                )
                return first, replay["body"]["error"]["code"]
            finally:
                await client.transport.close()
                store.close()

        first, replay_code = asyncio.run(requests())
        assert first["org_id"] == "bank-pg" and replay_code == "FP2010"

        # Pub/sub with the PostgreSQL node as publisher, and as subscriber.
        for publisher, subscriber in (("bank-pg", "bank-lite"), ("bank-lite", "bank-pg")):
            assert net.cli(publisher, "acl", "grant", f"org:{subscriber}", "subscribe", "feed/*").returncode == 0
            r = net.cli(subscriber, "pubsub", "subscribe", net.orgs[publisher].address, publisher, "feed/x")
            assert r.returncode == 0, r.stderr
            assert net.cli(publisher, "pubsub", "publish", "feed/x", "--count", "15").returncode == 0

            def got(sub: str = subscriber, pub: str = publisher) -> bool:
                out = net.cli(sub, "pubsub", "inbox", "feed/x", "--publisher", pub, "--json").stdout
                return [m["seq"] for m in json.loads(out)] == list(range(1, 16))

            wait_for(got, what=f"{subscriber} to receive 15 messages from {publisher}")

        # Push sharing from the PostgreSQL node's private store.
        rid = "bank-pg:101:paul"
        assert net.cli("bank-pg", "data", "put", rid, "--body", '{"legal_name": "Paul"}').returncode == 0
        assert net.cli("bank-pg", "data", "share", rid, "--to", "bank-lite", "--push").returncode == 0

        def replica() -> bool:
            r = net.cli("bank-lite", "data", "get", rid, "--local", "--json")
            return r.returncode == 0 and json.loads(r.stdout)["data"]["legal_name"] == "Paul"

        wait_for(replica, what="the replica from the PostgreSQL node")
    finally:
        net.stop_all()
