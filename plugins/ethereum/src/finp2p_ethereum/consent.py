"""The owner's consent to an operation: EIP-712 typed data over the operation's fields, checked on-chain.

The contract recomputes the digest from the operation it is asked to execute, so a signature authorises exactly
one operation (its operation id is single-use) on one contract of one chain. Domain: name ``FinP2P``, version ``1``,
the chain id and the assets contract. Primary types::

    Transfer(string operationId,string assetId,string source,string destination,uint256 quantity)
    Hold(string operationId,string assetId,string source,string destination,uint256 quantity,uint256 expiry)
    Redeem(string operationId,string assetId,string source,uint256 quantity)

FinIDs appear as their lowercase hex, as FinP2P's typed data carries them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from finp2p.identity.canonical import keccak256
from finp2p.identity.keys import SigningKey
from finp2p.ledger import OwnerConsent

DOMAIN_NAME = "FinP2P"
DOMAIN_VERSION = "1"
_DOMAIN_FIELDS = [("name", "string"), ("version", "string"), ("chainId", "uint256"), ("verifyingContract", "address")]
_MOVE = [("operationId", "string"), ("assetId", "string"), ("source", "string"), ("destination", "string")]
FIELDS: dict[str, list[tuple[str, str]]] = {
    "Transfer": [*_MOVE, ("quantity", "uint256")],
    "Hold": [*_MOVE, ("quantity", "uint256"), ("expiry", "uint256")],
    "Redeem": [("operationId", "string"), ("assetId", "string"), ("source", "string"), ("quantity", "uint256")],
}


@dataclass(frozen=True)
class Operation:
    """One operation as the contract takes it; fields an operation does not use stay empty (zero)."""

    operation_id: str
    asset_id: str
    source: str = ""
    destination: str = ""
    quantity: int = 0
    expiry: int = 0

    def as_abi(self) -> tuple[str, str, str, str, int, int]:
        return (self.operation_id, self.asset_id, self.source, self.destination, self.quantity, self.expiry)

    def message(self, primary_type: str) -> dict[str, Any]:
        values = {
            "operationId": self.operation_id,
            "assetId": self.asset_id,
            "source": self.source,
            "destination": self.destination,
            "quantity": self.quantity,
            "expiry": self.expiry,
        }
        return {name: values[name] for name, _ in FIELDS[primary_type]}


def _type_string(name: str, fields: list[tuple[str, str]]) -> str:
    return f"{name}({','.join(f'{t} {n}' for n, t in fields)})"


def _encode(value: Any, kind: str) -> bytes:
    if kind == "string":
        return keccak256(str(value).encode("utf-8"))
    if kind == "uint256":
        return int(value).to_bytes(32, "big")
    if kind == "address":
        return bytes.fromhex(str(value).removeprefix("0x")).rjust(32, b"\0")
    raise ValueError(f"unsupported EIP-712 field type {kind}")


def _struct_hash(name: str, fields: list[tuple[str, str]], values: dict[str, Any]) -> bytes:
    encoded = b"".join(_encode(values[n], t) for n, t in fields)
    return keccak256(keccak256(_type_string(name, fields).encode()) + encoded)


def domain(chain_id: int, contract: str) -> dict[str, Any]:
    return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id, "verifyingContract": contract}


def consent_digest(primary_type: str, op: Operation, chain_id: int, contract: str) -> bytes:
    """The 32-byte EIP-712 digest the source signs for ``op``."""
    if primary_type not in FIELDS:
        raise ValueError(f"no consent is defined for {primary_type!r}; there is {', '.join(FIELDS)}")
    separator = _struct_hash("EIP712Domain", _DOMAIN_FIELDS, domain(chain_id, contract))
    struct = _struct_hash(primary_type, FIELDS[primary_type], op.message(primary_type))
    return keccak256(b"\x19\x01" + separator + struct)


def typed_data(primary_type: str, op: Operation, chain_id: int, contract: str) -> dict[str, Any]:
    """The typed data in the JSON form wallets sign (``eth_signTypedData_v4``)."""
    return {
        "types": {
            "EIP712Domain": [{"name": n, "type": t} for n, t in _DOMAIN_FIELDS],
            primary_type: [{"name": n, "type": t} for n, t in FIELDS[primary_type]],
        },
        "primaryType": primary_type,
        "domain": domain(chain_id, contract),
        "message": op.message(primary_type),
    }


def adapter_template(primary_type: str, op: Operation, chain_id: int, contract: str) -> dict[str, Any]:
    """The same typed data as the ledger-adapter API's ``EIP712Template`` carries it: type definitions as a list,
    and the digest the signature is over in ``hash``."""
    data = typed_data(primary_type, op, chain_id, contract)
    return {
        "type": "EIP712",
        "domain": data["domain"],
        "message": data["message"],
        "types": {"definitions": [{"name": name, "fields": fields} for name, fields in data["types"].items()]},
        "primaryType": primary_type,
        "hash": consent_digest(primary_type, op, chain_id, contract).hex(),
    }


def sign_consent(key: SigningKey, primary_type: str, op: Operation, chain_id: int, contract: str) -> OwnerConsent:
    """What an owner's wallet does: sign the operation's typed data with the owner's FinID key. The payload is the
    adapter API's EIP712 template of it."""
    digest = consent_digest(primary_type, op, chain_id, contract)
    return OwnerConsent(
        template="EIP712",
        signer=key.fin_id,
        signature=key.sign_digest(digest).hex(),
        payload=adapter_template(primary_type, op, chain_id, contract),
    )
