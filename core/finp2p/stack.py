"""The node's network stack: trust, identity, transport, messenger and the identity services on top.

Started by :class:`finp2p.node.Node` when the config names a genesis. An organization node must be a member
(registered and approved); a governance node must be certified by a founding node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from finp2p.clock import now_ms
from finp2p.components import ComponentContext
from finp2p.config import Settings
from finp2p.edge.files import write_private
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.governance.authority import Authority
from finp2p.governance.registrar import Registrar
from finp2p.governance.service import GovernanceService, RevocationSync
from finp2p.identity.genesis import Genesis
from finp2p.identity.keys import passphrase_from
from finp2p.identity.local import LocalIdentity
from finp2p.identity.replay import ReplayGuard
from finp2p.identity.trust import Identity, Trust
from finp2p.lifecycle import Closers
from finp2p.network.adverts import REGISTRAR_TOPIC
from finp2p.network.broadcast import Broadcaster, QueryHandler
from finp2p.network.directory import Directory
from finp2p.network.discovery import Discovery
from finp2p.network.messaging import Handler, Incoming, Messenger
from finp2p.network.pubsub import Delivered, OnMessage, PubSub
from finp2p.network.transport import Transport
from finp2p.plugins import PluginManager
from finp2p.privacy.acl import AclBackend, AclRule
from finp2p.privacy.cache import AclCache
from finp2p.privacy.sharing import PrivacyService
from finp2p.store import Store

log = logging.getLogger(__name__)


@dataclass
class NetworkStack:
    genesis: Genesis
    trust: Trust
    identity: Identity
    messenger: Messenger
    transport: Transport
    address: str = ""
    #: The address peers reach this node at now: ``[peer] public_url``, else the one it registered with.
    public_url: str | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    pubsub: PubSub | None = None
    directory: Directory | None = None
    discovery: Discovery | None = None
    privacy: PrivacyService | None = None
    broadcaster: Broadcaster | None = None

    @classmethod
    async def start(
        cls,
        settings: Settings,
        plugins: PluginManager,
        store: Store,
        context: ComponentContext,
        *,
        acl: AclBackend | None = None,
        handlers: dict[str, Handler] | None = None,
        queries: dict[str, QueryHandler] | None = None,
        on_topic_message: OnMessage | None = None,
        before_serving: Callable[[NetworkStack], Awaitable[None]] | None = None,
    ) -> NetworkStack:
        """Build the stack and serve: handlers, background work and the transport's listener. ``before_serving``
        runs once every part is built and before the first message is read, so the services it starts register
        their handlers before any peer can ask for them."""
        stack, sync = await cls.build(settings, plugins, store, context)
        try:
            await stack._serve(sync, settings, store, acl, handlers, queries, on_topic_message, before_serving)
        except BaseException:
            with contextlib.suppress(Exception):  # the reason it did not start is the error to see
                await stack.close()
            raise
        return stack

    async def _serve(
        self,
        sync: RevocationSync,
        settings: Settings,
        store: Store,
        acl: AclBackend | None,
        handlers: dict[str, Handler] | None,
        queries: dict[str, QueryHandler] | None,
        on_topic_message: OnMessage | None,
        before_serving: Callable[[NetworkStack], Awaitable[None]] | None,
    ) -> None:
        stack = self
        me = stack.identity
        messenger = stack.messenger

        async def ping(msg: Incoming) -> dict[str, Any]:
            sender = msg.sender.org_id if msg.sender else None
            return {"org_id": me.org_id, "time_ms": now_ms(), "from": sender}

        messenger.register("node.ping", ping)
        public_url = stack.public_url

        async def on_message(message: Delivered) -> None:  # topic messages: discovery and privacy, then plugins
            if stack.discovery is not None:
                stack.discovery.on_update(message)
            if stack.privacy is not None:
                await stack.privacy.on_message(message)
            if on_topic_message is not None:
                await on_topic_message(message)

        stack.pubsub = PubSub(store, messenger, topic_policy(acl), public_url, on_message)
        stack.discovery = Discovery(settings, store, messenger, stack.pubsub)
        if acl is not None:
            cache = AclCache(acl)
            await cache.refresh()
            stack.privacy = PrivacyService(store, messenger, acl, cache, stack.pubsub, stack.discovery)
            stack.tasks.append(asyncio.create_task(cache.refresh_forever(), name="acl-cache"))
        registrar = None
        if settings.governance.enabled:
            if settings.governance.auto_approve and not stack.genesis.devnet:
                raise FinP2PError(ErrorCode.CONFIG_VALUE, "governance.auto_approve is for devnets only; clear it")
            authority = Authority.load(_local_identity(settings), stack.genesis, settings.governance.credential_days)
            service = GovernanceService(
                store, authority, messenger, sync, settings.governance.auto_approve, settings.limits
            )
            stack.tasks.append(asyncio.create_task(service.publish_forever(), name="revocation-publish"))
            registrar = Registrar(
                store,
                trust=stack.trust,
                messenger=messenger,
                pubsub=stack.pubsub,
                rendezvous=list(stack.genesis.rendezvous),
                own_address=public_url,
                sync_s=settings.governance.sync_s,
            )
            if acl is not None:  # every member may follow the registrar's announcements
                await acl.grant(AclRule("*", "subscribe", REGISTRAR_TOPIC))
            # A registrar advertises to itself first, and answers its own queries.
            if public_url:
                others = [a for a in stack.discovery.rendezvous if a != public_url]
                stack.discovery.rendezvous = [public_url, *others]
        stack.directory = Directory(stack.discovery, registrar.home_members if registrar else None)
        stack.broadcaster = Broadcaster(messenger, stack.directory, is_rendezvous=registrar is not None)
        genesis_hash = stack.genesis.hash

        async def genesis_query(payload: dict[str, Any], asker: Identity) -> tuple[Any, int | None]:
            return genesis_hash, None  # do all members trust the same network root?

        stack.broadcaster.register_query("network.genesis", genesis_query)
        for type_, handler in (handlers or {}).items():
            messenger.register(type_, handler)
        for kind, query in (queries or {}).items():
            stack.broadcaster.register_query(kind, query)
        if before_serving is not None:
            await before_serving(stack)
        stack.address = await stack.transport.start(messenger)
        await stack.pubsub.start()
        stack.tasks.append(asyncio.create_task(sync.poll_forever(stack.address), name="revocation-poll"))
        if registrar is not None:
            stack.tasks.append(asyncio.create_task(registrar.sync_forever(), name="registrar-sync"))
        try:  # advertised before the node reports it is up, so a started node is a discoverable one
            await stack.discovery.advertise()
        except FinP2PError as err:
            log.warning("could not advertise yet (retrying every %.0f s): %s", settings.advert.check_s, err)
        stack.tasks.append(asyncio.create_task(stack.discovery.maintain(settings.advert.check_s), name="advertise"))
        stack.tasks.append(asyncio.create_task(stack.discovery.follow_registrar(), name="registrar-follow"))

    @classmethod
    async def build(
        cls, settings: Settings, plugins: PluginManager, store: Store, context: ComponentContext
    ) -> tuple[NetworkStack, RevocationSync]:
        """The stack without serving: enough to send requests as this node (``finp2p node ping``)."""
        if settings.identity.genesis is None:
            raise FinP2PError(ErrorCode.CONFIG_VALUE, "identity.genesis is not set: the node is in no network")
        genesis = Genesis.load(settings.path(settings.identity.genesis))
        trust = Trust(genesis)
        ident = _local_identity(settings)
        if not ident.is_member():
            raise FinP2PError(ErrorCode.NOT_A_MEMBER_YET, f"{ident.dir} holds no credential and TLS certificate")
        key = ident.key()
        chain = ident.chain() or ()
        me_cred = chain[0]
        url = settings.peer.public_url or me_cred.attributes.get("public_url")
        port = settings.peer.port if settings.peer.port is not None else (urlsplit(url).port if url else 0)
        transport_settings = {
            "trust_pem": genesis.trust_pem,
            "cert_chain_file": ident.tls_chain_path,
            "key_file": ident.tls_key_path,
            "host": settings.peer.host,
            "port": port or 0,
            "public_url": url if port else None,
            "open_to_newcomers": settings.governance.enabled,
            "max_body_bytes": settings.peer.max_body_bytes,
            "limits": settings.limits.server(),
        }
        transport: Transport = plugins.kind("transport", settings.peer.transport).factory(transport_settings, context)
        replay = ReplayGuard(store, int(settings.peer.clock_window_s * 1000))
        messenger = Messenger(
            key=key, org_id=me_cred.org_id, chain=chain, trust=trust, replay=replay, transport=transport
        )
        sync = RevocationSync(store, trust, messenger, list(genesis.rendezvous), settings.identity.revocation_poll_s)
        await sync.load()
        me = trust.verify_chain(chain)  # our own credential: refuse to run expired or revoked
        return cls(genesis, trust, me, messenger, transport, public_url=url), sync

    async def close(self) -> None:
        """Stop the background work, then pub/sub, then the transport; each whatever the others raise."""
        closers = Closers("network stack")
        closers.push("transport", self.transport.close)
        if self.pubsub is not None:
            closers.push("pub/sub", self.pubsub.close)
        closers.push("background tasks", self._cancel_tasks)
        await closers.close()

    async def _cancel_tasks(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()


def _local_identity(settings: Settings) -> LocalIdentity:
    pf = settings.identity.passphrase_file
    return LocalIdentity(settings.data_dir, passphrase_from(settings.path(pf) if pf else None))


def topic_policy(acl: AclBackend | None) -> Callable[[str, str], Awaitable[bool]] | None:
    """Who may receive which topic: a private record's topic (``data/<resource id>``) needs ``read`` on the
    record; an organization's announcement topic (``announce/<org>``) is its own; any other topic needs
    ``subscribe`` on it."""
    if acl is None:
        return None

    async def may(org_id: str, topic: str) -> bool:
        if topic.startswith("data/"):
            return await acl.is_allowed(org_id, "read", topic[5:])
        if topic.startswith("announce/"):
            return topic == f"announce/{org_id}"
        return await acl.is_allowed(org_id, "subscribe", topic)

    return may


def write_run_file(path: Path, data: dict[str, Any]) -> None:
    write_private(path, json.dumps(data))
