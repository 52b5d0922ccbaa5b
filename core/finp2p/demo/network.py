"""The network a story runs on: its node processes, the commands an operator types to them, the REST and
ledger-adapter calls their applications and routers make, and the steps told as they happen."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finp2p.demo.fabric import FabricDevnet
from finp2p.demo.processes import FINP2P, NodeCommand, ProcessError
from finp2p.edge.files import write_private
from finp2p.ledger_profiles import EMBEDDED_PROFILE

BANKS = ("bank-a", "bank-b", "bank-c")
ALICE = "bank-a:101:alice"
LEDGER = EMBEDDED_PROFILE.ledger_id
ASSET_NAME = "bond-2031"
#: The asset bank-a manages on the Fabric channel (``--fabric``).
FABRIC_ASSET_NAME = "fabric-bond-2031"


class DemoError(Exception):
    pass


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
    #: The receipt bundle of the story's transfer, which the auditor and the broadcasts then check.
    receipt: dict[str, Any] = field(default_factory=dict)
    #: The users' own keys (:class:`finp2p.identity.keys.SigningKey`), by name, which sign their consents.
    wallets: dict[str, Any] = field(default_factory=dict)
    #: ``--fabric``: bank-a also manages an asset on a Fabric devnet started for the story (``devnet/fabric.py``).
    fabric: bool = False
    fabric_devnet: FabricDevnet | None = None
    fabric_ledger_id: str = ""
    fabric_receipt: dict[str, Any] = field(default_factory=dict)
    #: The Fabric devnet's processes (orderer, peer, chaincode server) by name, once it is up.
    fabric_pids: dict[str, int] = field(default_factory=dict)

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

    def auditor_profiles(self) -> list[Path]:
        """The auditor's own profiles: of the chain, and of the Fabric channel when there is one."""
        fabric = self.root / "auditor" / "fabric.toml"
        if self.fabric_devnet is not None and not fabric.exists():
            self.fabric_devnet.reader(fabric)
        return [self.auditor_profile(), *([fabric] if self.fabric_devnet is not None else [])]

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
        """Stop every process the story started, by PID (the Fabric devnet's too)."""
        if self.fabric_devnet is not None:
            self.fabric_devnet.down()
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()

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
