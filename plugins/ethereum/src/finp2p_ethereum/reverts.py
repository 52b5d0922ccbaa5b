"""Reverts of the FinP2P contracts, turned into FinP2P errors with a sentence that says what happened."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from eth_abi.abi import decode as abi_decode

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.canonical import keccak256
from finp2p_ethereum.artifacts import NAMES, artifact, canonical_type, signature

_Detail = Callable[[dict[str, Any]], str]

#: Each custom error of the contracts: its FinP2P code and how to say what happened from its arguments.
ERRORS: dict[str, tuple[ErrorCode, _Detail]] = {
    "InsufficientBalance": (
        ErrorCode.LEDGER_INSUFFICIENT_BALANCE,
        lambda a: f"the source has {a['available']} available and the operation needs {a['required']}",
    ),
    "BadSignature": (ErrorCode.LEDGER_BAD_SIGNATURE, lambda a: "the contract found no valid signature by the source"),
    "ConsentUsed": (
        ErrorCode.LEDGER_CONSENT_USED,
        lambda a: f"the signed template 0x{a['template'].hex()[:16]}… was used by another operation",
    ),
    "OperationIdUsed": (ErrorCode.LEDGER_OPERATION_ID_USED, lambda a: f"operation id {a['operationId']!r} was used"),
    "UnknownHold": (ErrorCode.LEDGER_UNKNOWN_HOLD, lambda a: f"no active hold has operation id {a['operationId']!r}"),
    "HoldExpired": (ErrorCode.LEDGER_HOLD_EXPIRED, lambda a: f"the hold expired at unix time {a['expiry']}"),
    "ReleaseExceedsHold": (
        ErrorCode.LEDGER_HOLD_QUANTITY,
        lambda a: f"the hold has {a['held']} and the operation asks for {a['requested']}",
    ),
    "HoldMismatch": (ErrorCode.LEDGER_HOLD_MISMATCH, lambda a: f"the {a['field']} differs from the hold's"),
    "UnknownAsset": (ErrorCode.LEDGER_UNKNOWN_ASSET, lambda a: f"asset {a['assetId']!r} was never created here"),
    "AssetExists": (ErrorCode.LEDGER_ASSET_EXISTS, lambda a: f"asset {a['assetId']!r} exists already"),
    "ZeroQuantity": (ErrorCode.LEDGER_INVALID_QUANTITY, lambda a: "the quantity is zero"),
    "InvalidFinId": (ErrorCode.LEDGER_INVALID_ACCOUNT, lambda a: "a FinID of the operation is not a valid key"),
    "NotOperator": (ErrorCode.LEDGER_NOT_OPERATOR, lambda a: f"{a['caller']} is not the contract's operator"),
    "OnlyInBatch": (ErrorCode.LEDGER_NOT_OPERATOR, lambda a: f"{a['caller']} called executeOne; executeBatch does"),
    "AlreadyRecorded": (ErrorCode.LEDGER_ALREADY_RECORDED, lambda a: f"root 0x{a['root'].hex()} is recorded"),
    "EmptyBatch": (ErrorCode.LEDGER_INVALID_QUANTITY, lambda a: "a batch of receipts cannot be empty"),
}


@cache
def _selectors() -> dict[bytes, tuple[str, list[str], list[str]]]:
    table: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for name in NAMES:
        for item in artifact(name).abi:
            if item.get("type") == "error":
                types = [canonical_type(i) for i in item["inputs"]]
                names = [i["name"] for i in item["inputs"]]
                table[keccak256(signature(item).encode())[:4]] = (item["name"], types, names)
    return table


def decode(data: bytes) -> tuple[str, dict[str, Any]] | None:
    """The custom error name and arguments in revert ``data``; ``None`` when it is not one of ours."""
    found = _selectors().get(bytes(data[:4]))
    if found is None:
        return None
    name, types, names = found
    try:
        values = abi_decode(types, bytes(data[4:]))
    except Exception:
        return None
    return name, dict(zip(names, values, strict=True))


def to_error(data: bytes, what: str) -> FinP2PError:
    """The FinP2P error for a revert of ``what`` (an operation name)."""
    decoded = decode(data)
    if decoded is None:
        shown = f"0x{data.hex()}" if data else "no reason given"
        return FinP2PError(ErrorCode.LEDGER_REVERTED, f"{what} reverted ({shown})")
    name, args = decoded
    if name not in ERRORS:
        return FinP2PError(ErrorCode.LEDGER_REVERTED, f"{what} reverted with {name}")
    code, detail = ERRORS[name]
    return FinP2PError(code, f"{what}: {detail(args)}", error=name)


def revert_data(exc: BaseException) -> bytes | None:
    """The revert data an exception from web3 (JSON-RPC) or the embedded chain carries; ``None`` if it is no revert."""
    from finp2p_ethereum.chain import Reverted

    if isinstance(exc, Reverted):
        return exc.data
    data = getattr(exc, "data", None)
    if isinstance(data, dict):  # some nodes nest it: {"data": "0x..."} or {"data": {"data": "0x..."}}
        data = data.get("data")
    if isinstance(data, bytes):
        return data
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None
