"""The ledger-adapter server as one piece: service and routes over a ledger and a store, started and stopped
together (by ``finp2p adapter serve`` or by a node whose config has an ``[adapter]`` port)."""

from __future__ import annotations

from finp2p.adapter.app import AdapterApp
from finp2p.adapter.service import AdapterService


class AdapterServer:
    """``service`` behind its routes, under ``base_path`` (and a bearer ``token`` when given)."""

    def __init__(self, service: AdapterService, *, base_path: str = "/api", token: str | None = None) -> None:
        self.service = service
        self.app = AdapterApp(service, base_path=base_path, token=token)

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
