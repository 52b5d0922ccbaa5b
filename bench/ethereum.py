"""Ethereum benchmark: operations through the plugin against bare web3.py, on one Hardhat node.

    .venv/bin/python -m bench.ethereum [--ops 200] [--in-flight 16]

Starts a Hardhat node on a free loopback port (stopped by its PID at the end) and deploys the contracts. Then, on
the same node and contracts:

- **plugin, one at a time**: ``EthereumLedger.transfer`` (pre-check by gas estimate, local nonce, signed type-2
  transaction, receipt awaited, event decoded into a LedgerTransaction);
- **bare web3.py, one at a time**: the same ``transfer`` calls built with ``contract.functions.transfer(...)
  .build_transaction`` (which estimates gas too), signed with eth-account, sent raw, receipt awaited at the same
  poll interval. Aim: plugin rate / bare rate >= 0.8;
- **plugin, many in flight**: the same operations with ``--in-flight`` submitted concurrently; the speed-up over one
  at a time is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from eth_account import Account

from bench.common import print_table
from devnet.hardhat import HardhatNode
from finp2p.identity.keys import SigningKey
from finp2p_ethereum.chain import rpc_chain
from finp2p_ethereum.consent import Operation, sign_consent
from finp2p_ethereum.deploy import deploy_contracts
from finp2p_ethereum.ledger import EthereumLedger
from finp2p_ethereum.submit import SubmitOptions
from tests.support.ports import free_port

POLL_S = 0.02


async def run(ops: int, in_flight: int, node: HardhatNode) -> list[list[str]]:
    operator, alice, bob = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    chain = rpc_chain(node.url)
    await chain.connect()
    deployment = await deploy_contracts(chain, operator)
    ledger = EthereumLedger(
        chain, operator, deployment, ledger_id=chain.ledger_id, options=SubmitOptions(poll_s=POLL_S)
    )
    asset = "bench:102:asset"
    await ledger.create_asset(asset, {})
    await ledger.issue(asset, alice.fin_id, 10 * ops * 3 + 10, "bench-issue")

    def signed(prefix: str, n: int) -> list[tuple[Operation, bytes]]:
        out = []
        for i in range(n):
            op = Operation(f"{prefix}-{i}", asset, alice.fin_id, bob.fin_id, 1)
            consent = sign_consent(alice, "Transfer", op, chain.chain_id, deployment.assets)
            out.append((op, bytes.fromhex(consent.signature)))
        return out

    async def plugin_one(op: Operation, signature: bytes) -> float:
        start = time.perf_counter()
        consent = sign_consent(alice, "Transfer", op, chain.chain_id, deployment.assets)
        await ledger.transfer(asset, op.source, op.destination, op.quantity, op.operation_id, consent)
        return time.perf_counter() - start

    account = Account.from_key(operator.secret_bytes())
    contract = chain.w3.eth.contract(
        address=chain.w3.to_checksum_address(deployment.assets), abi=ledger._assets_abi.abi
    )
    nonce = 0
    # Fees fetched once, as the plugin caches them: the baseline pays for no call the plugin avoids.
    base_fee = int((await chain.w3.eth.get_block("latest"))["baseFeePerGas"])

    async def bare_one(op: Operation, signature: bytes) -> float:
        nonlocal nonce
        start = time.perf_counter()
        params: Any = {
            "from": account.address,
            "nonce": nonce,
            "maxFeePerGas": 2 * base_fee + 10**9,
            "maxPriorityFeePerGas": 10**9,
        }
        tx = await contract.functions.transfer(op.as_abi(), (b"\0" * 32, signature)).build_transaction(params)
        nonce += 1
        raw = account.sign_transaction(tx).raw_transaction
        tx_hash = await chain.w3.eth.send_raw_transaction(raw)
        receipt = await chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=POLL_S)
        assert receipt["status"] == 1
        return time.perf_counter() - start

    async def sequential(
        fn: Callable[[Operation, bytes], Awaitable[float]], batch: list[tuple[Operation, bytes]]
    ) -> tuple[float, list[float]]:
        # Both paths send as the operator: each starts from the chain's own count of its transactions.
        nonlocal nonce
        nonce = await chain.w3.eth.get_transaction_count(account.address, "pending")
        ledger.submitter._nonce = None
        start = time.perf_counter()
        latencies = [await fn(op, sig) for op, sig in batch]
        return len(batch) / (time.perf_counter() - start), latencies

    # Warm both paths (connections, caches) before measuring; then interleave to share the node's drift.
    await sequential(plugin_one, signed("warm-p", 10))
    await sequential(bare_one, signed("warm-b", 10))
    plugin_rate, plugin_lat = await sequential(plugin_one, signed("p", ops))
    bare_rate, bare_lat = await sequential(bare_one, signed("b", ops))
    ledger.submitter._nonce = None

    gate = asyncio.Semaphore(in_flight)
    batch = signed("c", ops)

    async def gated(op: Operation, signature: bytes) -> float:
        async with gate:
            return await plugin_one(op, signature)

    start = time.perf_counter()
    concurrent_lat = await asyncio.gather(*(gated(op, sig) for op, sig in batch))
    concurrent_rate = ops / (time.perf_counter() - start)
    balance = await ledger.balance(asset, bob.fin_id)
    assert balance.available == ops * 3 + 20, balance
    await ledger.close()

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.1f}"

    return [
        ["bare web3.py, one at a time", f"{bare_rate:,.0f}", ms(bare_lat), "1.00 (baseline)"],
        ["plugin, one at a time", f"{plugin_rate:,.0f}", ms(plugin_lat), f"{plugin_rate / bare_rate:.2f}"],
        [
            f"plugin, {in_flight} in flight",
            f"{concurrent_rate:,.0f}",
            ms(list(concurrent_lat)),
            f"{concurrent_rate / bare_rate:.2f} ({concurrent_rate / plugin_rate:.1f}x one at a time)",
        ],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=200, help="transfers per measurement (bounded: at most 5000)")
    parser.add_argument("--in-flight", type=int, default=16, help="concurrent operations in the last measurement")
    args = parser.parse_args()
    ops = max(10, min(args.ops, 5000))
    node = HardhatNode(Path(tempfile.mkdtemp(prefix="bench-hardhat-")), free_port()).start()
    try:
        rows = asyncio.run(run(ops, max(1, args.in_flight), node))
    finally:
        node.stop()
    print_table(
        f"Ethereum transfers on one Hardhat node ({ops} each)",
        ["path", "transfers/s", "p50 ms", "ratio to bare web3.py"],
        rows,
    )


if __name__ == "__main__":
    main()
