"""The ledger-adapter server as one piece: service and routes over a ledger and a store, started and stopped
together (by ``finp2p adapter serve`` or by a node whose config has an ``[adapter]`` port)."""

from __future__ import annotations

from finp2p.adapter.app import AdapterApp
from finp2p.adapter.service import AdapterService
from finp2p.config import Settings
from finp2p.identity.keys import SigningKey
from finp2p.ledger import Ledger
from finp2p.plugins import PluginManager
from finp2p.store import Store


class AdapterServer:
    def __init__(
        self,
        ledger: Ledger,
        store: Store,
        *,
        key: SigningKey | None = None,
        callback_url: str | None = None,
        base_path: str = "/api",
        token: str | None = None,
        plugins: PluginManager | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.service = AdapterService(
            ledger, store, key=key, callback_url=callback_url, plugins=plugins, settings=settings
        )
        self.app = AdapterApp(self.service, base_path=base_path, token=token)

    @property
    def url(self) -> str:
        return self.app.url

    async def start(self, host: str, port: int) -> str:
        """Resume what a previous run left unfinished, then serve; the base URL."""
        await self.service.start()
        return await self.app.start(host, port)

    async def close(self) -> None:
        await self.app.close()
        await self.service.close()
