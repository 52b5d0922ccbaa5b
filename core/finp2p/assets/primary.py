"""The primary node's side of asset transactions: ``asset.operation`` requests for assets this organization
manages are checked (who may ask, the owner's consent against the ledger's own template, the users' information
fetched from their organization by a private data request, the compliance hooks), written down
(``primary_operation``), executed on the asset's ledger and answered with a receipt bundle, written down with the
transaction id.

A request for an operation id already seen is answered from what was written, and an operation interrupted after
it was written down is looked up on the ledger by its id before anything is submitted again, so no operation
executes twice. Only a definite refusal is final: a trouble that may pass (``finp2p.errors.TRANSIENT``: a party's
organization or the ledger unreachable, a timeout) is answered as such and changes nothing written, and an
operation it interrupted on the ledger is resumed in the background until it ends. ``asset.operation.cancel`` is
the requester's last word at its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from finp2p.assets.execution import execute_once
from finp2p.assets.operations import MANAGER_ONLY, NEEDS_CONSENT, ON_HOLD, OperationRequest
from finp2p.assets.receipts import Bundle, LedgerPlace, Party, Receipt, ReceiptDomain
from finp2p.assets.requester import CANCEL_MESSAGE, OPERATION_MESSAGE, error_from, error_json
from finp2p.clock import now_ms
from finp2p.compliance import TransferCheck
from finp2p.errors import TRANSIENT, ErrorCode, FinP2PError
from finp2p.identity.canonical import canonical
from finp2p.identity.credentials import chain_document
from finp2p.identity.templates import hash_list_template, verify_signature
from finp2p.ledger import Ledger, LedgerTransaction, OperationType
from finp2p.network.messaging import Incoming
from finp2p.privacy.sharing import fetch
from finp2p.store.models import PrimaryOperationRow

if TYPE_CHECKING:
    from finp2p.assets.service import AssetService

log = logging.getLogger(__name__)

#: The longest wait between two attempts to resume an interrupted operation on its ledger.
RETRY_MAX_S = 30.0


class Primary:
    """Executes operations on the assets this organization manages, once each."""

    def __init__(self, service: AssetService) -> None:
        self.service = service
        self.node = service.node
        self.store = service.store
        self.network = service.network
        self.messenger = service.messenger
        self.org_id = service.org_id
        #: One lock per operation being handled (an asyncio.Lock and how many hold or await it), dropped when the
        #: last one is done: a node that runs for months does not keep a lock per operation id it ever saw.
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, list[int]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._retrying: set[tuple[str, str]] = set()  # operations resumed in the background
        self.messenger.register(OPERATION_MESSAGE, self._on_operation)
        self.messenger.register(CANCEL_MESSAGE, self._on_cancel)

    async def _on_operation(self, msg: Incoming) -> dict[str, Any]:
        assert msg.sender is not None and msg.sender.org_id is not None
        return await self.execute(OperationRequest.from_body(msg.body), msg.sender.org_id)

    async def execute(self, request: OperationRequest, requester: str) -> dict[str, Any]:
        """Run ``request`` as the asset's primary node, once; return the receipt bundle (or raise its error)."""
        if request.owner_org != self.org_id:
            raise FinP2PError(ErrorCode.ASSET_NOT_MANAGED, f"{request.asset_id} is managed by {request.owner_org}")
        async with self._exclusive(request.operation_id, str(request.operation)):
            return await self._execute(request, requester)

    @contextlib.asynccontextmanager
    async def _exclusive(self, op_id: str, op: str) -> AsyncIterator[None]:
        """Handle one operation (id and kind) at a time: a retry waits for the first attempt, never runs beside it."""
        key = (op_id, op)
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]

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
        async with self._exclusive(op_id, op):
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
        ledger_id, ledger = await self.service.asset_ledger(request.asset_id)
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
        hook = self.node.plugins.hook.finp2p_operation_step
        if not hook.get_hookimpls():
            return  # nobody listens: no body to build
        try:
            hook(node=self.node, operation=copy.deepcopy(request.to_body()), step=step)
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
        expected = await signing_template(request, ledger, ledger_id, consent.template)
        if consent.payload.get("hash") != expected["hash"]:
            raise FinP2PError(ErrorCode.CONSENT_INVALID, "the signed template is not this operation's")
        signature = {"signature": consent.signature, "template": consent.payload, "hashFunc": consent.hash_func}
        verify_signature(signature, str(request.source))

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
        ledger = self.service.ledger(ledger_id)
        asset = {"resourceId": tx.asset_id, "ledgerIdentifier": ledger.asset_identifier(tx.asset_id)}
        place = LedgerPlace.of(self.service.public_profile(ledger_id), tx.submitter or "")
        bundle = Bundle.issue(Receipt.of(tx, asset), self.messenger.key, self.me, place, self.domain)
        return bundle.to_dict()

    async def resume(self) -> int:
        """Resume in the background what a previous run left executing. Returns how many."""
        rows = await self.store.run(
            lambda s: [
                (r.request, r.requester)
                for r in s.exec(select(PrimaryOperationRow).where(col(PrimaryOperationRow.state) == "executing"))
            ]
        )
        for body, requester in rows:
            self._retry_in_background(OperationRequest.from_body(json.loads(body)), requester, first_delay=0.0)
        return len(rows)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):  # each resumes on the next start
                await task


async def signing_template(request: OperationRequest, ledger: Ledger, ledger_id: str, kind: str) -> dict[str, Any]:
    """What the source signs for ``request``: the ledger's own EIP712 template, or the node's hashList one."""
    if kind == "EIP712":
        return await ledger.consent_template(
            request.operation,
            request.asset_id,
            str(request.source),
            request.destination,
            request.quantity,
            request.operation_id,
            request.expiry,
        )
    if kind == "hashList":
        return hash_list_template([request.hash_list_fields(ledger_id)])
    raise FinP2PError(ErrorCode.CONSENT_INVALID, f"unknown signature template {kind!r}: EIP712 or hashList")
