"""Messaging benchmark: signed request/response over mutual TLS, broadcast to quorum, pub/sub throughput.

    .venv/bin/python -m bench.messaging [--seconds 3] [--nodes 50]

Nodes run in two worker processes (the machine's two cores), the asking node in this process, all on loopback.
Baselines are measured in the same run: bare aiohttp (no TLS, no signature, the same payload bytes) for
request/response, and one signed request/response round trip for broadcast. Aims: signed/bare >= 0.5 at both
concurrencies; time to a two-thirds quorum at 50 nodes <= 5 round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import print_table
from bench.netkit import mint, node, start_hosts, stop_hosts
from finp2p.network.directory import Member
from finp2p.network.envelope import seal
from finp2p.network.pubsub import append
from finp2p.store.models import SubscriberRow
from tests.support.ports import free_port

BODY = {"asset_id": "org-b:102:bond-2031", "quantity": 1_000_000, "note": "x" * 200}
TOPIC = "bench/topic"


async def load(
    call: Callable[[], Awaitable[Any]], concurrency: int, seconds: float, max_ops: int = 200_000
) -> tuple[float, float, float]:
    """Requests/s, p50 and p99 latency (ms) of ``call`` run by ``concurrency`` loops for ``seconds``."""
    for _ in range(20):
        await call()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        while time.perf_counter() < deadline and len(latencies) < max_ops:
            t = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return len(latencies) / elapsed, q[49] * 1000, q[98] * 1000


def bare_server(port: int) -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read(), content_type="application/json")

    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/echo", echo)
    print("ready", flush=True)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def run(seconds: float, n_nodes: int, root: Path) -> None:
    manifest = mint(root, n_nodes + 1)
    manifest_file = root / "manifest.json"
    import json

    manifest_file.write_text(json.dumps(manifest))
    me = manifest["nodes"][0]
    hosts = start_hosts(manifest_file, list(range(1, n_nodes + 1)), 2, (me["org_id"], TOPIC))
    bare_port = free_port()
    bare = subprocess.Popen(
        [sys.executable, "-m", "bench.messaging", "--bare-server", str(bare_port)], stdout=subprocess.PIPE, text=True
    )
    assert bare.stdout is not None and bare.stdout.readline().strip() == "ready"
    rows: list[list[str]] = []
    try:
        me_node = await node(manifest, me, serve=False)
        messenger, pubsub, store = me_node.messenger, me_node.pubsub, me_node.store
        target = manifest["nodes"][1]["address"]
        payload = seal(
            messenger.key,
            network_id=messenger.network_id,
            type="bench.echo",
            body=BODY,
            sender_org=me["org_id"],
            chain=messenger.chain,
        ).encode()

        async def signed() -> None:
            await messenger.request(target, "bench.echo", BODY, timeout=10)

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:

            async def plain() -> None:
                async with session.post(f"http://127.0.0.1:{bare_port}/echo", data=payload) as r:
                    await r.read()

            rtt = 0.0
            for c in (1, 64):
                ours = await load(signed, c, seconds)
                base = await load(plain, c, seconds)
                if c == 1:
                    rtt = ours[1]
                rows.append(
                    [
                        f"request/response, concurrency {c}",
                        f"{ours[0]:,.0f}/s",
                        f"{ours[1]:.2f}",
                        f"{ours[2]:.2f}",
                        f"{ours[0] / base[0]:.2f} of bare aiohttp (aim >= 0.5)",
                    ]
                )
                rows.append(
                    [
                        f"  bare aiohttp, concurrency {c}",
                        f"{base[0]:,.0f}/s",
                        f"{base[1]:.2f}",
                        f"{base[2]:.2f}",
                        "baseline",
                    ]
                )

        directory, broadcaster = me_node.directory, me_node.broadcaster
        for n in (10, n_nodes):
            directory.set(
                [Member(s["org_id"], s["fin_id"], s["address"], "organization") for s in manifest["nodes"][1 : n + 1]]
            )
            quorum = math.ceil(2 * n / 3)
            times = []
            for _ in range(3):  # warm the connection pool
                await broadcaster.ask("bench.value", {}, quorum=quorum, deadline_s=10)
            for _ in range(20):
                result = await broadcaster.ask("bench.value", {}, quorum=quorum, deadline_s=10)
                assert result.reached_quorum, result.to_dict()
                times.append(result.elapsed_s * 1000)
            q = statistics.quantiles(times, n=100)
            aim = " (aim <= 5)" if n == n_nodes else ""
            rows.append(
                [
                    f"broadcast to {n}, quorum {quorum}",
                    "",
                    f"{q[49]:.2f}",
                    f"{q[98]:.2f}",
                    f"{q[49] / rtt:.1f} round trips{aim}",
                ]
            )

        # pub/sub: 10 subscribers, messages queued first, then delivered by the publisher's workers
        subs = manifest["nodes"][1:11]
        count = 2000
        store.call(
            lambda s: [
                s.merge(SubscriberRow(topic=TOPIC, org_id=x["org_id"], address=x["address"], created_ms=0))
                for x in subs
            ]
        )
        store.call(lambda s: [append(s, TOPIC, {"i": i, "pad": "y" * 100}) for i in range(count)])
        start = time.perf_counter()
        await pubsub.start()
        dbs = [Path(x["dir"]) / "node.db" for x in subs]
        while True:
            done = [sqlite3.connect(db).execute("select count(*) from inbox_message").fetchone()[0] for db in dbs]
            if min(done) >= count or time.perf_counter() - start > 120:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - start
        await pubsub.close()
        rows.append(
            [
                f"pub/sub to 10 subscribers ({count} messages)",
                f"{min(done) / elapsed:,.0f} msg/s",
                "",
                "",
                f"{sum(done) / elapsed:,.0f} deliveries/s",
            ]
        )
        await messenger.transport.close()
        store.close()
    finally:
        stop_hosts(hosts)
        bare.terminate()
        bare.wait()
    print_table(
        "messaging (loopback; nodes in 2 worker processes)", ["measurement", "rate", "p50 ms", "p99 ms", "ratio"], rows
    )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--bare-server":
        bare_server(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per request/response measurement")
    parser.add_argument("--nodes", type=int, default=50, help="the larger broadcast's size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.seconds, args.nodes, Path(tmp)))


if __name__ == "__main__":
    main()
