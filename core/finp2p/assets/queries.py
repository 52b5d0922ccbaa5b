"""What a node answers about assets without executing anything: consent templates, balances (asked of the asset's
primary node), and the broadcast questions (a user's balance, asked of the nodes serving the asset's ledger; whether
a receipt's transaction is on its ledger as the receipt says, asked of the nodes with access to it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from finp2p.assets.audit import Auditor
from finp2p.assets.operations import OperationRequest
from finp2p.assets.primary import signing_template
from finp2p.assets.receipts import Bundle
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import keys
from finp2p.network.messaging import Incoming
from finp2p.resource_id import ResourceId
from finp2p.store.models import ManagedAssetRow

if TYPE_CHECKING:
    from finp2p.assets.service import AssetService

CONSENT_MESSAGE = "asset.consent"
BALANCE_MESSAGE = "asset.balance"
ASSET_INFO_MESSAGE = "asset.info"
#: Broadcast questions: a user's balance in an asset, asked of the nodes serving its ledger; and whether a receipt's
#: transaction is on its ledger as the receipt says, asked of any node with access to that ledger.
BALANCE_QUERY = "asset.balance"
RECEIPT_QUERY = "receipt.validate"


class Queries:
    """Consent templates, balances and the broadcast questions about assets."""

    def __init__(self, service: AssetService) -> None:
        self.service = service
        self.node = service.node
        self.store = service.store
        self.network = service.network
        self.messenger = service.messenger
        self.org_id = service.org_id
        self.messenger.register(CONSENT_MESSAGE, self._on_consent)
        self.messenger.register(BALANCE_MESSAGE, self._on_balance)
        self.messenger.register(ASSET_INFO_MESSAGE, self._on_asset_info)
        if self.network.broadcaster is not None:
            self.network.broadcaster.register_query(BALANCE_QUERY, self._balance_query)
            self.network.broadcaster.register_query(RECEIPT_QUERY, self._receipt_query)
        # Reads other organizations' deployments (broadcast questions) the way an auditor does: through this node's
        # own ledgers only, whatever a question names.
        node = self.node
        self.reader = Auditor(self.network.genesis, node.ledgers, plugins=node.plugins, work_dir=node.settings.data_dir)

    async def _on_consent(self, msg: Incoming) -> dict[str, Any]:
        request = OperationRequest.from_body({**msg.body, "consent": None}, consent_required=False)
        return await self.consent_template(request, str(msg.body.get("template_type", "EIP712")))

    async def consent_template(self, request: OperationRequest, kind: str = "EIP712") -> dict[str, Any]:
        """What the source must sign for ``request``: the ledger's EIP712 template, or the node's hashList one
        (asked of the primary node when it is another's asset)."""
        if request.owner_org != self.org_id:
            address = await self.service.route(request.asset_id)
            body = {**request.to_body(), "template_type": kind}
            return await self.messenger.request(address, CONSENT_MESSAGE, body, recipient=request.owner_org)
        ledger_id, ledger = await self.service.asset_ledger(request.asset_id)
        template = await signing_template(request, ledger, ledger_id, kind)
        return {"ledger_id": ledger_id, "template": template, "hashFunc": "keccak-256"}

    async def _on_balance(self, msg: Incoming) -> dict[str, Any]:
        return await self.balance(str(msg.body.get("asset_id")), str(msg.body.get("fin_id")))

    async def balance(self, asset_id: str, fin_id: str) -> dict[str, Any]:
        """The balance of ``fin_id`` in ``asset_id``, from the asset's primary node."""
        owner = ResourceId.parse(asset_id).org_id
        if owner != self.org_id:
            address = await self.service.route(asset_id)
            body = {"asset_id": asset_id, "fin_id": fin_id}
            return await self.messenger.request(address, BALANCE_MESSAGE, body, recipient=owner)
        keys.check_fin_id(fin_id)
        ledger_id, ledger = await self.service.asset_ledger(asset_id)
        b = await ledger.balance(asset_id, fin_id)
        return {
            "asset_id": asset_id,
            "fin_id": fin_id,
            "available": str(b.available),
            "held": str(b.held),
            "ledger_id": ledger_id,
            "height": b.height,
        }

    # -- broadcasts ----------------------------------------------------------------------------------------------
    async def _balance_query(self, payload: dict[str, Any], asker: Any) -> tuple[Any, int | None]:
        asset_id = str(ResourceId.parse(payload.get("asset_id")))
        fin_id = keys.check_fin_id(payload.get("fin_id"))
        row = await self.store.run(lambda s: s.get(ManagedAssetRow, asset_id))
        if row is not None:
            b = await self.service.ledger(row.ledger_id).balance(asset_id, fin_id)
            return {"available": str(b.available), "held": str(b.held)}, b.height
        # Another organization's asset: read from this node's own ledger of that id (nothing the asker sends
        # becomes an endpoint), at the deployment the asset's profile names.
        profile = payload.get("asset_ledger")
        ledger_id = profile.get("ledger_id") if isinstance(profile, dict) else None
        own = self.node.ledgers.get(ledger_id) if isinstance(ledger_id, str) else None
        if own is None or not isinstance(profile, dict):
            raise FinP2PError(ErrorCode.NOT_FOUND, f"this node does not serve the ledger of {asset_id}")
        settings = profile.get("settings")
        b = await own.view(settings if isinstance(settings, dict) else {}).balance(asset_id, fin_id)
        return {"available": str(b.available), "held": str(b.held)}, b.height

    async def _receipt_query(self, payload: dict[str, Any], asker: Any) -> tuple[Any, int | None]:
        bundle = Bundle.from_dict(payload.get("bundle"))
        ledger_id = bundle.asset_ledger.ledger_id
        if ledger_id not in self.node.ledgers:
            raise FinP2PError(ErrorCode.NOT_FOUND, f"this node has no access to {ledger_id}")
        check = await self.reader.check_transaction(bundle)
        return {"valid": check.ok, "detail": check.detail}, await self.node.ledgers[ledger_id].height()

    async def broadcast_balance(self, asset_id: str, fin_id: str, *, quorum: int, deadline_s: float = 5.0) -> Any:
        """Ask the nodes serving the asset's ledger for a user's balance (the primary answers from its own ledger,
        the others read the same chain); answers compared, out-of-date heights recognised."""
        from finp2p.network.directory import Scope

        ledger_id, profile = await self._asset_profile(asset_id)
        assert self.network.broadcaster is not None
        payload = {"asset_id": asset_id, "fin_id": keys.check_fin_id(fin_id), "asset_ledger": profile}
        scope = Scope(ledger=ledger_id)
        return await self.network.broadcaster.ask(
            BALANCE_QUERY, payload, scope=scope, quorum=quorum, deadline_s=deadline_s
        )

    async def validate_receipt(self, bundle: dict[str, Any], *, quorum: int, deadline_s: float = 5.0) -> Any:
        """Ask the nodes with access to a receipt's ledger whether its transaction is there as the receipt says."""
        from finp2p.network.directory import Scope

        ledger_id = Bundle.from_dict(bundle).asset_ledger.ledger_id
        assert self.network.broadcaster is not None
        payload = {"bundle": {k: v for k, v in bundle.items() if k != "record"}}
        return await self.network.broadcaster.ask(
            RECEIPT_QUERY, payload, scope=Scope(ledger=ledger_id), quorum=quorum, deadline_s=deadline_s
        )

    async def _asset_profile(self, asset_id: str) -> tuple[str, dict[str, Any]]:
        """The ledger id and public profile of an asset's ledger, as its primary node tells it."""
        row = await self.store.run(lambda s: s.get(ManagedAssetRow, asset_id))
        if row is not None:
            return row.ledger_id, self.service.public_profile(row.ledger_id)
        owner = ResourceId.parse(asset_id).org_id
        answer = await self.messenger.request(
            await self.service.route(asset_id), ASSET_INFO_MESSAGE, {"asset_id": asset_id}, recipient=owner
        )
        return str(answer["ledger_id"]), dict(answer["asset_ledger"])

    async def _on_asset_info(self, msg: Incoming) -> dict[str, Any]:
        asset_id = str(msg.body.get("asset_id"))
        ledger_id, _ = await self.service.asset_ledger(asset_id)
        return {"asset_id": asset_id, "ledger_id": ledger_id, "asset_ledger": self.service.public_profile(ledger_id)}

    async def close(self) -> None:
        await self.reader.close()
