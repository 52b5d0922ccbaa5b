"""Asset transactions: routed to the asset's primary node, executed once, answered with a signed receipt that the
requester verifies and records on its own ledger.

Two roles, both in every node, and the questions anyone may ask:

- **primary** (the asset's organization): :mod:`finp2p.assets.primary` checks, executes once and signs.
- **requester** (the organization whose application asked): :mod:`finp2p.assets.requester` routes, retries until
  a deadline, verifies the receipt and records it.
- **queries**: :mod:`finp2p.assets.queries`, consent templates, balances and the broadcast questions.

This module holds what the three share: the assets this organization manages and the ledgers they live on.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from sqlmodel import select

from finp2p.assets.primary import Primary
from finp2p.assets.queries import Queries
from finp2p.assets.receipts import public_profile
from finp2p.assets.requester import Requests
from finp2p.clock import now_ms
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.ledger import Ledger
from finp2p.network.messaging import Messenger
from finp2p.resource_id import ResourceId
from finp2p.store.models import ManagedAssetRow

if TYPE_CHECKING:
    from finp2p.node import Node

log = logging.getLogger(__name__)


class AssetService:
    """The assets this organization manages, and the three roles that act on them."""

    def __init__(self, node: Node, messenger: Messenger) -> None:
        assert node.store is not None and node.network is not None
        self.node = node
        self.store = node.store
        self.network = node.network
        self.messenger = messenger
        self.org_id = str(messenger.org_id)
        if self.network.discovery is not None:
            self.network.discovery.served_ledgers = list(node.ledgers)
        self.primary = Primary(self)
        self.queries = Queries(self)
        self.requests = Requests(self)

    # -- managed assets ------------------------------------------------------------------------------------------
    async def create_asset(self, name: str, ledger_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
        """Create an asset this organization manages, on one of its ledgers, and advertise it."""
        asset_id = str(ResourceId.parse(f"{self.org_id}:102:{name}"))
        ledger = self.ledger(ledger_id)
        existing = await self.store.run(lambda s: s.get(ManagedAssetRow, asset_id))
        if existing is not None:
            raise FinP2PError(ErrorCode.LEDGER_ASSET_EXISTS, f"{asset_id} exists already on {existing.ledger_id}")
        answer = await ledger.create_asset(asset_id, metadata)
        details = {"name": name, "metadata": metadata, "ledger": answer}
        row = ManagedAssetRow(asset_id=asset_id, ledger_id=ledger_id, details=json.dumps(details), created_ms=now_ms())
        await self.store.run(lambda s: s.add(row))
        if self.network.discovery is not None:
            from finp2p.network.discovery import share

            await self.store.run(lambda s: share(s, asset_id, None, ["*"]))
            try:
                await self.network.discovery.advertise(force=True)
            except FinP2PError as err:  # the asset exists: the node's periodic check advertises it when it can
                log.warning("created %s; advertising it failed, and is retried: %s", asset_id, err)
        return {"asset_id": asset_id, "ledger_id": ledger_id, **details}

    async def managed(self) -> list[dict[str, Any]]:
        rows = await self.store.run(lambda s: list(s.exec(select(ManagedAssetRow))))
        return [{"asset_id": r.asset_id, "ledger_id": r.ledger_id, **json.loads(r.details)} for r in rows]

    def ledger(self, ledger_id: str) -> Ledger:
        ledger = self.node.ledgers.get(ledger_id)
        if ledger is None:
            have = ", ".join(self.node.ledgers) or "none"
            raise FinP2PError(ErrorCode.LEDGER_PROFILE, f"this node has no ledger {ledger_id} (it has {have})")
        return ledger

    async def asset_ledger(self, asset_id: str) -> tuple[str, Ledger]:
        row = await self.store.run(lambda s: s.get(ManagedAssetRow, asset_id))
        if row is None:
            raise FinP2PError(ErrorCode.ASSET_NOT_MANAGED, f"{self.org_id} does not manage {asset_id}")
        return row.ledger_id, self.ledger(row.ledger_id)

    def public_profile(self, ledger_id: str) -> dict[str, Any]:
        """What others need to read one of this node's ledgers: the profile without secrets, plus what the
        ledger adds (an endpoint it serves, contracts deployed at start)."""
        out = public_profile(self.node.ledger_profiles[ledger_id])
        out["settings"] = {**out["settings"], **self.ledger(ledger_id).public_settings()}
        return out

    async def route(self, asset_id: str) -> str:
        assert self.network.discovery is not None
        return await self.network.discovery.route(asset_id)

    # -- life cycle ----------------------------------------------------------------------------------------------
    async def start(self) -> int:
        """Pick up what a previous run left unfinished, on both sides. Returns how many it resumed."""
        return await self.primary.resume() + await self.requests.start()

    async def close(self) -> None:
        await self.requests.close()
        await self.queries.close()
        await self.primary.close()
