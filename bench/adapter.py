"""Ledger-adapter benchmark: transfers through the HTTP adapter against the Ethereum plugin called directly, on one
Hardhat node.

    .venv/bin/python -m bench.adapter [--ops 200] [--in-flight 16] [--batch 64] [--window-ms 5]

Starts a Hardhat node on a free loopback port and ``finp2p adapter serve`` on it (both stopped by their PIDs at the
end); each path has its own contracts and operator on that node, so neither disturbs the other's nonces. Every
transfer carries an investor's signature over a router-style EIP712 template, made before the clock starts, so
both paths put the same work on the chain (the template's digest checked on-chain, once).

- **plugin, unbatched** (called directly, one operation a transaction): ``EthereumLedger.transfer`` in this
  process, with ``batch_max`` 1;
- **plugin, batched** (called directly): the same with ``--batch`` operations at most in one ``executeBatch``
  transaction, gathered for ``--window-ms``;
- **adapter, batched** over HTTP, alike (its profile's ``batch_max`` and ``batch_window_ms``): ``POST
  /api/assets/transfer`` (Idempotency-Key, signature verified, operation written, answered with its cid), then
  ``GET /api/operations/status/{cid}?wait=`` until the receipt, signed by the organization's key, is there.

Each at one transfer at a time and at ``--in-flight``; CPU per transfer of this process and of the adapter's. Aim:
adapter rate / the batched plugin's rate >= 0.8 at the same concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.common import in_flight, print_table, process_cpu_s
from devnet.hardhat import HardhatNode
from finp2p.identity.keys import SigningKey, save_key
from finp2p.ledger import OwnerConsent
from finp2p_ethereum.chain import rpc_chain
from finp2p_ethereum.deploy import deploy_contracts
from finp2p_ethereum.ledger import MAX_BATCH, BatchOptions, EthereumLedger
from tests.support.adapter import AdapterClient, AdapterProcess, Investor, deploy_profile, nonce
from tests.support.ports import free_port


@dataclass
class Measure:
    rate: float  # transfers per second
    latencies: list[float]
    cpu_ms: float  # CPU of this process (the caller) per transfer
    server_cpu_ms: float = 0.0  # CPU of the adapter's process per transfer


async def measured(
    fn: Callable[[int], Awaitable[float]], n: int, at_once: int, server_pid: int | None = None
) -> Measure:
    cpu, server = time.process_time(), process_cpu_s(server_pid) if server_pid else 0.0
    rate, latencies = await in_flight(fn, n, at_once)
    server_ms = (process_cpu_s(server_pid) - server) * 1000 / n if server_pid else 0.0
    return Measure(rate, latencies, (time.process_time() - cpu) * 1000 / n, server_ms)


async def direct(node: HardhatNode, ops: int, limit: int, batching: BatchOptions) -> list[Measure]:
    operator, alice, bob = SigningKey.generate(), Investor.new(), Investor.new()
    chain = rpc_chain(node.url)
    await chain.connect()
    deployment = await deploy_contracts(chain, operator)
    ledger = EthereumLedger(chain, operator, deployment, ledger_id=chain.ledger_id, batch=batching)
    asset = f"bench:102:{uuid.uuid4()}"
    await ledger.create_asset(asset, {})
    await ledger.issue(asset, alice.fin_id, 3 * ops + 100, "issue")

    def consents(n: int) -> list[OwnerConsent]:
        out = []
        for _ in range(n):
            signed = alice.eip712(asset, 1, bob.fin_id, nonce())
            template = signed["template"]
            out.append(OwnerConsent("EIP712", alice.fin_id, signed["signature"], template, "keccak-256"))
        return out

    async def batch(n: int, at_once: int) -> Measure:
        signed = consents(n)

        async def one(i: int) -> float:
            start = time.perf_counter()
            await ledger.transfer(asset, alice.fin_id, bob.fin_id, 1, uuid.uuid4().hex, signed[i])
            return time.perf_counter() - start

        return await measured(one, n, at_once)

    await batch(10, 1)  # warm connections and caches
    out = [await batch(ops, 1), await batch(ops, limit)]
    assert (await ledger.balance(asset, bob.fin_id)).available == 2 * ops + 10
    await ledger.close()
    return out


async def through_adapter(adapter: AdapterProcess, ledger_id: str, ops: int, limit: int) -> list[Measure]:
    assert adapter.proc is not None
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit * 2)) as session:
        api = AdapterClient(adapter.url, session, ledger_id, adapter.token)
        asset = await api.create_asset()
        alice, bob = Investor.new(), Investor.new()
        await api.issue(asset, alice, 3 * ops + 100)

        async def batch(n: int, at_once: int) -> Measure:
            bodies = [api.transfer_body(asset, alice, bob.fin_id, 1) for _ in range(n)]

            async def one(i: int) -> float:
                start = time.perf_counter()
                done = await api.run("/assets/transfer", bodies[i])
                assert "response" in done, done
                return time.perf_counter() - start

            assert adapter.proc is not None
            return await measured(one, n, at_once, adapter.proc.pid)

        await batch(10, 1)
        out = [await batch(ops, 1), await batch(ops, limit)]
        assert (await api.balance(asset, bob.fin_id))["available"] == 2 * ops + 10
        return out


def start_adapter(node: HardhatNode, work: Path, batch: BatchOptions) -> tuple[AdapterProcess, str]:
    org = SigningKey.generate()
    save_key(work / "org.key", org)
    profile = deploy_profile(
        node.url, org, work / "hardhat.toml", batch_max=batch.max_size, batch_window_ms=batch.window_s * 1000
    )
    args = ("--ledger", str(work / "hardhat.toml"), "--key", str(work / "org.key"))
    return AdapterProcess(work / "adapter", *args).start(), profile.ledger_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=200, help="transfers per measurement (bounded: at most 5000)")
    parser.add_argument("--in-flight", type=int, default=16, help="concurrent transfers in the second measurement")
    parser.add_argument(
        "--batch", type=int, default=MAX_BATCH, help=f"most operations in one transaction (1 to {MAX_BATCH})"
    )
    parser.add_argument("--window-ms", type=float, default=5.0, help="how long an operation waits for others (0-1000)")
    args = parser.parse_args()
    ops, limit = max(10, min(args.ops, 5000)), max(1, min(args.in_flight, 256))
    window_s = max(0.0, min(args.window_ms, 1000.0)) / 1000
    batched = BatchOptions(window_s, max(1, min(args.batch, MAX_BATCH)))
    work = Path(tempfile.mkdtemp(prefix="bench-adapter-"))
    node = HardhatNode(work / "hardhat", free_port()).start()
    adapter: AdapterProcess | None = None
    try:
        adapter, ledger_id = start_adapter(node, work, batched)
        single = asyncio.run(direct(node, ops, limit, BatchOptions(window_s, 1)))
        plugin = asyncio.run(direct(node, ops, limit, batched))
        served = asyncio.run(through_adapter(adapter, ledger_id, ops, limit))
    finally:
        if adapter is not None:
            adapter.stop()
        node.stop()

    def ms(values: list[float], q: float) -> str:
        return f"{statistics.quantiles(values, n=100)[int(q) - 1] * 1000:.1f}" if q < 100 else ""

    def row(label: str, m: Measure, cpu: str, ratio: str) -> list[str]:
        p50 = f"{statistics.median(m.latencies) * 1000:.1f}"
        return [label, f"{m.rate:,.0f}", p50, ms(m.latencies, 99), cpu, ratio]

    rows = []
    for i, label in enumerate(("one at a time", f"{limit} in flight")):
        one, base, m = single[i], plugin[i], served[i]
        rows.append(row(f"plugin, unbatched, {label}", one, f"{one.cpu_ms:.1f}", ""))
        rows.append(
            row(
                f"plugin, batched, {label}", base, f"{base.cpu_ms:.1f}", f"1.00 ({base.rate / one.rate:.2f}× unbatched)"
            )
        )
        cpu = f"{m.server_cpu_ms:.1f} + client {m.cpu_ms:.1f}"
        rows.append(row(f"adapter, batched, {label}", m, cpu, f"{m.rate / base.rate:.2f} (aim >= 0.8)"))
    print_table(
        f"Transfers on one Hardhat node ({ops} each; batches of at most {batched.max_size}, "
        f"gathered for {window_s * 1000:g} ms)",
        ["path", "transfers/s", "p50 ms", "p99 ms", "CPU ms per transfer", "ratio to the batched plugin"],
        rows,
    )


if __name__ == "__main__":
    main()
