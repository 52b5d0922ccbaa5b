"""FinP2P's Ethereum ledger plugin: the ``ethereum`` ledger kind and the ``finp2p ethereum`` commands."""

from finp2p_ethereum.consent import Operation, consent_digest, sign_consent, typed_data
from finp2p_ethereum.ledger import EthereumLedger

__all__ = ["EthereumLedger", "Operation", "consent_digest", "sign_consent", "typed_data"]
