"""An in-memory FinP2P ledger plugin: :mod:`finp2p_memory_ledger.ledger` is all of it."""

from finp2p_memory_ledger.ledger import MemoryLedger

__all__ = ["MemoryLedger"]
