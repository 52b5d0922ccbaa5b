"""Asset transactions: routed to the asset's primary node, executed once, answered with a signed receipt that the
requester verifies and records on its own ledger.

Two roles, both in every node:

- **primary** (the asset's organization, this module): ``asset.operation`` requests are checked (who may ask, the
  owner's consent against the ledger's own template, the users' information fetched from their organization by a
  private data request, the compliance hooks), written down (``primary_operation``), executed on the asset's ledger
  and answered with a receipt bundle, written down with the transaction id. A request for an operation id already
  seen is answered from what was written, and an operation interrupted after it was written down is looked up on
  the ledger by its id before anything is submitted again, so no operation executes twice. Only a definite refusal
  is final: a trouble that may pass (``finp2p.errors.TRANSIENT``: a party's organization or the ledger unreachable,
  a timeout) is answered as such and changes nothing written, and an operation it interrupted on the ledger is
  resumed in the background until it ends. ``asset.operation.cancel`` is the requester's last word at its deadline.
- **requester** (the organization whose application asked): :mod:`finp2p.assets.requester`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from finp2p.assets.audit import Auditor
from finp2p.assets.execution import execute_once
from finp2p.assets.operations import MANAGER_ONLY, NEEDS_CONSENT, ON_HOLD, OperationRequest
from finp2p.assets.receipts import (
    Bundle,
    LedgerPlace,
    Party,
    Receipt,
    ReceiptDomain,
    public_profile,
)
from finp2p.assets.requester import CANCEL_MESSAGE, OPERATION_MESSAGE, Requests, error_from, error_json
from finp2p.assets.templates import hash_list_template, verify_signature
from finp2p.clock import now_ms
from finp2p.compliance import TransferCheck
from finp2p.errors import TRANSIENT, ErrorCode, FinP2PError
from finp2p.identity import keys
from finp2p.identity.canonical import canonical
from finp2p.identity.credentials import chain_document
from finp2p.ledger import Ledger, LedgerTransaction, OperationType
from finp2p.network.messaging import Incoming, Messenger
from finp2p.privacy.sharing import fetch
from finp2p.resource_id import ResourceId
from finp2p.store.models import ManagedAssetRow, PrimaryOperationRow

if TYPE_CHECKING:
    from finp2p.node import Node

log = logging.getLogger(__name__)

CONSENT_MESSAGE = "asset.consent"
BALANCE_MESSAGE = "asset.balance"
ASSET_INFO_MESSAGE = "asset.info"
#: Broadcast questions: a user's balance in an asset, asked of the nodes serving its ledger; and whether a receipt's
#: transaction is on its ledger as the receipt says, asked of any node with access to that ledger.
BALANCE_QUERY = "asset.balance"
RECEIPT_QUERY = "receipt.validate"
#: The longest wait between two attempts to resume an interrupted operation on its ledger.
RETRY_MAX_S = 30.0


class AssetService:
    def __init__(self, node: Node, messenger: Messenger) -> None:
        assert node.store is not None and node.network is not None
        self.node = node
        self.store = node.store
        self.network = node.network
        self.messenger = messenger
        self.org_id = str(messenger.org_id)
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._retrying: set[tuple[str, str]] = set()  # primary operations retried in the background
        self.requests = Requests(self)
        messenger.register(OPERATION_MESSAGE, self._on_operation)
        messenger.register(CANCEL_MESSAGE, self._on_cancel)
        messenger.register(CONSENT_MESSAGE, self._on_consent)
        messenger.register(BALANCE_MESSAGE, self._on_balance)
        messenger.register(ASSET_INFO_MESSAGE, self._on_asset_info)
        if self.network.broadcaster is not None:
            self.network.broadcaster.register_query(BALANCE_QUERY, self._balance_query)
            self.network.broadcaster.register_query(RECEIPT_QUERY, self._receipt_query)
        if self.network.discovery is not None:
            self.network.discovery.served_ledgers = list(node.ledgers)
        # Reads other organizations' deployments (broadcast questions) the way an auditor does: through this node's
        # own ledgers only, whatever a question names.
        self.reader = Auditor(self.network.genesis, node.ledgers, plugins=node.plugins, work_dir=node.settings.data_dir)

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
            await self.network.discovery.advertise(force=True)
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

    async def _asset_ledger(self, asset_id: str) -> tuple[str, Ledger]:
        row = await self.store.run(lambda s: s.get(ManagedAssetRow, asset_id))
        if row is None:
            raise FinP2PError(ErrorCode.ASSET_NOT_MANAGED, f"{self.org_id} does not manage {asset_id}")
        return row.ledger_id, self.ledger(row.ledger_id)

    # -- primary node ----------------------------------------------------------------------------------------------
    async def _on_operation(self, msg: Incoming) -> dict[str, Any]:
        assert msg.sender is not None and msg.sender.org_id is not None
        return await self.execute(OperationRequest.from_body(msg.body), msg.sender.org_id)

    async def execute(self, request: OperationRequest, requester: str) -> dict[str, Any]:
        """Run ``request`` as the asset's primary node, once; return the receipt bundle (or raise its error)."""
        if request.owner_org != self.org_id:
            raise FinP2PError(ErrorCode.ASSET_NOT_MANAGED, f"{request.asset_id} is managed by {request.owner_org}")
        key = (request.operation_id, str(request.operation))
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            return await self._execute(request, requester)

    async def _on_cancel(self, msg: Incoming) -> dict[str, Any]:
        assert msg.sender is not None and msg.sender.org_id is not None
        return await self.cancel(OperationRequest.from_body(msg.body), msg.sender.org_id)

    async def cancel(self, request: OperationRequest, requester: str) -> dict[str, Any]:
        """The requester's last word at its deadline: an operation never started here is refused from now on
        (``cancelled``); otherwise what became of it (``done`` with the receipt bundle, ``failed`` with the error,
        or ``executing``: it may reach the ledger yet)."""
        if request.owner_org != self.org_id:
            raise FinP2PError(ErrorCode.ASSET_NOT_MANAGED, f"{request.asset_id} is managed by {request.owner_org}")
        body = canonical(request.to_body()).decode()
        op_id, op = request.operation_id, str(request.operation)
        async with self._locks.setdefault((op_id, op), asyncio.Lock()):
            row = await self.store.run(lambda s: s.get(PrimaryOperationRow, (op_id, op)))
            if row is not None and (row.request != body or row.requester != requester):
                raise FinP2PError(ErrorCode.OPERATION_ID_CONFLICT, f"operation id {op_id!r} was used for another {op}")
            if row is None:
                refusal = FinP2PError(ErrorCode.OPERATION_CANCELLED, f"{requester} cancelled it before it executed")
                await self._write(op_id, op, requester, body, state="failed", answer=error_json(refusal))
                return {"state": "cancelled"}
            if row.state == "done":
                return {"state": "done", "bundle": json.loads(row.answer or "{}")}
            if row.state == "failed":
                return {"state": "failed", "error": json.loads(row.answer or "{}")}
            return {"state": "executing"}

    def _retry_in_background(self, request: OperationRequest, requester: str, *, first_delay: float = 1.0) -> None:
        """Resume a written-down operation until it ends (done, or a definite failure), with backoff; one
        retrier per operation."""
        key = (request.operation_id, str(request.operation))
        if key in self._retrying:
            return
        self._retrying.add(key)

        async def retry() -> None:
            delay = first_delay
            try:
                while True:
                    await asyncio.sleep(delay)
                    try:
                        await self.execute(request, requester)
                        return
                    except FinP2PError as exc:
                        if exc.code not in TRANSIENT:
                            log.info("operation %s ended with %s", request.operation_id, exc.code.code)
                            return
                        log.info("operation %s: %s; resuming again later", request.operation_id, exc.code.code)
                    delay = min(max(delay, 0.5) * 2, RETRY_MAX_S)
            finally:
                self._retrying.discard(key)

        task = asyncio.create_task(retry(), name=f"primary-{request.operation_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, request: OperationRequest, requester: str) -> dict[str, Any]:
        body = canonical(request.to_body()).decode()
        op_id, op = request.operation_id, str(request.operation)
        row = await self.store.run(lambda s: s.get(PrimaryOperationRow, (op_id, op)))
        if row is not None and (row.request != body or row.requester != requester):
            raise FinP2PError(ErrorCode.OPERATION_ID_CONFLICT, f"operation id {op_id!r} was used for another {op}")
        self._step(request, "received")
        if row is not None and row.state == "done":
            return dict(json.loads(row.answer or "{}"))
        if row is not None and row.state == "failed":
            raise error_from(json.loads(row.answer or "{}"))
        ledger_id, ledger = await self._asset_ledger(request.asset_id)
        written = row is not None
        try:
            if row is None:  # new: checked, then written down before the ledger sees it
                await self._check(request, requester, ledger, ledger_id)
                await self._write(op_id, op, requester, body, state="executing")
                written = True
                self._step(request, "executing")
                tx = await execute_once(ledger, request, resumed=False)
            else:  # interrupted while executing: it may have reached the ledger
                tx = await execute_once(ledger, request, resumed=True)
        except FinP2PError as exc:
            if exc.code not in TRANSIENT:  # final: every later ask is answered with this error
                await self._write(op_id, op, requester, body, state="failed", answer=error_json(exc))
            elif written:
                # Written down and interrupted by a trouble that may pass (a ledger unreachable, or no confirmation
                # in time: it may yet be confirmed): it stays executing, and is resumed here, looking it up on the
                # ledger first, whether or not the requester asks again.
                self._retry_in_background(request, requester)
            raise
        self._step(request, "on-ledger")
        # Signing is local and repeatable, so the transaction and the receipt are written together: a crash before
        # this write finds the transaction again by its operation id.
        bundle = self._bundle(tx, ledger_id)
        await self._write(
            op_id, op, requester, body, state="done", transaction_id=tx.transaction_id, answer=json.dumps(bundle)
        )
        self._step(request, "done")
        await self.node.emit("finp2p_receipt_issued", raise_errors=False, receipt=bundle, node=self.node)
        return bundle

    def _step(self, request: OperationRequest, step: str) -> None:
        try:
            self.node.plugins.hook.finp2p_operation_step(node=self.node, operation=request.to_body(), step=step)
        except Exception:
            log.exception("a finp2p_operation_step hook failed at %s", step)

    async def _write(self, op_id: str, op: str, requester: str, body: str, **values: Any) -> None:
        """Create or update the operation's row (one transaction: committed when this returns)."""

        def write(s: Session) -> None:
            row = s.get(PrimaryOperationRow, (op_id, op))
            if row is None:
                row = PrimaryOperationRow(
                    operation_id=op_id, operation=op, requester=requester, request=body, state="", updated_ms=0
                )
            for k, v in values.items():
                setattr(row, k, v)
            row.updated_ms = now_ms()
            s.add(row)

        await self.store.run(write)

    async def _check(self, request: OperationRequest, requester: str, ledger: Ledger, ledger_id: str) -> None:
        """Everything that must hold before the ledger is touched."""
        op = request.operation
        if op in MANAGER_ONLY and requester != self.org_id:
            raise FinP2PError(ErrorCode.OPERATION_NOT_ALLOWED, f"only {self.org_id} issues {request.asset_id}")
        if op in ON_HOLD:
            hold = await self.store.run(lambda s: s.get(PrimaryOperationRow, (request.operation_id, "hold")))
            if hold is None or hold.state != "done":
                raise FinP2PError(ErrorCode.LEDGER_UNKNOWN_HOLD, f"no hold {request.operation_id!r} was made here")
            if hold.requester != requester:
                raise FinP2PError(
                    ErrorCode.OPERATION_NOT_ALLOWED, f"hold {request.operation_id!r} is {hold.requester}'s"
                )
        if op in NEEDS_CONSENT and not (op == OperationType.REDEEM and request.consent is None):
            await self._check_consent(request, ledger, ledger_id)
        source_info = await self._user_info(request.source_user)
        destination_info = await self._user_info(request.destination_user)
        if op in (OperationType.TRANSFER, OperationType.ISSUE, OperationType.HOLD, OperationType.RELEASE):
            check = TransferCheck(
                request.asset_id,
                str(op),
                request.quantity,
                request.source,
                request.destination,
                source_info,
                destination_info,
                {"requester": requester},
            )
            violations = await self.node.check_transfer(check)
            if violations:
                reasons = "; ".join(f"{v.rule}: {v.reason}" for v in violations)
                raise FinP2PError(ErrorCode.COMPLIANCE_REFUSED, reasons, violations=[v.rule for v in violations])

    async def _check_consent(self, request: OperationRequest, ledger: Ledger, ledger_id: str) -> None:
        consent = request.consent
        if consent is None:
            raise FinP2PError(ErrorCode.CONSENT_INVALID, f"{request.operation} needs the source's signature")
        if consent.signer != request.source:
            raise FinP2PError(ErrorCode.CONSENT_INVALID, "the consent is signed by someone other than the source")
        # The signed template must be exactly this operation's: the ledger's own (EIP712) or the node's hashList.
        expected = await self._template(request, ledger, ledger_id, consent.template)
        if consent.payload.get("hash") != expected["hash"]:
            raise FinP2PError(ErrorCode.CONSENT_INVALID, "the signed template is not this operation's")
        signature = {"signature": consent.signature, "template": consent.payload, "hashFunc": consent.hash_func}
        verify_signature(signature, str(request.source))

    async def _template(self, request: OperationRequest, ledger: Ledger, ledger_id: str, kind: str) -> dict[str, Any]:
        if kind == "EIP712":
            return await _template_for(ledger, request)
        if kind == "hashList":
            return hash_list_template([request.hash_list_fields(ledger_id)])
        raise FinP2PError(ErrorCode.CONSENT_INVALID, f"unknown signature template {kind!r}: EIP712 or hashList")

    async def _user_info(self, user: str | None) -> dict[str, Any]:
        """A user's information, from this node's store or by a private data request to the user's organization.
        A refusal stops the operation with the owner's reason."""
        if user is None:
            return {}
        from finp2p.privacy import records

        row = await self.store.run(lambda s: records.get(s, user))
        if row is not None:
            return dict(json.loads(row.data))
        assert self.network.discovery is not None
        answer = await fetch(self.messenger, self.network.discovery, user)
        return dict(answer.get("data") or {})

    @property
    def domain(self) -> ReceiptDomain:
        section = self.node.settings.receipts
        return ReceiptDomain(section.chain_id, section.verifying_contract)

    @property
    def me(self) -> Party:
        """This organization as a bundle names it."""
        chain = chain_document(list(self.messenger.chain or ()))["chain"]
        return Party(self.org_id, self.messenger.key.fin_id, chain)

    def _bundle(self, tx: LedgerTransaction, ledger_id: str) -> dict[str, Any]:
        ledger = self.ledger(ledger_id)
        asset = {"resourceId": tx.asset_id, "ledgerIdentifier": ledger.asset_identifier(tx.asset_id)}
        place = LedgerPlace.of(self.public_profile(ledger_id), tx.submitter or "")
        bundle = Bundle.issue(Receipt.of(tx, asset), self.messenger.key, self.me, place, self.domain)
        return bundle.to_dict()

    async def _on_consent(self, msg: Incoming) -> dict[str, Any]:
        request = OperationRequest.from_body({**msg.body, "consent": None}, consent_required=False)
        return await self.consent_template(request, str(msg.body.get("template_type", "EIP712")))

    async def consent_template(self, request: OperationRequest, kind: str = "EIP712") -> dict[str, Any]:
        """What the source must sign for ``request``: the ledger's EIP712 template, or the node's hashList one
        (asked of the primary node when it is another's asset)."""
        if request.owner_org != self.org_id:
            address = await self.route(request.asset_id)
            body = {**request.to_body(), "template_type": kind}
            return await self.messenger.request(address, CONSENT_MESSAGE, body, recipient=request.owner_org)
        ledger_id, ledger = await self._asset_ledger(request.asset_id)
        template = await self._template(request, ledger, ledger_id, kind)
        return {"ledger_id": ledger_id, "template": template, "hashFunc": "keccak-256"}

    async def _on_balance(self, msg: Incoming) -> dict[str, Any]:
        return await self.balance(str(msg.body.get("asset_id")), str(msg.body.get("fin_id")))

    async def balance(self, asset_id: str, fin_id: str) -> dict[str, Any]:
        """The balance of ``fin_id`` in ``asset_id``, from the asset's primary node."""
        owner = ResourceId.parse(asset_id).org_id
        if owner != self.org_id:
            address = await self.route(asset_id)
            body = {"asset_id": asset_id, "fin_id": fin_id}
            return await self.messenger.request(address, BALANCE_MESSAGE, body, recipient=owner)
        keys.check_fin_id(fin_id)
        ledger_id, ledger = await self._asset_ledger(asset_id)
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
            b = await self.ledger(row.ledger_id).balance(asset_id, fin_id)
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
            return row.ledger_id, self.public_profile(row.ledger_id)
        owner = ResourceId.parse(asset_id).org_id
        answer = await self.messenger.request(
            await self.route(asset_id), ASSET_INFO_MESSAGE, {"asset_id": asset_id}, recipient=owner
        )
        return str(answer["ledger_id"]), dict(answer["asset_ledger"])

    async def _on_asset_info(self, msg: Incoming) -> dict[str, Any]:
        asset_id = str(msg.body.get("asset_id"))
        ledger_id, _ = await self._asset_ledger(asset_id)
        return {"asset_id": asset_id, "ledger_id": ledger_id, "asset_ledger": self.public_profile(ledger_id)}

    def public_profile(self, ledger_id: str) -> dict[str, Any]:
        """What others need to read one of this node's ledgers: the profile without secrets, plus what the
        ledger adds (an endpoint it serves, contracts deployed at start)."""
        out = public_profile(self.node.ledger_profiles[ledger_id])
        out["settings"] = {**out["settings"], **self.ledger(ledger_id).public_settings()}
        return out

    async def route(self, asset_id: str) -> str:
        assert self.network.discovery is not None
        return await self.network.discovery.route(asset_id)

    # -- requester (finp2p.assets.requester) --------------------------------------------------------------------
    async def submit(
        self, request: OperationRequest, idempotency_key: str, deadline_s: float | None = None
    ) -> dict[str, Any]:
        return await self.requests.submit(request, idempotency_key, deadline_s)

    async def status(self, op_id: str) -> dict[str, Any]:
        return await self.requests.status(op_id)

    async def wait(self, op_id: str, timeout: float) -> dict[str, Any]:
        return await self.requests.wait(op_id, timeout)

    async def receipts(self) -> list[dict[str, Any]]:
        return await self.requests.receipts()

    # -- life cycle ----------------------------------------------------------------------------------------------
    async def start(self) -> int:
        """Pick up what a previous run left unfinished, on both sides. Returns how many it resumed."""
        primary = await self.store.run(
            lambda s: [
                (r.request, r.requester)
                for r in s.exec(select(PrimaryOperationRow).where(col(PrimaryOperationRow.state) == "executing"))
            ]
        )
        for body, requester in primary:
            self._retry_in_background(OperationRequest.from_body(json.loads(body)), requester, first_delay=0.0)
        return len(primary) + await self.requests.start()

    async def close(self) -> None:
        await self.requests.close()
        await self.reader.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):  # each resumes on the next start
                await task


async def _template_for(ledger: Ledger, r: OperationRequest) -> dict[str, Any]:
    """The ledger's consent template for exactly this request."""
    return await ledger.consent_template(
        r.operation, r.asset_id, str(r.source), r.destination, r.quantity, r.operation_id, r.expiry
    )
