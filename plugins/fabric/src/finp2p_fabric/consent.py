"""The owner's consent on Fabric: the very typed data the Ethereum contracts check, so that one signature format
serves both ledgers (the chaincode recomputes the same EIP-712 digest).

Domain: name ``FinP2P``, version ``1``, the chain id the chaincode was configured with (0 unless the profile says
otherwise) and, standing in for a contract address, ``verifyingContract`` = the last 20 bytes of
``keccak256("fabric:<channel>/<chaincode>")``. Primary types::

    Transfer(string operationId,string assetId,string source,string destination,uint256 quantity)
    Hold(string operationId,string assetId,string source,string destination,uint256 quantity,uint256 expiry)
    Redeem(string operationId,string assetId,string source,uint256 quantity)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from finp2p.identity import eip712
from finp2p.identity.canonical import keccak256
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


def verifying_contract(channel: str, chaincode: str) -> str:
    """The 20-byte stand-in for a contract address in the EIP-712 domain of one chaincode on one channel."""
    return "0x" + keccak256(f"fabric:{channel}/{chaincode}".encode())[12:].hex()


@dataclass(frozen=True)
class Operation:
    """One operation as the chaincode takes it; fields an operation does not use stay empty (zero)."""

    operation_id: str
    asset_id: str
    source: str = ""
    destination: str = ""
    quantity: int = 0
    expiry: int = 0

    def as_json(self) -> str:
        """The chaincode's argument: quantities as decimal strings (uint256)."""
        return json.dumps(
            {
                "operationId": self.operation_id,
                "assetId": self.asset_id,
                "source": self.source,
                "destination": self.destination,
                "quantity": str(self.quantity),
                "expiry": str(self.expiry),
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )

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


def adapter_template(primary_type: str, op: Operation, chain_id: int, contract: str) -> dict[str, Any]:
    """The typed data as the ledger-adapter API's ``EIP712Template`` carries it."""
    return eip712.adapter_template(*_parts(primary_type, op, chain_id, contract))


def sign_consent(key: SigningKey, primary_type: str, op: Operation, chain_id: int, contract: str) -> OwnerConsent:
    """What an owner's wallet does: sign the operation's typed data with the owner's FinID key."""
    digest = consent_digest(primary_type, op, chain_id, contract)
    return OwnerConsent(
        template="EIP712",
        signer=key.fin_id,
        signature=key.sign_digest(digest).hex(),
        payload=adapter_template(primary_type, op, chain_id, contract),
    )
