"""The interface a transport plugin implements. The messaging layer depends on nothing else of a transport.

A transport moves opaque byte strings (encoded, signed envelopes) between nodes and tells the receiver which
organization is at the other end, as authenticated by the transport itself (the built-in HTTPS transport reads it
from the peer's governance-issued TLS certificate) before any byte of the message is read.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Peer:
    """The authenticated other end of a connection."""

    org_id: str
    address: str


#: Called for each inbound message with the authenticated peer and the message bytes; returns the answer bytes.
InboundHandler = Callable[[Peer, bytes], Awaitable[bytes]]


class Transport(abc.ABC):
    @abc.abstractmethod
    async def start(self, handler: InboundHandler) -> str:
        """Start serving; every inbound message is passed to ``handler``. Returns the address peers use."""

    @abc.abstractmethod
    async def request(self, address: str, payload: bytes, *, timeout: float) -> bytes:
        """Send ``payload`` to the node at ``address`` and return its answer. Raises FP3xxx errors."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop serving and close pooled connections."""
