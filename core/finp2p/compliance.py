"""What compliance hooks are asked about a transfer, and how they answer."""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finp2p.config import Settings
    from finp2p.plugins import PluginManager


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


async def check_transfer(
    plugins: PluginManager, settings: Settings, check: TransferCheck, *, timeout: float = 30.0
) -> list[Violation]:
    """Ask every compliance hook about ``check``; any violation (or failure to answer) vetoes the transfer."""
    violations: list[Violation] = []
    for name, answer in plugins.call_each("finp2p_check_transfer", check=check, settings=settings):
        try:
            if isinstance(answer, Exception):
                raise answer
            if inspect.isawaitable(answer):
                answer = await asyncio.wait_for(answer, timeout)
        except Exception as exc:
            violations.append(Violation("check-failed", f"{type(exc).__name__}: {exc}", name))
            continue
        items = [answer] if isinstance(answer, Violation) else list(answer or [])
        for item in items:
            if isinstance(item, Violation):
                violations.append(Violation(item.rule, item.reason, item.plugin or name))
            else:
                violations.append(Violation("bad-answer", f"returned {type(item).__name__}, not a Violation", name))
    return violations
