"""End-to-end transfers benchmark: from the requester's REST call to its recorded receipt, against the fastest
direct way to make the same ledger transfers.

    .venv/bin/python -m bench.transfers [--ledger ethereum|fabric] [--transfers 200] [--in-flight 16] [--batch 64]

Starts the ledger (a Hardhat node, or a Fabric devnet: orderer, peer, chaincode), a governance node and two banks as
processes on loopback (mutual TLS), all stopped by their PIDs at the end. bank-a manages an asset on the ledger;
bank-b's application asks for transfers between its users through bank-b's REST API. Each transfer is routed to
bank-a's node, checked (the owner's consent, compliance), executed on the ledger, answered with a signed receipt
that bank-b verifies and records in its own registry on the same ledger (its contracts, or its chaincode on the
channel; receipts arriving together share one recording transaction). Timed from the POST to the moment
``GET /v1/operations/{id}`` says ``recorded``. The transfers in flight move units between distinct pairs of users
(on Fabric two transfers of one balance in one block would invalidate each other; on Ethereum it changes nothing).

Baseline, same run, same ledger, same number in flight:

- ``--ledger ethereum``: bare web3.py sending the same contract's ``transfer`` calls, one transaction each (signed
  locally, receipts awaited), then the Ethereum plugin called directly, one operation per transaction and batched
  (``executeBatch``, at most ``--batch`` operations, gathered for ``--window-ms``; the nodes' profiles get the same
  two settings, ``--batch 1`` sends each operation alone). Aims: end to end / bare >= 1.0 at 16 and 64 in flight,
  above 117 transfers/s. CPU is read from /proc for each process (the chain, each node, this client), per
  transfer.
- ``--ledger fabric``: the Fabric plugin called directly (``FabricLedger.transfer``: endorse, submit, commit
  status), which ``bench.fabric`` measures against Fabric's own Node client.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
from eth_account import Account

from bench.common import in_flight as run_in_flight
from bench.common import print_table, process_cpu_s
from devnet.fabric import BATCH_TIMEOUT, FabricNetwork
from devnet.hardhat import HardhatNode
from finp2p.identity.consent import ConsentOperation, operation_template, sign_consent
from finp2p.identity.keys import SigningKey, load_key
from finp2p.ledger import LedgerProfile, OperationType
from finp2p.ledger_profiles import load_profile, save_profile
from finp2p_ethereum.artifacts import artifact
from finp2p_ethereum.chain import rpc_chain
from finp2p_ethereum.consent import Operation, adapter_template
from finp2p_ethereum.deploy import Deployment
from finp2p_ethereum.ledger import MAX_BATCH, OPERATION_GAS_LIMIT, BatchOptions, EthereumLedger
from finp2p_fabric.factory import ledger_from, settings_from
from tests.support.network import Net, make_net
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


class Pairs:
    """Pairs of users, each in at most one transfer at a time (the sources funded by ``fund``)."""

    def __init__(self, count: int) -> None:
        self.all = [(SigningKey.generate(), SigningKey.generate()) for _ in range(count)]
        self._free: asyncio.Queue[tuple[SigningKey, SigningKey]] = asyncio.Queue()
        for pair in self.all:
            self._free.put_nowait(pair)

    async def take(self) -> tuple[SigningKey, SigningKey]:
        return await self._free.get()

    def give_back(self, pair: tuple[SigningKey, SigningKey]) -> None:
        self._free.put_nowait(pair)


async def end_to_end(
    bank_a: Api, bank_b: Api, ledger_id: str, transfers: int, in_flight: int, pids: dict[str, int | None]
) -> tuple[float, list[float], str, str]:
    pairs = Pairs(in_flight)
    asset = (await bank_a.call("POST", "/v1/assets", {"name": "bench", "ledger_id": ledger_id}, "a"))["asset_id"]
    for n, (source, _) in enumerate(pairs.all):
        issue = {
            "operation": "issue",
            "asset_id": asset,
            "quantity": 10**9,
            "operation_id": f"issue-{n}",
            "destination": source.fin_id,
        }
        await _done(bank_a, (await bank_a.call("POST", "/v1/operations", issue, f"issue-{n}"))["id"])
    # The consent template's domain, asked once; each transfer's template is then computed as a wallet would.
    alice, bob = pairs.all[0]
    probe = {"operation": "transfer", "asset_id": asset, "quantity": 1, "operation_id": "probe"}
    probe |= {"source": alice.fin_id, "destination": bob.fin_id}
    domain = (await bank_b.call("POST", "/v1/consent", probe))["template"]["domain"]

    def body(n: int, source: SigningKey, destination: SigningKey) -> dict[str, Any]:
        op_id = f"t-{n}-{uuid.uuid4().hex[:8]}"
        template = operation_template(
            OperationType.TRANSFER,
            asset,
            source.fin_id,
            destination.fin_id,
            1,
            op_id,
            0,
            int(domain["chainId"]),
            domain["verifyingContract"],
        )
        signature = source.sign_digest(bytes.fromhex(template["hash"])).hex()
        return {
            "operation": "transfer",
            "asset_id": asset,
            "quantity": 1,
            "operation_id": op_id,
            "source": source.fin_id,
            "destination": destination.fin_id,
            "consent": {"template": "EIP712", "signer": source.fin_id, "signature": signature, "payload": template},
        }

    async def one(n: int) -> float:
        pair = await pairs.take()
        try:
            started = time.perf_counter()
            accepted = await bank_b.call("POST", "/v1/operations", body(n, *pair), uuid.uuid4().hex)
            await _done(bank_b, accepted["id"])
            return time.perf_counter() - started
        finally:
            pairs.give_back(pair)

    for n in range(5):  # warm up connections and caches
        await one(-n - 1)
    cpu = CpuMeter(pids)
    rate, latencies = await run_in_flight(one, transfers, in_flight)
    used = cpu.per(transfers)
    moved = 0
    for _, destination in pairs.all:
        balance = await bank_b.call("GET", f"/v1/balances?asset_id={asset}&fin_id={destination.fin_id}")
        moved += int(balance["available"])
    assert moved == transfers + 5, moved
    receipts = (await bank_b.call("GET", "/v1/receipts"))["receipts"]
    batches = len({r["record"]["transaction_id"] for r in receipts if r["receipt"]["operationType"] == "transfer"})
    return rate, latencies, f"{batches} recording transactions for {transfers + 5} receipts", used


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
) -> tuple[float, list[float], str]:
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
        # Everything given (gas, fees, chain id), so building the transaction asks the node nothing: the fastest
        # way web3.py sends a call, as the plugin sends one.
        params: Any = {
            "from": account.address,
            "gas": OPERATION_GAS_LIMIT,
            "chainId": chain.chain_id,
            "maxFeePerGas": 2 * base_fee + 10**9,
            "maxPriorityFeePerGas": 10**9,
        }
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

    cpu = CpuMeter({"chain": node.pid, "client": None})
    rate, latencies = await run_in_flight(one, transfers, in_flight)
    await chain.close()
    return rate, latencies, cpu.per(transfers)


class CpuMeter:
    """CPU milliseconds per transfer of named processes (``None``: this one), over one measurement."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self._start = self._now()

    def _now(self) -> dict[str, float]:
        return {name: process_cpu_s(pid) if pid else time.process_time() for name, pid in self.pids.items()}

    def per(self, transfers: int) -> str:
        used = {name: (now - self._start[name]) * 1000 / transfers for name, now in self._now().items()}
        return " · ".join(f"{name} {ms:.1f}" for name, ms in used.items())


async def plugin(
    node: HardhatNode, profile_file: Path, key_file: Path, transfers: int, in_flight: int, batch: BatchOptions
) -> tuple[float, list[float], str]:
    """The same transfers by the Ethereum plugin alone (``EthereumLedger.transfer``), as bank-a's operator."""
    settings = load_profile(profile_file).settings
    deployment = Deployment(settings["assets_contract"], settings["registry_contract"], settings["deployed_block"])
    chain = rpc_chain(node.url)
    ledger = EthereumLedger(chain, load_key(key_file), deployment, ledger_id="eip155:31337", batch=batch)
    alice, bob = SigningKey.generate(), SigningKey.generate()
    asset = f"plugin:102:{uuid.uuid4().hex[:8]}"
    await ledger.create_asset(asset, {})
    await ledger.issue(asset, alice.fin_id, 10**9, f"i-{asset}")

    async def one(n: int) -> float:
        started = time.perf_counter()
        op = Operation(f"p-{n}-{asset}", asset, alice.fin_id, bob.fin_id, 1)
        consent = sign_consent(alice, "Transfer", op, chain.chain_id, deployment.assets)
        await ledger.transfer(asset, alice.fin_id, bob.fin_id, 1, op.operation_id, consent)
        return time.perf_counter() - started

    for n in range(5):
        await one(-n - 1)
    cpu = CpuMeter({"chain": node.pid, "client": None})
    try:
        rate, latencies = await run_in_flight(one, transfers, in_flight)
        return rate, latencies, cpu.per(transfers)
    finally:
        await ledger.close()


def _ms(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.0f}"


async def plugin_direct(network: FabricNetwork, transfers: int, in_flight: int) -> tuple[float, list[float]]:
    """The same transfers by the Fabric plugin alone, as the chaincode's operator, with the same concurrency."""
    ledger = ledger_from(settings_from({**network.profile_settings(), "ledger_id": network.ledger_id}))
    pairs = Pairs(in_flight)
    asset = f"direct:102:{uuid.uuid4().hex[:8]}"
    await ledger.create_asset(asset, {})
    await asyncio.gather(
        *(ledger.issue(asset, s.fin_id, 10**9, f"i-{asset}-{n}") for n, (s, _) in enumerate(pairs.all))
    )

    async def one(n: int) -> float:
        source, destination = pair = await pairs.take()
        try:
            started = time.perf_counter()
            op = ConsentOperation(f"d-{n}-{asset}", asset, source.fin_id, destination.fin_id, 1)
            consent = sign_consent(source, "Transfer", op, ledger.chain_id, ledger.verifying_contract)
            await ledger.transfer(asset, source.fin_id, destination.fin_id, 1, op.operation_id, consent)
            return time.perf_counter() - started
        finally:
            pairs.give_back(pair)

    for n in range(5):
        await one(-n - 1)
    try:
        return await run_in_flight(one, transfers, in_flight)
    finally:
        await ledger.close()


def _fabric_profile(network: FabricNetwork, folder: Path, user: str, chaincode: str) -> str:
    settings = network.profile_settings(user, chaincode)
    save_profile(folder / "fabric.toml", LedgerProfile("fabric", network.ledger_id, settings))
    return "fabric.toml"


def _set_batching(net: Net, org: str, batch: BatchOptions) -> None:
    """Give ``org``'s chain profile the batch settings, and start it again with them."""
    profile_file = net.org_config(org).parent / "chain.toml"
    profile = load_profile(profile_file)
    window_ms, size = batch.window_s * 1000, batch.max_size
    save_profile(
        profile_file, replace(profile, settings={**profile.settings, "batch_window_ms": window_ms, "batch_max": size})
    )
    net.orgs[org].stop()
    net.start_org(org)


def _row(
    label: str, rate: float, latencies: list[float], base_rate: float | None, cpu: str, note: str = ""
) -> list[str]:
    """A row of the table; ``base_rate`` ``None`` for the baseline itself."""
    ratio = "1.00 (baseline)" if base_rate is None else f"{rate / base_rate:.2f}"
    return [label, f"{rate:,.1f}", _ms(latencies, 0.5), _ms(latencies, 0.99), ratio, cpu, note]


async def measure_ethereum(transfers: int, in_flight: int, batch: BatchOptions, root: Path) -> list[list[str]]:
    node = HardhatNode(root / "hardhat", free_port()).start()
    net = make_net(root / "net", ["gov-1"], auto_approve=True)
    try:
        net.governance["gov-1"].start()
        apis = {org: net.join_with_ledger(org, node.url) for org in ("bank-a", "bank-b")}
        for org in apis:
            _set_batching(net, org, batch)
        pids: dict[str, int | None] = {"chain": node.pid}
        for name, process in (("bank-a", net.orgs["bank-a"]), ("bank-b", net.orgs["bank-b"])):
            pids[name] = process.proc.pid if process.proc else None
        gov = net.governance["gov-1"].proc
        pids |= {"gov": gov.pid if gov else None, "client": None}
        async with aiohttp.ClientSession() as http:
            bank_a, bank_b = (Api(http, *apis[o]) for o in ("bank-a", "bank-b"))
            e2e = await end_to_end(bank_a, bank_b, "eip155:31337", transfers, in_flight, pids)
        net.stop_all()  # the baselines run alone, as bank-a's operator
        a_dir = net.org_config("bank-a").parent
        profile, key = a_dir / "chain.toml", a_dir / "data" / "identity" / "finid.key"
        base_rate, base_latencies, base_cpu = await bare(node, profile, key, transfers, in_flight)
        single = await plugin(node, profile, key, transfers, in_flight, BatchOptions(max_size=1))
        batched = await plugin(node, profile, key, transfers, in_flight, batch)
    finally:
        net.stop_all()
        node.stop()
    rate, latencies, recorded, e2e_cpu = e2e
    shape = f"batches of up to {batch.max_size}, {batch.window_s * 1000:g} ms window"
    return [
        _row("bare web3.py transfer calls, one transaction each", base_rate, base_latencies, None, base_cpu),
        _row("Ethereum plugin, one operation per transaction", *single[:2], base_rate, single[2]),
        _row(f"Ethereum plugin, {shape}", *batched[:2], base_rate, batched[2]),
        _row("FinP2P end to end (REST → receipt recorded)", rate, latencies, base_rate, e2e_cpu, recorded),
    ]


async def measure_fabric(transfers: int, in_flight: int, root: Path) -> list[list[str]]:
    network = FabricNetwork(root / "fabric").up()
    net = make_net(root / "net", ["gov-1"], auto_approve=True)
    try:
        net.governance["gov-1"].start()
        # bank-a operates the devnet's chaincode; bank-b's registry is a chaincode of its own on the channel.
        chaincodes = {"bank-a": (network.chaincode, "User1"), "bank-b": ("bench-bank-b", "User2")}
        network.deploy_chaincode(*chaincodes["bank-b"])
        apis = {}
        for org, (chaincode, user) in chaincodes.items():
            assert net.register(org)[0] == 0
            profile = _fabric_profile(network, net.org_config(org).parent, user, chaincode)
            apis[org] = net.join(org, [profile])
        pids: dict[str, int | None] = {"client": None}
        async with aiohttp.ClientSession() as http:
            bank_a, bank_b = (Api(http, *apis[o]) for o in ("bank-a", "bank-b"))
            rate, latencies, recorded, cpu = await end_to_end(
                bank_a, bank_b, network.ledger_id, transfers, in_flight, pids
            )
        base_rate, base_latencies = await plugin_direct(network, transfers, in_flight)
    finally:
        net.stop_all()
        network.down()
    return [
        _row("Fabric plugin called directly (FabricLedger.transfer)", base_rate, base_latencies, None, ""),
        _row("FinP2P end to end (REST → receipt recorded)", rate, latencies, base_rate, cpu, recorded),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ledger", choices=["ethereum", "fabric"], default="ethereum", help="the asset's ledger")
    parser.add_argument("--transfers", type=int, default=200, help="transfers per measurement (at most 5000)")
    parser.add_argument("--in-flight", type=int, default=16, help="transfers in flight at once (at most 256)")
    parser.add_argument(
        "--batch",
        type=int,
        default=MAX_BATCH,
        help=f"Ethereum: most operations in one transaction (1 to {MAX_BATCH}; 1: no batches)",
    )
    parser.add_argument(
        "--window-ms", type=float, default=5.0, help="Ethereum: how long an operation waits for others (0 to 1000)"
    )
    args = parser.parse_args()
    transfers, in_flight = max(10, min(args.transfers, 5000)), max(1, min(args.in_flight, 256))
    batch = BatchOptions(max(0.0, min(args.window_ms, 1000.0)) / 1000, max(1, min(args.batch, MAX_BATCH)))
    root = Path(tempfile.mkdtemp(prefix="bench-transfers-"))
    if args.ledger == "ethereum":
        rows = asyncio.run(measure_ethereum(transfers, in_flight, batch, root))
    else:
        rows = asyncio.run(measure_fabric(transfers, in_flight, root))
    where = "one Hardhat node" if args.ledger == "ethereum" else f"one Fabric devnet (BatchTimeout {BATCH_TIMEOUT})"
    print_table(
        f"Transfers on {where} ({transfers}, {in_flight} in flight)",
        ["path", "transfers/s", "p50 ms", "p99 ms", "ratio", "CPU ms per transfer", "notes"],
        rows,
    )


if __name__ == "__main__":
    main()
