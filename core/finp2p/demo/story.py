"""``finp2p demo``: the story of a FinP2P network, step by step.

A governance node and three banks run as separate processes (``finp2p node start``) on free ports, driven through
the same commands an operator types and the REST API their applications call. bank-a's node runs an embedded
Ethereum chain and serves it on loopback; bank-b and bank-c deploy their own contracts on it, so the three share
one ledger, as banks on one chain do. Every process is stopped by its PID at the end, whatever happens.
"""

from __future__ import annotations

import json
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from finp2p.demo.network import ALICE, ASSET_NAME, BANKS, FABRIC_ASSET_NAME, LEDGER, Demo, DemoError
from finp2p.demo.ports import free_port
from finp2p.edge.bearer import new_token_file
from finp2p.edge.files import write_private


def tell(demo: Demo) -> None:
    """The whole story: the network created, members registered and verified, discovery, private data, a
    broadcast; then an asset (:func:`asset_story`) and a router's view (:func:`adapter_story`). With ``demo.fabric``,
    Fabric is looked for first (a clear error if it is not there), and the story adds a Fabric devnet and an asset
    on it (:func:`fabric_story`)."""
    if demo.fabric:
        from finp2p.demo.fabric import FabricDevnet, FabricMissing

        demo.say("  … looking for Fabric (its release, and the chaincode built once per version of its sources)")
        try:
            demo.fabric_devnet = FabricDevnet.find(demo.root / "fabric")
        except FabricMissing as exc:
            raise DemoError(str(exc)) from None
    net = demo.root / "net"
    gov_port = free_port()
    configs = {b: demo.root / b / "node.toml" for b in BANKS}
    gov_config = net / "governance" / "gov-1" / "node.toml"

    def create() -> str:
        out = json.loads(
            demo.cli(
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

    demo.step("create the network (genesis, founding keys, a certified governance node)", create)
    demo.step("start the governance node", lambda: f"gov-1 at {demo.start('gov-1', gov_config)['address']}")

    def register() -> str:
        for bank in BANKS:
            demo.cli("config", "init", str(configs[bank]), "--name", bank, "--genesis", str(net / "genesis.json"))
            api_port = free_port()
            with configs[bank].open("a") as fh:
                fh.write(f"\n[advert]\ncheck_s = 0.5\n\n[api]\nport = {api_port}\n")
                profiles = ["chain.toml", "fabric.toml"] if demo.fabric and bank == "bank-a" else ["chain.toml"]
                fh.write(f"\n[ledgers]\nprofiles = {json.dumps(profiles)}\n")
            demo.apis[bank] = (f"http://127.0.0.1:{api_port}", "")
            if bank == "bank-c":  # bank-c also serves its ledger to FinP2P routers, who need its token
                adapter_port = free_port()
                demo.adapter_url = f"http://127.0.0.1:{adapter_port}/api"
                demo.adapter_token = new_token_file(configs[bank].parent / "adapter.token")
                with configs[bank].open("a") as fh:
                    fh.write(f'\n[adapter]\nport = {adapter_port}\ntoken_file = "adapter.token"\n')
            demo.cli(
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
        pending = json.loads(demo.cli("governance", "list", "--status", "pending", "--json", config=gov_config))
        for p in pending:
            demo.cli("governance", "approve", p["id"], config=gov_config)
        for bank in BANKS:
            demo.cli(
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

    demo.step("register three banks (signed requests over TLS, operator approval)", register)

    def verify() -> str:
        chain = configs["bank-a"].parent / "data" / "identity" / "credentials.json"
        out = json.loads(demo.cli("credential", "verify", str(chain), "--genesis", str(net / "genesis.json"), "--json"))
        return " ← ".join(out["links"])

    demo.step("verify bank-a's credential chain against the genesis", verify)
    chain_url = demo.chain_url = demo.chain_rpc or f"http://127.0.0.1:{free_port()}"

    def deploy(bank: str) -> None:
        out = configs[bank].parent / "chain.toml"
        token = [] if demo.chain_rpc else ["--token-file", str(demo.chain_token_file(bank))]
        answer = demo.cli(
            "ethereum", "deploy", "--rpc", chain_url, "--out", str(out), *token, "--json", config=configs[bank]
        )
        demo.ledger_id = json.loads(answer)["ledger_id"]

    def start_banks() -> str:
        for bank in BANKS:
            token = demo.cli("api", "token", "demo-app", config=configs[bank]).strip()
            demo.apis[bank] = (demo.apis[bank][0], token)
        if demo.chain_rpc:
            deploy("bank-a")
        else:  # bank-a's node runs the embedded chain and serves it; the others deploy their contracts on it
            # Served behind a token that bank-a gives the others (here, on one machine, a copy in their folder);
            # bank-a funds their operators, the only accounts with ether besides its own.
            token = new_token_file(demo.chain_token_file("bank-a"))
            for bank in ("bank-b", "bank-c"):
                write_private(demo.chain_token_file(bank), token + "\n")
            operators = [_fin_id(configs[b]) for b in ("bank-b", "bank-c")]
            (configs["bank-a"].parent / "chain.toml").write_text(
                f'kind = "ethereum"\nledger_id = "{LEDGER}"\n\n[settings]\nbackend = "embedded"\n'
                f'serve_rpc = "{chain_url.removeprefix("http://")}"\nserve_rpc_token_file = "chain.token"\n'
                f"fund_accounts = {json.dumps(operators)}\n"
            )
        started = [f"bank-a at {demo.start('bank-a', configs['bank-a'])['address']}"]
        for bank in ("bank-b", "bank-c"):
            deploy(bank)
            started.append(f"{bank} at {demo.start(bank, configs[bank])['address']}")
        where = f"the chain at {chain_url}" if demo.chain_rpc else f"the embedded chain bank-a serves at {chain_url}"
        return ", ".join(started) + f"; contracts on {where}"

    if demo.fabric:
        demo.step(
            "start a Fabric network (orderer, peer, FinP2P chaincode; Fabric's release binaries)",
            lambda: fabric_up(demo),
        )
    demo.step("start the banks (mutual TLS, adverts, one Ethereum chain they share)", start_banks)
    if demo.story == "devnet":
        asset_story(demo, net)
        return

    def discover() -> str:
        found = json.loads(demo.cli("discover", "all", "--json", config=configs["bank-c"]))
        return "bank-c finds " + ", ".join(f"{a['org_id']} ({a['role']})" for a in found)

    demo.step("discover the network from bank-c (adverts verified one by one)", discover)

    def share() -> str:
        body = {
            "legal_name": "Alice Martin",
            "nationality": "FR",
            "kyc_status": "verified",
            "accreditation": "professional",
        }
        demo.cli("data", "put", ALICE, "--body", json.dumps(body), config=configs["bank-a"])
        demo.cli("data", "share", ALICE, "--to", "bank-b", config=configs["bank-a"])
        demo.cli("data", "share", ALICE, "--to", "bank-c", "--push", config=configs["bank-a"])
        got = json.loads(demo.cli("data", "get", ALICE, "--json", config=configs["bank-b"]))
        return f"bank-b pulled {ALICE} (KYC {got['data']['kyc_status']}); bank-c gets a pushed replica"

    demo.step("share a user's KYC data: by pull with bank-b, by push with bank-c", share)

    def update() -> str:
        body = {"legal_name": "Alice Martin", "nationality": "FR", "kyc_status": "expired"}
        demo.cli("data", "put", ALICE, "--body", json.dumps(body), config=configs["bank-a"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            got = json.loads(
                demo.cli("data", "get", ALICE, "--local", "--json", config=configs["bank-c"], ok=(0, 1)) or "{}"
            )
            if got.get("version") == 2:
                return f"bank-c's replica is at version 2 (KYC {got['data']['kyc_status']})"
            time.sleep(0.3)
        raise DemoError("bank-c's replica did not receive the update")

    demo.step("update the record: the push replica follows", update)

    def denied() -> str:
        demo.cli("data", "unshare", ALICE, "--from", "bank-b", config=configs["bank-a"])
        demo.cli("data", "get", ALICE, config=configs["bank-b"], ok=(1,))
        return "bank-b's next request is refused (FP5001), with no data"

    demo.step("withdraw bank-b's access", denied)

    def broadcast() -> str:
        out = json.loads(
            demo.cli(
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

    demo.step("broadcast through the rendezvous: do all nodes trust the same genesis?", broadcast)
    asset_story(demo, net)


def asset_story(demo: Demo, net: Path) -> None:
    """An asset on the shared chain: issued, transferred, audited, its balance and receipt broadcast."""
    from finp2p.identity.keys import SigningKey, save_key

    asset_id = f"bank-a:102:{ASSET_NAME}"
    wallets = demo.wallets = {"carol": SigningKey.generate(), "dave": SigningKey.generate()}  # the users' own keys
    for user, key in wallets.items():  # kept (0600) so that whoever uses the network can sign as them
        demo.user_keys[user] = demo.root / "users" / f"{user}.key"
        save_key(demo.user_keys[user], key)

    def create_and_issue() -> str:
        body = {"name": ASSET_NAME, "ledger_id": demo.ledger_id}
        made = demo.http("bank-a", "POST", "/v1/assets", body, key="asset")
        for user, key in wallets.items():
            info = {"user_id": user, "fin_id": key.fin_id, "legal_name": user.title(), "kyc_status": "verified"}
            demo.http("bank-b", "POST", "/v1/users", info)
            demo.cli("data", "share", f"bank-b:101:{user}", "--to", "bank-a", config=demo.root / "bank-b" / "node.toml")
        issue = {
            "operation": "issue",
            "asset_id": asset_id,
            "quantity": 1000,
            "operation_id": "demo-issue-1",
            "destination": wallets["carol"].fin_id,
        }
        done = demo.operation("bank-a", issue)
        contract = made["ledger"]["contract"]
        return f"{asset_id} at {contract[:12]}…; 1000 units issued to bank-b's user carol (block {_block(done)})"

    demo.step("create an asset managed by bank-a on its ledger, and issue it", create_and_issue)
    if demo.story == "devnet":
        if demo.fabric:
            fabric_story(demo, net)
        return

    def transfer() -> str:
        done = _transfer(demo, asset_id, 250, "demo-transfer-1")
        demo.receipt = done["receipt"]
        record = demo.receipt["record"]["transaction_id"]
        return (
            f"routed to bank-a, which asked bank-b for carol's and dave's information, executed it and signed "
            f"receipt {demo.receipt['receipt']['id'][:14]}…; bank-b recorded it (tx {record[:14]}…)"
        )

    demo.step("transfer between two users of bank-b, on bank-a's asset", transfer)

    def audit() -> str:
        return _audit(demo, net, demo.receipt, "receipt.json")

    demo.step("an auditor verifies the receipt (genesis and ledger only, no node)", audit)

    def balances() -> str:
        fin_id = wallets["dave"].fin_id
        out = demo.http("bank-b", "GET", f"/v1/balances/broadcast?asset_id={asset_id}&fin_id={fin_id}&quorum=2")
        who = ", ".join(a["org_id"] for a in out["answers"])
        state = "consistent" if out["consistent"] else "NOT consistent"
        return f"dave holds {out['value']['available']} by {len(out['answers'])} answers ({who}), {state}"

    demo.step("broadcast to the ledger's nodes: dave's balance", balances)

    def validate() -> str:
        out = demo.http("bank-b", "POST", "/v1/receipts/validate", {"bundle": demo.receipt, "quorum": 2})
        state = "consistent" if out["consistent"] else "NOT consistent"
        valid = "valid" if (out["value"] or {}).get("valid") else "NOT valid"
        return f"{len(out['answers'])} nodes with access to the ledger say the receipt is {valid}, {state}"

    demo.step("broadcast the receipt's metadata for validation", validate)
    if demo.fabric:
        fabric_story(demo, net)
    demo.step("a FinP2P router uses bank-c's ledger through the ledger-adapter API", lambda: adapter_story(demo))


def fabric_up(demo: Demo) -> str:
    """The Fabric devnet, with bank-a's chaincode on its channel (bank-a's node opens it when it starts)."""
    from finp2p.demo.fabric import FabricMissing
    from finp2p.ledger_profiles import load_profile

    assert demo.fabric_devnet is not None, "found before the story starts"
    try:
        state = demo.fabric_devnet.up(demo.root / "bank-a" / "fabric.toml")
    except FabricMissing as exc:
        raise DemoError(str(exc)) from None
    demo.fabric_ledger_id = load_profile(demo.root / "bank-a" / "fabric.toml").ledger_id
    demo.fabric_pids = {f"fabric-{name}": int(pid) for name, pid in state["pids"].items()}
    ports = state["ports"]
    return (
        f"channel {state['channel']} on peer 127.0.0.1:{ports['peer']}, orderer 127.0.0.1:{ports['orderer']}; "
        f"chaincode {state['chaincode']} operated by bank-a ({demo.fabric_ledger_id})"
    )


def fabric_story(demo: Demo, net: Path) -> None:
    """An asset of bank-a on the Fabric channel, issued to bank-b's user, moved between bank-b's users; the receipt
    of the Fabric transaction recorded by bank-b on Ethereum and verified by the auditor on both ledgers."""
    asset_id = f"bank-a:102:{FABRIC_ASSET_NAME}"

    def create_and_issue() -> str:
        made = demo.http(
            "bank-a",
            "POST",
            "/v1/assets",
            {"name": FABRIC_ASSET_NAME, "ledger_id": demo.fabric_ledger_id},
            key="fasset",
        )
        issue = {
            "operation": "issue",
            "asset_id": asset_id,
            "quantity": 500,
            "operation_id": "demo-fabric-issue-1",
            "destination": demo.wallets["carol"].fin_id,
        }
        done = demo.operation("bank-a", issue)
        chaincode = made["ledger"]["chaincode"]
        return f"{asset_id} in chaincode {chaincode}; 500 units issued to carol (transaction {_block(done)})"

    demo.step("create an asset managed by bank-a on Fabric, and issue it", create_and_issue)
    if demo.story == "devnet":
        return

    def transfer() -> str:
        done = _transfer(demo, asset_id, 120, "demo-fabric-transfer-1")
        bundle = demo.fabric_receipt = done["receipt"]
        record = bundle["record"]
        return (
            f"bank-a executed it through its chaincode (transaction {bundle['receipt']['id'][:14]}…); bank-b "
            f"recorded the receipt on {record['ledger']['ledger_id']} (tx {record['transaction_id'][:14]}…)"
        )

    demo.step("transfer between bank-b's users on the Fabric asset, the receipt recorded on Ethereum", transfer)
    demo.step(
        "the auditor verifies it: the Fabric transaction through qscc, the record on Ethereum",
        lambda: _audit(demo, net, demo.fabric_receipt, "fabric-receipt.json"),
    )


def _transfer(demo: Demo, asset_id: str, quantity: int, operation_id: str) -> dict[str, Any]:
    """carol gives dave ``quantity`` units (both users of bank-b): the template asked of bank-b, signed by carol's
    wallet, the operation sent to bank-b and followed until its receipt is recorded."""
    body: dict[str, Any] = {
        "operation": "transfer",
        "asset_id": asset_id,
        "quantity": quantity,
        "operation_id": operation_id,
        "source": demo.wallets["carol"].fin_id,
        "destination": demo.wallets["dave"].fin_id,
        "source_user": "bank-b:101:carol",
        "destination_user": "bank-b:101:dave",
    }
    template = demo.http("bank-b", "POST", "/v1/consent", body)["template"]
    signature = demo.wallets["carol"].sign_digest(bytes.fromhex(template["hash"])).hex()  # carol's wallet signs
    body["consent"] = {
        "template": "EIP712",
        "signer": demo.wallets["carol"].fin_id,
        "signature": signature,
        "payload": template,
    }
    return demo.operation("bank-b", body)


def _audit(demo: Demo, net: Path, receipt: dict[str, Any], name: str) -> str:
    """``finp2p receipt verify`` of ``receipt``, with the genesis and the auditor's own ledger profiles only."""
    bundle = demo.root / name
    bundle.write_text(json.dumps(receipt, indent=2))
    args = ["receipt", "verify", str(bundle), "--genesis", str(net / "genesis.json"), "--json"]
    for profile in demo.auditor_profiles():
        args += ["--ledger", str(profile)]
    out = json.loads(demo.cli(*args))
    held = sum(c["ok"] for c in out["checks"])
    if held != len(out["checks"]):
        raise DemoError("the auditor's checks did not all hold: " + json.dumps(out["checks"])[:600])
    verdicts = "; ".join(f"{c['check']} {c['status']}" for c in out["checks"])
    return f"{held} of {len(out['checks'])} checks hold ({verdicts})"


def adapter_story(demo: Demo) -> str:
    import uuid

    from finp2p.adapter.router import nonce, primary_sale_signature, selling_signature
    from finp2p.identity.keys import SigningKey

    erin, frank = SigningKey.generate(), SigningKey.generate()
    issuer = _fin_id(demo.root / "bank-c" / "node.toml")
    asset_id = f"bank-c:102:{uuid.uuid4()}"
    created = demo.adapter_operation("/assets/create", {"asset": {"resourceId": asset_id}})
    asset = {"resourceId": asset_id, "ledgerIdentifier": created["ledgerAssetInfo"]["ledgerIdentifier"]}
    n = nonce()
    demo.adapter_operation(
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
    receipt = demo.adapter_operation(
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
    balance = demo.adapter_call(
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


def run_demo(keep: Path | None, say: Callable[[str], None], *, fabric: bool = False) -> dict[str, Any]:
    root = keep or Path(tempfile.mkdtemp(prefix="finp2p-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    demo = Demo(root, say, fabric=fabric)
    started = time.monotonic()
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        tell(demo)
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
        "processes": {**{name: proc.pid for name, proc in demo.procs.items()}, **demo.fabric_pids},
        "commands": {name: command.to_dict() for name, command in demo.commands.items()},
        "directory": str(root) if (keep or not ok) else None,
    }
