"""The node: wires config, plugins, store and components; starts and stops them in order."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from pathlib import Path
from typing import Any

from finp2p import compliance
from finp2p.assets.service import AssetService
from finp2p.compliance import TransferCheck, Violation
from finp2p.components import ComponentContext
from finp2p.config import Settings, open_config
from finp2p.edge import recursion
from finp2p.edge.files import private_dir
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.ledger import Ledger, LedgerProfile
from finp2p.ledger_profiles import load_profile, open_ledger
from finp2p.network.pubsub import Delivered
from finp2p.network.stack import NetworkStack, write_run_file
from finp2p.plugins import PluginManager
from finp2p.privacy.acl import AclBackend
from finp2p.store import Store

log = logging.getLogger(__name__)


class Node:
    """One organization's node. ``start`` brings it up (migrations first), ``stop`` takes it down; both once."""

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

    @classmethod
    def from_config(cls, path: Path | None, *, strict: bool | None = None) -> Node:
        settings, plugins = open_config(path, strict=strict)
        return cls(settings, plugins)

    @property
    def context(self) -> ComponentContext:
        return ComponentContext(self.settings, self.settings.data_dir, self.plugins, self.store)

    async def start(self) -> None:
        private_dir(self.settings.data_dir)
        self.store = Store(
            self.settings.store_url,
            sqlite_synchronous=self.settings.store.sqlite_synchronous,
            pool_size=self.settings.store.pool_size,
        )
        try:
            before, after = await asyncio.to_thread(self.store.migrate)
            if before != after:
                log.info("store migrated from %s to %s", before or "empty", after)
            acl_settings = self.settings.acl.model_dump()
            self.acl = self.plugins.kind("acl", self.settings.acl.backend).factory(acl_settings, self.context)
            for path in self.settings.ledgers.profiles:
                profile = load_profile(self.settings.path(path))
                self.ledgers[profile.ledger_id] = open_ledger(profile, self.context)
                self.ledger_profiles[profile.ledger_id] = profile
            if self.settings.identity.genesis is not None:

                async def services(stack: NetworkStack) -> None:  # their handlers are there before any request
                    self.network = stack
                    self.assets = AssetService(self, stack.messenger)

                self.network = await NetworkStack.start(
                    self.settings,
                    self.plugins,
                    self.store,
                    self.context,
                    acl=self.acl,
                    handlers=self._gathered("finp2p_message_handlers"),
                    queries=self._gathered("finp2p_broadcast_queries"),
                    on_topic_message=self._on_topic_message,
                    before_serving=services,
                )
                assert self.assets is not None
                await self.assets.resume()
                if self.settings.api.port is not None:
                    from finp2p.api.server import Api

                    assert self.acl is not None
                    self.api = Api(self.store, self.acl, self.network, self.assets)
                    await self.api.start(self.settings.api.host, self.settings.api.port, self.settings.limits.server())
                write_run_file(self.run_file, self.describe())
            if self.settings.adapter.port is not None:
                await self._start_adapter()
            await self.emit("finp2p_node_started", node=self)
            recursion.restore()  # the ledger plugins are loaded and their chains open: no library raises it now
        except BaseException:
            await self._close()
            raise
        self.started = True

    async def _start_adapter(self) -> None:
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
        log.info("ledger-adapter API for %s at %s", ledger_id, self.adapter.url)

    async def stop(self) -> None:
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

    async def _close(self) -> None:
        if self.adapter is not None:
            await self.adapter.close()
            self.adapter = None
        if self.assets is not None:
            await self.assets.close()
            self.assets = None
        if self.api is not None:
            await self.api.close()
            self.api = None
        if self.network is not None:
            self.run_file.unlink(missing_ok=True)
            await self.network.stop()
            self.network = None
        for ledger in self.ledgers.values():
            await ledger.close()
        self.ledgers.clear()
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
            self.store = None

    # -- hooks ---------------------------------------------------------------------------------------------------
    def _gathered(self, hook_name: str) -> dict[str, Any]:
        """The union of a gathered ``{name: handler}`` hook's answers; a name claimed twice is an error."""
        merged: dict[str, Any] = {}
        for impl in getattr(self.plugins.hook, hook_name).get_hookimpls():
            answer = impl.function(**({"node": self} if "node" in impl.argnames else {})) or {}
            for name, handler in answer.items():
                if name in merged:
                    raise FinP2PError(
                        ErrorCode.PLUGIN_CONFLICT,
                        f"{hook_name}: {name!r} is claimed twice (again by {self.plugins.plugin_name(impl.plugin)})",
                    )
                merged[name] = handler
        return merged

    async def _on_topic_message(self, message: Delivered) -> None:
        await self.emit("finp2p_topic_message", raise_errors=False, node=self, message=message)

    async def emit(self, hook_name: str, *, raise_errors: bool = True, **kwargs: Any) -> None:
        """Call an event hook on every plugin, awaiting awaitable answers, in registration order."""
        hook = getattr(self.plugins.hook, hook_name)
        for impl in hook.get_hookimpls():  # registration order
            name = self.plugins.plugin_name(impl.plugin)
            try:
                result = impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
                if inspect.isawaitable(result):
                    await result
            except Exception:
                if raise_errors:
                    raise
                log.exception("plugin %s failed in %s", name, hook_name)

    async def check_transfer(self, check: TransferCheck, *, timeout: float = 30.0) -> list[Violation]:
        """Ask every compliance hook; any violation (or failure to answer) vetoes the transfer."""
        return await compliance.check_transfer(self.plugins, self.settings, check, timeout=timeout)
