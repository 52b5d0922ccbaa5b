"""A benchmark network: member identities minted in-process, nodes hosted by worker processes.

Identities come from the code a governance node runs to admit a member (``certify_organization``). A node host is
a process running several nodes, each with its own store, TLS listener and messenger, answering ``bench.echo``,
the broadcast question ``bench.value``, and pub/sub deliveries on pre-provisioned subscriptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finp2p.builtins.https import HttpsSettings, HttpsTransport
from finp2p.builtins.sql_acl_backend import SqlAclBackend
from finp2p.config import Settings
from finp2p.edge import gil
from finp2p.governance.authority import Authority, certify_organization
from finp2p.governance.founding import (
    FoundingMaterial,
    certify_governance,
    create_genesis,
    governance_request,
    install_governance,
)
from finp2p.identity.genesis import Genesis
from finp2p.identity.local import LocalIdentity
from finp2p.identity.replay import ReplayGuard
from finp2p.identity.trust import Identity, Trust
from finp2p.network.broadcast import Broadcaster
from finp2p.network.directory import Directory, Member
from finp2p.network.discovery import Discovery
from finp2p.network.messaging import Incoming, Messenger
from finp2p.network.pubsub import PubSub
from finp2p.privacy.cache import AclCache
from finp2p.privacy.sharing import PrivacyService
from finp2p.store import Store
from finp2p.store.models import SubscriptionRow
from tests.support.ports import free_port


def mint(root: Path, n: int) -> dict[str, Any]:
    """A genesis, a governance node and ``n`` members with credentials and TLS certificates; the manifest."""
    genesis = create_genesis(
        root, network_id="bench", founding_names=["founder"], rendezvous=["https://127.0.0.1:1"], devnet=True
    )
    founding = FoundingMaterial.load(root / "founding" / "founder")
    gov = LocalIdentity(root / "gov")
    install_governance(
        gov,
        genesis,
        certify_governance(
            founding, genesis, governance_request(gov, genesis, "gov", ["127.0.0.1"], "https://127.0.0.1:1")
        ),
    )
    authority = Authority.load(gov, genesis)
    nodes = []
    for i in range(n):
        org_id, port = f"n{i:02d}", free_port()
        ident = LocalIdentity(root / org_id)
        key, tls_key = ident.key(create=True), ident.tls_key(create=True)
        url = f"https://127.0.0.1:{port}"
        chain, certs = certify_organization(
            authority, key.fin_id, org_id, org_id, tls_key.public_key(), ["127.0.0.1"], url
        )
        ident.save_membership(chain, certs)
        nodes.append({"org_id": org_id, "fin_id": key.fin_id, "address": url, "port": port, "dir": str(root / org_id)})
    return {"genesis": str(root / "genesis.json"), "nodes": nodes}


class StaticDirectory(Directory):
    """A fixed member list: the benchmark measures broadcasting, not discovery."""

    def __init__(self, messenger: Messenger, members: list[Member]) -> None:
        super().__init__(Discovery(Settings(), messenger.replay.store, messenger, None))
        self._members = members

    async def members(self) -> list[Member]:
        return self._members

    def set(self, members: list[Member]) -> None:
        self._members = members


@dataclass
class BenchNode:
    messenger: Messenger
    pubsub: PubSub
    store: Store
    broadcaster: Broadcaster
    directory: StaticDirectory


async def node(
    manifest: dict[str, Any],
    spec: dict[str, Any],
    *,
    serve: bool = True,
    subscribe_to: tuple[str, str] | None = None,
    batching: bool = True,
) -> BenchNode:
    """One node as the given spec; with ``subscribe_to=(publisher org, topic)`` its inbox accepts that topic."""
    gil.favour_the_event_loop()  # as a node's process does (finp2p.edge.gil)
    genesis = Genesis.load(Path(manifest["genesis"]))
    directory = Path(spec["dir"])
    store = Store(f"sqlite:///{directory / 'node.db'}", pool_size=1)
    store.migrate()
    ident = LocalIdentity(directory)
    transport = HttpsTransport(
        HttpsSettings(
            trust_pem=genesis.trust_pem,
            cert_chain_file=ident.tls_chain_path,
            key_file=ident.tls_key_path,
            port=spec["port"],
            batching=batching,
        )
    )
    messenger = Messenger(
        key=ident.key(),
        org_id=spec["org_id"],
        chain=ident.chain() or (),
        trust=Trust(genesis),
        replay=ReplayGuard(store, 120_000),
        transport=transport,
    )

    async def echo(msg: Incoming) -> dict[str, Any]:
        return msg.body

    async def value(payload: dict[str, Any], asker: Identity) -> tuple[Any, int | None]:
        return "v", 1

    messenger.register("bench.echo", echo)
    members = StaticDirectory(messenger, [])
    broadcaster = Broadcaster(messenger, members, is_rendezvous=False)
    broadcaster.register_query("bench.value", value)
    pubsub = PubSub(store, messenger, None, spec["address"])
    acl = SqlAclBackend(store)
    cache = AclCache(acl)
    await cache.refresh()
    PrivacyService(store, messenger, acl, cache, pubsub, members.discovery)
    if subscribe_to is not None:
        publisher, topic = subscribe_to
        store.call(
            lambda s: s.merge(SubscriptionRow(publisher_org=publisher, topic=topic, publisher_address="https://unused"))
        )
    if serve:
        await transport.start(messenger)
    return BenchNode(messenger, pubsub, store, broadcaster, members)


async def host(manifest_file: Path, indices: list[int], subscribe_to: tuple[str, str] | None) -> None:
    manifest = json.loads(manifest_file.read_text())
    for i in indices:
        await node(manifest, manifest["nodes"][i], subscribe_to=subscribe_to)
    print("ready", flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin


def start_hosts(
    manifest_file: Path, indices: list[int], workers: int, subscribe_to: tuple[str, str] | None
) -> list[subprocess.Popen[str]]:
    procs = []
    for w in range(workers):
        share = indices[w::workers]
        if not share:
            continue
        args = [sys.executable, "-m", "bench.netkit", str(manifest_file), ",".join(map(str, share))]
        if subscribe_to:
            args += list(subscribe_to)
        procs.append(subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    for p in procs:
        assert p.stdout is not None
        line = p.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"a node host failed to start: {line!r}")
    return procs


def stop_hosts(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        if p.stdin:
            p.stdin.close()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


if __name__ == "__main__":
    sub = (sys.argv[3], sys.argv[4]) if len(sys.argv) > 4 else None
    asyncio.run(host(Path(sys.argv[1]), [int(i) for i in sys.argv[2].split(",")], sub))
