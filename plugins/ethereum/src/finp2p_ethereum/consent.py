"""The owner's consent on Ethereum: FinP2P's consent typed data (:mod:`finp2p.identity.consent`), checked on-chain.

The contract recomputes the digest from the operation it is asked to execute. Domain: the chain id and the assets
contract.
"""

from __future__ import annotations

from dataclasses import dataclass

from finp2p.identity.consent import FIELDS, ConsentOperation, adapter_template, consent_digest, sign_consent, typed_data

__all__ = ["FIELDS", "Operation", "adapter_template", "consent_digest", "sign_consent", "typed_data"]


@dataclass(frozen=True)
class Operation(ConsentOperation):
    """One operation as the contract takes it (its ``Operation`` struct)."""

    def as_abi(self) -> tuple[str, str, str, str, int, int]:
        return (self.operation_id, self.asset_id, self.source, self.destination, self.quantity, self.expiry)
