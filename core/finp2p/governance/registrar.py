"""The registrar: governance nodes keep the adverts of the network and answer discovery queries.

An advert published here (``advert.publish``, by its own organization) is verified end to end, stored if its
sequence is newer than the one held and, in the same commit, announced on the pub/sub topic
``registrar/adverts``, to which members subscribe to invalidate their discovery caches; then it is pushed to the
other registrars (``advert.replicate``).
Registrars need not trust each other: a replicated advert is verified like any other. A registrar that was down
catches up by paging through another's adverts when it starts, and again every ``sync_s``.

Queries (``discover``) are by organization, capability, ledger, resource id, or all; paged by organization id;
``orgs`` fetches up to a page of named organizations. The resource entries an asker may not see are left out
(their hashes stay, so the signature still verifies). Queries are answered from the adverts held in memory
(:class:`finp2p.governance.advert_index.AdvertIndex`), kept as each is committed. Asked with ``"refs": true``, a
page names each advert by its view digest instead of holding it: the asker fetches only those it has not verified
already (:class:`finp2p.network.discovery.VerifiedAdverts`), so a page of adverts that rarely change costs little
more than a ping. A registrar chooses which adverts a page names either way; it can never forge one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from sqlmodel import Session, col, select

from finp2p.clock import now_ms
from finp2p.edge.identifiers import ORG_ID
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.governance.advert_index import AdvertIndex
from finp2p.identity.trust import Trust
from finp2p.network import adverts as adv
from finp2p.network.adverts import Advert
from finp2p.network.directory import Member
from finp2p.network.messaging import Incoming, Messenger
from finp2p.network.pubsub import PubSub, append
from finp2p.store import Store
from finp2p.store.engine import placeholder
from finp2p.store.models import AdvertRow

log = logging.getLogger(__name__)

TOPIC = adv.REGISTRAR_TOPIC
QUERY_KINDS = ("org", "orgs", "capability", "ledger", "resource", "all")
MAX_PAGE = adv.MAX_PAGE


def store_advert(s: Session, a: Advert, *, home: bool) -> bool:
    """Keep ``a`` if newer than the one held; ``False`` for the one held already. Raises FP4004 for an older one.

    Written out for the driver (with the announcement's, 0.43 ms of CPU a transaction instead of the ORM's 1.5).
    The write replaces only an older sequence: should another writer on PostgreSQL store one between the read and
    the write, the write does nothing and the advert is judged again against the one now held."""
    m = placeholder(s)
    conn = s.connection()
    for _ in range(2):
        held = conn.exec_driver_sql(
            f"SELECT sequence, home, fin_id, role FROM advert WHERE org_id = {m}",  # noqa: S608 - a placeholder
            (a.org_id,),
        ).first()
        if held is not None:
            sequence, held_home, fin_id, role = int(held[0]), bool(held[1]), str(held[2]), str(held[3])
            if a.sequence < sequence:
                raise FinP2PError(ErrorCode.STALE_ADVERT, f"{a.org_id}: sequence {a.sequence}, held {sequence}")
            if a.sequence == sequence:
                return _held_already(s, a, home=home and not held_home)
            if fin_id != a.fin_id and a.role == role == "organization":
                log.info("%s now advertises with another FinID (re-registered)", a.org_id)
        written = conn.exec_driver_sql(
            "INSERT INTO advert (org_id, fin_id, role, sequence, expires_ms, received_ms, home, document) "  # noqa: S608
            f"VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m}, {m}) ON CONFLICT (org_id) DO UPDATE SET "
            "fin_id = excluded.fin_id, role = excluded.role, sequence = excluded.sequence, "
            "expires_ms = excluded.expires_ms, received_ms = excluded.received_ms, "
            "home = excluded.home OR advert.home, document = excluded.document "
            "WHERE advert.sequence < excluded.sequence RETURNING sequence",
            (a.org_id, a.fin_id, a.role, a.sequence, a.expires_ms, now_ms(), home, json.dumps(a.to_dict())),
        ).first()
        if written is not None:
            return True
    raise FinP2PError(ErrorCode.STALE_ADVERT, f"{a.org_id}: sequence {a.sequence} was overtaken while it was stored")


def _held_already(s: Session, a: Advert, *, home: bool) -> bool:
    """``False`` if ``a`` is the advert held (marked home if it now is); FP4004 for another one of its sequence."""
    m = placeholder(s)
    conn = s.connection()
    document = conn.exec_driver_sql(
        f"SELECT document FROM advert WHERE org_id = {m}",  # noqa: S608 - a placeholder
        (a.org_id,),
    ).scalar_one()
    if json.loads(document)["signature"] != a.signature:
        raise FinP2PError(ErrorCode.STALE_ADVERT, f"{a.org_id}: another advert holds sequence {a.sequence}")
    if home:
        conn.exec_driver_sql(f"UPDATE advert SET home = {m} WHERE org_id = {m}", (True, a.org_id))  # noqa: S608
    return False


class Registrar:
    def __init__(
        self,
        store: Store,
        trust: Trust,
        messenger: Messenger,
        pubsub: PubSub,
        rendezvous: list[str],
        own_address: str | None,
        sync_s: float = 30.0,
    ) -> None:
        self.store = store
        self.trust = trust
        self.messenger = messenger
        self.pubsub = pubsub
        self.others = [a for a in rendezvous if a != own_address]
        self.sync_s = sync_s
        self._background: set[asyncio.Task[None]] = set()
        self._index: AdvertIndex | None = None
        self._loading = asyncio.Lock()
        messenger.register("advert.publish", self._on_publish)
        messenger.register("advert.replicate", self._on_replicate)
        messenger.register("discover", self._on_discover)

    async def index(self) -> AdvertIndex:
        """The adverts held, in memory: loaded from the store the first time, then kept as each is stored."""
        if self._index is None:
            async with self._loading:
                if self._index is None:
                    self._index = await self.store.run(AdvertIndex.load)
        return self._index

    async def accept(self, raw: Any, sender_org: str | None, *, home: bool) -> tuple[Advert, bool]:
        advert = Advert.from_dict(raw)
        if sender_org is not None and advert.org_id != sender_org:
            raise FinP2PError(ErrorCode.FOREIGN_ADVERT, f"{sender_org} sent the advert of {advert.org_id}")
        adv.verify(advert, self.trust)
        change = {"org_id": advert.org_id, "sequence": advert.sequence}
        index = await self.index()  # loaded before the commit below, so that it cannot miss it

        def op(s: Session) -> int | None:  # the advert and its announcement in one commit: neither without the other
            return append(s, TOPIC, change) if store_advert(s, advert, home=home) else None

        seq = await self.store.run(op)
        if seq is not None:
            index.put(advert)  # committed: now it may be found
            self.pubsub.published(TOPIC, seq, change)
        return advert, seq is not None

    async def _on_publish(self, msg: Incoming) -> dict[str, Any]:
        assert msg.sender is not None
        advert, fresh = await self.accept(msg.body.get("advert"), msg.sender.org_id, home=True)
        if not fresh:
            raise FinP2PError(ErrorCode.STALE_ADVERT, f"{advert.org_id}: sequence {advert.sequence} is held already")
        if fresh:  # pushed in the background: the publisher need not wait, and catch-up covers a failure
            task = asyncio.create_task(self._replicate(advert))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return {"org_id": advert.org_id, "sequence": advert.sequence, "stored": fresh}

    async def _replicate(self, advert: Advert) -> None:
        async def one(url: str) -> None:
            try:
                await self.messenger.request(url, "advert.replicate", {"advert": advert.to_dict()}, timeout=5)
            except FinP2PError as err:
                if err.code is not ErrorCode.STALE_ADVERT:
                    log.info("replicating %s to %s failed (it catches up later): %s", advert.org_id, url, err)

        await asyncio.gather(*(one(u) for u in self.others))

    async def _on_replicate(self, msg: Incoming) -> dict[str, Any]:
        if msg.sender is None or msg.sender.role != "governance":
            raise FinP2PError(ErrorCode.FOREIGN_ADVERT, "only registrars replicate adverts")
        advert, fresh = await self.accept(msg.body.get("advert"), None, home=False)
        return {"org_id": advert.org_id, "stored": fresh}

    async def _on_discover(self, msg: Incoming) -> dict[str, Any]:
        assert msg.sender is not None
        by, value = msg.body.get("by", "all"), msg.body.get("value")
        if by == "orgs":
            if not isinstance(value, list) or len(value) > MAX_PAGE or not all(ORG_ID.matches(v) for v in value):
                raise FinP2PError(ErrorCode.MALFORMED, f"by orgs takes a list of at most {MAX_PAGE} organization ids")
        elif by not in QUERY_KINDS or (by != "all" and not isinstance(value, str)):
            raise FinP2PError(ErrorCode.MALFORMED, f"by must be one of {', '.join(QUERY_KINDS)}, with a value")
        limit = msg.body.get("limit", 50)
        cursor = msg.body.get("cursor") or ""
        refs = msg.body.get("refs", False)
        if not isinstance(limit, int) or not 0 < limit <= MAX_PAGE or not isinstance(cursor, str):
            raise FinP2PError(ErrorCode.MALFORMED, f"limit is 1 to {MAX_PAGE}; cursor is the last org id seen")
        if type(refs) is not bool:
            raise FinP2PError(ErrorCode.MALFORMED, "refs is true (a page of digests) or false (of adverts)")
        asker = str(msg.sender.org_id)
        everything = msg.sender.role == "governance"  # registrars replicate whole adverts
        index = await self.index()
        found = index.find(by, value, cursor, limit, now_ms())
        # The asker's groups (those of its own advert) decide which resource entries it sees.
        mine = index.get(asker) if not everything and any(a.resources for a in found) else None
        groups = frozenset(mine.groups) if mine is not None else frozenset()
        page = [a.seen_by(asker, groups, everything=everything) for a in found]
        if by == "resource":
            page = [a for a in page if any(r.resource_id == value for r in a.resources)]
        next_cursor = found[-1].org_id if len(found) == limit else None
        if refs:
            return {"refs": [{"org_id": a.org_id, "digest": index.digest(a)} for a in page], "next_cursor": next_cursor}
        return {"adverts": [a.to_dict() for a in page], "next_cursor": next_cursor}

    async def catch_up(self) -> int:
        """Copy newer adverts from the other registrars; the number stored."""
        stored = 0
        for url in self.others:
            cursor: str | None = ""
            try:
                while cursor is not None:
                    page = await self.messenger.request(
                        url, "discover", {"by": "all", "cursor": cursor, "limit": MAX_PAGE}, timeout=10
                    )
                    for raw in page.get("adverts", []):
                        try:
                            stored += (await self.accept(raw, None, home=False))[1]
                        except FinP2PError as err:
                            if err.code is not ErrorCode.STALE_ADVERT:
                                log.info("catch-up: advert refused: %s", err)
                    cursor = page.get("next_cursor")
            except FinP2PError as err:
                log.info("catch-up from %s failed: %s", url, err)
        return stored

    async def sync_forever(self) -> None:
        while True:
            n = await self.catch_up()
            if n:
                log.info("caught up %d advert(s) from other registrars", n)
            await asyncio.sleep(self.sync_s)

    def home_members(self) -> list[Member]:
        """The organizations that advertise here themselves: a broadcast through this registrar reaches them."""

        def op(s: Session) -> list[AdvertRow]:
            return list(
                s.exec(select(AdvertRow).where(col(AdvertRow.home).is_(True), col(AdvertRow.expires_ms) > now_ms()))
            )

        return [member_of(Advert.from_dict(json.loads(r.document))) for r in self.store.call(op)]


def member_of(a: Advert) -> Member:
    return Member(a.org_id, a.fin_id, a.addresses[0], a.role, a.groups, a.ledgers)
