"""A cached copy of the ACL, to turn away organizations with no access before any expensive check.

It knows only who holds *some* grant (an organization named in a rule, a member of a group named in one, or anyone
when a rule names ``*``). A request from any other organization is refused from the TLS-authenticated peer alone,
before its signature, credential chain or body are looked at; the full ACL decides for everyone else, on every
request. The copy is refreshed when the node's own ACL changes (the CLI tells the running node) and every few
seconds in any case.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.network.envelope import Envelope
from finp2p.network.transport import Peer
from finp2p.privacy.acl import AclBackend

log = logging.getLogger(__name__)


class AclCache:
    def __init__(self, acl: AclBackend, refresh_s: float = 5.0) -> None:
        self.acl = acl
        self.refresh_s = refresh_s
        self.anyone = False
        self.orgs: frozenset[str] = frozenset()

    async def refresh(self) -> None:
        rules = await self.acl.rules()
        anyone = any(r.subject == "*" for r in rules)
        orgs = {r.subject[4:] for r in rules if r.subject.startswith("org:")}
        for group in {r.subject[6:] for r in rules if r.subject.startswith("group:")}:
            orgs |= await self.acl.group_members(group)
        self.anyone, self.orgs = anyone, frozenset(orgs)

    def may_have_access(self, org_id: str | None) -> bool:
        return self.anyone or (org_id is not None and org_id in self.orgs)

    def precheck(self, peer: Peer, envelope: Envelope) -> None:
        """For :meth:`finp2p.network.messaging.Messenger.register`: refuse peers with no grant at all, cheaply."""
        if not self.may_have_access(peer.org_id):
            raise FinP2PError(ErrorCode.ACL_DENIED, f"{peer.org_id} has no access to any resource of this node")

    async def refresh_forever(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.refresh()
            await asyncio.sleep(self.refresh_s)
