"""Who is in the network and where: the members the rendezvous (governance) nodes know, for broadcasts.

Each governance node answers ``members.list`` with the organizations it admitted (org id, FinID, address, the
groups and ledgers they declared) and itself. A node's directory is the union of those answers, cached briefly.
Discovery through signed adverts refines this; the broadcast layer only needs :meth:`Directory.select`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from finp2p.errors import FinP2PError
from finp2p.network.messaging import Messenger


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
    def __init__(
        self,
        messenger: Messenger,
        rendezvous: list[str],
        local: Callable[[], list[Member]] | None = None,
        ttl_s: float = 5.0,
    ) -> None:
        self.messenger = messenger
        self.rendezvous_addresses = rendezvous
        self.local = local  # on a governance node: the members it admitted, read from its store
        self.ttl_s = ttl_s
        self._cache: tuple[float, list[Member]] | None = None

    async def members(self, refresh: bool = False) -> list[Member]:
        if not refresh and self._cache and time.monotonic() - self._cache[0] < self.ttl_s:
            return self._cache[1]
        found: dict[str, Member] = {}
        if self.local is not None:
            found.update({m.org_id: m for m in self.local()})
        for address in self.rendezvous_addresses:
            try:
                answer = await self.messenger.request(address, "members.list", {}, timeout=5)
            except FinP2PError:
                continue  # that rendezvous node is down: the others still answer
            for d in answer.get("members", []):
                member = Member.from_dict(d)
                found.setdefault(member.org_id, member)
        members = sorted(found.values(), key=lambda m: m.org_id)
        self._cache = (time.monotonic(), members)
        return members

    async def select(self, scope: Scope) -> list[Member]:
        return [m for m in await self.members() if scope.matches(m) and (m.role != "governance" or not _narrow(scope))]

    async def rendezvous(self) -> list[Member]:
        return [m for m in await self.members() if m.role == "governance"]

    async def local_members(self, scope: Scope) -> list[Member]:
        return [m for m in (self.local() if self.local else []) if m.role != "governance" and scope.matches(m)]


def _narrow(scope: Scope) -> bool:
    return bool(scope.group or scope.ledger or scope.orgs)
