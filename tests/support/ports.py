"""Free loopback ports, chosen at run time (never the same one twice in a test run)."""

from __future__ import annotations

from finp2p.demo.ports import free_port

__all__ = ["free_port"]
