"""The network side of governance: message handlers and background work.

On a governance node: ``registration.submit`` and ``registration.status`` (open to newcomers, who have no
certificate yet), ``revocations.get`` (open to anyone: auditors fetch the lists), and a loop that picks up
revocations written by the operator's CLI and pushes them to every member. On every node: ``revocations.update``
(pushed by governance nodes) and a slower poll of the rendezvous nodes, so a member that missed a push still learns
of a revocation.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlmodel import Session

from finp2p.config import LimitsSection
from finp2p.edge.ratelimit import SlidingWindow
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.governance import authority as auth
from finp2p.identity.revocation import RevocationList
from finp2p.identity.trust import Trust
from finp2p.network.envelope import Envelope
from finp2p.network.messaging import Incoming, Messenger, Precheck
from finp2p.network.transport import Peer
from finp2p.store import Store
from finp2p.store.models import RegistrationRow

log = logging.getLogger(__name__)


class RevocationSync:
    """Keeps ``trust`` current with the revocation lists held in the store and received from the network."""

    def __init__(self, store: Store, trust: Trust, messenger: Messenger, rendezvous: list[str], poll_s: float) -> None:
        self.store = store
        self.trust = trust
        self.messenger = messenger
        self.rendezvous = rendezvous
        self.poll_s = poll_s
        #: Called with lists newly applied from a push (a governance node forwards them to its members).
        self.on_applied: Callable[[list[Any]], Awaitable[None]] | None = None
        messenger.register("revocations.update", self._on_update)

    async def load(self) -> None:
        for rl in await asyncio.to_thread(auth.load_lists, self.store):
            self._accept(rl)

    async def accept_and_keep(self, lists: list[Any]) -> int:
        applied = [rl for rl in (RevocationList.from_dict(d) for d in lists) if self._accept(rl)]
        if applied:
            await self.store.run(lambda s: _save_all(s, applied))
        return len(applied)

    def _accept(self, rl: RevocationList) -> bool:
        try:
            return self.trust.accept_revocations(rl)
        except FinP2PError as err:
            if err.code is not ErrorCode.REVOCATION_LIST:  # a stale copy is normal, anything else is worth a line
                log.warning("revocation list of %s… refused: %s", rl.issuer[:12], err)
            return False

    async def _on_update(self, msg: Incoming) -> dict[str, Any]:
        if msg.sender is None or msg.sender.role != "governance":
            raise FinP2PError(ErrorCode.REVOCATION_LIST, "only governance nodes push revocation lists")
        lists = msg.body.get("lists")
        if not isinstance(lists, list):
            raise FinP2PError(ErrorCode.MALFORMED, "lists must be a list of revocation lists")
        applied = await self.accept_and_keep(lists)
        if applied and self.on_applied is not None:
            await self.on_applied(lists)
        return {"applied": applied}

    async def poll_forever(self, own_address: str | None = None) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            for address in (a for a in self.rendezvous if a != own_address):
                try:
                    result = await self.messenger.request(address, "revocations.get", {}, timeout=5)
                    await self.accept_and_keep(result.get("lists", []))
                    break
                except FinP2PError as err:
                    log.debug("revocation poll of %s failed: %s", address, err)


class GovernanceService:
    def __init__(
        self,
        store: Store,
        authority: auth.Authority,
        messenger: Messenger,
        sync: RevocationSync,
        auto_approve: list[str],
        limits: LimitsSection | None = None,
    ) -> None:
        self.store = store
        self.authority = authority
        self.messenger = messenger
        self.sync = sync
        self.auto_approve = auto_approve
        limits = limits or LimitsSection()
        window = limits.registration_window_s
        # Registration is open to strangers: each address and each org id gets a few requests per window (status
        # polls, cheap, ten times as many), counted before any signature is checked.
        self._submits = (
            SlidingWindow(limits.registrations_per_address, window),
            SlidingWindow(limits.registrations_per_org, window),
        )
        self._polls = (
            SlidingWindow(10 * limits.registrations_per_address, window),
            SlidingWindow(10 * limits.registrations_per_org, window),
        )
        sync.on_applied = self._forward_to_members
        messenger.register(
            "registration.submit", self._submit, open_to_newcomers=True, precheck=self._limited(self._submits)
        )
        messenger.register(
            "registration.status", self._status, open_to_newcomers=True, precheck=self._limited(self._polls)
        )
        # Revocation lists are public and signed: anyone (an auditor) may ask for them.
        messenger.register(
            "revocations.get", self._revocations, open_to_newcomers=True, precheck=self._limited(self._polls)
        )

    @staticmethod
    def _limited(windows: tuple[SlidingWindow, SlidingWindow]) -> Precheck:
        by_address, by_org = windows

        def check(peer: Peer, env: Envelope) -> None:
            org = env.body.get("org_id") if env.type == "registration.submit" else env.sender
            for window, key, what in ((by_address, peer.address, "this address"), (by_org, str(org)[:66], "org id")):
                if not window.allow(key):
                    raise FinP2PError(
                        ErrorCode.TOO_MANY_REGISTRATIONS,
                        f"{what} sent {window.limit} requests in {window.window_s:g} s; retry in "
                        f"{window.retry_after(key):.0f} s",
                    )

        return check

    async def _submit(self, msg: Incoming) -> dict[str, Any]:
        row = await asyncio.to_thread(
            auth.submit, self.store, self.authority, msg.envelope.sender, msg.body, self.auto_approve
        )
        log.info("registration %s of %s: %s", row.id, row.org_id, row.status)
        return {"registration_id": row.id, "status": row.status}

    async def _status(self, msg: Incoming) -> dict[str, Any]:
        registration_id = msg.body.get("registration_id")
        row = await self.store.run(lambda s: s.get(RegistrationRow, str(registration_id)))
        if row is None or row.fin_id != msg.envelope.sender:
            raise FinP2PError(ErrorCode.UNKNOWN_REGISTRATION, f"no registration {registration_id!r} of this FinID")
        if row.status in ("rejected", "revoked"):
            raise FinP2PError(ErrorCode.REGISTRATION_REJECTED, f"{row.org_id}: {row.status}: {row.reason}")
        out: dict[str, Any] = {"registration_id": row.id, "status": row.status}
        if row.status == "approved":
            out["credentials"] = json.loads(row.credential or "{}")
            out["cert_chain_pem"] = row.cert_chain
            out["revocation_lists"] = [rl.to_dict() for rl in self.sync.trust.revocation_lists.values()]
        return out

    async def _revocations(self, msg: Incoming) -> dict[str, Any]:
        return {"lists": [rl.to_dict() for rl in self.sync.trust.revocation_lists.values()]}

    async def publish_forever(self, interval_s: float = 0.5) -> None:
        """Apply revocations the operator wrote to the store, then push them to every member."""
        while True:
            lists = await asyncio.to_thread(auth.load_lists, self.store)
            fresh = [rl for rl in lists if self.sync._accept(rl)]
            if fresh:
                await self.push([rl.to_dict() for rl in fresh])
            await asyncio.sleep(interval_s)

    async def _forward_to_members(self, lists: list[Any]) -> None:
        members = await asyncio.to_thread(auth.member_urls, self.store)
        await self._send(members, lists)

    async def push(self, lists: list[dict[str, Any]]) -> None:
        """To every member this node admitted, and to the other rendezvous nodes, which pass it to theirs."""
        members = await asyncio.to_thread(auth.member_urls, self.store)
        own = self.authority.chain[0].attributes.get("public_url")
        await self._send(sorted({*members, *self.sync.rendezvous} - {own}), lists)

    async def _send(self, urls: list[str], lists: list[Any]) -> None:
        async def one(url: str) -> None:
            try:
                await self.messenger.request(url, "revocations.update", {"lists": lists}, timeout=5)
            except FinP2PError as err:
                log.info("revocation push to %s failed (it will poll): %s", url, err)

        await asyncio.gather(*(one(u) for u in urls))
        log.info("pushed %d revocation list(s) to %d node(s)", len(lists), len(urls))


def _save_all(s: Session, lists: list[RevocationList]) -> None:
    for rl in lists:
        auth.save_list(s, rl)
