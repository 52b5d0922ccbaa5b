"""The ledger-adapter server as one piece: service and routes over a ledger and a store, started and stopped
together (by ``finp2p adapter serve`` or by a node whose config has an ``[adapter]`` port)."""

from __future__ import annotations

from finp2p.adapter.app import AdapterApp
from finp2p.adapter.service import AdapterService
from finp2p.edge.limits import DEFAULT_LIMITS, ServerLimits


class AdapterServer:
    """``service`` behind its routes, under ``base_path``, for holders of the bearer ``token`` (``None`` only with
    ``insecure_no_auth``, on loopback)."""

    def __init__(
        self,
        service: AdapterService,
        *,
        token: str | None,
        base_path: str = "/api",
        insecure_no_auth: bool = False,
        limits: ServerLimits = DEFAULT_LIMITS,
    ) -> None:
        self.service = service
        self.app = AdapterApp(
            service, token=token, base_path=base_path, insecure_no_auth=insecure_no_auth, limits=limits
        )

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
