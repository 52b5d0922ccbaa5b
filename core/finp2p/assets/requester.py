"""The requester's side of an asset operation: what this organization's applications asked for, driven to an end.

An operation is written down before it is acknowledged (``requested_operation``, one per idempotency key), then
sent to the asset's primary node (found by discovery, or this node itself), its receipt checked and kept, then
recorded in this organization's receipt registry. Asking the primary again is always safe (it executes an operation
once and answers again from what it wrote), so a transient failure (``finp2p.errors.TRANSIENT``) is retried with
backoff; a pending operation says what it waits for. Every operation ends:

- **recorded**: the receipt checked out and is recorded;
- **failed** with the primary's definite refusal (consent, compliance, balance, bad input, ...);
- at its **deadline** (``[operations] deadline_s``, or the request's own ``deadline_s``), the primary is asked to
  cancel it, and it ends with what that says: FP7014 ``OPERATION_CANCELLED`` when nothing was executed (the primary
  refuses the operation id from then on), the receipt when it had executed, or FP7013 ``OPERATION_NOT_CONFIRMED``
  when the primary could not say (it may have executed); a receipt not recorded by then ends as FP7004
  ``RECEIPT_NOT_RECORDED``, the receipt kept.

An operator lists what is stuck and retries (FP7013, FP7004 and pending operations) or abandons (pending and
FP7013 ones: the deadline, now) with ``finp2p operations`` or the REST API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from finp2p.assets.operations import OperationRequest
from finp2p.assets.receipts import NO_DESTINATION, OPERATION_TYPES, Bundle, LedgerPlace, Record, check_proof
from finp2p.assets.recorder import ReceiptRecorder
from finp2p.clock import now_ms
from finp2p.errors import TRANSIENT, ErrorCode, FinP2PError
from finp2p.identity.canonical import canonical
from finp2p.identity.credentials import chain_from
from finp2p.store.models import RequestedOperationRow

if TYPE_CHECKING:
    from finp2p.assets.service import AssetService

log = logging.getLogger(__name__)

OPERATION_MESSAGE = "asset.operation"
CANCEL_MESSAGE = "asset.operation.cancel"
#: How long one attempt waits for the primary node's answer.
REQUEST_TIMEOUT_S = 60.0
#: How long the last word with the primary (the cancellation at the deadline) may take.
CANCEL_TIMEOUT_S = 15.0
FIRST_RETRY_S = 0.25
#: Ended operations an operator may retry; those the operator may abandon besides pending ones.
RETRYABLE = frozenset({ErrorCode.OPERATION_NOT_CONFIRMED.code, ErrorCode.RECEIPT_NOT_RECORDED.code})
ABANDONABLE = frozenset({ErrorCode.OPERATION_NOT_CONFIRMED.code})
MAX_LISTED = 1000


def error_json(exc: FinP2PError) -> str:
    return json.dumps(exc.to_dict())


def error_from(data: dict[str, Any]) -> FinP2PError:
    """An error another node (or this one, earlier) answered with, by its code."""
    code = next((c for c in ErrorCode if c.code == data.get("code")), ErrorCode.PEER_ERROR)
    return FinP2PError(code, str(data.get("detail", "no detail")))


class Requests:
    """The operations this node asked for, each driven by a task of its own until it ends."""

    def __init__(self, assets: AssetService) -> None:
        self.assets = assets
        self.store = assets.store
        self.settings = assets.node.settings.operations
        self._tasks: set[asyncio.Task[Any]] = set()
        self._settled: dict[str, asyncio.Event] = {}  # running here, set when they end
        self._wake: dict[str, asyncio.Event] = {}  # set to cut a wait between attempts short
        self._recorders: dict[str, ReceiptRecorder] = {}

    # -- life cycle ----------------------------------------------------------------------------------------------
    async def start(self) -> int:
        """Drive every operation a previous run left pending; how many."""
        pending = await self.store.run(
            lambda s: [
                r.id for r in s.exec(select(RequestedOperationRow).where(col(RequestedOperationRow.state) == "pending"))
            ]
        )
        for op_id in pending:
            self._start(op_id)
        return len(pending)

    async def close(self) -> None:
        for recorder in self._recorders.values():
            await recorder.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):  # each resumes on the next start
                await task

    # -- asking --------------------------------------------------------------------------------------------------
    async def submit(
        self, request: OperationRequest, idempotency_key: str, deadline_s: float | None = None
    ) -> dict[str, Any]:
        """Write the request down (once per idempotency key) and start it; answer with its status to poll."""
        body = canonical(request.to_body()).decode()
        now = now_ms()
        deadline_ms = now + int(1000 * (deadline_s if deadline_s is not None else self.settings.deadline_s))

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
                deadline_ms=deadline_ms,
            )
            s.add(row)
            return row, True

        row, new = await self.store.run(claim)
        if row.request != body:
            raise FinP2PError(
                ErrorCode.IDEMPOTENCY_CONFLICT, f"Idempotency-Key {idempotency_key!r} was used for another request"
            )
        if new:
            self._start(row.id, row)
        return status_of(row)

    def _start(self, op_id: str, row: RequestedOperationRow | None = None) -> None:
        """Drive the operation (``row``: as just written, so it need not be read again)."""
        if op_id in self._settled:
            return  # driven already
        settled = self._settled[op_id] = asyncio.Event()

        async def drive() -> None:
            try:
                await self._drive(op_id, row)
            finally:
                settled.set()
                self._settled.pop(op_id, None)
                self._wake.pop(op_id, None)

        task = asyncio.create_task(drive(), name=f"operation-{op_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- driving -------------------------------------------------------------------------------------------------
    async def _drive(self, op_id: str, row: RequestedOperationRow | None) -> None:
        row = row or await self._row(op_id)
        request = OperationRequest.from_body(json.loads(row.request))
        attempts, since = 0, None
        while True:
            if row.state != "pending":
                return
            if now_ms() >= (row.deadline_ms or 0):
                await self._end_at_deadline(row, request)
                return
            try:
                await self._attempt(row, request)
                return
            except FinP2PError as exc:
                if exc.code not in TRANSIENT:
                    await self._update(op_id, state="failed", error=error_json(exc), waiting=None)
                    return
                attempts += 1
                now = now_ms()
                since = since or now
                delay = min(self.settings.retry_max_s, FIRST_RETRY_S * 2 ** min(attempts - 1, 20))
                delay = max(0.0, min(delay, ((row.deadline_ms or now) - now) / 1000))
                waiting = {
                    "for": self._waiting_for(row, request),
                    "code": exc.code.code,
                    "detail": exc.detail,
                    "since_ms": since,
                    "attempts": attempts,
                    "next_attempt_ms": now + int(delay * 1000),
                }
                await self._update(op_id, waiting=json.dumps(waiting))
                log.info("operation %s: %s; attempt %d again in %.1f s", op_id, exc.code.code, attempts + 1, delay)
                await self._pause(op_id, delay)
                row = await self._row(op_id)  # as it is now (an operator may have abandoned it meanwhile)
            except Exception as exc:  # never lose an operation to an unexpected error: it resumes on the next start
                log.exception("operation %s: unexpected %s; it resumes on the next start", op_id, type(exc).__name__)
                return

    async def _attempt(self, row: RequestedOperationRow, request: OperationRequest) -> None:
        """One try at what is left: asking the primary (unless its receipt is kept already), then recording."""
        if row.bundle is None:
            answer = await self._ask_primary(request)
            self._check_receipt(request, answer)
            await self._update(row.id, bundle=json.dumps(answer))  # kept before it is recorded
            row.bundle = json.dumps(answer)
        bundle = json.loads(row.bundle)
        bundle["record"] = (await self._record(Bundle.from_dict(bundle))).to_dict()
        await self._update(row.id, state="recorded", bundle=json.dumps(bundle), waiting=None)
        node = self.assets.node
        await node.emit("finp2p_receipt_received", raise_errors=False, receipt=bundle, node=node)

    def _waiting_for(self, row: RequestedOperationRow, request: OperationRequest) -> str:
        if row.bundle is None:
            return f"{request.owner_org}, the asset's primary node"
        return f"ledger {self._receipts_ledger()}, to record the receipt"

    async def _pause(self, op_id: str, delay: float) -> None:
        wake = self._wake.setdefault(op_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), delay)
        wake.clear()

    async def _ask_primary(self, request: OperationRequest) -> dict[str, Any]:
        if request.owner_org == self.assets.org_id:
            return await self.assets.primary.execute(request, self.assets.org_id)
        address = await self.assets.route(request.asset_id)
        return await self.assets.primary.messenger.request(
            address, OPERATION_MESSAGE, request.to_body(), recipient=request.owner_org, timeout=REQUEST_TIMEOUT_S
        )

    async def _cancel_at_primary(self, request: OperationRequest) -> dict[str, Any]:
        if request.owner_org == self.assets.org_id:
            return await self.assets.primary.cancel(request, self.assets.org_id)
        address = await self.assets.route(request.asset_id)
        return await self.assets.primary.messenger.request(
            address, CANCEL_MESSAGE, request.to_body(), recipient=request.owner_org, timeout=CANCEL_TIMEOUT_S
        )

    async def _end_at_deadline(self, row: RequestedOperationRow, request: OperationRequest) -> None:
        """The deadline has come: end the operation with what the primary says of it, asked once more."""
        op_id, owner = row.id, request.owner_org
        last = json.loads(row.waiting).get("code", "no answer") if row.waiting else "no answer"
        if row.bundle is not None:
            exc = FinP2PError(
                ErrorCode.RECEIPT_NOT_RECORDED,
                f"it executed (the receipt is kept) but was not recorded on {self._receipts_ledger()} by its deadline "
                f"({last}); `finp2p operations retry {op_id}` records it",
            )
            await self._update(op_id, state="failed", error=error_json(exc), waiting=None)
            return
        try:
            answer = await self._cancel_at_primary(request)
        except FinP2PError as exc:
            answer = {"state": "unknown", "why": f"{exc.code.code} {exc.detail}"}
        state = answer.get("state")
        if state == "done" and isinstance(answer.get("bundle"), dict):
            self._check_receipt(request, answer["bundle"])
            await self._update(op_id, bundle=json.dumps(answer["bundle"]))
            row = await self._row(op_id)
            try:
                await self._attempt(row, request)
            except FinP2PError as exc:
                failure = FinP2PError(
                    ErrorCode.RECEIPT_NOT_RECORDED,
                    f"it executed (the receipt is kept) but could not be recorded by its deadline ({exc.code.code})",
                )
                await self._update(op_id, state="failed", error=error_json(failure), waiting=None)
            return
        if state == "failed" and isinstance(answer.get("error"), dict):
            failure = error_from(answer["error"])
        elif state == "cancelled":
            failure = FinP2PError(
                ErrorCode.OPERATION_CANCELLED, f"{owner} had not executed it by its deadline, and now never will"
            )
        else:
            said = "was still executing it" if state == "executing" else f"did not answer ({answer.get('why')})"
            failure = FinP2PError(
                ErrorCode.OPERATION_NOT_CONFIRMED,
                f"{owner} {said} at the deadline, after {last}; `finp2p operations retry {op_id}` asks again",
            )
        await self._update(op_id, state="failed", error=error_json(failure), waiting=None)

    def _check_receipt(self, request: OperationRequest, bundle_data: dict[str, Any]) -> Bundle:
        """The primary's answer must be a receipt of exactly what was asked, signed by the asset's organization,
        with its statement of where the transaction is."""
        try:
            bundle = Bundle.from_dict(bundle_data)
            check_proof(bundle.receipt, bundle.proof, bundle.issuer.fin_id)
            identity = self.assets.network.trust.verify_chain(chain_from(bundle.issuer.chain), role="organization")
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

    def _receipts_ledger(self) -> str:
        node = self.assets.node
        ledger_id = node.settings.ledgers.receipts_on or next(iter(node.ledgers), None)
        if ledger_id is None:
            raise FinP2PError(ErrorCode.LEDGER_PROFILE, "no ledger to record receipts on: name one in [ledgers]")
        return ledger_id

    async def _record(self, bundle: Bundle) -> Record:
        """Record the receipt's digest in this organization's registry; the record, signed."""
        ledger_id = self._receipts_ledger()
        recorder = self._recorders.get(ledger_id)
        if recorder is None:
            recorder = self._recorders[ledger_id] = ReceiptRecorder(self.assets.ledger(ledger_id))
        digest = bundle.digest()
        # A receipt recorded in a batch before a crash that came before its row was updated is recorded again
        # (alone) when the operation resumes: two records of one receipt, both valid.
        tx, proof = await recorder.record(digest)
        place = LedgerPlace.of(self.assets.public_profile(ledger_id), tx.submitter or "")
        record = Record(self.assets.primary.me, place, tx.transaction_id, ["0x" + p.hex() for p in proof])
        return record.sign(self.assets.primary.messenger.key, digest)

    # -- what applications and operators see ---------------------------------------------------------------------
    async def status(self, op_id: str) -> dict[str, Any]:
        return status_of(await self._row(op_id))

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

    async def list(
        self, *, state: str | None = None, stuck: bool = False, older_than_s: float = 60.0, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Operations, newest first. ``stuck``: pending ones that have waited longer than ``older_than_s``, and
        those that ended without a confirmed outcome (FP7013, FP7004)."""
        limit = max(1, min(limit, MAX_LISTED))

        def read(s: Session) -> list[RequestedOperationRow]:
            query = select(RequestedOperationRow)
            if state is not None:
                query = query.where(col(RequestedOperationRow.state) == state)
            elif stuck:
                query = query.where(col(RequestedOperationRow.state).in_(["pending", "failed"]))
            query = query.order_by(col(RequestedOperationRow.created_ms).desc())
            return list(s.exec(query.limit(limit if not stuck else MAX_LISTED)))

        rows = await self.store.run(read)
        if stuck:
            cutoff = now_ms() - int(older_than_s * 1000)
            rows = [r for r in rows if _is_stuck(r, cutoff)][:limit]
        return [status_of(r) for r in rows]

    async def retry(self, op_id: str) -> dict[str, Any]:
        """Ask again now: a pending operation's next attempt at once; one that ended unconfirmed (FP7013, FP7004)
        pending again, with a new deadline."""
        row = await self._row(op_id)
        if row.state == "failed" and _code(row) in RETRYABLE:
            deadline = now_ms() + int(self.settings.deadline_s * 1000)
            await self._update(op_id, state="pending", error=None, waiting=None, deadline_ms=deadline)
        elif row.state != "pending":
            raise FinP2PError(ErrorCode.OPERATION_ENDED, f"operation {op_id} is {_ended(row)}")
        self._nudge(op_id)
        return await self.status(op_id)

    async def abandon(self, op_id: str) -> dict[str, Any]:
        """End a pending operation (or one that ended unconfirmed) now, as its deadline would: the primary is asked
        to cancel it, and the operation ends with what that says."""
        row = await self._row(op_id)
        if row.state == "failed" and _code(row) in ABANDONABLE:
            await self._update(op_id, state="pending", error=None, deadline_ms=now_ms())
        elif row.state == "pending":
            await self._update(op_id, deadline_ms=now_ms())
        else:
            raise FinP2PError(ErrorCode.OPERATION_ENDED, f"operation {op_id} is {_ended(row)}")
        self._nudge(op_id)
        return await self.wait(op_id, CANCEL_TIMEOUT_S + 5)

    def _nudge(self, op_id: str) -> None:
        wake = self._wake.get(op_id)
        if op_id in self._settled and wake is not None:
            wake.set()
        else:
            self._start(op_id)

    # -- store ---------------------------------------------------------------------------------------------------
    async def _row(self, op_id: str) -> RequestedOperationRow:
        row = await self.store.run(lambda s: s.get(RequestedOperationRow, op_id))
        if row is None:
            raise FinP2PError(ErrorCode.NOT_FOUND, f"no operation {op_id}")
        return row

    async def _update(self, op_id: str, **values: Any) -> None:
        """Change the operation's row in one statement (not read first: a load costs more than the write)."""
        statement = (
            sa.update(RequestedOperationRow)
            .where(col(RequestedOperationRow.id) == op_id)
            .values(**values, updated_ms=now_ms())
        )

        def write(s: Session) -> None:
            changed = s.execute(statement).rowcount  # type: ignore[attr-defined]
            assert changed == 1, f"operation {op_id} has no row"

        await self.store.run(write)


def status_of(row: RequestedOperationRow) -> dict[str, Any]:
    """An operation as the REST API and ``finp2p operations`` show it."""
    out: dict[str, Any] = {
        "id": row.id,
        "state": row.state,
        "request": json.loads(row.request),
        "created_ms": row.created_ms,
        "updated_ms": row.updated_ms,
    }
    if row.deadline_ms is not None:
        out["deadline_ms"] = row.deadline_ms
    if row.state == "pending":
        out["waiting"] = json.loads(row.waiting) if row.waiting else {"for": "the first attempt", "attempts": 0}
    if row.bundle:
        out["receipt"] = json.loads(row.bundle)
    if row.error:
        out["error"] = json.loads(row.error)
    return out


def _code(row: RequestedOperationRow) -> str | None:
    return json.loads(row.error).get("code") if row.error else None


def _ended(row: RequestedOperationRow) -> str:
    return f"{row.state}" + (f" ({_code(row)})" if row.error else "")


def _is_stuck(row: RequestedOperationRow, cutoff_ms: int) -> bool:
    if row.state == "failed":
        return _code(row) in RETRYABLE
    if row.state != "pending" or not row.waiting:
        return False
    return int(json.loads(row.waiting).get("since_ms", cutoff_ms + 1)) <= cutoff_ms
