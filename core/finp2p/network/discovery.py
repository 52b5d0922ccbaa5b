"""The node's side of discovery: its own advert, kept current, and queries to the registrars, cached.

The node advertises when it starts and whenever what it would advertise changes (its address in the config file, its
software version, its capabilities, ledgers and groups in ``[advert]``, the resources it shares), checked every
``advert.check_s`` with no restart, and refreshes the advert at half its lifetime. It publishes to the first
rendezvous address of the genesis that answers. Query answers are verified advert by advert (they are
self-authenticating) and cached until the registrar announces a change on ``registrar/adverts``.

A registrar's page names its adverts by digest (``discover`` with ``refs``); the node fetches and verifies only those
it does not hold verified already (:class:`VerifiedAdverts`), and checks again, every time it uses one, what can
change after verification: the advert's lifetime and its signer's credential chain (expiry, revocation).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from sqlmodel import Session, select

from finp2p import __version__
from finp2p.clock import now_ms
from finp2p.config import Settings, load_settings
from finp2p.edge.identifiers import HEX_32, ORG_ID
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.network import adverts as adv
from finp2p.network import capabilities
from finp2p.network.adverts import Advert, SharedResource
from finp2p.network.messaging import Messenger
from finp2p.network.pubsub import Delivered, PubSub
from finp2p.resource_id import ResourceId
from finp2p.store import Store
from finp2p.store.models import OwnAdvertRow, SharedResourceRow

log = logging.getLogger(__name__)

QUERY_TTL_S = 60.0


def shared_resources(s: Session) -> list[SharedResource]:
    return [
        SharedResource(r.resource_id, r.topic, tuple(json.loads(r.visible_to)))
        for r in s.exec(select(SharedResourceRow).order_by(SharedResourceRow.resource_id))
    ]


def share(s: Session, resource_id: str, topic: str | None, visible_to: list[str]) -> None:
    ResourceId.parse(resource_id)
    row = s.get(SharedResourceRow, resource_id) or SharedResourceRow(resource_id=resource_id, visible_to="[]")
    row.topic, row.visible_to = topic, json.dumps(visible_to or ["*"])
    s.add(row)


def unshare(s: Session, resource_id: str) -> bool:
    row = s.get(SharedResourceRow, resource_id)
    if row is None:
        return False
    s.delete(row)
    return True


#: Why a genuine advert is no longer to be used: left out of an answer, where anything else fails it.
NO_LONGER_CURRENT = frozenset({ErrorCode.ADVERT_EXPIRED, ErrorCode.CREDENTIAL_EXPIRED, ErrorCode.CREDENTIAL_REVOKED})
#: The most verified adverts a node holds (an advert is a few kilobytes, most of it its chain).
VERIFIED_ADVERTS = 10_000


class VerifiedAdverts:
    """Adverts this node verified, by the digest that names each in a registrar's page (:func:`adv.view_digest`).

    A page of references costs a lookup per advert held; the rest are fetched in one request (``by: orgs``) and
    verified end to end before they are held. A reference only chooses which verified advert answers: one of another
    organization than the reference names, or one no longer current (expired, its chain revoked), is not used;
    a fetched one no longer current is left out of the answer."""

    def __init__(self, messenger: Messenger, size: int = VERIFIED_ADVERTS) -> None:
        self.messenger = messenger
        self.size = size
        #: digest → (advert, until when it and its chain are unexpired, the trust's revocation count then)
        self._held: dict[str, tuple[Advert, int, int]] = {}

    def __len__(self) -> int:
        return len(self._held)

    def verified(self, raw: Any) -> Advert:
        """``raw`` (an advert's JSON form) verified end to end, and held under its digest."""
        advert = Advert.from_dict(raw)
        adv.verify(advert, self.messenger.trust)  # a registrar cannot forge or alter an advert
        self._hold(adv.view_digest(raw), advert)
        return advert

    def _taken(self, raws: list[Any], url: str) -> list[Advert]:
        """:meth:`verified` adverts of an answer, those no longer current left out (the registrar may not know yet);
        anything else wrong with one fails the answer: the registrar is not to be believed."""
        out = []
        for raw in raws:
            try:
                out.append(self.verified(raw))
            except FinP2PError as err:
                if err.code not in NO_LONGER_CURRENT:
                    raise
                log.warning("the registrar at %s names an advert that is no longer current: %s", url, err)
        return out

    def _hold(self, digest: str, advert: Advert) -> None:
        if digest not in self._held and len(self._held) >= self.size:
            self._held.pop(next(iter(self._held)), None)  # the oldest first
        until = min(advert.expires_ms, *(c.expires_ms for c in advert.chain))
        self._held[digest] = (advert, until, self.messenger.trust.revocations_applied)

    def _current(self, ref: Any, now_ms: int, revocations_applied: int) -> Advert | None:
        """The verified advert ``ref`` names, if held and still current at ``now_ms`` with the trust's
        ``revocations_applied``; ``None`` when it must be fetched."""
        if type(ref) is not dict or type(digest := ref.get("digest")) is not str:
            return None
        held = self._held.get(digest)  # a key of ours: a hit is a well-formed digest
        if held is None or held[0].org_id != ref.get("org_id"):
            return None
        advert, until, revocations = held
        if now_ms < until and revocations_applied == revocations:
            return advert  # nothing that could end its validity has happened since it was checked
        trust = self.messenger.trust
        try:
            adv.check_current(advert, trust)
        except FinP2PError:
            del self._held[digest]
            return None
        self._hold(digest, advert)
        return advert

    async def page(self, url: str, query: dict[str, Any]) -> tuple[list[Advert], str | None]:
        """One page of ``query`` from the registrar at ``url``, as verified adverts, and the cursor of the next."""
        answer = await self.messenger.request(url, "discover", {**query, "refs": True}, timeout=10)
        cursor = answer.get("next_cursor")
        if cursor is not None and not ORG_ID.matches(cursor):
            raise FinP2PError(ErrorCode.MALFORMED, "the registrar's next_cursor is not an organization id")
        if "refs" not in answer:  # a registrar that answers with the adverts themselves
            return self._taken(_listed(answer.get("adverts"), query), url), cursor
        order: list[str] = []
        found: dict[str, Advert] = {}
        trust = self.messenger.trust
        now, revocations = trust.now_ms(), trust.revocations_applied  # once a page, not once an advert
        for ref in _listed(answer["refs"], query):
            held = self._current(ref, now, revocations)
            org_id = held.org_id if held is not None else _ref(ref)[0]
            order.append(org_id)
            if held is not None:
                found[org_id] = held
        if len(set(order)) != len(order):
            raise FinP2PError(ErrorCode.MALFORMED, "the registrar's page names an organization twice")
        missing = [org_id for org_id in order if org_id not in found]
        if missing:
            fetch = {"by": "orgs", "value": missing, "limit": len(missing)}
            fetched = await self.messenger.request(url, "discover", fetch, timeout=10)
            for advert in self._taken(_listed(fetched.get("adverts"), fetch), url):
                if advert.org_id in missing:  # changed since the page, maybe: the newer one, verified like any
                    found[advert.org_id] = advert
        return [found[org_id] for org_id in order if org_id in found], cursor


def _listed(value: Any, query: dict[str, Any]) -> list[Any]:
    if not isinstance(value, list) or len(value) > query.get("limit", adv.MAX_PAGE):
        raise FinP2PError(ErrorCode.MALFORMED, "the registrar's page is not a list of at most the adverts asked for")
    return value


def _ref(value: Any) -> tuple[str, str]:
    if (
        not isinstance(value, dict)
        or not ORG_ID.matches(value.get("org_id"))
        or not HEX_32.matches(value.get("digest"))
    ):
        raise FinP2PError(ErrorCode.MALFORMED, "a reference in the registrar's page is not {org_id, digest}")
    return value["org_id"], value["digest"]


class Discovery:
    def __init__(self, settings: Settings, store: Store, messenger: Messenger, pubsub: PubSub | None) -> None:
        self.settings = settings
        self.store = store
        self.messenger = messenger
        self.pubsub = pubsub
        self.rendezvous = list(messenger.trust.genesis.rendezvous)
        #: Ledger ids this node serves (its ledger profiles), advertised beside ``[advert] ledgers``.
        self.served_ledgers: list[str] = []
        self._cache: dict[tuple[str, str], tuple[float, list[Advert]]] = {}
        self.verified = VerifiedAdverts(messenger)
        #: One advert made and published at a time: two at once (the periodic check, and a new asset's) would sign
        #: the same sequence number, and the registrar refuse the second as stale.
        self._advertising = asyncio.Lock()

    # -- our advert ----------------------------------------------------------------------------------------------
    def _current_settings(self) -> Settings:
        """The config as it is on disk now, so edits take effect without a restart."""
        if self.settings.source is None:
            return self.settings
        try:
            return load_settings(self.settings.source)
        except FinP2PError as err:
            log.warning("config unreadable, advertising from the settings the node started with: %s", err)
            return self.settings

    def desired(self) -> dict[str, Any]:
        settings = self._current_settings()
        me = self.messenger.chain[0]
        address = settings.peer.public_url or me.attributes.get("public_url")
        return {
            "addresses": [address] if address else [],
            "software": f"finp2p/{__version__}",
            "caps": capabilities.ours(settings.advert.optional_capabilities),
            "ledgers": sorted(set(settings.advert.ledgers) | set(self.served_ledgers)),
            "groups": list(settings.advert.groups),
            "resources": self.store.call(shared_resources),
            "lifetime_s": settings.advert.lifetime_s,
        }

    def own(self) -> Advert | None:
        row = self.store.call(lambda s: s.get(OwnAdvertRow, 1))
        return Advert.from_dict(json.loads(row.document)) if row else None

    async def advertise(self, *, force: bool = False) -> Advert | None:
        """Publish a new advert if what we advertise changed or the last one is past half its lifetime (or
        ``force``), after any publication under way."""
        async with self._advertising:
            return await self._advertise(force=force)

    async def _advertise(self, *, force: bool) -> Advert | None:
        want = await asyncio.to_thread(self.desired)
        last = await asyncio.to_thread(self.own)
        lifetime_ms = int(want["lifetime_s"] * 1000)
        if (
            not force
            and last is not None
            and last.content() == adv.content(**want)
            and last.expires_ms - now_ms() > lifetime_ms // 2
        ):
            return None  # nothing changed: nothing to sign or send
        draft = adv.make(
            self.messenger.key,
            self.messenger.chain,
            network_id=self.messenger.network_id,
            sequence=(last.sequence + 1) if last else 1,
            **want,
        )
        errors = []
        for url in self.rendezvous:
            try:
                await self.messenger.request(url, "advert.publish", {"advert": draft.to_dict()}, timeout=10)
                break
            except FinP2PError as err:
                errors.append(f"{url}: {err.code.code}")
        else:
            raise FinP2PError(ErrorCode.NO_REGISTRAR, "; ".join(errors))
        doc = json.dumps(draft.to_dict())

        def save(s: Session) -> None:
            row = s.get(OwnAdvertRow, 1) or OwnAdvertRow(id=1, sequence=0, document="")
            row.sequence, row.document = draft.sequence, doc
            s.add(row)

        await self.store.run(save)
        log.info("advertised sequence %d at %s", draft.sequence, url)
        return draft

    async def maintain(self, check_s: float) -> None:
        while True:
            try:
                await self.advertise()
            except FinP2PError as err:
                log.warning("advertising failed (retrying in %.0f s): %s", check_s, err)
            await asyncio.sleep(check_s)

    # -- registrar updates ---------------------------------------------------------------------------------------
    async def follow_registrar(self) -> None:
        """Subscribe to the first registrar that answers; its announcements invalidate the cache."""
        if self.pubsub is None:
            return
        for attempt in range(30):
            for url in self.rendezvous:
                try:
                    registrar = (await self.messenger.request(url, "node.ping", {}, timeout=5))["org_id"]
                    await self.pubsub.subscribe(url, str(registrar), adv.REGISTRAR_TOPIC)
                    return
                except FinP2PError as err:
                    log.debug("following the registrar at %s failed: %s", url, err)
            await asyncio.sleep(min(30, 0.5 * 2**attempt))

    def on_update(self, message: Delivered) -> None:
        if message.topic == adv.REGISTRAR_TOPIC:
            self._cache.clear()

    # -- queries -------------------------------------------------------------------------------------------------
    async def query(self, by: str, value: str | None = None, *, limit: int | None = None) -> list[Advert]:
        """Verified adverts matching ``by``/``value``, all pages (or the first ``limit``), from the cache if fresh."""
        key = (by, value or "")
        cached = self._cache.get(key)
        if cached and time.monotonic() - cached[0] < QUERY_TTL_S and limit is None:
            return cached[1]
        found: list[Advert] = []
        cursor: str | None = ""
        errors: list[str] = []
        for url in self.rendezvous:
            try:
                while cursor is not None and (limit is None or len(found) < limit):
                    size = min(limit or adv.MAX_PAGE, adv.MAX_PAGE)
                    query = {"by": by, "value": value, "cursor": cursor, "limit": size}
                    adverts, cursor = await self.verified.page(url, query)
                    found += adverts
                break
            except FinP2PError as err:
                if err.code not in (ErrorCode.PEER_UNREACHABLE, ErrorCode.PEER_TIMEOUT, ErrorCode.PEER_TLS):
                    raise
                errors.append(f"{url}: {err.code.code}")
                found, cursor = [], ""
        else:
            raise FinP2PError(ErrorCode.NO_REGISTRAR, "; ".join(errors))
        if limit is None:
            self._cache[key] = (time.monotonic(), found)
        return found[:limit] if limit else found

    async def org(self, org_id: str) -> Advert:
        found = await self.query("org", org_id)
        if not found:
            raise FinP2PError(ErrorCode.NO_ADVERT, f"no advert of {org_id}")
        return found[0]

    async def route(self, resource_id: str) -> str:
        """The address of the node that owns ``resource_id`` (its organization is the id's host)."""
        owner = ResourceId.parse(resource_id).org_id
        return (await self.org(owner)).addresses[0]
