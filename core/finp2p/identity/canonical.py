"""The one encoding every signature in FinP2P covers, and the domain-separated digest that is signed.

Canonical encoding: JSON with keys sorted, no insignificant white space, UTF-8, and only these values: objects with
string keys, arrays, strings, integers of at most 64 bits, booleans and null. Floats are refused (their text form is
not unique), and so are larger integers (not every JSON reader keeps them exact: amounts travel as decimal strings);
binary values travel as lowercase hex strings.

Digest: ``keccak256(0x19 || "FinP2P:" || domain || 0x0a || canonical bytes)``. The 0x19 prefix keeps a signed
FinP2P object from ever being a valid Ethereum transaction (as in EIP-191); the domain (``envelope``,
``credential``, ``revocation``, ...) keeps a signature over one kind of object from being accepted as another.
A contract recomputes the same digest with ``keccak256(abi.encodePacked(...))`` and checks it with ``ecrecover``.
"""

from __future__ import annotations

import json
from typing import Any

from Crypto.Hash import keccak

from finp2p.errors import ErrorCode, FinP2PError

DOMAINS = frozenset({"envelope", "credential", "revocation", "registration", "genesis", "advert", "receipt"})


def canonical(value: Any) -> bytes:
    """The canonical bytes of ``value``; raises FP2001 for values that have no canonical form."""
    _check(value, "$")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _check(value: Any, where: str) -> None:
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise FinP2PError(ErrorCode.MALFORMED, f"{where}: an integer beyond 64 bits; send it as a decimal string")
        return
    if isinstance(value, float):
        raise FinP2PError(ErrorCode.MALFORMED, f"{where}: floats have no canonical form; send an integer or a string")
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise FinP2PError(ErrorCode.MALFORMED, f"{where}: object keys must be strings, got {key!r}")
            _check(item, f"{where}.{key}")
        return
    raise FinP2PError(ErrorCode.MALFORMED, f"{where}: {type(value).__name__} has no canonical form")


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def digest(domain: str, value: Any) -> bytes:
    """The 32-byte digest that a signature over ``value`` in ``domain`` signs."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown signing domain {domain!r}")
    return keccak256(b"\x19FinP2P:" + domain.encode() + b"\n" + canonical(value))
