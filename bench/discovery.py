"""Discovery benchmark: a registrar holding 10,000 adverts, and an advert change reaching 50 subscribed nodes.

    .venv/bin/python -m bench.discovery [--adverts 10000] [--nodes 50] [--seconds 3] [--changes 20]

The registrar (a governance node's registrar, its store and TLS listener) runs in this process, filled with real,
signed adverts of distinct organizations; queries come over mutual TLS from a member at concurrency 16. The
baseline is the same member's signed ``node.ping`` to the registrar, measured in turn with the queries in short
rounds: a query's cost above one signed round trip is the registrar's and the member's own.

Pages are asked as a node asks them: by reference, verified adverts returned. The member first discovers the whole
network (every advert fetched and verified once), as a running node has; "held" pages then cost a digest lookup
and a chain check per advert, "first sight" ones (nothing held) fetch and verify all 50.

The subscribed nodes run in two worker processes; an advert change reaching them (published by the member, stored
by the last subscriber) is measured beside a broadcast from the member to the same nodes, waiting for all of them,
the two in turn; the CPU each process spends on one of each is printed below the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlmodel import Session

from bench.common import print_table, process_cpu_s
from bench.messaging import side_by_side
from bench.netkit import mint, node, start_hosts, stop_hosts
from finp2p.builtins.https import HttpsSettings, HttpsTransport
from finp2p.governance.authority import Authority
from finp2p.governance.registrar import Registrar, store_advert
from finp2p.identity import credentials
from finp2p.identity.genesis import Genesis
from finp2p.identity.keys import SigningKey
from finp2p.identity.local import LocalIdentity
from finp2p.identity.replay import ReplayGuard
from finp2p.identity.trust import Trust
from finp2p.network import adverts as adv
from finp2p.network import capabilities
from finp2p.network.adverts import REGISTRAR_TOPIC
from finp2p.network.directory import Member
from finp2p.network.discovery import VerifiedAdverts
from finp2p.network.messaging import Incoming, Messenger
from finp2p.network.pubsub import PubSub
from finp2p.store import Store
from finp2p.store.models import SubscriberRow
from tests.support.ports import free_port


def fill(store: Store, authority: Authority, n: int) -> None:
    """``n`` organizations, each certified by the registrar's governance node, with a signed advert."""
    batch = []
    for i in range(n):
        key = SigningKey.generate()
        org = f"org{i:05d}"
        cred = credentials.issue(
            authority.key,
            network_id=authority.genesis.network_id,
            role="organization",
            subject=key.fin_id,
            name=org,
            org_id=org,
        )
        batch.append(
            adv.make(
                key,
                (cred, *authority.chain),
                network_id=authority.genesis.network_id,
                sequence=1,
                addresses=[f"https://127.0.0.1:{20000 + i % 40000}"],
                software="finp2p/bench",
                caps=capabilities.ours(),
                ledgers=[f"eip155:{i % 20}"],
                groups=[],
                resources=[],
                lifetime_s=86400,
            )
        )
        if len(batch) == 1000:
            _store_all(store, batch)
            batch = []
    _store_all(store, batch)


def _last_stored(readers: list[sqlite3.Connection], seq: int, stored: dict[int, int]) -> int | None:
    """When the last subscriber stored registrar message ``seq`` (its inbox's ``received_ms``, this machine's
    clock); ``None`` while one has not. ``stored`` keeps what earlier polls found, so that each asks only the
    subscribers still waited for (the poll runs in the registrar's process, and takes its CPU)."""
    query = "select received_ms from inbox_message where topic = ? and seq = ?"
    for i, db in enumerate(readers):
        if i not in stored and (row := db.execute(query, (REGISTRAR_TOPIC, seq)).fetchone()) is not None:
            stored[i] = int(row[0])
    return max(stored.values()) if len(stored) == len(readers) else None


def _cpu_row(cpu_ms: list[float]) -> str:
    """This process's CPU (the registrar's and the member's), each host's, and their sum."""
    return f"{cpu_ms[0]:.1f} in this process + hosts {' + '.join(f'{c:.1f}' for c in cpu_ms[1:])} = {sum(cpu_ms):.1f}"


def _store_all(store: Store, adverts: list[adv.Advert]) -> None:
    def op(s: Session) -> None:
        for a in adverts:
            store_advert(s, a, home=True)

    store.call(op)


async def run(n_adverts: int, n_nodes: int, seconds: float, root: Path, changes: int = 20) -> None:
    manifest = mint(root, n_nodes + 1)
    genesis = Genesis.load(Path(manifest["genesis"]))
    gov = LocalIdentity(root / "gov")
    authority = Authority.load(gov, genesis)
    store = Store(f"sqlite:///{root / 'registrar.db'}", pool_size=2)
    store.migrate()
    started = time.perf_counter()
    fill(store, authority, n_adverts)
    fill_s = time.perf_counter() - started

    port = free_port()
    url = f"https://127.0.0.1:{port}"
    transport = HttpsTransport(
        HttpsSettings(
            trust_pem=genesis.trust_pem, cert_chain_file=gov.tls_chain_path, key_file=gov.tls_key_path, port=port
        )
    )
    messenger = Messenger(
        key=gov.key(),
        org_id="gov",
        chain=gov.chain() or (),
        trust=Trust(genesis),
        replay=ReplayGuard(store, 120_000),
        transport=transport,
    )

    async def ping(msg: Incoming) -> dict[str, Any]:
        return {}

    messenger.register("node.ping", ping)
    pubsub = PubSub(store, messenger, None, url)
    Registrar(store, messenger.trust, messenger, pubsub, [url], url)
    await transport.start(messenger)

    member = await node(manifest, manifest["nodes"][0], serve=False)
    client = member.messenger
    # The member's verified adverts, as a node holds them once it has discovered the network: every advert fetched
    # once by reference and verified (a page then names its adverts by digest, and only changed ones are fetched).
    held = VerifiedAdverts(client)
    started = time.perf_counter()
    at: str | None = ""
    while at is not None:
        _, at = await held.page(url, {"by": "all", "cursor": at, "limit": adv.MAX_PAGE})
    warm_s = time.perf_counter() - started
    counter = iter(range(10**9))

    def by_org() -> dict[str, Any]:
        return {"by": "org", "value": f"org{next(counter) % n_adverts:05d}"}

    def by_ledger() -> dict[str, Any]:
        return {"by": "ledger", "value": f"eip155:{next(counter) % 20}", "limit": 50}

    def by_capability() -> dict[str, Any]:
        cursor = f"org{next(counter) % n_adverts:05d}"
        return {"by": "capability", "value": "finp2p.pubsub", "limit": 50, "cursor": cursor}

    async def signed_ping() -> Any:
        return await client.request(url, "node.ping", {})

    def held_page(body: Callable[[], dict[str, Any]]) -> Callable[[], Awaitable[Any]]:
        return lambda: held.page(url, body())

    def first_sight(body: Callable[[], dict[str, Any]]) -> Callable[[], Awaitable[Any]]:
        return lambda: VerifiedAdverts(client).page(url, body())  # none held: all fetched and verified

    async def whole(body: Callable[[], dict[str, Any]] = by_org) -> Any:
        return await client.request(url, "discover", body(), timeout=30)

    # (label, call, whether the issue's aim of 0.5 of a ping applies)
    queries: list[tuple[str, Callable[[], Awaitable[Any]], bool]] = [
        ("signed node.ping (baseline)", signed_ping, False),
        ("discover by organization, the advert itself", whole, False),
        ("discover by ledger, page of 50, adverts held", held_page(by_ledger), True),
        ("discover by capability, page of 50 at a cursor, held", held_page(by_capability), True),
        ("discover by ledger, page of 50, first sight", first_sight(by_ledger), False),
    ]
    measured = await side_by_side([call for _, call, _ in queries], 16, seconds * len(queries))
    base = measured[0][0]
    rows: list[list[str]] = [
        [label, f"{rate:,.0f}/s", f"{p50:.2f}", f"{p99:.2f}", f"{rate / base:.2f}" + (" (aim >= 0.5)" if aimed else "")]
        for (label, _, aimed), (rate, p50, p99) in zip(queries, measured, strict=True)
    ]

    # An advert change reaching the nodes that follow the registrar.
    subs = manifest["nodes"][1:]
    manifest_file = root / "manifest.json"
    manifest_file.write_text(json.dumps(manifest))
    hosts = start_hosts(manifest_file, list(range(1, n_nodes + 1)), 2, ("gov", REGISTRAR_TOPIC))
    try:
        subscribers = [
            SubscriberRow(topic=REGISTRAR_TOPIC, org_id=x["org_id"], address=x["address"], created_ms=0) for x in subs
        ]

        def provision(s: Session) -> None:
            for row in subscribers:
                s.merge(row)

        store.call(provision)
        await pubsub.start()
        readers = [sqlite3.connect(Path(x["dir"]) / "node.db", check_same_thread=False) for x in subs]
        me = manifest["nodes"][0]

        async def one_change(round_: int) -> float:
            advert = adv.make(
                client.key,
                client.chain,
                network_id=genesis.network_id,
                sequence=round_,
                addresses=[me["address"]],
                software="finp2p/bench",
                caps=capabilities.ours(),
                ledgers=[f"round-{round_}"],
                groups=[],
                resources=[],
                lifetime_s=600,
            )
            t, sent_ms = time.perf_counter(), time.time() * 1000
            await client.request(url, "advert.publish", {"advert": advert.to_dict()})
            # Done when the last subscriber stored it, by the time its node wrote down; polled from a thread, now
            # and then, so that the poll neither stalls nor delays the registrar serving in this loop.
            found: dict[int, int] = {}
            while (last := await asyncio.to_thread(_last_stored, readers, round_, found)) is None:
                if time.perf_counter() - t > 30:
                    raise RuntimeError(f"advert change {round_} did not reach every subscriber in 30 s")
                await asyncio.sleep(0.02)
            return last - sent_ms

        # The baseline: a broadcast from the member to the same nodes, waiting for every one of them to answer.
        member.directory.set([Member(x["org_id"], x["fin_id"], x["address"], "organization") for x in subs])

        async def one_broadcast() -> float:
            result = await member.broadcaster.ask("bench.value", {}, quorum=len(subs), deadline_s=10)
            assert result.reached_quorum, result.to_dict()
            return result.elapsed_s * 1000

        # In turn, so that both see the same machine; the first of each opens the connections and is not counted.
        await one_change(1)
        await one_broadcast()
        pids = [os.getpid(), *(p.pid for p in hosts)]
        times: list[float] = []
        broadcasts: list[float] = []
        change_cpu, broadcast_cpu = [0.0] * len(pids), [0.0] * len(pids)

        async def with_cpu(run: Awaitable[float], cpu: list[float]) -> float:
            before = [process_cpu_s(pid) for pid in pids]
            ms = await run
            for i, (pid, was) in enumerate(zip(pids, before, strict=True)):
                cpu[i] += (process_cpu_s(pid) - was) * 1000 / changes
            return ms

        for round_ in range(2, changes + 2):
            times.append(await with_cpu(one_change(round_), change_cpu))
            broadcasts.append(await with_cpu(one_broadcast(), broadcast_cpu))
        await pubsub.close()
    finally:
        stop_hosts(hosts)
    change, broadcast = statistics.median(times), statistics.median(broadcasts)
    rows.append(
        [
            f"advert change reaching {n_nodes} subscribed nodes",
            "",
            f"{change:.1f}",
            f"{max(times):.1f}",
            f"{change / broadcast:.2f} × a broadcast (aim <= 2)",
        ]
    )
    rows.append(
        [
            f"  broadcast to the same {n_nodes}, all answers",
            "",
            f"{broadcast:.1f}",
            f"{max(broadcasts):.1f}",
            "baseline",
        ]
    )
    await transport.close()
    await client.transport.close()
    store.close()
    member.store.close()
    print_table(
        f"discovery: registrar with {n_adverts:,} adverts (filled in {fill_s:.1f} s; all fetched and verified by the "
        f"member in {warm_s:.1f} s)",
        ["measurement", "rate", "p50 ms", "p99 ms", "ratio to baseline"],
        rows,
    )
    print(f"CPU ms a change:    {_cpu_row(change_cpu)}")
    print(f"CPU ms a broadcast: {_cpu_row(broadcast_cpu)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adverts", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--changes", type=int, default=20, help="advert changes (and broadcasts) timed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.adverts, args.nodes, args.seconds, Path(tmp), args.changes))


if __name__ == "__main__":
    main()
