"""FinP2P's Hyperledger Fabric ledger plugin: the ``fabric`` ledger kind and the ``finp2p fabric`` commands."""

from finp2p_fabric.consent import Operation, consent_digest, sign_consent, verifying_contract
from finp2p_fabric.ledger import FabricLedger

__all__ = ["FabricLedger", "Operation", "consent_digest", "sign_consent", "verifying_contract"]
