"""Soak: a Hardhat devnet under a steady mixed load while its banks are killed and restarted; nothing may be lost.

    .venv/bin/python -m bench.soak [--minutes 15] [--workers 3] [--users 5] [--seed 1] [--no-kills]

Starts a Hardhat node (free port) and ``finp2p devnet up --rpc`` on it (a governance node and three banks as
processes; bank-a manages the asset on the Hardhat chain). Five users at bank-b get units; three workers ask bank-b's
REST API, with Idempotency-Keys, for a steady mix of transfers (80 %) and holds that are then partly released or
rolled back (20 %), each asked again with the same key while bank-b does not answer. Every 60-120 s bank-a or bank-b
is SIGKILLed (``finp2p devnet kill``) and started again 2-6 s later (``finp2p devnet restart``). The Hardhat node is
never killed: its chain lives in its memory, and a restarted Hardhat is a new, empty chain no node could recover.

Then it checks, and prints: operations accepted, done, failed by code, incomplete (accepted and not ended after a
drain of up to 5 minutes), duplicated (more than one event on the chain for one operation id), balances on the
contract against the client's own books and both banks' REST answers, the supply, receipts recorded by bank-b and a
sample verified by ``finp2p receipt verify``, restart times, and throughput before and after each kill. Aim: 0
incomplete, 0 duplicated, balances equal. The baseline of its throughput is the same run's rate before any kill.
Every process it starts is stopped by its PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bench.common import print_table
from devnet.hardhat import HardhatNode
from finp2p.identity.keys import SigningKey
from finp2p.ledger_profiles import load_profile
from finp2p_ethereum.artifacts import artifact
from finp2p_ethereum.chain import rpc_chain
from tests.support.ports import free_port

FINP2P = [sys.executable, "-m", "finp2p"]
UNITS = 1_000_000  # issued to each user: a random walk of 1-5 units never runs a user dry in a soak
DRAIN_S = 300.0  # after the load, how long accepted operations may take to end
REQUEST_TIMEOUT_S = 40.0
EVENTS = ("Transferred", "Held", "Released", "RolledBack")
console = Console()


class Unanswered(Exception):
    """bank-b did not answer (killed, restarting): ask again."""


@dataclass
class Op:
    kind: str
    operation_id: str
    source: str
    destination: str
    quantity: int
    id: str = ""
    state: str = "pending"
    code: str | None = None
    accepted_at: float = 0.0
    ended_at: float = 0.0
    bundle: dict[str, Any] | None = None


@dataclass
class Soak:
    api: dict[str, tuple[str, str]]
    asset: str
    users: dict[str, SigningKey]  # fin id -> the user's own key
    rng: random.Random
    http: aiohttp.ClientSession
    ops: list[Op] = field(default_factory=list)
    user_ids: dict[str, str] = field(default_factory=dict)  # fin id -> the user's resource id at bank-b
    books: dict[str, list[int]] = field(default_factory=dict)  # fin id -> [available, held]
    kills: list[dict[str, Any]] = field(default_factory=list)
    retries: int = 0

    async def call(self, bank: str, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
        url, token = self.api[bank]
        headers = {"Authorization": f"Bearer {token}"}
        if key:
            headers["Idempotency-Key"] = key
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        try:
            async with self.http.request(method, url + path, json=body, headers=headers, timeout=timeout) as resp:
                answer = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise Unanswered(str(exc)) from None
        if resp.status >= 500 and resp.status != 504:
            raise Unanswered(f"{resp.status} {answer}")
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: {resp.status} {answer}")
        return answer

    async def persist(self, bank: str, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
        """``call`` asked again (same key) while the bank does not answer, for at most the drain time."""
        deadline = time.monotonic() + DRAIN_S
        while True:
            try:
                return await self.call(bank, method, path, body, key)
            except Unanswered:
                if time.monotonic() > deadline:
                    raise
                self.retries += 1
                await asyncio.sleep(0.5)

    async def consented(self, body: dict[str, Any], signer: SigningKey) -> dict[str, Any]:
        template = (await self.persist("bank-b", "POST", "/v1/consent", body))["template"]
        signature = signer.sign_digest(bytes.fromhex(template["hash"])).hex()
        consent = {"template": "EIP712", "signer": signer.fin_id, "signature": signature, "payload": template}
        return {**body, "consent": consent}

    async def submit(self, op: Op, body: dict[str, Any]) -> Op:
        accepted = await self.persist("bank-b", "POST", "/v1/operations", body, uuid.uuid4().hex)
        op.id, op.accepted_at = accepted["id"], time.monotonic()
        self.ops.append(op)
        return await self.settle(op)

    async def settle(self, op: Op, until: float | None = None) -> Op:
        """Wait until bank-b says the operation ended (asking again while bank-b is down)."""
        until = until or time.monotonic() + DRAIN_S
        while time.monotonic() < until:
            try:
                status = await self.call("bank-b", "GET", f"/v1/operations/{op.id}?wait=20")
            except Unanswered:
                await asyncio.sleep(0.5)
                continue
            if status["state"] in ("recorded", "failed"):
                op.state, op.ended_at = status["state"], time.monotonic()
                op.code = (status.get("error") or {}).get("code")
                op.bundle = status.get("receipt")
                if op.state == "recorded":
                    self.book(op)
                return op
        return op

    def book(self, op: Op) -> None:
        src, dst = self.books[op.source], self.books.get(op.destination)
        if op.kind == "transfer":
            assert dst is not None
            src[0] -= op.quantity
            dst[0] += op.quantity
        elif op.kind == "hold":
            src[0] -= op.quantity
            src[1] += op.quantity

    def book_settlement(self, hold: Op, paid: int) -> None:
        src, dst = self.books[hold.source], self.books[hold.destination]
        src[1] -= hold.quantity
        dst[0] += paid
        src[0] += hold.quantity - paid

    def pick(self) -> tuple[str, str]:
        source, destination = self.rng.sample(sorted(self.users), 2)
        return source, destination

    async def transfer(self) -> None:
        source, destination = self.pick()
        op = Op("transfer", f"soak-t-{uuid.uuid4().hex}", source, destination, self.rng.randint(1, 5))
        body = {
            "operation": "transfer",
            "asset_id": self.asset,
            "quantity": op.quantity,
            "operation_id": op.operation_id,
            "source": source,
            "destination": destination,
            "source_user": self.user_ids[source],
            "destination_user": self.user_ids[destination],
        }
        await self.submit(op, await self.consented(body, self.users[source]))

    async def hold_then_settle(self) -> None:
        source, destination = self.pick()
        hold = Op("hold", f"soak-h-{uuid.uuid4().hex}", source, destination, self.rng.randint(2, 9))
        body = {
            "operation": "hold",
            "asset_id": self.asset,
            "quantity": hold.quantity,
            "operation_id": hold.operation_id,
            "source": source,
            "destination": destination,
            "source_user": self.user_ids[source],
            "destination_user": self.user_ids[destination],
            "expiry": int(time.time()) + 3600,
        }
        await self.submit(hold, await self.consented(body, self.users[source]))
        if hold.state != "recorded":
            return
        release = self.rng.random() < 0.5
        paid = self.rng.randint(1, hold.quantity - 1) if release else 0
        kind = "release" if release else "rollback"
        settle = Op(kind, hold.operation_id, source, destination if release else source, paid or hold.quantity)
        body = {
            "operation": kind,
            "asset_id": self.asset,
            "quantity": settle.quantity,
            "operation_id": hold.operation_id,
            "source": source,
            "source_user": self.user_ids[source],
        }
        if release:
            body |= {"destination": destination, "destination_user": self.user_ids[destination]}
        await self.submit(settle, body)
        if settle.state == "recorded":
            self.book_settlement(hold, paid)

    async def worker(self, until: float) -> None:
        while time.monotonic() < until:
            await (self.transfer() if self.rng.random() < 0.8 else self.hold_then_settle())


def cli(root: Path, *args: str, timeout: float = 300) -> Any:
    done = subprocess.run(
        [*FINP2P, *args, "--json"], capture_output=True, text=True, timeout=timeout, check=False, cwd=root
    )
    if done.returncode != 0:
        raise RuntimeError(f"finp2p {' '.join(args)}: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


async def killer(root: Path, soak: Soak, until: float, rng: random.Random) -> None:
    while True:
        pause = rng.uniform(60, 120)
        if time.monotonic() + pause > until:
            return
        await asyncio.sleep(pause)
        name = rng.choice(["bank-a", "bank-b"])
        killed_at = time.monotonic()
        await asyncio.to_thread(cli, root, "devnet", "kill", name, "--dir", str(root))
        await asyncio.sleep(rng.uniform(2, 6))
        restarted = await asyncio.to_thread(cli, root, "devnet", "restart", name, "--dir", str(root))
        soak.kills.append({"name": name, "at": killed_at, "back": time.monotonic(), "start_s": restarted["seconds"]})


async def prepare(root: Path, state: dict[str, Any], soak: Soak, count: int) -> None:
    """``count`` users at bank-b, known to bank-a (their information shared), each with UNITS issued."""
    config = state["nodes"]["bank-b"]["config"]
    for n in range(count):
        key = SigningKey.generate()
        user = f"soak{n}"
        info = {"user_id": user, "fin_id": key.fin_id, "legal_name": f"Soak {n}", "kyc_status": "verified"}
        await soak.call("bank-b", "POST", "/v1/users", info)
        await asyncio.to_thread(cli, root, "-c", config, "data", "share", f"bank-b:101:{user}", "--to", "bank-a")
        soak.users[key.fin_id] = key
        soak.user_ids[key.fin_id] = f"bank-b:101:{user}"
        issue = {
            "operation": "issue",
            "asset_id": soak.asset,
            "quantity": UNITS,
            "operation_id": f"soak-issue-{uuid.uuid4().hex}",
            "destination": key.fin_id,
        }
        accepted = await soak.call("bank-a", "POST", "/v1/operations", issue, uuid.uuid4().hex)
        while True:
            status = await soak.call("bank-a", "GET", f"/v1/operations/{accepted['id']}?wait=20")
            if status["state"] != "pending":
                break
        if status["state"] != "recorded":
            raise RuntimeError(f"issue failed: {status}")
        soak.books[key.fin_id] = [UNITS, 0]


async def on_chain(state: dict[str, Any], soak: Soak) -> dict[str, Any]:
    """The contract's balances, supply and events per operation id, read with web3.py."""
    profile = Path(state["nodes"]["bank-a"]["config"]).parent / "chain.toml"
    settings = load_profile(profile).settings
    chain = rpc_chain(state["chain"]["url"])
    await chain.connect()
    w3 = chain.w3
    contract = w3.eth.contract(
        address=w3.to_checksum_address(settings["assets_contract"]), abi=artifact("FinP2PAssets").abi
    )
    balances = {}
    for fin_id in soak.users:
        available, held = await contract.functions.balanceOf(soak.asset, fin_id).call()
        balances[fin_id] = [int(available), int(held)]
    supply = int(await contract.functions.supplyOf(soak.asset).call())
    events: collections.Counter[tuple[str, str]] = collections.Counter()
    latest = int(await w3.eth.block_number)
    for name in EVENTS:
        event = getattr(contract.events, name)
        for start in range(0, latest + 1, 2000):
            logs = await event.get_logs(from_block=start, to_block=min(latest, start + 1999))
            for log in logs:
                events[(name, _operation_id(log["args"]["op"]))] += 1
    await chain.close()
    return {"balances": balances, "supply": supply, "events": events}


def _operation_id(op: Any) -> str:
    try:
        return str(op["operationId"])  # a decoded struct, by field name
    except (TypeError, KeyError):
        return str(op[0])


def verify_sample(root: Path, state: dict[str, Any], ops: list[Op], rng: random.Random, size: int) -> tuple[int, int]:
    recorded = [op for op in ops if op.bundle and op.bundle.get("record")]
    sample = rng.sample(recorded, min(size, len(recorded)))
    held = 0
    for n, op in enumerate(sample):
        bundle = root / f"sample-{n}.json"
        bundle.write_text(json.dumps(op.bundle))
        args = ["receipt", "verify", str(bundle), "--genesis", state["genesis"], "--json"]
        args += ["--ledger", state["chain"]["auditor_profile"]]
        done = subprocess.run([*FINP2P, *args], capture_output=True, text=True, timeout=120, check=False)
        held += done.returncode == 0 and json.loads(done.stdout)["ok"] is True
    return held, len(sample)


def throughput(ops: list[Op], kills: list[dict[str, Any]], started: float, until: float) -> list[list[str]]:
    """Operations ended per second: before the first kill (the baseline), and in the 30 s before each kill and
    the 30 s after its node serves again."""
    ended = sorted(op.ended_at for op in ops if op.ended_at)

    def rate(low: float, high: float) -> float:
        return sum(low <= t < high for t in ended) / max(high - low, 1e-9)

    first = kills[0]["at"] if kills else until
    base = rate(started + 10, first)  # the first seconds warm up connections
    rows = [["before any kill", f"{base:.1f}", "1.00 (baseline)"]]
    for k in kills:
        before, after = rate(k["at"] - 30, k["at"]), rate(k["back"], k["back"] + 30)
        label = f"{k['name']} killed at {k['at'] - started:.0f} s"
        rows.append([f"{label}: 30 s before", f"{before:.1f}", f"{before / base:.2f}" if base else "-"])
        rows.append([f"{label}: 30 s after", f"{after:.1f}", f"{after / base:.2f}" if base else "-"])
    return rows


async def run(minutes: float, workers: int, users: int, seed: int, kills: bool, root: Path) -> int:
    rng = random.Random(seed)
    node = HardhatNode(root / "hardhat", free_port()).start()
    devnet = root / "devnet"
    console.print(f"Hardhat on {node.url}; finp2p devnet up --rpc in {devnet} …")
    try:
        state = await asyncio.to_thread(cli, root, "devnet", "up", "--dir", str(devnet), "--rpc", node.url)
        api = {bank: (a["url"], a["token"]) for bank, a in state["apis"].items()}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:
            soak = Soak(api, state["asset_id"], {}, rng, http)
            await prepare(devnet, state, soak, users)
            issued = int((await on_chain(state, soak))["supply"])
            started = time.monotonic()
            until = started + minutes * 60
            tasks = [asyncio.create_task(soak.worker(until)) for _ in range(workers)]
            if kills:
                tasks.append(asyncio.create_task(killer(devnet, soak, until, rng)))
            with Progress(
                TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
            ) as progress:
                bar = progress.add_task("load", total=minutes * 60)
                while not all(t.done() for t in tasks):
                    ended = sum(op.state != "pending" for op in soak.ops)
                    progress.update(
                        bar,
                        completed=min(time.monotonic() - started, minutes * 60),
                        description=f"accepted {len(soak.ops)}, ended {ended}, kills {len(soak.kills)}",
                    )
                    await asyncio.sleep(1)
            for t in tasks:
                t.result()  # a worker's or the killer's error is the soak's
            load_s = time.monotonic() - started
            drain_until = time.monotonic() + DRAIN_S
            for op in soak.ops:
                if op.state == "pending":
                    await soak.settle(op, drain_until)
            chain = await on_chain(state, soak)
            rest: dict[str, dict[str, list[int]]] = {}
            for bank in ("bank-a", "bank-b"):
                rest[bank] = {}
                for fin_id in soak.users:
                    answer = await soak.persist("bank-b" if bank == "bank-b" else "bank-a", "GET",
                                                f"/v1/balances?asset_id={soak.asset}&fin_id={fin_id}")  # fmt: skip
                    rest[bank][fin_id] = [int(answer["available"]), int(answer.get("held", 0))]
        verified, sampled = await asyncio.to_thread(verify_sample, devnet, state, soak.ops, rng, 20)
        return report(soak, chain, rest, issued, load_s, started, until, verified, sampled)
    finally:
        await asyncio.to_thread(subprocess.run, [*FINP2P, "devnet", "down", "--dir", str(devnet)], check=False)
        node.stop()


def report(
    soak: Soak,
    chain: dict[str, Any],
    rest: dict[str, dict[str, list[int]]],
    issued: int,
    load_s: float,
    started: float,
    until: float,
    verified: int,
    sampled: int,
) -> int:
    ops = soak.ops
    done = [op for op in ops if op.state == "recorded"]
    failed = collections.Counter(op.code for op in ops if op.state == "failed")
    incomplete = [op for op in ops if op.state == "pending" or op.code in ("FP7013", "FP7004")]
    events = chain["events"]
    duplicated = sorted({key for key, n in events.items() if n > 1})
    expected = {("Transferred" if op.kind == "transfer" else "Held", op.operation_id) for op in done if op.kind in
                ("transfer", "hold")} | {("Released" if op.kind == "release" else "RolledBack", op.operation_id)
                                         for op in done if op.kind in ("release", "rollback")}  # fmt: skip
    ours = {key for key in events if key[1].startswith("soak-")}
    unexplained = sorted(ours - expected)  # on the chain, yet not done for the client
    missing = sorted(expected - ours)
    books_equal = chain["balances"] == soak.books
    rest_equal = all(rest[bank] == soak.books for bank in rest)
    receipts = sum(bool(op.bundle and op.bundle.get("record")) for op in done)
    counted = collections.Counter(op.kind for op in ops)
    kinds = ", ".join(f"{kind} {counted[kind]}" for kind in ("transfer", "hold", "release", "rollback"))
    rows = [
        ["operations accepted", f"{len(ops)} ({kinds})"],
        ["done (receipt recorded)", str(len(done))],
        ["failed, by code", ", ".join(f"{code} {n}" for code, n in sorted(failed.items())) or "0"],
        ["incomplete", str(len(incomplete))],
        ["duplicated (events per operation id > 1)", str(len(duplicated))],
        ["on the chain but not done / done but not on the chain", f"{len(unexplained)} / {len(missing)}"],
        ["balances: contract = client's books", "equal" if books_equal else "DIFFERENT"],
        ["balances: bank-a and bank-b REST = client's books", "equal" if rest_equal else "DIFFERENT"],
        ["supply on the contract (issued before the load)", f"{chain['supply']:,} ({issued:,})"],
        ["receipts recorded by bank-b / sample verified", f"{receipts} / {verified} of {sampled}"],
        ["kills (restart: seconds to serve)", ", ".join(f"{k['name']} {k['start_s']:.1f}" for k in soak.kills)],
        ["requests asked again while a bank was down", str(soak.retries)],
        ["load", f"{load_s:.0f} s, {len(done) / load_s:.1f} done/s"],
    ]
    print_table("Soak: every accepted operation ends, once", ["check", "result"], rows)
    print_table("Throughput (operations ended per second)", ["window", "ops/s", "ratio"],
                throughput(ops, soak.kills, started, until))  # fmt: skip
    for op in incomplete[:10]:
        console.print(f"incomplete: {op.kind} {op.operation_id} ({op.id}) {op.state} {op.code or ''}")
    for key in duplicated[:10]:
        console.print(f"duplicated: {key} x{events[key]}")
    lat = [op.ended_at - op.accepted_at for op in done if op.ended_at]
    if lat:
        console.print(f"latency accepted → recorded: median {statistics.median(lat) * 1000:.0f} ms, "
                      f"max {max(lat):.1f} s")  # fmt: skip
    ok = not incomplete and not duplicated and not unexplained and not missing and books_equal and rest_equal
    ok = ok and chain["supply"] == issued and verified == sampled
    console.print("[green]soak held[/]" if ok else "[red]soak found a fault[/]")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=15.0, help="how long the load runs (default 15)")
    parser.add_argument("--workers", type=int, default=3, help="clients asking one operation at a time (3)")
    parser.add_argument("--users", type=int, default=5, help="users at bank-b with units (5)")
    parser.add_argument("--seed", type=int, default=1, help="the random choices' seed (1)")
    parser.add_argument("--no-kills", action="store_true", help="the same load without killing anything")
    args = parser.parse_args()
    if not 0 < args.minutes <= 24 * 60 or not 1 <= args.workers <= 32 or not 2 <= args.users <= 100:
        parser.error("--minutes 0-1440, --workers 1-32, --users 2-100")
    with tempfile.TemporaryDirectory(prefix="finp2p-soak-") as tmp:
        code = asyncio.run(run(args.minutes, args.workers, args.users, args.seed, not args.no_kills, Path(tmp)))
    raise SystemExit(code)


if __name__ == "__main__":
    main()
