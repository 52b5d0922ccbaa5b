"""Sharing private data: pull (announce, then the reader asks) and push (replicate every update).

Owner side (functions the CLI and the node both use): ``update`` writes a new version, pushes it on the record's
topic ``data/<resource id>`` (delivered to push readers only, re-checked against the ACL before every batch) and
announces it to pull readers on their topic ``announce/<org>``. ``share`` grants ``read``, then has the reader
follow the record's topic (push) or its announcements (pull); ``unshare`` withdraws the grant, ends the push and asks
the former reader to delete its replica. Each ACL change is notified (``acl.changed``) to the organization it
concerns and to the owner's own running node, which refreshes its ACL cache.

Reader side (:class:`PrivacyService`, on every node): answers ``private.get`` for its own records after the full
checks (ACL cache on the TLS peer first, then the envelope signature, credential chain and revocation in the
messenger, then the ACL), follows offers, deletes replicas when asked, keeps pushed replicas, records notices.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from sqlmodel import Session

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.network import pubsub as ps
from finp2p.network.discovery import Discovery
from finp2p.network.messaging import Incoming, Messenger
from finp2p.network.pubsub import Delivered, PubSub
from finp2p.privacy import records
from finp2p.privacy.acl import AclBackend, AclRule, resource_matches
from finp2p.privacy.cache import AclCache
from finp2p.resource_id import ResourceId
from finp2p.store import Store
from finp2p.store.models import SubscriberRow

log = logging.getLogger(__name__)


def data_topic(resource_id: str) -> str:
    return f"data/{resource_id}"


def announce_topic(org_id: str) -> str:
    return f"announce/{org_id}"


# -- owner side --------------------------------------------------------------------------------------------------
async def readers(acl: AclBackend, resource_id: str) -> set[str]:
    """The organizations a rule lets read ``resource_id`` (groups expanded; ``*`` is not a list of readers)."""
    orgs: set[str] = set()
    for rule in await acl.rules():
        if rule.action in ("read", "*") and resource_matches(rule.resource, resource_id):
            if rule.subject.startswith("org:"):
                orgs.add(rule.subject[4:])
            elif rule.subject.startswith("group:"):
                orgs |= await acl.group_members(rule.subject[6:])
    return orgs


def _push_readers(s: Session, resource_id: str) -> set[str]:
    from sqlmodel import col, select

    q = select(SubscriberRow.org_id).where(
        SubscriberRow.topic == data_topic(resource_id), col(SubscriberRow.active).is_(True)
    )
    return set(s.exec(q))


async def update(store: Store, acl: AclBackend, owner: str, resource_id: str, data: Any) -> int:
    """Write a new version of our record, push it and announce it. Returns the version."""
    pull = await readers(acl, resource_id)

    def op(s: Session) -> int:
        row = records.put(s, owner, resource_id, data)
        body = records.as_answer(row)
        ps.append(s, data_topic(resource_id), body)
        for org in sorted(pull - _push_readers(s, resource_id)):
            ps.append(s, announce_topic(org), {"resource_id": resource_id, "version": row.version})
        return row.version

    return await store.run(op)


async def share(
    store: Store,
    acl: AclBackend,
    messenger: Messenger,
    discovery: Discovery,
    resource_id: str,
    org_id: str,
    *,
    push: bool,
) -> dict[str, Any]:
    owner = str(messenger.org_id)
    if ResourceId.parse(resource_id).org_id != owner:
        raise FinP2PError(ErrorCode.ACL_DENIED, f"{resource_id} belongs to another organization")
    address = (await discovery.org(org_id)).addresses[0]  # an organization of the network, before any grant
    await acl.grant(AclRule(f"org:{org_id}", "read", resource_id))
    await _notify(messenger, discovery, owner, org_id, resource_id, granted=True)
    topic = data_topic(resource_id) if push else announce_topic(org_id)
    answer = await messenger.request(
        address, "private.offer", {"resource_id": resource_id, "topic": topic}, recipient=org_id, attempts=3
    )
    if not push:
        row = await store.run(lambda s: records.get(s, resource_id))
        if row is not None:  # tell the new reader what is there now
            await store.run(
                lambda s: ps.append(s, announce_topic(org_id), {"resource_id": resource_id, "version": row.version})
            )
    return {"resource_id": resource_id, "org_id": org_id, "mode": "push" if push else "pull", **answer}


async def unshare(
    store: Store, acl: AclBackend, messenger: Messenger, discovery: Discovery, resource_id: str, org_id: str
) -> dict[str, Any]:
    owner = str(messenger.org_id)
    withdrawn = await acl.withdraw(AclRule(f"org:{org_id}", "read", resource_id))

    def stop_push(s: Session) -> bool:
        row = s.get(SubscriberRow, (data_topic(resource_id), org_id))
        if row is None or not row.active:
            return False
        row.active = False
        s.add(row)
        return True

    pushed = await store.run(stop_push)
    deleted = False
    try:
        address = (await discovery.org(org_id)).addresses[0]
        answer = await messenger.request(
            address, "private.forget", {"resource_id": resource_id}, recipient=org_id, attempts=3
        )
        deleted = bool(answer.get("deleted"))
    except FinP2PError as err:
        log.warning("could not ask %s to delete its replica of %s: %s", org_id, resource_id, err)
    await _notify(messenger, discovery, owner, org_id, resource_id, granted=False)
    return {
        "resource_id": resource_id,
        "org_id": org_id,
        "withdrawn": withdrawn,
        "push_stopped": pushed,
        "replica_deleted": deleted,
    }


async def _notify(
    messenger: Messenger, discovery: Discovery, owner: str, org_id: str, resource: str, *, granted: bool
) -> None:
    """Tell the organization concerned, and our own running node (its ACL cache), that access changed."""
    body = {"resource": resource, "action": "read", "granted": granted}
    for target in (owner, org_id):
        try:
            address = (await discovery.org(target)).addresses[0]
            await messenger.request(address, "acl.changed", body, recipient=target, attempts=2)
        except FinP2PError as err:
            log.info("acl.changed to %s not delivered: %s", target, err)


async def fetch(messenger: Messenger, discovery: Discovery, resource_id: str) -> dict[str, Any]:
    """Ask the owner of ``resource_id`` for it (a private data request, checked by the owner in full)."""
    owner = ResourceId.parse(resource_id).org_id
    address = await discovery.route(resource_id)
    return await messenger.request(address, "private.get", {"resource_id": resource_id}, recipient=owner)


# -- every node ----------------------------------------------------------------------------------------------------
class PrivacyService:
    def __init__(
        self, store: Store, messenger: Messenger, acl: AclBackend, cache: AclCache, pubsub: PubSub, discovery: Discovery
    ) -> None:
        self.store = store
        self.messenger = messenger
        self.acl = acl
        self.cache = cache
        self.pubsub = pubsub
        self.discovery = discovery
        messenger.register("private.get", self._on_get, precheck=cache.precheck)
        messenger.register("private.offer", self._on_offer)
        messenger.register("private.forget", self._on_forget)
        messenger.register("acl.changed", self._on_acl_changed)

    async def _on_get(self, msg: Incoming) -> dict[str, Any]:
        assert msg.sender is not None
        resource_id = str(ResourceId.parse(msg.body.get("resource_id")))
        asker = str(msg.sender.org_id)
        if ResourceId.parse(resource_id).org_id != self.messenger.org_id:
            raise FinP2PError(ErrorCode.NOT_FOUND, f"{resource_id} is not a resource of this organization")
        if not await self.acl.is_allowed(asker, "read", resource_id):
            raise FinP2PError(ErrorCode.ACL_DENIED, f"{asker} may not read {resource_id}")
        row = await self.store.run(lambda s: records.get(s, resource_id))
        if row is None or row.replica:
            raise FinP2PError(ErrorCode.NOT_FOUND, f"no information about {resource_id} here")
        return records.as_answer(row)

    async def _on_offer(self, msg: Incoming) -> dict[str, Any]:
        assert msg.sender is not None
        owner = str(msg.sender.org_id)
        topic = ps.check_topic(msg.body.get("topic"))
        address = (await self.discovery.org(owner)).addresses[0]
        last = await self.pubsub.subscribe(address, owner, topic)
        return {"subscribed": topic, "owner_last_seq": last}

    async def _on_forget(self, msg: Incoming) -> dict[str, Any]:
        assert msg.sender is not None
        owner = str(msg.sender.org_id)
        resource_id = str(ResourceId.parse(msg.body.get("resource_id")))

        def op(s: Session) -> bool:
            deleted = records.drop_replica(s, owner, resource_id)
            records.notice(s, owner, resource_id, "withdrawn")
            return deleted

        deleted = await self.store.run(op)
        with contextlib.suppress(FinP2PError):  # the owner may have ended it already
            await self.pubsub.unsubscribe(owner, data_topic(resource_id))
        return {"deleted": deleted}

    async def _on_acl_changed(self, msg: Incoming) -> dict[str, Any]:
        assert msg.sender is not None
        if msg.sender.org_id == self.messenger.org_id:  # our own ACL changed (through the CLI): refresh the cache
            await self.cache.refresh()
            return {"refreshed": True}
        resource = str(msg.body.get("resource", ""))
        event = "granted" if msg.body.get("granted") else "withdrawn"
        owner = str(msg.sender.org_id)

        def op(s: Session) -> None:
            records.notice(s, owner, resource, event)
            if event == "withdrawn" and not resource.endswith("*"):
                records.drop_replica(s, owner, resource)

        await self.store.run(op)
        return {"noted": event}

    async def on_message(self, message: Delivered) -> None:
        """Keep pushed replicas; note pull announcements."""
        if message.topic.startswith("data/"):
            body = message.body
            raw = body.get("data")
            data: dict[str, Any] = raw if isinstance(raw, dict) else {}
            rid, version = str(body.get("resource_id")), int(body.get("version", 0))
            await self.store.run(lambda s: records.keep_replica(s, message.publisher_org, rid, version, data))
        elif message.topic.startswith("announce/"):
            await self.store.run(
                lambda s: records.notice(
                    s,
                    message.publisher_org,
                    str(message.body.get("resource_id")),
                    "available",
                    message.body.get("version") if isinstance(message.body.get("version"), int) else None,
                )
            )
