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

from finp2p.identity import eip712
from finp2p.identity.keys import SigningKey
from finp2p.ledger import OwnerConsent

DOMAIN_NAME = "FinP2P"
DOMAIN_VERSION = "1"
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


def domain(chain_id: int, contract: str) -> dict[str, Any]:
    return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id, "verifyingContract": contract}


def _parts(primary_type: str, op: Operation, chain_id: int, contract: str) -> tuple[Any, ...]:
    if primary_type not in FIELDS:
        raise ValueError(f"no consent is defined for {primary_type!r}; there is {', '.join(FIELDS)}")
    return domain(chain_id, contract), primary_type, {primary_type: FIELDS[primary_type]}, op.message(primary_type)


def consent_digest(primary_type: str, op: Operation, chain_id: int, contract: str) -> bytes:
    """The 32-byte EIP-712 digest the source signs for ``op``."""
    return eip712.digest(*_parts(primary_type, op, chain_id, contract))


def typed_data(primary_type: str, op: Operation, chain_id: int, contract: str) -> dict[str, Any]:
    """The typed data in the JSON form wallets sign (``eth_signTypedData_v4``)."""
    return eip712.wallet_json(*_parts(primary_type, op, chain_id, contract))


def adapter_template(primary_type: str, op: Operation, chain_id: int, contract: str) -> dict[str, Any]:
    """The same typed data as the ledger-adapter API's ``EIP712Template`` carries it."""
    return eip712.adapter_template(*_parts(primary_type, op, chain_id, contract))


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
