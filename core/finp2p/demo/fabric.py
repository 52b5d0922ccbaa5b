"""The Fabric network of ``finp2p demo --fabric`` and ``finp2p devnet up --fabric``: the project's native Fabric
devnet (``devnet/fabric.py``: one orderer, one peer and the FinP2P chaincode as plain processes, Fabric's binaries
from its release archive), run as a command, as an operator would run it, in the project's checkout.

Fabric is *available* when the checkout has its devnet and ``devnet/fabric prepare`` finds Fabric (``FABRIC_HOME``,
the cache ``make fabric`` fills, or the release archive) and builds the chaincode; otherwise :class:`FabricMissing`
says how to get it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import finp2p

#: The peer organization's client identities: the first operates bank-a's chaincode, the last reads for the auditor.
OPERATOR, AUDITOR = "User1", "User2"
HOW_TO_GET_IT = (
    "run `make fabric` in the project's checkout (it unpacks Fabric 3.1.5 from its release archive, checked against "
    "its checksum, into ~/.cache/finp2p/fabric and builds the chaincode), or set FABRIC_HOME to an unpacked Fabric "
    "3.1 release; then run this again"
)


class FabricMissing(Exception):
    """Fabric cannot be started here; the message says why and how to get it."""


def checkout() -> Path | None:
    """The project's checkout this ``finp2p`` runs from (``FINP2P_CHECKOUT``, or found beside the installed
    package), if it has the Fabric devnet."""
    named = os.environ.get("FINP2P_CHECKOUT")
    candidates = [Path(named)] if named else list(Path(finp2p.__file__).resolve().parents)
    for root in candidates:
        if (root / "devnet" / "fabric.py").is_file() and (root / "contracts" / "fabric").is_dir():
            return root
    return None


@dataclass
class FabricDevnet:
    """One Fabric devnet, its processes' PIDs and ports kept in ``state_dir``."""

    state_dir: Path
    root: Path

    @classmethod
    def find(cls, state_dir: Path) -> FabricDevnet:
        """The devnet to be kept in ``state_dir``, once Fabric is known to be available (FabricMissing if not)."""
        root = checkout()
        if root is None:
            raise FabricMissing(
                "the Fabric devnet (devnet/fabric.py and contracts/fabric) comes with the project's checkout, and "
                "this finp2p is not run from one: run it from a checkout (or set FINP2P_CHECKOUT to one)"
            )
        devnet = cls(state_dir, root)
        prepared = devnet._run("prepare", timeout=900, check=False)
        if prepared.returncode != 0:
            said = prepared.stderr.strip().removeprefix("error: ")[-600:]
            raise FabricMissing(f"Fabric is not available here ({said}): {HOW_TO_GET_IT}")
        return devnet

    def _run(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "devnet.fabric", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith(("CORE_", "ORDERER_"))},
        )
        if check and done.returncode != 0:
            raise FabricMissing(f"`devnet/fabric {' '.join(args[:2])}` failed: {done.stderr.strip()[-800:]}")
        return done

    def up(self, profile: Path) -> dict[str, Any]:
        """Start the network with bank-a's chaincode (operated by :data:`OPERATOR`); its profile to ``profile``."""
        self._run("up", "--state", str(self.state_dir), "--profile", str(profile))
        return self.state()

    def deploy(self, name: str, user: str, profile: Path) -> None:
        """Another organization's chaincode on the channel, operated by ``user``; its profile to ``profile``."""
        self._run("deploy", name, "--user", user, "--state", str(self.state_dir), "--profile", str(profile))

    def reader(self, path: Path, user: str = AUDITOR) -> Path:
        """A read-only profile of the channel signing its queries as ``user``, another client identity of the
        peer's organization: what an auditor reads the channel with."""
        self._run("profile", "--user", user, "--read-only", "--state", str(self.state_dir), "--profile", str(path))
        return path

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.state_dir / "network.json").read_text())
        return state

    def down(self) -> None:
        self._run("down", "--state", str(self.state_dir), check=False)
