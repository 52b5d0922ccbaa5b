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


def canonical_type(item: dict[str, Any]) -> str:
    """The canonical type of an ABI parameter, tuples spelled out, as in signatures: ``(string,uint256)[]``."""
    kind = str(item["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(canonical_type(c) for c in item["components"]) + ")" + kind[len("tuple") :]
    return kind


def signature(item: dict[str, Any]) -> str:
    """``name(type,...)`` of an ABI function, event or error: what its selector or topic is the keccak of."""
    return f"{item['name']}({','.join(canonical_type(i) for i in item['inputs'])})"


@cache
def calldata_encoder(contract: str, function: str) -> tuple[bytes, list[str]]:
    """The selector and argument types of ``function`` (one of a kind in our contracts), for ``eth_abi.encode``:
    a tenth of the cost of web3's ``encode_abi``, which resolves the function on every call."""
    from finp2p.identity.canonical import keccak256

    (item,) = [i for i in artifact(contract).abi if i.get("type") == "function" and i["name"] == function]
    return keccak256(signature(item).encode())[:4], [canonical_type(i) for i in item["inputs"]]


def calldata(contract: str, function: str, args: list[Any]) -> bytes:
    from eth_abi.abi import encode

    selector, types = calldata_encoder(contract, function)
    return selector + encode(types, args)


@cache
def artifact(name: str) -> Artifact:
    if name not in NAMES:
        raise KeyError(f"no contract artifact {name!r}; there are {', '.join(NAMES)}")
    raw = json.loads(resources.files("finp2p_ethereum").joinpath("artifacts", f"{name}.json").read_text("utf-8"))
    return Artifact(name, raw["abi"], raw["bytecode"], raw["deployedBytecode"])
