"""Messaging benchmark: signed request/response over mutual TLS, broadcast to quorum, pub/sub throughput.

    .venv/bin/python -m bench.messaging [--seconds 3] [--nodes 50]

Nodes run in two worker processes (the machine's two cores), the asking node in this process, all on loopback.
Baselines are measured in the same run, against a bare aiohttp server in a process of its own echoing the same
payload bytes: over the same mutual TLS 1.3 with keep-alive (the node's own certificates and TLS settings), so TLS
is not counted as overhead, and in plain HTTP beside it. Beside them, for reference, the floor: the same echo over
the same TLS written on asyncio's protocol with no HTTP library. Ours and the baselines run in turn, in six short
rounds, so that a slower spell of this shared machine falls on all of them alike. A broadcast is measured beside
the same quorum of signed requests sent in parallel from the asking node to the same nodes. Aims: signed ÷ bare over
mutual TLS >= 0.5 at both concurrencies; time to a two-thirds quorum of 50 nodes <= 1.2 × the parallel signed
requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from finp2p.identity import tls
from finp2p.identity.genesis import Genesis
from finp2p.identity.local import LocalIdentity
from finp2p.network.directory import Member
from finp2p.network.envelope import seal
from finp2p.network.pubsub import append
from finp2p.store.models import SubscriberRow
from tests.support.ports import free_port

BODY = {"asset_id": "org-b:102:bond-2031", "quantity": 1_000_000, "note": "x" * 200}
TOPIC = "bench/topic"


async def side_by_side(
    calls: list[Callable[[], Awaitable[Any]]], concurrency: int, seconds: float, rounds: int = 6
) -> list[tuple[float, float, float]]:
    """Each of ``calls`` run by ``concurrency`` loops, in turn, in ``rounds`` bursts of ``seconds / rounds`` (a
    slower spell of this shared machine falls on all of them alike); each one's requests/s, p50 and p99 (ms) over
    its rounds together."""
    found: list[tuple[int, float, list[float]]] = [(0, 0.0, []) for _ in calls]
    for _ in range(rounds):
        for i, call in enumerate(calls):
            ops, elapsed, latencies = found[i]
            burst = await _burst(call, concurrency, seconds / rounds)
            found[i] = (ops + len(burst[1]), elapsed + burst[0], latencies + burst[1])
    out = []
    for ops, elapsed, latencies in found:
        q = statistics.quantiles(latencies, n=100)
        out.append((ops / elapsed, q[49] * 1000, q[98] * 1000))
    return out


async def load(
    call: Callable[[], Awaitable[Any]], concurrency: int, seconds: float, max_ops: int = 200_000
) -> tuple[float, float, float]:
    """Requests/s, p50 and p99 latency (ms) of ``call`` run by ``concurrency`` loops for ``seconds``."""
    elapsed, latencies = await _burst(call, concurrency, seconds, max_ops)
    q = statistics.quantiles(latencies, n=100)
    return len(latencies) / elapsed, q[49] * 1000, q[98] * 1000


async def _burst(
    call: Callable[[], Awaitable[Any]], concurrency: int, seconds: float, max_ops: int = 200_000
) -> tuple[float, list[float]]:
    """The time taken and each call's latency (s) of ``call`` run by ``concurrency`` loops for ``seconds``."""
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
    return time.perf_counter() - start, latencies


def _framed(buffer: bytearray) -> bytes | None:
    """The body of the first whole HTTP/1.1 message in ``buffer`` (Content-Length framed), taken out of it."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    length = 0
    for line in bytes(buffer[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if len(buffer) < end + 4 + length:
        return None
    body = bytes(buffer[end + 4 : end + 4 + length])
    del buffer[: end + 4 + length]
    return body


class _RawEcho(asyncio.Protocol):
    """An HTTP/1.1 echo written straight on asyncio's protocol, no HTTP library: what a request and its answer cost
    over this TLS in Python at the least (a floor for reference; it checks nothing a node must)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (body := _framed(self.buffer)) is not None:
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
            self.transport.write(head + body)  # type: ignore[attr-defined]


class _RawClient(asyncio.Protocol):
    """The client side of :class:`_RawEcho`: one request at a time on its connection."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.answer: asyncio.Future[bytes] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.answer is not None and (body := _framed(self.buffer)) is not None:
            self.answer.set_result(body)

    async def post(self, body: bytes) -> bytes:
        self.answer = asyncio.get_running_loop().create_future()
        head = b"POST /echo HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        self.transport.write(head % len(body) + body)  # type: ignore[attr-defined]
        return await self.answer


def bare_server(manifest_file: Path, port: int, tls_port: int, raw_port: int) -> None:
    """Echo POST bodies in plain HTTP on ``port`` and over mutual TLS 1.3 on ``tls_port``, with the certificate of
    the manifest's last node and the node's own TLS contexts; and with no HTTP library over the same TLS on
    ``raw_port``."""

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read(), content_type="application/json")

    async def serve() -> None:
        manifest = json.loads(manifest_file.read_text())
        spec = manifest["nodes"][-1]
        ident = LocalIdentity(Path(spec["dir"]))
        ctx = tls.server_context(
            str(ident.tls_chain_path),
            str(ident.tls_key_path),
            Genesis.load(Path(manifest["genesis"])).trust_pem,
            require_client_cert=True,
        )
        app = web.Application(client_max_size=1 << 20)
        app.router.add_post("/echo", echo)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await web.TCPSite(runner, "127.0.0.1", tls_port, ssl_context=ctx).start()
        raw = await asyncio.get_running_loop().create_server(_RawEcho, "127.0.0.1", raw_port, ssl=ctx)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
        raw.close()
        await runner.cleanup()

    asyncio.run(serve())


async def run(seconds: float, n_nodes: int, root: Path) -> None:
    manifest = mint(root, n_nodes + 2)  # the asking node, the nodes, and the bare server's certificate
    manifest_file = root / "manifest.json"
    manifest_file.write_text(json.dumps(manifest))
    me = manifest["nodes"][0]
    hosts = start_hosts(manifest_file, list(range(1, n_nodes + 1)), 2, (me["org_id"], TOPIC))
    bare_port, bare_tls_port, raw_tls_port = free_port(), free_port(), free_port()
    bare = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.messaging",
            "--bare-server",
            str(manifest_file),
            str(bare_port),
            str(bare_tls_port),
            str(raw_tls_port),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
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

        ident = LocalIdentity(Path(me["dir"]))
        client_ctx = tls.client_context(
            Genesis.load(Path(manifest["genesis"])).trust_pem, str(ident.tls_chain_path), str(ident.tls_key_path)
        )
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100, ssl=client_ctx)) as tls_session,
        ):

            async def plain() -> None:
                async with session.post(f"http://127.0.0.1:{bare_port}/echo", data=payload) as r:
                    await r.read()

            async def over_tls() -> None:
                async with tls_session.post(f"https://127.0.0.1:{bare_tls_port}/echo", data=payload) as r:
                    await r.read()

            for c in (1, 64):
                idle: asyncio.Queue[_RawClient] = asyncio.Queue()
                for _ in range(c):  # a connection per request in flight, as aiohttp's pool has
                    _, client = await asyncio.get_running_loop().create_connection(
                        _RawClient, "127.0.0.1", raw_tls_port, ssl=client_ctx, server_hostname="127.0.0.1"
                    )
                    idle.put_nowait(client)

                async def raw(idle: asyncio.Queue[_RawClient] = idle) -> None:
                    client = await idle.get()
                    await client.post(payload)
                    idle.put_nowait(client)

                ours, base, floor, bare_plain = await side_by_side([signed, over_tls, raw, plain], c, seconds)
                while not idle.empty():
                    idle.get_nowait().transport.close()
                ratio = ours[0] / base[0]
                rows.append(
                    [
                        f"signed request/response, {c} in flight",
                        f"{ours[0]:,.0f}/s",
                        f"{ours[1]:.2f}",
                        f"{ours[2]:.2f}",
                        f"{ratio:.2f} of bare mTLS (aim >= 0.5)",
                    ]
                )
                rows.append(
                    [
                        f"  bare aiohttp, mTLS 1.3, {c} in flight",
                        f"{base[0]:,.0f}/s",
                        f"{base[1]:.2f}",
                        f"{base[2]:.2f}",
                        "baseline",
                    ]
                )
                rows.append(
                    [
                        f"  no HTTP library, mTLS 1.3, {c} in flight",
                        f"{floor[0]:,.0f}/s",
                        f"{floor[1]:.2f}",
                        f"{floor[2]:.2f}",
                        f"{ours[0] / floor[0]:.2f} of it (the floor)",
                    ]
                )
                rows.append(
                    [
                        f"  bare aiohttp, plain HTTP, {c} in flight",
                        f"{bare_plain[0]:,.0f}/s",
                        f"{bare_plain[1]:.2f}",
                        f"{bare_plain[2]:.2f}",
                        f"{ours[0] / bare_plain[0]:.2f} of it (TLS as overhead)",
                    ]
                )

        directory, broadcaster = me_node.directory, me_node.broadcaster
        for n in (10, n_nodes):
            members = [
                Member(x["org_id"], x["fin_id"], x["address"], "organization") for x in manifest["nodes"][1 : n + 1]
            ]
            directory.set(members)
            quorum = math.ceil(2 * n / 3)

            async def broadcast(quorum: int = quorum) -> float:
                result = await broadcaster.ask("bench.value", {}, quorum=quorum, deadline_s=10)
                assert result.reached_quorum, result.to_dict()
                return result.elapsed_s

            async def in_parallel(
                members: list[Member] = members, quorum: int = quorum
            ) -> float:  # the baseline: a quorum's worth of signed requests, all at once
                started = time.monotonic()
                await asyncio.gather(
                    *(messenger.request(m.address, "bench.echo", {}, timeout=10) for m in members[:quorum])
                )
                return time.monotonic() - started

            for _ in range(3):  # warm the connection pools
                await broadcast()
                await in_parallel()
            times, base_times = [], []
            for _ in range(30):  # interleaved, so both see the same machine
                times.append(await broadcast() * 1000)
                base_times.append(await in_parallel() * 1000)
            q, qb = statistics.quantiles(times, n=100), statistics.quantiles(base_times, n=100)
            rows.append(
                [
                    f"broadcast to {n}, time to a quorum of {quorum}",
                    "",
                    f"{q[49]:.2f}",
                    f"{q[98]:.2f}",
                    f"{q[49] / qb[49]:.2f} × baseline (aim <= 1.2)",
                ]
            )
            rows.append([f"  {quorum} signed requests in parallel", "", f"{qb[49]:.2f}", f"{qb[98]:.2f}", "baseline"])

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
                f"pub/sub, 10 subscribers, {count} messages",
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
        assert bare.stdin is not None
        bare.stdin.close()
        try:
            bare.wait(timeout=10)
        except subprocess.TimeoutExpired:
            bare.kill()
            bare.wait()
    print_table(
        "messaging (loopback; nodes in 2 worker processes)", ["measurement", "rate", "p50 ms", "p99 ms", "ratio"], rows
    )


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--bare-server":
        bare_server(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per request/response measurement")
    parser.add_argument("--nodes", type=int, default=50, help="the larger broadcast's size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.seconds, args.nodes, Path(tmp)))


if __name__ == "__main__":
    main()
