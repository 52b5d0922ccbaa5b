"""Refusals of the FinP2P chaincode and failures of the Gateway, turned into FinP2P errors.

The chaincode refuses with a stable, machine-readable message (``contracts/fabric/finp2p/errors.go``)::

    FP6001 InsufficientBalance {"available":"10","required":"11"}

the FinP2P code, the error's name (the Solidity contract's custom error of the same meaning) and its arguments.
The Gateway passes it on inside the gRPC status: in the ``ErrorDetail`` messages of ``grpc-status-details-bin``
(Endorse, Submit) or in the status message itself (Evaluate).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import grpc
from fabric_protos.gateway import gateway_pb2

from finp2p.errors import ErrorCode, FinP2PError

_Detail = Callable[[dict[str, Any]], str]

#: What each refusal of the chaincode says, from its arguments (the same sentences as the Ethereum plugin's).
SENTENCES: dict[str, _Detail] = {
    "InsufficientBalance": lambda a: (
        f"the source has {a['available']} available and the operation needs {a['required']}"
    ),
    "BadSignature": lambda a: f"the chaincode found no valid signature by the source ({a.get('reason', '')})",
    "ConsentUsed": lambda a: f"the signed template {str(a['template'])[:18]}… was used by another operation",
    "OperationIdUsed": lambda a: f"operation id {a['operationId']!r} was used",
    "UnknownHold": lambda a: f"no active hold has operation id {a['operationId']!r}",
    "HoldExpired": lambda a: f"the hold expired at unix time {a['expiry']}",
    "ReleaseExceedsHold": lambda a: f"the hold has {a['held']} and the operation asks for {a['requested']}",
    "HoldMismatch": lambda a: f"the {a['field']} differs from the hold's",
    "UnknownAsset": lambda a: f"asset {a['assetId']!r} was never created here",
    "AssetExists": lambda a: f"asset {a['assetId']!r} exists already",
    "ZeroQuantity": lambda a: "the quantity is zero",
    "InvalidQuantity": lambda a: f"the {a['field']} is not a whole number below 2**256",
    "EmptyBatch": lambda a: "a batch of receipts cannot be empty",
    "InvalidFinId": lambda a: f"the {a['field']} is not a valid FinID",
    "NotOperator": lambda a: f"{a['caller']} is not the chaincode's operator",
    "NotInitialised": lambda a: "the chaincode has no operator yet: its Configure transaction was never run",
    "AlreadyInitialised": lambda a: "the chaincode's operator is fixed already",
    "AlreadyRecorded": lambda a: f"root {a['root']} is recorded",
    "InvalidField": lambda a: f"{a['field']}: {a['reason']}",
}
_REFUSAL = re.compile(r"(FP\d{4}) ([A-Za-z]+) (\{.*\})")
_CODES = {c.code: c for c in ErrorCode}


def chaincode_error(message: str, what: str) -> FinP2PError | None:
    """The FinP2P error a chaincode refusal in ``message`` stands for; ``None`` if it holds none."""
    found = _REFUSAL.search(message)
    if found is None:
        return None
    code, name, raw = found.groups()
    try:
        args = json.loads(raw)
    except ValueError:
        args = {}
    error = _CODES.get(code, ErrorCode.LEDGER_REVERTED)
    try:
        detail = SENTENCES[name](args) if name in SENTENCES else name
    except (KeyError, TypeError):
        detail = name
    return FinP2PError(error, f"{what}: {detail}", error=name)


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """The top-level fields of a protobuf message: enough wire format to read a google.rpc.Status."""
    out: list[tuple[int, int | bytes]] = []
    i = 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    while i < len(data):
        key = varint()
        number, kind = key >> 3, key & 7
        if kind == 0:
            out.append((number, varint()))
        elif kind == 2:
            length = varint()
            out.append((number, data[i : i + length]))
            i += length
        elif kind == 1:
            i += 8
        elif kind == 5:
            i += 4
        else:
            raise ValueError(f"wire type {kind}")
    return out


def error_details(exc: grpc.aio.AioRpcError) -> list[str]:
    """The messages of the Gateway's ``ErrorDetail`` entries in a failed call's status."""
    messages: list[str] = []
    for key, value in exc.trailing_metadata() or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        try:
            for number, item in _fields(value):
                if number != 3 or not isinstance(item, bytes):
                    continue
                parts = {n: v for n, v in _fields(item) if isinstance(v, bytes)}  # Any: 1 type_url, 2 value
                if parts.get(1, b"").decode("utf-8", "replace").endswith("gateway.ErrorDetail"):
                    messages.append(gateway_pb2.ErrorDetail.FromString(parts.get(2, b"")).message)
        except (ValueError, IndexError):
            continue
    return messages


def rpc_error(exc: grpc.aio.AioRpcError, what: str, endpoint: str) -> FinP2PError:
    """The FinP2P error for a failed Gateway call: the chaincode's refusal when there is one, FP6013 when the peer
    cannot be reached, FP6014 otherwise."""
    details = error_details(exc)
    for text in [*details, exc.details() or ""]:
        refusal = chaincode_error(text, what)
        if refusal is not None:
            return refusal
    code = exc.code()
    said = "; ".join(details) or exc.details() or code.name
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return FinP2PError(ErrorCode.LEDGER_UNREACHABLE, f"{what}: cannot reach the Fabric peer at {endpoint}: {said}")
    if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
        return FinP2PError(ErrorCode.LEDGER_NOT_OPERATOR, f"{what}: the peer refused this identity: {said}")
    return FinP2PError(ErrorCode.LEDGER_REVERTED, f"{what}: the peer refused it: {said}")
