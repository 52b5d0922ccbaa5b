"""EIP-712 typed structured data: the digests FinP2P's signatures are over (owner consent, receipts).

A small encoder for the types FinP2P uses: ``string``, ``bytes``, ``bytesN``, ``uintN``/``intN``, ``address``,
``bool``, structs and arrays of them. It follows the EIP's ``encodeType`` (referenced structs sorted by name
after the primary type), ``encodeData`` and ``hashStruct``, and is checked against eth-account and Solidity by
the tests. Types are given as ``{"Name": [("field", "type"), ...]}``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from finp2p.identity.canonical import keccak256

Types = Mapping[str, list[tuple[str, str]]]

_DOMAIN_FIELDS = (
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
    ("salt", "bytes32"),
)


def domain_types(domain: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The EIP712Domain fields ``domain`` uses, in the EIP's order."""
    return [(name, kind) for name, kind in _DOMAIN_FIELDS if name in domain]


def _dependencies(primary: str, types: Types, found: set[str]) -> None:
    if primary in found or primary not in types:
        return
    found.add(primary)
    for _, kind in types[primary]:
        _dependencies(kind.split("[", 1)[0], types, found)


def encode_type(primary: str, types: Types) -> str:
    found: set[str] = set()
    _dependencies(primary, types, found)
    ordered = [primary, *sorted(found - {primary})]
    return "".join(f"{name}({','.join(f'{k} {n}' for n, k in types[name])})" for name in ordered)


def type_hash(primary: str, types: Types) -> bytes:
    return _hash_of_type(encode_type(primary, types))


@functools.lru_cache(maxsize=1024)
def _hash_of_type(encoded: str) -> bytes:
    # A handful of types are hashed again and again (every struct of every message): hash each encoding once.
    return keccak256(encoded.encode())


def _encode_value(kind: str, value: Any, types: Types) -> bytes:
    if kind.endswith("]"):
        inner = kind[: kind.rindex("[")]
        return keccak256(b"".join(_encode_value(inner, v, types) for v in value))
    if kind in types:
        return hash_struct(kind, types, value)
    if kind == "string":
        return keccak256(str(value).encode("utf-8"))
    if kind == "bytes":
        return keccak256(_bytes(value))
    if kind == "bool":
        return int(bool(value)).to_bytes(32, "big")
    if kind == "address":
        return _bytes(value).rjust(32, b"\0")
    if kind.startswith("bytes"):
        return _bytes(value).ljust(32, b"\0")
    if kind.startswith("uint"):
        return int(value).to_bytes(32, "big")
    if kind.startswith("int"):
        return int(value).to_bytes(32, "big", signed=True)
    raise ValueError(f"unsupported EIP-712 type {kind!r}")


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return bytes.fromhex(str(value).removeprefix("0x"))


def hash_struct(primary: str, types: Types, value: Mapping[str, Any]) -> bytes:
    encoded = b"".join(_encode_value(kind, value[name], types) for name, kind in types[primary])
    return keccak256(type_hash(primary, types) + encoded)


def domain_separator(domain: Mapping[str, Any]) -> bytes:
    try:
        return _domain_separator(tuple(sorted(domain.items())))
    except TypeError:  # a value that cannot be a cache key (a list): computed as it is
        return hash_struct("EIP712Domain", {"EIP712Domain": domain_types(domain)}, domain)


@functools.lru_cache(maxsize=256)
def _domain_separator(items: tuple[tuple[str, Any], ...]) -> bytes:
    domain = dict(items)
    return hash_struct("EIP712Domain", {"EIP712Domain": domain_types(domain)}, domain)


def digest(domain: Mapping[str, Any], primary: str, types: Types, message: Mapping[str, Any]) -> bytes:
    """The 32-byte digest that is signed: ``keccak256(0x1901 || domainSeparator || hashStruct(message))``."""
    return keccak256(b"\x19\x01" + domain_separator(domain) + hash_struct(primary, types, message))


def wallet_json(domain: Mapping[str, Any], primary: str, types: Types, message: Mapping[str, Any]) -> dict[str, Any]:
    """The typed data as wallets sign it (``eth_signTypedData_v4``)."""
    all_types = {"EIP712Domain": domain_types(domain), **types}
    return {
        "types": {name: [{"name": n, "type": k} for n, k in fields] for name, fields in all_types.items()},
        "primaryType": primary,
        "domain": dict(domain),
        "message": dict(message),
    }


def adapter_template(
    domain: Mapping[str, Any], primary: str, types: Types, message: Mapping[str, Any]
) -> dict[str, Any]:
    """The typed data as FinP2P's ledger-adapter API carries it (``EIP712Template``): type definitions as a list,
    and the signed digest in ``hash``."""
    data = wallet_json(domain, primary, types, message)
    return {
        "type": "EIP712",
        "domain": data["domain"],
        "message": data["message"],
        "types": {"definitions": [{"name": name, "fields": fields} for name, fields in data["types"].items()]},
        "primaryType": primary,
        "hash": digest(domain, primary, types, message).hex(),
    }


def from_adapter_template(
    template: Mapping[str, Any],
) -> tuple[dict[str, Any], str, dict[str, list[tuple[str, str]]], dict[str, Any]]:
    """``(domain, primary, types, message)`` of an adapter ``EIP712Template`` (``EIP712Domain`` left out)."""
    types = {
        d["name"]: [(f["name"], f["type"]) for f in d["fields"]]
        for d in template["types"]["definitions"]
        if d["name"] != "EIP712Domain"
    }
    return dict(template["domain"]), str(template["primaryType"]), types, dict(template["message"])
