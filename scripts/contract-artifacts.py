#!/usr/bin/env python3
"""Compare (or copy) the Hardhat build of contracts/evm with the artifacts committed in the Ethereum plugin.

scripts/contract-artifacts.py check    exit 1 when the committed ABI or bytecode differ from the fresh build
scripts/contract-artifacts.py update   write the fresh build into the plugin package
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "contracts" / "evm" / "artifacts" / "contracts"
PACKAGE = ROOT / "plugins" / "ethereum" / "src" / "finp2p_ethereum" / "artifacts"
CONTRACTS = ("FinP2PAssets", "ReceiptRegistry")
KEPT = ("contractName", "sourceName", "abi", "bytecode", "deployedBytecode")


def built(name: str) -> str:
    raw = json.loads((BUILD / f"{name}.sol" / f"{name}.json").read_text())
    return json.dumps({k: raw[k] for k in KEPT}, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in ("check", "update"):
        print(__doc__, file=sys.stderr)
        return 2
    stale = []
    for name in CONTRACTS:
        fresh, committed = built(name), PACKAGE / f"{name}.json"
        if argv[1] == "update":
            committed.write_text(fresh)
        elif not committed.exists() or committed.read_text() != fresh:
            stale.append(name)
    if stale:
        print(
            f"contract artifacts differ from the sources: {', '.join(stale)}.\n"
            "Rebuild and commit them with `make contracts-update`.",
            file=sys.stderr,
        )
        return 1
    print(f"contract artifacts {'written' if argv[1] == 'update' else 'match the sources'}: {', '.join(CONTRACTS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
