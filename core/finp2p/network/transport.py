"""The interface a transport plugin implements. The messaging layer depends on nothing else of a transport.

A transport moves opaque byte strings (encoded, signed envelopes) between nodes and tells the receiver who is at the
other end, as the transport itself authenticated it (the built-in HTTPS transport reads it from the peer's
governance-issued TLS certificate), before any byte of the message is read.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Peer:
    """The authenticated other end of a connection; all ``None`` for a newcomer without a certificate."""

    org_id: str | None
    fin_id: str | None
    spki_sha256: str | None
    address: str

    @property
    def anonymous(self) -> bool:
        return self.fin_id is None


class Inbound(Protocol):
    """What a transport calls for each inbound message (the messaging layer implements it)."""

    async def admit(self, peer: Peer) -> None:
        """Raise a FinP2PError to refuse ``peer`` before its message is read (revoked, unknown)."""

    async def handle(self, peer: Peer, payload: bytes) -> bytes:
        """Handle one message and return the answer bytes."""


class Transport(abc.ABC):
    @abc.abstractmethod
    async def start(self, inbound: Inbound) -> str:
        """Start serving; every inbound message is passed to ``inbound``. Returns the address peers use."""

    @abc.abstractmethod
    async def request(self, address: str, payload: bytes, *, timeout: float) -> bytes:
        """Send ``payload`` to the node at ``address`` and return its answer. Raises FP3xxx errors."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop serving and close pooled connections."""
