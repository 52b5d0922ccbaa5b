"""Asset transactions: routed to the asset's primary node, executed once, answered with a signed receipt that the
requester verifies and records on its own ledger.

Two roles, both in every node:

- **primary** (the asset's organization): ``asset.operation`` requests are checked (who may ask, the owner's
  consent against the ledger's own template, the users' information fetched from their organization by a private
  data request, the compliance hooks), written down (``primary_operation``), executed on the asset's ledger and
  answered with a receipt bundle, written down with the transaction id. A request for an operation id already seen
  is answered from what was written, and an operation interrupted after it was written down is looked up on the
  ledger by its id before anything is submitted again, so no operation executes twice.
- **requester** (the organization whose application asked, through the REST API): the request is written first
  (``requested_operation``, unique per idempotency key), sent to the primary node found by discovery (or handled
  locally when this node is the primary), and its receipt verified (signature, the issuer's credential chain, the
  fields asked for) and recorded in this organization's receipt registry. Unfinished operations resume when the
  node starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from finp2p.assets.audit import Auditor
from finp2p.assets.execution import execute_once
from finp2p.assets.operations import MANAGER_ONLY, NEEDS_CONSENT, ON_HOLD, OperationRequest
from finp2p.assets.receipts import (
    NO_DESTINATION,
    OPERATION_TYPES,
    Bundle,
    LedgerPlace,
    Party,
    Receipt,
    ReceiptDomain,
    Record,
    check_proof,
    public_profile,
)
from finp2p.assets.recorder import ReceiptRecorder
from finp2p.assets.templates import hash_list_template, verify_signature
from finp2p.clock import now_ms
from finp2p.compliance import TransferCheck
from finp2p.errors import TRANSIENT, ErrorCode, FinP2PError
from finp2p.identity import keys
from finp2p.identity.canonical import canonical
from finp2p.identity.credentials import chain_document, chain_from
from finp2p.ledger import Ledger, LedgerTransaction, OperationType
from finp2p.network.messaging import Incoming, Messenger
from finp2p.privacy.sharing import fetch
from finp2p.resource_id import ResourceId
from finp2p.store.models import ManagedAssetRow, PrimaryOperationRow, RequestedOperationRow

if TYPE_CHECKING:
    from finp2p.node import Node

log = logging.getLogger(__name__)

OPERATION_MESSAGE = "asset.operation"
CONSENT_MESSAGE = "asset.consent"
BALANCE_MESSAGE = "asset.balance"
ASSET_INFO_MESSAGE = "asset.info"
#: Broadcast questions: a user's balance in an asset, asked of the nodes serving its ledger; and whether a receipt's
#: transaction is on its ledger as the receipt says, asked of any node with access to that ledger.
BALANCE_QUERY = "asset.balance"
RECEIPT_QUERY = "receipt.validate"
#: How long a requester waits for the primary node's answer to one attempt, and how many attempts it makes
#: before leaving the operation pending for the next resume.
REQUEST_TIMEOUT_S = 60.0
REQUEST_PATIENCE_S = 300.0


def _error_json(exc: FinP2PError) -> str:
    return json.dumps(exc.to_dict())


def error_from(data: dict[str, Any]) -> FinP2PError:
    code = next((c for c in ErrorCode if c.code == data.get("code")), ErrorCode.PEER_ERROR)
    return FinP2PError(code, str(data.get("detail", "no detail")))


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
        self._recorders: dict[str, ReceiptRecorder] = {}
        self._settled: dict[str, asyncio.Event] = {}  # requested operations running here, set when they end
        messenger.register(OPERATION_MESSAGE, self._on_operation)
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
        ledger = self._ledger(ledger_id)
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

    def _ledger(self, ledger_id: str) -> Ledger:
        ledger = self.node.ledgers.get(ledger_id)
        if ledger is None:
            have = ", ".join(self.node.ledgers) or "none"
            raise FinP2PError(ErrorCode.LEDGER_PROFILE, f"this node has no ledger {ledger_id} (it has {have})")
        return ledger

    async def _asset_ledger(self, asset_id: str) -> tuple[str, Ledger]:
        row = await self.store.run(lambda s: s.get(ManagedAssetRow, asset_id))
        if row is None:
            raise FinP2PError(ErrorCode.ASSET_NOT_MANAGED, f"{self.org_id} does not manage {asset_id}")
        return row.ledger_id, self._ledger(row.ledger_id)

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
        try:
            if row is None:  # new: checked, then written down before the ledger sees it
                await self._check(request, requester, ledger, ledger_id)
                await self._write(op_id, op, requester, body, state="executing")
                self._step(request, "executing")
                tx = await execute_once(ledger, request, resumed=False)
            else:  # interrupted while executing: it may have reached the ledger
                tx = await execute_once(ledger, request, resumed=True)
        except FinP2PError as exc:
            if exc.code not in TRANSIENT:  # final: every later ask is answered with this error
                await self._write(op_id, op, requester, body, state="failed", answer=_error_json(exc))
            # A transient failure (the ledger unreachable, or no confirmation in time: it may yet be confirmed) leaves
            # a written-down operation executing; the next ask resumes it, looking it up on the ledger first.
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
        ledger = self._ledger(ledger_id)
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
            address = await self._route(request.asset_id)
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
            address = await self._route(asset_id)
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
            b = await self._ledger(row.ledger_id).balance(asset_id, fin_id)
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
            await self._route(asset_id), ASSET_INFO_MESSAGE, {"asset_id": asset_id}, recipient=owner
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
        out["settings"] = {**out["settings"], **self._ledger(ledger_id).public_settings()}
        return out

    async def _route(self, asset_id: str) -> str:
        assert self.network.discovery is not None
        return await self.network.discovery.route(asset_id)

    # -- requester -------------------------------------------------------------------------------------------------
    async def submit(self, request: OperationRequest, idempotency_key: str) -> dict[str, Any]:
        """Write the request down (once per idempotency key) and start it; answer with its status to poll."""
        body = canonical(request.to_body()).decode()
        now = now_ms()

        def claim(s: Session) -> tuple[RequestedOperationRow, bool]:
            found = s.exec(
                select(RequestedOperationRow).where(col(RequestedOperationRow.idempotency_key) == idempotency_key)
            ).first()
            if found is not None:
                return found, False
            row = RequestedOperationRow(
                id=uuid.uuid4().hex,
                idempotency_key=idempotency_key,
                request=body,
                state="pending",
                created_ms=now,
                updated_ms=now,
            )
            s.add(row)
            return row, True

        row, new = await self.store.run(claim)
        if row.request != body:
            raise FinP2PError(
                ErrorCode.IDEMPOTENCY_CONFLICT, f"Idempotency-Key {idempotency_key!r} was used for another request"
            )
        if new:
            self._start(row.id)
        return self._status(row)

    def _start(self, op_id: str) -> None:
        settled = self._settled.setdefault(op_id, asyncio.Event())

        async def drive() -> None:
            try:
                await self._drive(op_id)
            finally:
                settled.set()
                self._settled.pop(op_id, None)

        task = asyncio.create_task(drive(), name=f"operation-{op_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> int:
        """Pick up what a previous run left unfinished, on both sides. Returns how many it resumed."""
        pending = await self.store.run(
            lambda s: [
                r.id for r in s.exec(select(RequestedOperationRow).where(col(RequestedOperationRow.state) == "pending"))
            ]
        )
        for op_id in pending:
            self._start(op_id)
        primary = await self.store.run(
            lambda s: [
                (r.request, r.requester)
                for r in s.exec(select(PrimaryOperationRow).where(col(PrimaryOperationRow.state) == "executing"))
            ]
        )
        for body, requester in primary:
            task = asyncio.create_task(self._resume_primary(json.loads(body), requester))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(pending) + len(primary)

    async def _resume_primary(self, body: dict[str, Any], requester: str) -> None:
        try:
            await self.execute(OperationRequest.from_body(body), requester)
        except FinP2PError as exc:
            log.info("resumed operation %s ended with %s", body.get("operation_id"), exc.code.code)

    async def _drive(self, op_id: str) -> None:
        row = await self.store.run(lambda s: s.get(RequestedOperationRow, op_id))
        assert row is not None
        request = OperationRequest.from_body(json.loads(row.request))
        bundle: dict[str, Any] | None = None
        try:
            # Asking again after a crash is safe (the primary answers from what it wrote), so the answer is written
            # once, with its record.
            bundle = await self._ask_primary(request)
            checked = self._check_receipt(request, bundle)
            bundle["record"] = (await self._record(checked)).to_dict()
            await self._update(op_id, state="recorded", bundle=json.dumps(bundle))
            await self.node.emit("finp2p_receipt_received", raise_errors=False, receipt=bundle, node=self.node)
        except FinP2PError as exc:
            if exc.code in TRANSIENT:
                log.warning("operation %s: %s; it stays pending and resumes on the next start", op_id, exc)
                return
            # A receipt that could not be recorded is kept with the failure: the operation itself happened.
            kept = {"bundle": json.dumps(bundle)} if bundle is not None else {}
            await self._update(op_id, state="failed", error=_error_json(exc), **kept)
        except Exception as exc:  # never lose an operation to an unexpected error: it stays resumable
            log.exception("operation %s: unexpected %s; it resumes on the next start", op_id, type(exc).__name__)

    async def _ask_primary(self, request: OperationRequest) -> dict[str, Any]:
        if request.owner_org == self.org_id:
            return await self.execute(request, self.org_id)
        # The primary node runs an operation once whatever happens to it, so asking again is always safe: keep
        # asking while it is unreachable or busy (restarting, say), then leave the operation for the next resume.
        deadline = time.monotonic() + REQUEST_PATIENCE_S
        delay = 0.25
        while True:
            try:
                address = await self._route(request.asset_id)
                return await self.messenger.request(
                    address,
                    OPERATION_MESSAGE,
                    request.to_body(),
                    recipient=request.owner_org,
                    timeout=REQUEST_TIMEOUT_S,
                )
            except FinP2PError as exc:
                if exc.code not in TRANSIENT or time.monotonic() + delay > deadline:
                    raise
                log.info("operation %s: %s; asking again", request.operation_id, exc.code.code)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 4.0)

    def _check_receipt(self, request: OperationRequest, bundle_data: dict[str, Any]) -> Bundle:
        """The primary's answer must be a receipt of exactly what was asked, signed by the asset's organization,
        with its statement of where the transaction is."""
        try:
            bundle = Bundle.from_dict(bundle_data)
            check_proof(bundle.receipt, bundle.proof, bundle.issuer.fin_id)
            identity = self.network.trust.verify_chain(chain_from(bundle.issuer.chain), role="organization")
            bundle.check_statement()
        except FinP2PError as exc:
            raise FinP2PError(ErrorCode.RECEIPT_UNTRUSTED, f"the receipt does not check out: {exc}") from None
        if identity.fin_id != bundle.issuer.fin_id or identity.org_id != request.owner_org:
            raise FinP2PError(ErrorCode.RECEIPT_UNTRUSTED, f"the receipt is not signed by {request.owner_org}")
        r = bundle.receipt
        operation = str(request.operation)
        destination = None if operation in NO_DESTINATION else request.destination
        said = (OPERATION_TYPES[operation], request.asset_id, request.quantity, request.operation_id)
        got = (r.operation_type, r.asset_id, r.quantity_units, r.operation_id)
        if said != got or (request.source, destination) != (r.source_fin_id, r.destination_fin_id):
            raise FinP2PError(ErrorCode.RECEIPT_UNTRUSTED, f"asked for {said}, the receipt says {got}")
        return bundle

    async def _record(self, bundle: Bundle) -> Record:
        """Record the receipt's digest in this organization's registry; the record, signed."""
        ledger_id = self.node.settings.ledgers.receipts_on or next(iter(self.node.ledgers), None)
        if ledger_id is None:
            raise FinP2PError(ErrorCode.LEDGER_PROFILE, "no ledger to record receipts on: name one in [ledgers]")
        recorder = self._recorders.get(ledger_id)
        if recorder is None:
            recorder = self._recorders[ledger_id] = ReceiptRecorder(self._ledger(ledger_id))
        digest = bundle.digest()
        # A receipt recorded in a batch before a crash that came before its row was updated is recorded again
        # (alone) when the operation resumes: two records of one receipt, both valid.
        tx, proof = await recorder.record(digest)
        place = LedgerPlace.of(self.public_profile(ledger_id), tx.submitter or "")
        record = Record(self.me, place, tx.transaction_id, ["0x" + p.hex() for p in proof])
        return record.sign(self.messenger.key, digest)

    async def _update(self, op_id: str, **values: Any) -> None:
        def write(s: Session) -> None:
            row = s.get(RequestedOperationRow, op_id)
            assert row is not None
            for k, v in values.items():
                setattr(row, k, v)
            row.updated_ms = now_ms()
            s.add(row)

        await self.store.run(write)

    async def status(self, op_id: str) -> dict[str, Any]:
        row = await self.store.run(lambda s: s.get(RequestedOperationRow, op_id))
        if row is None:
            raise FinP2PError(ErrorCode.NOT_FOUND, f"no operation {op_id}")
        return self._status(row)

    async def wait(self, op_id: str, timeout: float) -> dict[str, Any]:
        """The operation's status once it has ended, or after ``timeout`` seconds, whichever comes first."""
        settled = self._settled.get(op_id)
        if settled is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(settled.wait(), timeout)
        return await self.status(op_id)

    async def receipts(self) -> list[dict[str, Any]]:
        rows = await self.store.run(
            lambda s: list(s.exec(select(RequestedOperationRow).where(col(RequestedOperationRow.state) == "recorded")))
        )
        return [json.loads(r.bundle or "{}") for r in rows]

    @staticmethod
    def _status(row: RequestedOperationRow) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": row.id,
            "state": row.state,
            "request": json.loads(row.request),
            "created_ms": row.created_ms,
            "updated_ms": row.updated_ms,
        }
        if row.bundle:
            out["receipt"] = json.loads(row.bundle)
        if row.error:
            out["error"] = json.loads(row.error)
        return out

    async def close(self) -> None:
        await self.reader.close()
        for recorder in self._recorders.values():
            await recorder.close()
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
