"""The node: wires config, plugins, store and components; starts and stops them in order."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from finp2p import compliance
from finp2p.assets.service import AssetService
from finp2p.compliance import TransferCheck, Violation
from finp2p.components import ComponentContext
from finp2p.config import Settings, open_config
from finp2p.edge import gil, recursion
from finp2p.edge.files import private_dir
from finp2p.errors import TRANSIENT, ErrorCode, FinP2PError
from finp2p.ledger import Ledger, LedgerProfile
from finp2p.ledger_profiles import load_profile, open_ledger
from finp2p.lifecycle import Closers
from finp2p.network.pubsub import Delivered
from finp2p.plugins import PluginManager
from finp2p.privacy.acl import AclBackend
from finp2p.stack import NetworkStack, write_run_file
from finp2p.store import Store

log = logging.getLogger(__name__)


class Node:
    """One organization's node. ``start`` brings it up (migrations first), ``close`` takes it down; each once."""

    def __init__(self, settings: Settings, plugins: PluginManager) -> None:
        self.settings = settings
        self.plugins = plugins
        self.store: Store | None = None
        self.acl: AclBackend | None = None
        #: The ledgers of ``[ledgers] profiles``, by ledger id.
        self.ledgers: dict[str, Ledger] = {}
        self.ledger_profiles: dict[str, LedgerProfile] = {}
        #: Asset transactions (primary and requester); present when the node is a network member.
        self.assets: AssetService | None = None
        self.network: NetworkStack | None = None
        self.api: Any = None
        self.adapter: Any = None
        self.started = False
        self._closers: Closers | None = None

    @classmethod
    def from_config(cls, path: Path | None, *, strict: bool | None = None) -> Node:
        settings, plugins = open_config(path, strict=strict)
        return cls(settings, plugins)

    @property
    def context(self) -> ComponentContext:
        return ComponentContext(self.settings, self.settings.data_dir, self.plugins, self.store)

    async def start(self) -> None:
        """Bring the node up: store (migrated), ACL backend, ledgers, network and services, REST API, adapter; then
        ``finp2p_node_started``. Each part is closed again, in reverse order, if a later one fails to start."""
        if self._closers is not None:
            raise FinP2PError(ErrorCode.CONFIG_VALUE, "this node was started already; make a new Node to start again")
        closers = self._closers = Closers(f"node {self.settings.node.name}")
        gil.favour_the_event_loop()
        private_dir(self.settings.data_dir)
        try:
            store = self.store = Store(
                self.settings.store_url,
                sqlite_synchronous=self.settings.store.sqlite_synchronous,
                pool_size=self.settings.store.pool_size,
            )
            closers.push("store", lambda: asyncio.to_thread(store.close))
            before, after = await asyncio.to_thread(store.migrate)
            if before != after:
                log.info("store migrated from %s to %s", before or "empty", after)
            acl_settings = self.settings.acl.model_dump()
            self.acl = self.plugins.kind("acl", self.settings.acl.backend).factory(acl_settings, self.context)
            for path in self.settings.ledgers.profiles:
                profile = load_profile(self.settings.path(path))
                ledger = open_ledger(profile, self.context)
                self.ledgers[profile.ledger_id] = ledger
                self.ledger_profiles[profile.ledger_id] = profile
                closers.push(f"ledger {profile.ledger_id}", ledger.close)
                await self._start_ledger(profile.ledger_id, ledger)
            if self.settings.identity.genesis is not None:
                await self._start_network(closers)
            if self.settings.adapter.port is not None:
                await self._start_adapter(closers)
            await self.emit("finp2p_node_started", node=self)
            recursion.restore()  # the ledger plugins are loaded and their chains open: no library raises it now
            # Written once everything serves (`finp2p node wait` waits for it), removed first when it stops.
            write_run_file(self.run_file, self.describe())

            async def forget_run_file() -> None:
                self.run_file.unlink(missing_ok=True)

            closers.push("run file", forget_run_file)
        except BaseException:
            await self._close(raise_errors=False)  # the reason it did not start is the error to see
            raise
        self.started = True

    async def _start_ledger(self, ledger_id: str, ledger: Ledger) -> None:
        """A bad profile stops the node now rather than fail its first operation; a ledger that does not answer
        yet does not (the node serves its other ledgers and the network, and this one connects on first use)."""
        try:
            await ledger.start()
        except FinP2PError as exc:
            if exc.code not in TRANSIENT:
                raise
            log.warning("ledger %s: %s; the node starts without it and connects on first use", ledger_id, exc)

    async def _start_network(self, closers: Closers) -> None:
        """The network stack with the asset services on it, then the REST API over both."""

        async def services(stack: NetworkStack) -> None:  # their handlers are there before any request
            self.network = stack
            assets = self.assets = AssetService(self, stack.messenger)
            closers.push("asset services", assets.close)

        self.network = await NetworkStack.start(
            self.settings,
            self.plugins,
            self.store,  # type: ignore[arg-type]
            self.context,
            acl=self.acl,
            handlers=self.plugins.gather("finp2p_message_handlers", node=self),
            queries=self.plugins.gather("finp2p_broadcast_queries", node=self),
            on_topic_message=self._on_topic_message,
            before_serving=services,
        )
        closers.push("network", self.network.close)  # closed before the services: no request reaches them then
        assert self.assets is not None
        await self.assets.start()
        if self.settings.api.port is not None:
            from finp2p.api.server import Api

            assert self.acl is not None and self.store is not None
            api = self.api = Api(self.store, self.acl, self.network, self.assets)
            await api.start(self.settings.api.host, self.settings.api.port, self.settings.limits.server())
            closers.push("REST API", api.close)

    async def _start_adapter(self, closers: Closers) -> None:
        """The ledger-adapter API over one of the node's ledgers, in the node's store, signing with its key."""
        from finp2p.adapter.auth import require_token
        from finp2p.adapter.server import AdapterServer
        from finp2p.adapter.service import AdapterService
        from finp2p.edge.bearer import token_from_file
        from finp2p.identity.keys import passphrase_from
        from finp2p.identity.local import LocalIdentity

        section = self.settings.adapter
        if not self.ledgers:
            raise FinP2PError(ErrorCode.CONFIG_VALUE, "[adapter] needs a ledger: name one in [ledgers] profiles")
        ledger_id = section.ledger or next(iter(self.ledgers))
        if ledger_id not in self.ledgers:
            raise FinP2PError(
                ErrorCode.CONFIG_VALUE,
                f"[adapter] ledger {ledger_id!r} is not one of [ledgers] profiles ({', '.join(self.ledgers)})",
            )
        key = LocalIdentity(self.settings.data_dir, passphrase_from()).key() if section.sign_receipts else None
        token = token_from_file(self.settings.path(section.token_file), "adapter token") if section.token_file else None
        require_token(token, section.insecure_no_auth, section.host)
        assert self.store is not None and section.port is not None
        service = AdapterService(
            self.ledgers[ledger_id],
            self.store,
            key=key,
            callback_url=section.callback_url,
            plugins=self.plugins,
            settings=self.settings,
        )
        self.adapter = AdapterServer(
            service,
            token=token,
            base_path=section.base_path,
            insecure_no_auth=section.insecure_no_auth,
            limits=self.settings.limits.server(),
        )
        await self.adapter.start(section.host, section.port)
        closers.push("ledger-adapter API", self.adapter.close)
        log.info("ledger-adapter API for %s at %s", ledger_id, self.adapter.url)

    async def close(self) -> None:
        """Take the node down: ``finp2p_node_stopping``, then every part in reverse order of starting, each closed
        whatever the others raise (their failures raised together at the end). Once; a second call does nothing."""
        if not self.started:
            return
        self.started = False
        await self.emit("finp2p_node_stopping", node=self, raise_errors=False)
        await self._close()

    @property
    def run_file(self) -> Path:
        """``node.json`` in the data directory while the node serves: its address, org, FinID and PID."""
        return self.settings.data_dir / "node.json"

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.settings.node.name, "pid": os.getpid()}
        if self.network is not None:
            ident = self.network.identity
            out.update(address=self.network.address, org_id=ident.org_id, fin_id=ident.fin_id, role=ident.role)
        if self.api is not None:
            out["api"] = self.api.address
        if self.adapter is not None:
            out["adapter"] = self.adapter.url
        return out

    async def _close(self, *, raise_errors: bool = True) -> None:
        closers, self._closers = self._closers, None
        try:
            if closers is not None:
                await closers.close(raise_errors=raise_errors)
        finally:
            self.adapter = self.api = self.network = self.assets = self.acl = self.store = None
            self.ledgers.clear()

    # -- hooks ---------------------------------------------------------------------------------------------------
    async def _on_topic_message(self, message: Delivered) -> None:
        await self.emit("finp2p_topic_message", raise_errors=False, node=self, message=message)

    async def emit(self, hook_name: str, *, raise_errors: bool = True, **kwargs: Any) -> None:
        """Call an event hook on every plugin (see :meth:`finp2p.plugins.PluginManager.emit`)."""
        await self.plugins.emit(hook_name, raise_errors=raise_errors, **kwargs)

    async def check_transfer(self, check: TransferCheck, *, timeout: float = 30.0) -> list[Violation]:
        """Ask every compliance hook; any violation (or failure to answer) vetoes the transfer."""
        return await compliance.check_transfer(self.plugins, self.settings, check, timeout=timeout)
