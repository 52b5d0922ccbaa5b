"""End-to-end transfers benchmark: from the requester's REST call to its recorded receipt, against bare web3.py.

    .venv/bin/python -m bench.transfers [--transfers 200] [--in-flight 16]

Starts a Hardhat node (free port), a governance node and two banks as processes on loopback (mutual TLS), all
stopped by their PIDs at the end. bank-a manages an asset on the Hardhat chain; bank-b's application asks for
transfers between two of its users through bank-b's REST API. Each transfer is routed to bank-a's node, checked
(the owner's consent, compliance), executed on the chain, answered with a signed receipt that bank-b verifies and
records on its own contracts (receipts arriving together share one recording transaction). Timed from the POST to
the moment ``GET /v1/operations/{id}`` says ``recorded``.

Baseline, same run, same chain: bare web3.py sending the same contract's ``transfer`` calls (signed locally,
receipts awaited) with the same number in flight. Aim: end-to-end rate / bare rate >= 0.7.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from eth_account import Account

from bench.common import in_flight as run_in_flight
from bench.common import print_table
from devnet.hardhat import HardhatNode
from finp2p.identity.keys import SigningKey, load_key
from finp2p.ledger_profiles import load_profile
from finp2p_ethereum.artifacts import artifact
from finp2p_ethereum.chain import rpc_chain
from finp2p_ethereum.consent import Operation, adapter_template
from tests.support.network import make_net
from tests.support.ports import free_port

POLL_S = 0.02


class Api:
    def __init__(self, http: aiohttp.ClientSession, url: str, token: str) -> None:
        self.http, self.url, self.token = http, url, token

    async def call(self, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        if key:
            headers["Idempotency-Key"] = key
        async with self.http.request(method, self.url + path, json=body, headers=headers) as resp:
            answer = await resp.json()
            if resp.status >= 300:
                raise RuntimeError(f"{method} {path}: {resp.status} {answer}")
            return answer


async def end_to_end(bank_a: Api, bank_b: Api, transfers: int, in_flight: int) -> tuple[float, list[float], str]:
    alice, bob = SigningKey.generate(), SigningKey.generate()
    asset = (await bank_a.call("POST", "/v1/assets", {"name": "bench", "ledger_id": "eip155:31337"}, "a"))["asset_id"]
    issue = {
        "operation": "issue",
        "asset_id": asset,
        "quantity": 10**9,
        "operation_id": "issue",
        "destination": alice.fin_id,
    }
    await _done(bank_a, (await bank_a.call("POST", "/v1/operations", issue, "issue"))["id"])
    # The consent template's domain, asked once; each transfer's template is then computed as a wallet would.
    probe = {"operation": "transfer", "asset_id": asset, "quantity": 1, "operation_id": "probe"}
    probe |= {"source": alice.fin_id, "destination": bob.fin_id}
    domain = (await bank_b.call("POST", "/v1/consent", probe))["template"]["domain"]

    def body(n: int) -> dict[str, Any]:
        op = Operation(f"t-{n}-{uuid.uuid4().hex[:8]}", asset, alice.fin_id, bob.fin_id, 1)
        template = adapter_template("Transfer", op, domain["chainId"], domain["verifyingContract"])
        signature = alice.sign_digest(bytes.fromhex(template["hash"])).hex()
        return {
            "operation": "transfer",
            "asset_id": asset,
            "quantity": 1,
            "operation_id": op.operation_id,
            "source": alice.fin_id,
            "destination": bob.fin_id,
            "consent": {"template": "EIP712", "signer": alice.fin_id, "signature": signature, "payload": template},
        }

    async def one(n: int) -> float:
        started = time.perf_counter()
        accepted = await bank_b.call("POST", "/v1/operations", body(n), uuid.uuid4().hex)
        await _done(bank_b, accepted["id"])
        return time.perf_counter() - started

    for n in range(5):  # warm up connections and caches
        await one(-n - 1)
    rate, latencies = await run_in_flight(one, transfers, in_flight)
    balance = await bank_b.call("GET", f"/v1/balances?asset_id={asset}&fin_id={bob.fin_id}")
    assert int(balance["available"]) == transfers + 5, balance
    receipts = (await bank_b.call("GET", "/v1/receipts"))["receipts"]
    batches = len({r["record"]["transaction_id"] for r in receipts if r["receipt"]["operationType"] == "transfer"})
    return rate, latencies, f"{batches} recording transactions for {transfers + 5} receipts"


async def _done(api: Api, op_id: str) -> None:
    while True:
        status = await api.call("GET", f"/v1/operations/{op_id}?wait=30")
        if status["state"] == "recorded":
            return
        if status["state"] == "failed":
            raise RuntimeError(f"operation failed: {status['error']}")
        await asyncio.sleep(POLL_S)


async def bare(
    node: HardhatNode, profile_file: Path, key_file: Path, transfers: int, in_flight: int
) -> tuple[float, list[float]]:
    """The same contract's transfer calls, by web3.py alone, as bank-a's operator, with the same concurrency."""
    settings = load_profile(profile_file).settings
    operator = load_key(key_file)
    account = Account.from_key(operator.secret_bytes())
    chain = rpc_chain(node.url)
    await chain.connect()
    w3 = chain.w3
    contract = w3.eth.contract(
        address=w3.to_checksum_address(settings["assets_contract"]), abi=artifact("FinP2PAssets").abi
    )
    alice, bob = SigningKey.generate(), SigningKey.generate()
    asset = f"bare:102:{uuid.uuid4().hex[:8]}"
    nonce = int(await w3.eth.get_transaction_count(account.address, "pending"))
    base_fee = int((await w3.eth.get_block("latest"))["baseFeePerGas"])
    lock = asyncio.Lock()

    async def send(fn: Any) -> None:
        # Sent in nonce order (a node that mines on demand refuses a nonce above the next); receipts concurrently.
        nonlocal nonce
        params: Any = {"from": account.address, "maxFeePerGas": 2 * base_fee + 10**9, "maxPriorityFeePerGas": 10**9}
        async with lock:
            params["nonce"] = nonce
            tx = await fn.build_transaction(params)
            tx_hash = await w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
            nonce += 1
        receipt = await w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120, poll_latency=POLL_S)
        assert receipt["status"] == 1

    await send(contract.functions.createAsset(asset))
    await send(contract.functions.issue((f"i-{asset}", asset, "", alice.fin_id, 10**9, 0)))

    async def one(n: int) -> float:
        started = time.perf_counter()
        op = Operation(f"b-{n}-{asset}", asset, alice.fin_id, bob.fin_id, 1)
        template = adapter_template("Transfer", op, chain.chain_id, contract.address)
        signature = alice.sign_digest(bytes.fromhex(template["hash"]))
        await send(contract.functions.transfer(op.as_abi(), (b"\0" * 32, signature)))
        return time.perf_counter() - started

    rate, latencies = await run_in_flight(one, transfers, in_flight)
    await chain.close()
    return rate, latencies


def _ms(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.0f}"


async def measure(transfers: int, in_flight: int, node: HardhatNode, root: Path) -> list[list[str]]:
    net = make_net(root / "net", ["gov-1"], auto_approve=True)
    net.governance["gov-1"].start()
    try:
        apis = {org: net.join_with_ledger(org, node.url) for org in ("bank-a", "bank-b")}
        async with aiohttp.ClientSession() as http:
            bank_a, bank_b = (Api(http, *apis[o]) for o in ("bank-a", "bank-b"))
            rate, latencies, batches = await end_to_end(bank_a, bank_b, transfers, in_flight)
        a_dir = net.org_config("bank-a").parent
        base_rate, base_latencies = await bare(
            node, a_dir / "chain.toml", a_dir / "data" / "identity" / "finid.key", transfers, in_flight
        )
    finally:
        net.stop_all()
    return [
        [
            "bare web3.py transfer calls",
            f"{base_rate:,.1f}",
            _ms(base_latencies, 0.5),
            _ms(base_latencies, 0.99),
            "1.00 (baseline)",
            "",
        ],
        [
            "FinP2P end to end (REST → receipt recorded)",
            f"{rate:,.1f}",
            f"{statistics.median(latencies) * 1000:.0f}",
            _ms(latencies, 0.99),
            f"{rate / base_rate:.2f}",
            batches,
        ],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transfers", type=int, default=200, help="transfers per measurement (at most 5000)")
    parser.add_argument("--in-flight", type=int, default=16, help="transfers in flight at once")
    args = parser.parse_args()
    transfers, in_flight = max(10, min(args.transfers, 5000)), max(1, args.in_flight)
    root = Path(tempfile.mkdtemp(prefix="bench-transfers-"))
    node = HardhatNode(root / "hardhat", free_port()).start()
    try:
        rows = asyncio.run(measure(transfers, in_flight, node, root))
    finally:
        node.stop()
    print_table(
        f"Transfers on one Hardhat node ({transfers}, {in_flight} in flight)",
        ["path", "transfers/s", "p50 ms", "p99 ms", "ratio", "notes"],
        rows,
    )


if __name__ == "__main__":
    main()
