"""``finp2p demo``: a local FinP2P network on loopback, and the story of what it does, step by step.

A governance node and three banks run as separate processes (``finp2p node start``) on free ports, driven through
the same commands an operator types and the REST API their applications call. bank-a's node runs an embedded
Ethereum chain and serves it on loopback; bank-b and bank-c deploy their own contracts on it, so the three share
one ledger, as banks on one chain do. Every process is stopped by its PID at the end, whatever happens.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finp2p import processes
from finp2p.edge.bearer import new_token_file
from finp2p.edge.files import write_private
from finp2p.ledger_profiles import EMBEDDED_PROFILE
from finp2p.processes import FINP2P, NodeCommand, ProcessError

BANKS = ("bank-a", "bank-b", "bank-c")
ALICE = "bank-a:101:alice"
LEDGER = EMBEDDED_PROFILE.ledger_id
ASSET_NAME = "bond-2031"


class DemoError(Exception):
    pass


_handed_out: set[int] = set()
#: Where :func:`free_port` looks, when set (:func:`use_port_range`): processes that choose ports side by side (test
#: workers) each take their own range, below the ephemeral ports the system hands out, so they never meet.
_port_range: tuple[int, int] | None = None


def use_port_range(low: int, high: int) -> None:
    """Choose ports from ``low`` to ``high`` (exclusive) from now on, instead of asking the system for one."""
    global _port_range
    if not 1024 <= low < high <= 65536:
        raise ValueError(f"a port range within 1024-65535, not {low}-{high}")
    _port_range = (low, high)


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now, and never one this process handed out before (a port chosen but not yet bound by the
    process it is for would otherwise be chosen again)."""
    if _port_range is not None:
        low, high = _port_range
        for port in random.sample(range(low, high), high - low):
            if port in _handed_out:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
        raise RuntimeError(f"no free port left in {low}-{high}")
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


@dataclass
class Demo:
    root: Path
    say: Callable[[str], None]
    steps: list[dict[str, Any]] = field(default_factory=list)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: How each process was started, to start it again (``finp2p devnet restart``).
    commands: dict[str, NodeCommand] = field(default_factory=dict)
    #: What each node's run file said when it served (its address, API, adapter), by name.
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Where each user's own key is kept (users sign their consents; the node never holds their keys).
    user_keys: dict[str, Path] = field(default_factory=dict)
    apis: dict[str, tuple[str, str]] = field(default_factory=dict)  # bank -> (REST URL, token)
    #: ``devnet``: build the network and an asset, and leave it running (``finp2p devnet up``).
    story: str = "full"
    #: A JSON-RPC chain to use instead of the embedded chain bank-a serves (a Hardhat node).
    chain_rpc: str | None = None
    ledger_id: str = LEDGER
    #: bank-c's ledger-adapter API (its node serves one over its ledger), and the token a router sends it.
    adapter_url: str = ""
    adapter_token: str = ""
    #: The chain the banks share: bank-a's served embedded chain, or ``chain_rpc``.
    chain_url: str = ""

    def http(self, bank: str, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
        """One call to a bank's REST API, as the bank's own application makes it."""
        import urllib.error
        import urllib.request

        url, token = self.apis[bank]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url + path, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - our own loopback API
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise DemoError(f"{bank} {method} {path}: {exc.code} {exc.read().decode(errors='replace')[:300]}") from None

    def operation(self, bank: str, body: dict[str, Any]) -> dict[str, Any]:
        """Submit an asset operation and wait for its receipt to be verified and recorded."""
        import uuid

        accepted = self.http(bank, "POST", "/v1/operations", body, key=uuid.uuid4().hex)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status: dict[str, Any] = self.http(bank, "GET", f"/v1/operations/{accepted['id']}")
            if status["state"] == "recorded":
                return status
            if status["state"] == "failed":
                raise DemoError(f"{body['operation']} failed: {status['error']['detail']}")
            time.sleep(0.1)
        raise DemoError(f"{body['operation']} {body['operation_id']} did not complete within 120 s")

    def cli(self, *args: str, config: Path | None = None, ok: tuple[int, ...] = (0,)) -> str:
        cmd = [*FINP2P, *(["-c", str(config)] if config else []), *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FINP2P_")}
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
        if r.returncode not in ok:
            raise DemoError(f"`finp2p {' '.join(args)}` failed ({r.returncode}): {r.stderr.strip()[-400:]}")
        return r.stdout

    def step(self, title: str, fn: Callable[[], str]) -> None:
        started = time.monotonic()
        self.say(f"  … {title}")
        detail = fn()
        elapsed = time.monotonic() - started
        self.steps.append({"step": title, "result": detail, "seconds": round(elapsed, 2)})
        self.say(f"  ✓ {title}: {detail} ({elapsed:.1f} s)")

    def start(self, name: str, config: Path) -> dict[str, Any]:
        command = self.commands[name] = NodeCommand.for_node(config)
        proc = self.procs[name] = command.launch(detached=self.story == "devnet")  # a devnet outlives its command
        try:
            info = command.wait_serving(proc, name)
        except ProcessError as exc:
            raise DemoError(str(exc)) from None
        self.nodes[name] = {**info, "config": str(config)}
        return info

    def chain_token_file(self, bank: str) -> Path:
        """Where ``bank`` keeps the token of the embedded chain bank-a serves."""
        return self.root / bank / "chain.token"

    def auditor_profile(self) -> Path:
        """The auditor's own profile of the chain: its endpoint (and token), no contracts of its own."""
        path = self.root / "auditor" / "chain.toml"
        if not path.exists():
            settings = {"backend": "rpc", "rpc": self.chain_url, "read_only": True}
            if not self.chain_rpc:
                token = self.root / "auditor" / "chain.token"
                write_private(token, self.chain_token_file("bank-b").read_text())
                settings["rpc_token_file"] = str(token)
            lines = ['kind = "ethereum"', f'ledger_id = "{self.ledger_id}"', "", "[settings]"]
            lines += [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
            write_private(path, "\n".join(lines) + "\n")
        return path

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()

    # -- the story -----------------------------------------------------------------------------------------------
    def run(self) -> None:
        net = self.root / "net"
        gov_port = free_port()
        configs = {b: self.root / b / "node.toml" for b in BANKS}
        gov_config = net / "governance" / "gov-1" / "node.toml"

        def create() -> str:
            out = json.loads(
                self.cli(
                    "network",
                    "init",
                    str(net),
                    "--network-id",
                    "demo",
                    "--devnet",
                    "--governance",
                    f"gov-1=127.0.0.1:{gov_port}",
                    "--json",
                )
            )
            return f"network 'demo', genesis {out['genesis_hash'][:16]}…, governance node gov-1"

        self.step("create the network (genesis, founding keys, a certified governance node)", create)
        self.step("start the governance node", lambda: f"gov-1 at {self.start('gov-1', gov_config)['address']}")

        def register() -> str:
            for bank in BANKS:
                self.cli("config", "init", str(configs[bank]), "--name", bank, "--genesis", str(net / "genesis.json"))
                api_port = free_port()
                with configs[bank].open("a") as fh:
                    fh.write(f"\n[advert]\ncheck_s = 0.5\n\n[api]\nport = {api_port}\n")
                    fh.write('\n[ledgers]\nprofiles = ["chain.toml"]\n')
                self.apis[bank] = (f"http://127.0.0.1:{api_port}", "")
                if bank == "bank-c":  # bank-c also serves its ledger to FinP2P routers, who need its token
                    adapter_port = free_port()
                    self.adapter_url = f"http://127.0.0.1:{adapter_port}/api"
                    self.adapter_token = new_token_file(configs[bank].parent / "adapter.token")
                    with configs[bank].open("a") as fh:
                        fh.write(f'\n[adapter]\nport = {adapter_port}\ntoken_file = "adapter.token"\n')
                self.cli(
                    "org",
                    "register",
                    "--org-id",
                    bank,
                    "--name",
                    bank.replace("-", " ").title(),
                    "--public-url",
                    f"https://127.0.0.1:{free_port()}",
                    config=configs[bank],
                    ok=(1,),
                )
            pending = json.loads(self.cli("governance", "list", "--status", "pending", "--json", config=gov_config))
            for p in pending:
                self.cli("governance", "approve", p["id"], config=gov_config)
            for bank in BANKS:
                self.cli(
                    "org",
                    "register",
                    "--org-id",
                    bank,
                    "--name",
                    bank,
                    "--public-url",
                    "https://127.0.0.1:1",
                    config=configs[bank],
                )
            return f"{len(pending)} registrations approved by the operator; credentials and TLS certificates issued"

        self.step("register three banks (signed requests over TLS, operator approval)", register)

        def verify() -> str:
            chain = configs["bank-a"].parent / "data" / "identity" / "credentials.json"
            out = json.loads(
                self.cli("credential", "verify", str(chain), "--genesis", str(net / "genesis.json"), "--json")
            )
            return " ← ".join(out["links"])

        self.step("verify bank-a's credential chain against the genesis", verify)
        chain_url = self.chain_url = self.chain_rpc or f"http://127.0.0.1:{free_port()}"

        def deploy(bank: str) -> None:
            out = configs[bank].parent / "chain.toml"
            token = [] if self.chain_rpc else ["--token-file", str(self.chain_token_file(bank))]
            answer = self.cli(
                "ethereum", "deploy", "--rpc", chain_url, "--out", str(out), *token, "--json", config=configs[bank]
            )
            self.ledger_id = json.loads(answer)["ledger_id"]

        def start_banks() -> str:
            for bank in BANKS:
                token = self.cli("api", "token", "demo-app", config=configs[bank]).strip()
                self.apis[bank] = (self.apis[bank][0], token)
            if self.chain_rpc:
                deploy("bank-a")
            else:  # bank-a's node runs the embedded chain and serves it; the others deploy their contracts on it
                # Served behind a token that bank-a gives the others (here, on one machine, a copy in their folder);
                # bank-a funds their operators, the only accounts with ether besides its own.
                token = new_token_file(self.chain_token_file("bank-a"))
                for bank in ("bank-b", "bank-c"):
                    write_private(self.chain_token_file(bank), token + "\n")
                operators = [_fin_id(configs[b]) for b in ("bank-b", "bank-c")]
                (configs["bank-a"].parent / "chain.toml").write_text(
                    f'kind = "ethereum"\nledger_id = "{LEDGER}"\n\n[settings]\nbackend = "embedded"\n'
                    f'serve_rpc = "{chain_url.removeprefix("http://")}"\nserve_rpc_token_file = "chain.token"\n'
                    f"fund_accounts = {json.dumps(operators)}\n"
                )
            started = [f"bank-a at {self.start('bank-a', configs['bank-a'])['address']}"]
            for bank in ("bank-b", "bank-c"):
                deploy(bank)
                started.append(f"{bank} at {self.start(bank, configs[bank])['address']}")
            where = (
                f"the chain at {chain_url}" if self.chain_rpc else f"the embedded chain bank-a serves at {chain_url}"
            )
            return ", ".join(started) + f"; contracts on {where}"

        self.step("start the banks (mutual TLS, adverts, one Ethereum chain they share)", start_banks)
        if self.story == "devnet":
            self.asset_story(net)
            return

        def discover() -> str:
            found = json.loads(self.cli("discover", "all", "--json", config=configs["bank-c"]))
            return "bank-c finds " + ", ".join(f"{a['org_id']} ({a['role']})" for a in found)

        self.step("discover the network from bank-c (adverts verified one by one)", discover)

        def share() -> str:
            body = {
                "legal_name": "Alice Martin",
                "nationality": "FR",
                "kyc_status": "verified",
                "accreditation": "professional",
            }
            self.cli("data", "put", ALICE, "--body", json.dumps(body), config=configs["bank-a"])
            self.cli("data", "share", ALICE, "--to", "bank-b", config=configs["bank-a"])
            self.cli("data", "share", ALICE, "--to", "bank-c", "--push", config=configs["bank-a"])
            got = json.loads(self.cli("data", "get", ALICE, "--json", config=configs["bank-b"]))
            return f"bank-b pulled {ALICE} (KYC {got['data']['kyc_status']}); bank-c gets a pushed replica"

        self.step("share a user's KYC data: by pull with bank-b, by push with bank-c", share)

        def update() -> str:
            body = {"legal_name": "Alice Martin", "nationality": "FR", "kyc_status": "expired"}
            self.cli("data", "put", ALICE, "--body", json.dumps(body), config=configs["bank-a"])
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                got = json.loads(
                    self.cli("data", "get", ALICE, "--local", "--json", config=configs["bank-c"], ok=(0, 1)) or "{}"
                )
                if got.get("version") == 2:
                    return f"bank-c's replica is at version 2 (KYC {got['data']['kyc_status']})"
                time.sleep(0.3)
            raise DemoError("bank-c's replica did not receive the update")

        self.step("update the record: the push replica follows", update)

        def denied() -> str:
            self.cli("data", "unshare", ALICE, "--from", "bank-b", config=configs["bank-a"])
            self.cli("data", "get", ALICE, config=configs["bank-b"], ok=(1,))
            return "bank-b's next request is refused (FP5001), with no data"

        self.step("withdraw bank-b's access", denied)

        def broadcast() -> str:
            out = json.loads(
                self.cli(
                    "broadcast",
                    "network.genesis",
                    "--quorum",
                    "3",
                    "--via-rendezvous",
                    "--encrypt",
                    "--json",
                    config=configs["bank-b"],
                )
            )
            state = "consistent" if out["consistent"] else "NOT consistent"
            return f"{len(out['answers'])} signed answers, {state}: all trust genesis {str(out['value'])[:16]}…"

        self.step("broadcast through the rendezvous: do all nodes trust the same genesis?", broadcast)
        self.asset_story(net)

    def asset_story(self, net: Path) -> None:
        from finp2p.identity.keys import SigningKey, save_key

        asset_id = f"bank-a:102:{ASSET_NAME}"
        wallets = {"carol": SigningKey.generate(), "dave": SigningKey.generate()}  # the users' own keys
        for user, key in wallets.items():  # kept (0600) so that whoever uses the network can sign as them
            self.user_keys[user] = self.root / "users" / f"{user}.key"
            save_key(self.user_keys[user], key)

        def create_and_issue() -> str:
            body = {"name": ASSET_NAME, "ledger_id": self.ledger_id}
            made = self.http("bank-a", "POST", "/v1/assets", body, key="asset")
            for user, key in wallets.items():
                info = {"user_id": user, "fin_id": key.fin_id, "legal_name": user.title(), "kyc_status": "verified"}
                self.http("bank-b", "POST", "/v1/users", info)
                self.cli(
                    "data", "share", f"bank-b:101:{user}", "--to", "bank-a", config=self.root / "bank-b" / "node.toml"
                )
            issue = {
                "operation": "issue",
                "asset_id": asset_id,
                "quantity": 1000,
                "operation_id": "demo-issue-1",
                "destination": wallets["carol"].fin_id,
            }
            done = self.operation("bank-a", issue)
            contract = made["ledger"]["contract"]
            return f"{asset_id} at {contract[:12]}…; 1000 units issued to bank-b's user carol (block {_block(done)})"

        self.step("create an asset managed by bank-a on its ledger, and issue it", create_and_issue)
        if self.story == "devnet":
            return
        self.receipt: dict[str, Any] = {}

        def transfer() -> str:
            body = {
                "operation": "transfer",
                "asset_id": asset_id,
                "quantity": 250,
                "operation_id": "demo-transfer-1",
                "source": wallets["carol"].fin_id,
                "destination": wallets["dave"].fin_id,
                "source_user": "bank-b:101:carol",
                "destination_user": "bank-b:101:dave",
            }
            template = self.http("bank-b", "POST", "/v1/consent", body)["template"]
            signature = wallets["carol"].sign_digest(bytes.fromhex(template["hash"])).hex()  # carol's wallet signs
            body["consent"] = {
                "template": "EIP712",
                "signer": wallets["carol"].fin_id,
                "signature": signature,
                "payload": template,
            }
            done = self.operation("bank-b", body)
            self.receipt = done["receipt"]
            record = self.receipt["record"]["transaction_id"]
            return (
                f"routed to bank-a, which asked bank-b for carol's and dave's information, executed it and signed "
                f"receipt {self.receipt['receipt']['id'][:14]}…; bank-b recorded it (tx {record[:14]}…)"
            )

        self.step("transfer between two users of bank-b, on bank-a's asset", transfer)

        def audit() -> str:
            bundle = self.root / "receipt.json"
            bundle.write_text(json.dumps(self.receipt, indent=2))
            genesis, profile = str(net / "genesis.json"), str(self.auditor_profile())
            out = json.loads(
                self.cli("receipt", "verify", str(bundle), "--genesis", genesis, "--ledger", profile, "--json")
            )
            held = sum(c["ok"] for c in out["checks"])
            verdicts = "; ".join(f"{c['check']} {c['status']}" for c in out["checks"])
            return f"{held} of {len(out['checks'])} checks hold ({verdicts})"

        self.step("an auditor verifies the receipt (genesis and ledger only, no node)", audit)

        def balances() -> str:
            fin_id = wallets["dave"].fin_id
            out = self.http("bank-b", "GET", f"/v1/balances/broadcast?asset_id={asset_id}&fin_id={fin_id}&quorum=2")
            who = ", ".join(a["org_id"] for a in out["answers"])
            state = "consistent" if out["consistent"] else "NOT consistent"
            return f"dave holds {out['value']['available']} by {len(out['answers'])} answers ({who}), {state}"

        self.step("broadcast to the ledger's nodes: dave's balance", balances)

        def validate() -> str:
            out = self.http("bank-b", "POST", "/v1/receipts/validate", {"bundle": self.receipt, "quorum": 2})
            state = "consistent" if out["consistent"] else "NOT consistent"
            valid = "valid" if (out["value"] or {}).get("valid") else "NOT valid"
            return f"{len(out['answers'])} nodes with access to the ledger say the receipt is {valid}, {state}"

        self.step("broadcast the receipt's metadata for validation", validate)
        self.step("a FinP2P router uses bank-c's ledger through the ledger-adapter API", self.adapter_story)

    def adapter_call(self, method: str, path: str, body: Any = None) -> Any:
        """One call to bank-c's ledger adapter, as a FinP2P router makes it (a fresh Idempotency-Key per POST)."""
        import urllib.error
        import urllib.request
        import uuid

        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": uuid.uuid4().hex,
            "Authorization": f"Bearer {self.adapter_token}",
        }
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.adapter_url + path, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - bank-c's loopback adapter
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise DemoError(
                f"adapter {method} {path}: {exc.code} {exc.read().decode(errors='replace')[:300]}"
            ) from None

    def adapter_operation(self, path: str, body: Any) -> dict[str, Any]:
        """POST an operation, then poll its cid until it completes; its response (a receipt, an asset)."""
        operation = self.adapter_call("POST", path, body)
        deadline = time.monotonic() + 60
        while not operation["isCompleted"] and time.monotonic() < deadline:
            operation = self.adapter_call("GET", f"/operations/status/{operation['cid']}?wait=5")["operation"]
        if "response" not in operation:
            raise DemoError(f"{path}: {operation.get('error') or 'no result in 60 s'}")
        return dict(operation["response"])

    def adapter_story(self) -> str:
        import uuid

        from finp2p.adapter.router import nonce, primary_sale_signature, selling_signature
        from finp2p.identity.keys import SigningKey

        erin, frank = SigningKey.generate(), SigningKey.generate()
        issuer = _fin_id(self.root / "bank-c" / "node.toml")
        asset_id = f"bank-c:102:{uuid.uuid4()}"
        created = self.adapter_operation("/assets/create", {"asset": {"resourceId": asset_id}})
        asset = {"resourceId": asset_id, "ledgerIdentifier": created["ledgerAssetInfo"]["ledgerIdentifier"]}
        n = nonce()
        self.adapter_operation(
            "/assets/issue",
            {
                "nonce": n,
                "destination": {"finId": erin.fin_id, "asset": asset},
                "quantity": "100",
                "settlementRef": "demo-issue",
                "signature": primary_sale_signature(erin, issuer, asset_id, 100, n),
            },
        )
        n = nonce()
        receipt = self.adapter_operation(
            "/assets/transfer",
            {
                "nonce": n,
                "source": {"finId": erin.fin_id, "asset": asset},
                "destination": {"finId": frank.fin_id, "asset": asset},
                "quantity": "40",
                "settlementRef": "demo-transfer",
                "signature": selling_signature(erin, asset_id, 40, frank.fin_id, n),
            },
        )
        balance = self.adapter_call(
            "POST", "/asset/balance", {"account": {"type": "finId", "finId": frank.fin_id}, "asset": asset}
        )
        return (
            f"asset created, 100 issued, 40 moved by the investor's EIP712 signature: receipt "
            f"{receipt['id'][:14]}… ({receipt['proof']['type']}, bank-c's key); the buyer holds "
            f"{balance['balanceInfo']['available']}"
        )


def _fin_id(config: Path) -> str:
    """The FinID of the node whose config is ``config`` (it has registered: its key exists)."""
    from finp2p.identity.local import LocalIdentity

    return LocalIdentity(config.parent / "data").key().fin_id


def _block(status: dict[str, Any]) -> str:
    from finp2p.assets.receipts import Bundle

    return Bundle.from_dict(status["receipt"]).receipt.id[:14] + "…"


def run_demo(keep: Path | None, say: Callable[[str], None]) -> dict[str, Any]:
    root = keep or Path(tempfile.mkdtemp(prefix="finp2p-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    demo = Demo(root, say)
    started = time.monotonic()
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        demo.run()
        ok, error = True, None
    except (DemoError, KeyboardInterrupt) as exc:
        ok, error = False, str(exc) or "interrupted"
    finally:
        demo.stop_all()
        signal.signal(signal.SIGTERM, previous)
    if keep is None and ok:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return {
        "ok": ok,
        "error": error,
        "steps": demo.steps,
        "seconds": round(time.monotonic() - started, 1),
        "processes": {name: proc.pid for name, proc in demo.procs.items()},
        "commands": {name: command.to_dict() for name, command in demo.commands.items()},
        "directory": str(root) if (keep or not ok) else None,
    }


# -- finp2p devnet: the same network, left running ----------------------------------------------------------------
DEVNET_FILE = "devnet.json"


def devnet_up(root: Path, chain_rpc: str | None, say: Callable[[str], None]) -> dict[str, Any]:
    """Build the demo's network in ``root`` with an asset issued, and leave its processes running (their PIDs
    in ``root/devnet.json``). On a failure, everything started is stopped."""
    if (root / DEVNET_FILE).exists() and devnet_status(root)["running"]:
        raise DemoError(f"a devnet runs already in {root}: `finp2p devnet down --dir {root}` stops it")
    root.mkdir(parents=True, exist_ok=True)
    demo = Demo(root, say, story="devnet", chain_rpc=chain_rpc)
    try:
        demo.run()
    except (DemoError, KeyboardInterrupt):
        demo.stop_all()
        raise
    state = {
        "processes": {name: proc.pid for name, proc in demo.procs.items()},
        "commands": {name: command.to_dict() for name, command in demo.commands.items()},
        "nodes": demo.nodes,
        "apis": {bank: {"url": url, "token": token} for bank, (url, token) in demo.apis.items()},
        "adapter": {"url": demo.adapter_url, "token_file": str(root / "bank-c" / "adapter.token")},
        "chain": {"url": demo.chain_url, "auditor_profile": str(demo.auditor_profile())},
        "users": {user: {"key_file": str(path)} for user, path in demo.user_keys.items()},
        "genesis": str(root / "net" / "genesis.json"),
        "ledger_id": demo.ledger_id,
        "asset_id": f"bank-a:102:{ASSET_NAME}",
        "steps": demo.steps,
    }
    write_private(root / DEVNET_FILE, json.dumps(state, indent=2))  # it holds API tokens
    return state


def devnet_status(root: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads((root / DEVNET_FILE).read_text())
    except (OSError, ValueError):
        return {"running": False, "processes": {}}
    alive = {name: processes.alive(pid) for name, pid in state["processes"].items()}
    return {**state, "alive": alive, "running": any(alive.values())}


def devnet_down(root: Path) -> list[str]:
    """Stop the devnet's processes by their PIDs (SIGTERM, then SIGKILL after 15 s). Returns the names stopped."""
    state = devnet_status(root)
    stopped = [name for name, pid in state["processes"].items() if processes.alive(pid)]
    for pid in state["processes"].values():
        if processes.alive(pid):
            os.kill(pid, signal.SIGTERM)
    for pid in state["processes"].values():
        processes.stop(pid)
    (root / DEVNET_FILE).unlink(missing_ok=True)
    return stopped


def _devnet_process(root: Path, name: str) -> tuple[dict[str, Any], NodeCommand]:
    state = devnet_status(root)
    if not state["processes"]:
        raise DemoError(f"no devnet in {root}: `finp2p devnet up --dir {root}` starts one")
    if name not in state["processes"]:
        raise DemoError(f"the devnet in {root} has no process {name!r} (it has {', '.join(state['processes'])})")
    if name not in state.get("commands", {}):
        raise DemoError(f"{name} was started by an older finp2p that kept no command line: run devnet up again")
    return state, NodeCommand.from_dict(state["commands"][name])


def devnet_restart(root: Path, name: str) -> dict[str, Any]:
    """Stop ``name`` (SIGTERM, SIGKILL after 15 s) if it runs, start it again with its recorded command, and wait
    until it serves; its new PID is written to devnet.json. Returns the PID and how long the start took."""
    state, command = _devnet_process(root, name)
    processes.stop(state["processes"][name])
    started = time.monotonic()
    proc = command.launch(detached=True)
    try:
        info = command.wait_serving(proc, name)
    except ProcessError as exc:
        raise DemoError(str(exc)) from None
    seconds = time.monotonic() - started
    fresh = json.loads((root / DEVNET_FILE).read_text())
    fresh["processes"][name] = proc.pid
    fresh.setdefault("nodes", {})[name] = {**fresh.get("nodes", {}).get(name, {}), **info}
    write_private(root / DEVNET_FILE, json.dumps(fresh, indent=2))
    return {"name": name, "pid": proc.pid, "seconds": round(seconds, 2)}


def devnet_kill(root: Path, name: str, *, hard: bool = True) -> dict[str, Any]:
    """SIGKILL ``name`` (with ``hard=False``: SIGTERM, then SIGKILL after 15 s); ``finp2p devnet restart`` starts it
    again."""
    state, _ = _devnet_process(root, name)
    pid = state["processes"][name]
    was_alive = processes.alive(pid)
    if hard:
        processes.kill(pid)
    else:
        processes.stop(pid)
    return {"name": name, "pid": pid, "was_running": was_alive}
