"""``finp2p demo``: a local FinP2P network on loopback, and the story of what it does, step by step.

A governance node and three banks run as separate processes (``finp2p node start``) on free ports, driven through
the same commands an operator types. Every process is stopped by its PID at the end, whatever happens.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FINP2P = [sys.executable, "-m", "finp2p"]
BANKS = ("bank-a", "bank-b", "bank-c")
ALICE = "bank-a:101:alice"


class DemoError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Demo:
    root: Path
    say: Callable[[str], None]
    steps: list[dict[str, Any]] = field(default_factory=list)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

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
        run_file = config.parent / "data" / "node.json"
        run_file.unlink(missing_ok=True)
        log = (config.parent / "node.log").open("ab")
        proc = subprocess.Popen(
            [*FINP2P, "--log-level", "INFO", "-c", str(config), "node", "start"], stdout=log, stderr=subprocess.STDOUT
        )
        self.procs[name] = proc
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DemoError(f"{name} exited; see {config.parent / 'node.log'}")
            if run_file.exists():
                info: dict[str, Any] = json.loads(run_file.read_text())
                if info.get("pid") == proc.pid:
                    return info
            time.sleep(0.1)
        raise DemoError(f"{name} did not start within 60 s; see {config.parent / 'node.log'}")

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
                with configs[bank].open("a") as fh:
                    fh.write("\n[advert]\ncheck_s = 0.5\n")
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
        self.step(
            "start the banks (mutual TLS, adverts published)",
            lambda: ", ".join(f"{b} at {self.start(b, configs[b])['address']}" for b in BANKS),
        )

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
        "directory": str(root) if (keep or not ok) else None,
    }
