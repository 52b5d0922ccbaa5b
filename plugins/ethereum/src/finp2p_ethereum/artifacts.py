"""The compiled contracts, shipped in the package so that using the plugin needs no compiler.

``make contracts`` rebuilds them from ``contracts/evm`` with Hardhat and fails when they differ from these files;
``make contracts-update`` copies a new build here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

NAMES = ("FinP2PAssets", "ReceiptRegistry")


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str


@cache
def artifact(name: str) -> Artifact:
    if name not in NAMES:
        raise KeyError(f"no contract artifact {name!r}; there are {', '.join(NAMES)}")
    raw = json.loads(resources.files("finp2p_ethereum").joinpath("artifacts", f"{name}.json").read_text("utf-8"))
    return Artifact(name, raw["abi"], raw["bytecode"], raw["deployedBytecode"])
