"""What compliance hooks are asked about a transfer, and how they answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TransferCheck:
    """A transfer the primary node is about to execute, with what it knows of both parties.

    ``source_info`` and ``destination_info`` are the users' private information (KYC fields, accreditation) as
    fetched from their organizations; empty when the owner organization refused or had nothing to share.
    """

    asset_id: str
    operation: str
    quantity: int
    source: str | None
    destination: str | None
    source_info: dict[str, Any] = field(default_factory=dict)
    destination_info: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Violation:
    """One reason a transfer may not go ahead. ``rule`` is a short stable name, ``reason`` a sentence."""

    rule: str
    reason: str
    plugin: str = ""
