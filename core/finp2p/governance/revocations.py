"""Revocation lists fetched as a stranger: what an auditor, who holds no certificate, asks a governance node for."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from finp2p.components import ComponentContext
from finp2p.config import Settings
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.genesis import Genesis
from finp2p.identity.keys import SigningKey
from finp2p.identity.replay import ReplayGuard
from finp2p.identity.revocation import RevocationList
from finp2p.identity.trust import Trust
from finp2p.network.messaging import Messenger
from finp2p.plugins import PluginManager
from finp2p.store import Store


async def fetch_revocations(url: str, genesis: Genesis, *, timeout: float = 10.0) -> list[RevocationList]:
    """The revocation lists the governance node at ``url`` holds. Its answer is a signed envelope from a member of
    ``genesis`` (checked, with its credential chain, as every answer is); each list is checked again, against the
    genesis, where it is applied (:meth:`finp2p.identity.trust.Trust.accept_revocations`)."""
    plugins = PluginManager()
    with tempfile.TemporaryDirectory(prefix="finp2p-auditor-") as work:
        store = Store(f"sqlite:///{Path(work) / 'replay.db'}")
        await asyncio.to_thread(store.migrate)
        context = ComponentContext(Settings(), Path(work), plugins, store)
        transport = plugins.kind("transport", "https").factory({"trust_pem": genesis.trust_pem}, context)
        messenger = Messenger(
            key=SigningKey.generate(),  # a stranger's: only what is open to newcomers answers it
            org_id=None,
            chain=(),
            trust=Trust(genesis),
            replay=ReplayGuard(store, 120_000),
            transport=transport,
        )
        try:
            answer = await messenger.request(url, "revocations.get", {}, timeout=timeout)
        finally:
            await transport.close()
            await asyncio.to_thread(store.close)
    lists = answer.get("lists")
    if not isinstance(lists, list):
        raise FinP2PError(ErrorCode.MALFORMED, f"{url} answered no list of revocation lists")
    return [RevocationList.from_dict(rl) for rl in lists]
