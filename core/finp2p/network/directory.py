"""Who is in the network and where, for broadcasts: members as their signed adverts describe them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finp2p.network.discovery import Discovery


@dataclass(frozen=True)
class Member:
    org_id: str
    fin_id: str
    address: str
    role: str
    groups: tuple[str, ...] = ()
    ledgers: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "org_id": self.org_id,
            "fin_id": self.fin_id,
            "address": self.address,
            "role": self.role,
            "groups": list(self.groups),
            "ledgers": list(self.ledgers),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Member:
        return cls(
            str(d["org_id"]),
            str(d["fin_id"]),
            str(d["address"]),
            str(d["role"]),
            tuple(map(str, d.get("groups", []))),
            tuple(map(str, d.get("ledgers", []))),
        )


@dataclass(frozen=True)
class Scope:
    """Which members a broadcast is for: all, a named group, the nodes serving a ledger, or named organizations."""

    group: str | None = None
    ledger: str | None = None
    orgs: tuple[str, ...] = ()

    def matches(self, m: Member) -> bool:
        if self.orgs and m.org_id not in self.orgs:
            return False
        if self.group is not None and self.group not in m.groups:
            return False
        return self.ledger is None or self.ledger in m.ledgers

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "ledger": self.ledger, "orgs": list(self.orgs)}

    @classmethod
    def from_dict(cls, d: Any) -> Scope:
        if not isinstance(d, dict):
            return cls()
        return cls(d.get("group"), d.get("ledger"), tuple(map(str, d.get("orgs") or [])))

    def describe(self) -> str:
        parts = [
            f"group {self.group}" if self.group else "",
            f"ledger {self.ledger}" if self.ledger else "",
            f"orgs {', '.join(self.orgs)}" if self.orgs else "",
        ]
        return " and ".join(p for p in parts if p) or "all members"


class Directory:
    """Members as their adverts describe them (through :class:`finp2p.network.discovery.Discovery`)."""

    def __init__(self, discovery: Discovery, local: Callable[[], list[Member]] | None = None) -> None:
        self.discovery = discovery
        self.local = local  # on a governance node: the members that advertise at its registrar

    async def members(self) -> list[Member]:
        return [
            Member(a.org_id, a.fin_id, a.addresses[0], a.role, a.groups, a.ledgers)
            for a in await self.discovery.query("all")
        ]

    async def select(self, scope: Scope) -> list[Member]:
        return [m for m in await self.members() if scope.matches(m) and (m.role != "governance" or not _narrow(scope))]

    async def rendezvous(self) -> list[Member]:
        return [m for m in await self.members() if m.role == "governance"]

    async def local_members(self, scope: Scope) -> list[Member]:
        return [m for m in (self.local() if self.local else []) if m.role != "governance" and scope.matches(m)]


def _narrow(scope: Scope) -> bool:
    return bool(scope.group or scope.ledger or scope.orgs)
