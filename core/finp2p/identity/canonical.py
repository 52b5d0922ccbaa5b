"""The one encoding every signature in FinP2P covers, and the domain-separated digest that is signed.

Canonical encoding: JSON with keys sorted, no insignificant white space, UTF-8, and only these values: objects with
string keys, arrays, strings, integers of at most 64 bits, booleans and null. Floats are refused (their text form is
not unique), and so are larger integers (not every JSON reader keeps them exact: amounts travel as decimal strings);
binary values travel as lowercase hex strings.

Digest: ``keccak256(0x19 || "FinP2P:" || domain || 0x0a || canonical bytes)``. The 0x19 prefix keeps a signed
FinP2P object from ever being a valid Ethereum transaction (as in EIP-191); the domain (``credential``,
``revocation``, ``receipt``, ...) keeps a signature over one kind of object from being accepted as another.
A contract recomputes the same digest with ``keccak256(abi.encodePacked(...))`` and checks it with ``ecrecover``.

Envelopes, the messages between nodes, are the one exception: ``sha256(0x19 || "FinP2P:envelope" || 0x0a ||
canonical bytes)``. No contract ever checks one, and every message pays its digest twice (sealed, verified):
SHA-256 runs in the CPU's own instructions at a quarter of keccak's cost here, the difference between the
messaging core and the curve's own speed (``bench.identity``). The domain prefix is the same, so a signature over
an envelope is still never one over another kind of object: the two hash functions differ too.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson
import sha3  # safe-pysha3: keccak-256 in C, a third of pycryptodome's cost per call on envelope-sized input

from finp2p.errors import ErrorCode, FinP2PError

DOMAINS = frozenset({"envelope", "credential", "revocation", "registration", "genesis", "advert", "receipt"})


#: Exactly these types take the fast path (subclasses such as enums take the checked one).
_SCALARS = frozenset({str, int, bool, type(None)})


def canonical(value: Any) -> bytes:
    """The canonical bytes of ``value``; raises FP2001 for values that have no canonical form.

    Values made only of dicts, lists and the exact scalar types are encoded by orjson, whose sorted compact output
    is byte for byte the standard library's (``json.dumps(sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)``: the same escapes, code-point key order, and the same 64-bit integer range, beyond which
    orjson refuses). Anything else is checked value by value and, if it passes, encoded by the standard library.
    """
    if is_plain(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # a key that is not a string, an integer beyond 64 bits, a lone surrogate: explained below
    _check(value, "$")
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, UnicodeEncodeError) as exc:
        raise FinP2PError(ErrorCode.MALFORMED, f"the value has no canonical form: {exc}") from None


def is_plain(value: Any, *, max_depth: int | None = None) -> bool:
    """Whether ``value`` holds only dicts, lists and tuples of the exact scalar types, and, given ``max_depth``,
    nests no more than that many containers (walked level by level, iteratively)."""
    level, depth = [value], 0
    while level:
        too_deep = max_depth is not None and depth >= max_depth  # a container here would be one level too many
        deeper: list[Any] = []
        for v in level:
            t = type(v)
            if t in _SCALARS:
                continue
            if too_deep:
                return False
            if t is dict:
                deeper.extend(v.values())
            elif t is list or t is tuple:
                deeper.extend(v)
            else:
                return False
        level, depth = deeper, depth + 1
    return True


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
    return sha3.keccak_256(data).digest()  # type: ignore[no-any-return]


def digest(domain: str, value: Any) -> bytes:
    """The 32-byte digest that a signature over ``value`` in ``domain`` signs."""
    return digest_of_canonical(domain, canonical(value))


def digest_of_canonical(domain: str, encoded: bytes) -> bytes:
    """:func:`digest` of a value whose canonical bytes ``encoded`` are at hand (computed once, used twice)."""
    started = _STARTED.get(domain)
    if started is None:
        raise ValueError(f"unknown signing domain {domain!r}")
    hashed = started.copy()
    hashed.update(encoded)
    return hashed.digest()  # type: ignore[no-any-return]


#: Each domain's hash, its prefix (what precedes the canonical bytes) already hashed: a copy is all a digest costs
#: before its bytes. Envelopes are hashed with SHA-256 (see the module's docstring), everything else with keccak-256.
_STARTED: dict[str, Any] = {
    domain: (hashlib.sha256 if domain == "envelope" else sha3.keccak_256)(b"\x19FinP2P:" + domain.encode() + b"\n")
    for domain in DOMAINS
}
