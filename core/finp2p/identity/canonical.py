"""The one encoding every signature in FinP2P covers, and the domain-separated digest that is signed.

Canonical encoding: JSON with keys sorted, no insignificant white space, UTF-8, and only these values: objects with
string keys, arrays, strings, integers, booleans and null. Floats are refused (their text form is not unique);
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


def parse_json_object(data: bytes | str, what: str) -> dict[str, Any]:
    """Parse untrusted JSON into an object, refusing anything else with FP2001."""
    try:
        value = json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise FinP2PError(ErrorCode.MALFORMED, f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise FinP2PError(ErrorCode.MALFORMED, f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")
