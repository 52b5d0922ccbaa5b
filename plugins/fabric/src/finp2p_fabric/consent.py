"""The owner's consent on Fabric: the very typed data the Ethereum contracts check
(:mod:`finp2p.identity.consent`), so that one signature format serves both ledgers (the chaincode recomputes the
same EIP-712 digest).

Domain: the chain id the chaincode was configured with (0 unless the profile says otherwise) and, standing in for
a contract address, ``verifyingContract`` = the last 20 bytes of ``keccak256("fabric:<channel>/<chaincode>")``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from finp2p.identity.canonical import keccak256
from finp2p.identity.consent import FIELDS, ConsentOperation, adapter_template, consent_digest, sign_consent

__all__ = ["FIELDS", "Operation", "adapter_template", "consent_digest", "sign_consent", "verifying_contract"]


def verifying_contract(channel: str, chaincode: str) -> str:
    """The 20-byte stand-in for a contract address in the EIP-712 domain of one chaincode on one channel."""
    return "0x" + keccak256(f"fabric:{channel}/{chaincode}".encode())[12:].hex()


@dataclass(frozen=True)
class Operation(ConsentOperation):
    """One operation as the chaincode takes it."""

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
