"""The limits every server of the node applies (:mod:`finp2p.edge.http` enforces them; ``[limits]`` sets them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerLimits:
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    idle_timeout_s: float = 60.0
    max_connections_per_client: int = 256


DEFAULT_LIMITS = ServerLimits()
