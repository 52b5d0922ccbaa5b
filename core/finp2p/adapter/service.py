"""The ledger-adapter service: operations written before they are acknowledged, executed once, answered by cid.

A request with an ``Idempotency-Key`` is claimed in ``adapter_operation`` (one row per key; the same key with
another body is refused), checked (:mod:`finp2p.adapter.translate`), and then either answered at once (a check
failed: the result holds the error) or acknowledged with its cid while it executes. The result is written when the
ledger confirms; the router polls ``/operations/status/{cid}`` or, when the adapter has a callback URL, is sent the
result. Operations and callbacks left unfinished by a crash resume when the service starts, and an operation that
may have reached the ledger is looked up there before anything is submitted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import re
import time
import uuid
from typing import Any

import aiohttp
import sqlalchemy as sa
from sqlmodel import Session, col, select

from finp2p import compliance
from finp2p.adapter import translate
from finp2p.adapter.translate import RECEIPT_OPERATIONS, Prepared
from finp2p.assets.execution import run_on
from finp2p.assets.operations import OperationRequest
from finp2p.assets.receipts import ReceiptDomain
from finp2p.clock import now_ms
from finp2p.compliance import TransferCheck
from finp2p.config import Settings
from finp2p.errors import TRANSIENT, ErrorCode, FinP2PError
from finp2p.identity.canonical import canonical
from finp2p.identity.keys import SigningKey, check_fin_id, check_point
from finp2p.ledger import Ledger, LedgerTransaction, OperationType
from finp2p.plugins import PluginManager
from finp2p.store import Store
from finp2p.store.models import AdapterOperationRow, AdapterOwnerRow, AdapterPlanRow

_HEX = re.compile(r"[0-9a-fA-F]{1,66}")
log = logging.getLogger(__name__)

#: Operations the compliance hooks are asked about (as on the primary node).
COMPLIANCE_CHECKED = frozenset({OperationType.ISSUE, OperationType.TRANSFER, OperationType.HOLD, OperationType.RELEASE})
#: Ledger troubles worth another attempt: the operation may not have reached the ledger, or its outcome is unknown.
#: Attempts at an operation whose ledger is unreachable before it waits for the next start; the wait doubles from
#: RETRY_FIRST_S up to RETRY_MAX_S.
ATTEMPTS = 12
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0
CALLBACK_ATTEMPTS = 8
#: Completed results kept in memory for the polls that wait on them.
RECENT_RESULTS = 4096
#: What a ledger says of an operation done already: its id spent, its hold settled, its signed template used.
REPEAT_SIGNS = frozenset(
    {ErrorCode.LEDGER_OPERATION_ID_USED, ErrorCode.LEDGER_UNKNOWN_HOLD, ErrorCode.LEDGER_CONSENT_USED}
)
#: Operations that settle a hold (a redeem does when it carries no signature of its own).
SETTLES_HOLD = frozenset({OperationType.RELEASE, OperationType.ROLLBACK, OperationType.REDEEM})


def kind_of(operation: str) -> str:
    """The ``operationStatus`` type of an operation's result."""
    kinds = {"createAsset": "createAsset", "deposit": "deposit", "approvePlan": "approval", "planProposal": "approval"}
    return kinds.get(operation, "receipt")


class AdapterService:
    def __init__(
        self,
        ledger: Ledger,
        store: Store,
        *,
        key: SigningKey | None = None,
        callback_url: str | None = None,
        plugins: PluginManager | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.ledger = ledger
        self._fields: frozenset[str] | None = None
        self.store = store
        self.key = key
        self.plugins = plugins
        self.settings = settings or Settings()
        #: The domain its receipts are signed in ([receipts] of the config: FinP2P's published one by default).
        self.domain = ReceiptDomain(self.settings.receipts.chain_id, self.settings.receipts.verifying_contract)
        self.callback_url = callback_url.rstrip("/") if callback_url else None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._callbacks: set[asyncio.Task[None]] = set()
        self._done: dict[str, asyncio.Event] = {}
        self._recent: dict[str, dict[str, Any]] = {}  # the last results, by cid, as /operations/status says them
        self._http: aiohttp.ClientSession | None = None

    # -- life cycle ----------------------------------------------------------------------------------------------
    async def start(self) -> int:
        """Resume unfinished operations and unsent callbacks; return how many."""

        def unfinished(s: Session) -> tuple[list[str], list[str]]:
            pending = s.exec(select(AdapterOperationRow.cid).where(AdapterOperationRow.state == "pending")).all()
            calls = s.exec(select(AdapterOperationRow.cid).where(AdapterOperationRow.callback == "pending")).all()
            return list(pending), list(calls)

        pending, calls = await self.store.run(unfinished)
        for cid in pending:
            self._start(cid, resumed=True)  # read back from the store by its driver
        for cid in calls:
            self._send_later(cid)
        return len(pending) + len(calls)

    async def close(self) -> None:
        tasks = [*self._tasks.values(), *self._callbacks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._http is not None:
            await self._http.close()
            self._http = None

    def metadata(self) -> dict[str, Any]:
        """How the router learns an operation's result (the spec's ``operationMetadata``)."""
        if self.callback_url:
            strategy = {"type": "callback", "callback": {"type": "endpoint"}}
        else:
            strategy = {"type": "poll", "polling": {"type": "random"}}
        return {"operationResponseStrategy": strategy}

    # -- operations ----------------------------------------------------------------------------------------------
    async def submit(self, operation: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """Accept an operation (``createAsset``, a receipt operation, ``deposit``): its operation object, completed
        or pending. The same key and body return the same operation; the same key with another body is FP3011."""
        digest = hashlib.sha256(canonical({"operation": operation, "body": body})).hexdigest()
        self._step(operation, "", "received")
        row, new = await self._claim(operation, body, digest, idempotency_key)
        if not new:
            if row.request_hash != digest:
                raise FinP2PError(
                    ErrorCode.IDEMPOTENCY_CONFLICT, f"Idempotency-Key {idempotency_key!r} was used for another request"
                )
            return self._view(row)
        try:
            if operation == "deposit":
                return await self._finish(row.cid, row.kind, await self._deposit(row.cid, body))
            prepared = None
            if operation in RECEIPT_OPERATIONS:
                prepared = await self._prepared(operation, body, row.cid)  # a failed check is answered now
        except FinP2PError as exc:
            return await self._finish(row.cid, row.kind, self._failed(row.cid, exc))
        self._start(row.cid, resumed=False, row=row, prepared=prepared)
        return self._view(row)

    async def _claim(
        self, operation: str, body: dict[str, Any], digest: str, idempotency_key: str
    ) -> tuple[AdapterOperationRow, bool]:
        scoped = f"{operation}:{idempotency_key}"
        now = now_ms()
        row = AdapterOperationRow(
            cid=uuid.uuid4().hex,
            idempotency_key=scoped,
            kind=kind_of(operation),
            operation=operation,
            request=json.dumps(body),
            request_hash=digest,
            state="pending",
            created_ms=now,
            updated_ms=now,
        )
        return await self.store.run_driver(functools.partial(_claim_key, row=row))

    async def _prepared(self, operation: str, body: dict[str, Any], cid: str) -> Prepared:
        prepared = translate.prepare(self.ledger, operation, body, cid, time.time())
        await self._check_standing(prepared)
        return prepared

    async def _check_standing(self, prepared: Prepared) -> None:
        """The checks whose answer can change over time (mappings, compliance rules, holds), unlike the request's
        own."""
        for account in (prepared.source, prepared.destination):
            if account is not None and account.get("ledgerAccount"):
                await self._check_ledger_account(account["finId"], account["ledgerAccount"]["address"])
        await self._check_hold(prepared)
        await self._check_compliance(prepared)

    async def _check_hold(self, prepared: Prepared) -> None:
        """A release, or a redeem from a hold, settles the hold as its template said (:func:`translate.
        check_settles_hold`): the hold's request is read back and its terms read again."""
        r = prepared.request
        settling = r.operation is OperationType.RELEASE or (r.operation is OperationType.REDEEM and r.consent is None)
        if not settling:
            return

        def hold_row(s: Session) -> AdapterOperationRow | None:
            query = select(AdapterOperationRow).where(
                col(AdapterOperationRow.operation) == "hold", col(AdapterOperationRow.operation_id) == r.operation_id
            )
            return s.exec(query).first()

        row = await self.store.run(hold_row)
        if row is None:
            raise FinP2PError(ErrorCode.LEDGER_UNKNOWN_HOLD, f"no hold {r.operation_id!r} was made by this adapter")
        hold = translate.prepare(self.ledger, "hold", json.loads(row.request), row.cid, row.created_ms / 1000)
        translate.check_settles_hold(str(r.operation), prepared, hold)

    async def _check_compliance(self, prepared: Prepared) -> None:
        """The node's compliance hooks, as the primary node asks them (the parties are FinIDs here: the adapter
        holds no user records); a veto is the spec's regulation failure, code 1, with each rule's reason."""
        r = prepared.request
        if self.plugins is None or r.operation not in COMPLIANCE_CHECKED:
            return
        check = TransferCheck(
            r.asset_id, str(r.operation), r.quantity, r.source, r.destination, metadata={"via": "adapter"}
        )
        violations = await compliance.check_transfer(self.plugins, self.settings, check)
        if violations:
            raise FinP2PError(
                ErrorCode.COMPLIANCE_REFUSED,
                "; ".join(f"{v.rule}: {v.reason}" for v in violations),
                regulation=[{"regulationType": v.rule, "details": v.reason} for v in violations],
            )

    def _start(
        self,
        cid: str,
        *,
        resumed: bool,
        row: AdapterOperationRow | None = None,
        prepared: Prepared | None = None,
    ) -> None:
        if cid in self._tasks:
            return
        self._done.setdefault(cid, asyncio.Event())
        task = asyncio.create_task(self._drive(cid, resumed, row, prepared), name=f"adapter-{cid}")
        self._tasks[cid] = task
        task.add_done_callback(lambda _t: self._tasks.pop(cid, None))

    async def _drive(self, cid: str, resumed: bool, row: AdapterOperationRow | None, prepared: Prepared | None) -> None:
        """Run an accepted operation to its result. A new one arrives with its row and its checked request; a
        resumed one is read back and checked again."""
        if row is None:
            row = await self.store.run(lambda s: s.get(AdapterOperationRow, cid))
        assert row is not None
        if row.state != "pending":
            return
        body = json.loads(row.request)
        delay = RETRY_FIRST_S
        for attempt in range(ATTEMPTS):
            try:
                result, tx = await self._run(row.operation, body, cid, prepared, resumed=resumed or attempt > 0)
            except FinP2PError as exc:
                if exc.code not in TRANSIENT:
                    await self._finish(cid, row.kind, self._failed(cid, exc))
                    return
                log.warning("adapter operation %s: %s; retrying in %.1f s", cid, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            except Exception:  # never lose an operation to an unexpected error: it resumes on the next start
                log.exception("adapter operation %s failed unexpectedly; it resumes on the next start", cid)
                return
            await self._finish(cid, row.kind, result, tx)
            self._step(row.operation, cid, "done")
            return
        log.error("adapter operation %s: the ledger stayed unreachable; it resumes on the next start", cid)

    async def _run(
        self, operation: str, body: dict[str, Any], cid: str, prepared: Prepared | None, *, resumed: bool
    ) -> tuple[dict[str, Any], LedgerTransaction | None]:
        if operation == "createAsset":
            return await self._create_asset(cid, body, resumed=resumed), None
        if operation == "deposit":  # answered at once, unless a crash came between writing it and answering
            return await self._deposit(cid, body), None
        if prepared is None or resumed:
            # Read back after a crash: it may have reached the ledger, and what happened there is the answer,
            # whatever a mapping or a compliance rule says now; only an operation that never happened is checked
            # again before it is submitted.
            prepared = translate.prepare(self.ledger, operation, body, cid, time.time())
            request = prepared.request
            found = await self.ledger.find_operation(request.operation_id, request.operation) if resumed else None
            if found is not None:
                await self._check_not_anothers(cid, request, found)
                return self._completed(cid, self._receipt(found, prepared)), found
            await self._check_standing(prepared)
        self._step(operation, cid, "executing")
        # The transaction id is written with the result: a crash before that finds the transaction again by its
        # operation id (above, or below when the ledger says the id is spent).
        tx = await self._execute(cid, prepared.request, resumed=resumed)
        self._step(operation, cid, "on-ledger")
        return self._completed(cid, self._receipt(tx, prepared)), tx

    async def _execute(self, cid: str, request: OperationRequest, *, resumed: bool) -> LedgerTransaction:
        """Submit the operation. A ledger that says it was done already (its operation id spent, its hold settled,
        its signed template used) is answered with the earlier transaction only when it is this cid's own (an
        attempt before a crash or a timeout); a repeat under a new Idempotency-Key is FP7016, the same for every
        operation."""
        try:
            return await run_on(self.ledger, request)
        except FinP2PError as exc:
            if exc.code not in REPEAT_SIGNS:
                raise
            earlier = await self._earlier(request)
            if earlier is None:
                raise
            if resumed and str(earlier.operation) == str(request.operation):
                await self._check_not_anothers(cid, request, earlier)
                return earlier
            raise _repeated(request, earlier) from None

    async def _earlier(self, request: OperationRequest) -> LedgerTransaction | None:
        """The ledger's earlier transaction of this operation: by its operation id, and for an operation that
        settles a hold, any settlement of that hold (released, rolled back or redeemed)."""
        kinds = [request.operation]
        if request.operation in SETTLES_HOLD and request.consent is None:
            kinds = [OperationType.RELEASE, OperationType.ROLLBACK, OperationType.REDEEM]
        for kind in kinds:
            found = await self.ledger.find_operation(request.operation_id, kind)
            if found is not None:
                return found
        return None

    async def _check_not_anothers(self, cid: str, request: OperationRequest, found: LedgerTransaction) -> None:
        """FP7016 when ``found`` is another request's answer: a resumed operation takes only its own transaction."""

        def owner(s: Session) -> str | None:
            query = select(AdapterOperationRow.cid).where(
                col(AdapterOperationRow.transaction_id) == found.transaction_id, col(AdapterOperationRow.cid) != cid
            )
            return s.exec(query).first()

        if (found.asset_id, found.quantity) != (request.asset_id, request.quantity):
            raise _repeated(request, found)
        if await self.store.run(owner) is not None:
            raise _repeated(request, found)

    def _receipt(self, tx: LedgerTransaction, prepared: Prepared) -> dict[str, Any]:
        return translate.receipt_of(
            self.ledger, tx, self.key, prepared.source, prepared.destination, prepared.execution_context, self.domain
        )

    async def _create_asset(self, cid: str, body: dict[str, Any], *, resumed: bool) -> dict[str, Any]:
        asset_id = str(body["asset"]["resourceId"])
        identifier = self.ledger.asset_identifier(asset_id)
        binding = body.get("ledgerAssetBinding")
        if binding is not None and (binding["network"], binding["tokenId"]) != (
            identifier["network"],
            identifier["tokenId"],
        ):
            raise FinP2PError(
                ErrorCode.OPERATION_INVALID,
                f"this ledger names the asset {identifier['tokenId']!r} on {identifier['network']}; it cannot bind "
                f"to token {binding['tokenId']!r} on {binding['network']}",
            )
        reference: dict[str, Any] = {}
        try:
            created = await self.ledger.create_asset(asset_id, dict(body.get("metadata") or {}))
            reference = created
        except FinP2PError as exc:
            # Binding to the asset, or resuming its creation: an asset that exists is the answer asked for.
            if exc.code is not ErrorCode.LEDGER_ASSET_EXISTS or not (resumed or binding is not None):
                raise
        info: dict[str, Any] = {"ledgerIdentifier": identifier}
        contract = reference.get("contract")
        if contract:
            info["ledgerReference"] = {"type": "contractDetails", "address": str(contract), "TokenStandard": "FinP2P"}
        return self._completed(cid, {"ledgerAssetInfo": info})

    async def _deposit(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        asset = body["asset"]
        if asset.get("type") != "finp2p" or not asset.get("resourceId"):
            raise FinP2PError(
                ErrorCode.OPERATION_INVALID, "this ledger takes deposits of FinP2P assets only (asset type finp2p)"
            )
        fin_id = check_fin_id(body["destination"]["finId"])
        accounts = await self.accounts_of(fin_id)
        if not accounts:  # a FinID that is no key (not a point on secp256k1), with no mapping either
            raise FinP2PError(
                ErrorCode.OPERATION_INVALID,
                f"FinID {fin_id[:16]}… has no account on {self.ledger.ledger_id}: it is not a public key the ledger "
                "derives one from; map its account first (POST /mapping/owners)",
            )
        address = next(iter(accounts.values()))
        return self._completed(
            cid,
            {
                "account": body["destination"],
                "asset": asset,
                "operationId": cid,
                "description": f"Units of {asset['resourceId']} on {self.ledger.ledger_id} are held by FinID "
                f"{fin_id} at ledger account {address}: an issue or a transfer to that FinID deposits them.",
                "paymentOptions": [
                    {
                        "description": f"a transfer on {self.ledger.ledger_id}",
                        "currency": str(asset["resourceId"]),
                        "methodInstruction": {
                            "type": "paymentInstructions",
                            "instruction": f"transfer {asset['resourceId']} to FinID {fin_id} ({address})",
                        },
                    }
                ],
            },
        )

    def _step(self, operation: str, cid: str, step: str) -> None:
        """Tell the ``finp2p_operation_step`` hooks (metrics, audit trails, fault tests) where an operation is."""
        if self.plugins is None:
            return
        try:
            self.plugins.hook.finp2p_operation_step(
                node=None, operation={"operation": operation, "cid": cid, "via": "adapter"}, step=step
            )
        except Exception:
            log.exception("a finp2p_operation_step hook failed at %s", step)

    def _completed(self, cid: str, response: dict[str, Any]) -> dict[str, Any]:
        return {"cid": cid, "isCompleted": True, "response": response}

    def _failed(self, cid: str, exc: FinP2PError) -> dict[str, Any]:
        return {"cid": cid, "isCompleted": True, "error": translate.error_info(exc)}

    async def _finish(
        self, cid: str, kind: str, result: dict[str, Any], tx: LedgerTransaction | None = None
    ) -> dict[str, Any]:
        """Write the result (and, with a callback URL, that the router is owed it) before anyone is told."""
        callback = "pending" if self.callback_url else "none"
        operation_id, transaction_id = (tx.operation_id, tx.transaction_id) if tx else (None, None)
        done = (json.dumps(result), callback, operation_id, transaction_id, now_ms(), cid)
        await self.store.run_driver(functools.partial(_write_result, values=done))
        self._recent[cid] = {"type": kind, "operation": result}  # a waiting poll is answered from here
        while len(self._recent) > RECENT_RESULTS:
            self._recent.pop(next(iter(self._recent)))
        self._done.pop(cid, asyncio.Event()).set()
        if self.callback_url:
            self._send_later(cid)
        return result

    def _view(self, row: AdapterOperationRow) -> dict[str, Any]:
        if row.state == "done" and row.result:
            return dict(json.loads(row.result))
        return {"cid": row.cid, "isCompleted": False, "operationMetadata": self.metadata()}

    async def status(self, cid: str, wait_s: float = 0.0) -> dict[str, Any] | None:
        """The operation's ``operationStatus`` (``None``: no such cid); ``wait_s`` waits that long for its result."""
        event = self._done.get(cid)
        if wait_s > 0 and event is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), wait_s)
        if cid in self._recent:
            return self._recent[cid]
        row = await self.store.run(lambda s: s.get(AdapterOperationRow, cid))
        if row is None:
            return None
        return {"type": row.kind, "operation": self._view(row)}

    # -- callbacks -----------------------------------------------------------------------------------------------
    def _send_later(self, cid: str) -> None:
        task = asyncio.create_task(self._send(cid), name=f"adapter-callback-{cid}")
        self._callbacks.add(task)
        task.add_done_callback(self._callbacks.discard)

    async def _send(self, cid: str) -> None:
        """POST the operation's status to ``<callback>/operations/callback/<cid>``; retried with backoff."""
        assert self.callback_url is not None
        status = await self.status(cid)
        if status is None:
            return
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        url = f"{self.callback_url}/operations/callback/{cid}"
        delay = RETRY_FIRST_S
        for _ in range(CALLBACK_ATTEMPTS):
            try:
                async with self._http.post(url, json=status) as response:
                    if response.status < 300:
                        await self.store.run(lambda s: _set(s, cid, callback="sent"))
                        return
                    log.warning("callback for %s: the router answered %s", cid, response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("callback for %s: %s", cid, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
        await self.store.run(lambda s: _set(s, cid, callback="failed"))
        log.error("callback for %s failed %d times; the router can still poll it", cid, CALLBACK_ATTEMPTS)

    # -- reads ---------------------------------------------------------------------------------------------------
    async def receipt(self, transaction_id: str) -> dict[str, Any] | None:
        """The receipt of a transaction, from the ledger's own record (``None``: the ledger does not know it)."""
        tx = await self.ledger.transaction(transaction_id)
        if tx is None or str(tx.operation) not in {kind.value for kind in OperationType}:
            return None  # unknown, or not an asset operation (a receipt registry's record has no receipt)
        rows = await self.store.run(
            lambda s: s.exec(
                select(AdapterOperationRow).where(AdapterOperationRow.transaction_id == tx.transaction_id)
            ).all()
        )
        cid = rows[0].cid if rows else "receipt:" + tx.transaction_id
        if not tx.succeeded:
            exc = FinP2PError(ErrorCode.LEDGER_REVERTED, f"transaction {tx.transaction_id} failed on the ledger")
            return self._failed(cid, exc)
        prepared = None
        if rows and rows[0].operation in RECEIPT_OPERATIONS:
            with contextlib.suppress(FinP2PError):  # a request checked once; only its accounts are read here
                prepared = translate.prepare(self.ledger, rows[0].operation, json.loads(rows[0].request), cid, 0)
        if prepared is None:
            return self._completed(cid, translate.receipt_of(self.ledger, tx, self.key, domain=self.domain))
        return self._completed(cid, self._receipt(tx, prepared))

    async def balance(self, asset: dict[str, Any], fin_id: str, marker: dict[str, Any] | None = None) -> Any:
        asset_id = translate.check_asset(self.ledger, asset)
        height = None
        if marker is not None:
            if marker["type"] == "transactionBlock":
                height = int(marker["blockNumber"])
            else:
                height = await self.ledger.height_at(int(marker["timestamp"]))
        return await self.ledger.balance(asset_id, check_fin_id(fin_id), height)

    async def healthy(self) -> bool:
        try:
            await asyncio.wait_for(self.ledger.height(), 5)
        except Exception:  # any failure to read the ledger is "unavailable", whatever raised it
            return False
        return True

    # -- execution plans -----------------------------------------------------------------------------------------
    async def approve_plan(self, plan_id: str) -> dict[str, Any]:
        """Approve a plan when the ledger is there to execute it; reject it (validation failure) when it is not."""
        if await self.healthy():
            approval: dict[str, Any] = {"status": "approved"}
        else:
            exc = FinP2PError(ErrorCode.LEDGER_UNREACHABLE, f"ledger {self.ledger.ledger_id} does not answer")
            failure = {"failureType": "validationFailure", **translate.error_info(exc)}
            approval = {"status": "rejected", "failure": failure}

        result = {"cid": uuid.uuid4().hex, "isCompleted": True, "approval": approval}

        def write(s: Session) -> None:
            row = s.get(AdapterPlanRow, plan_id) or AdapterPlanRow(
                plan_id=plan_id, status="", proposals="[]", updated_ms=0
            )
            row.status, row.updated_ms = approval["status"], now_ms()
            s.add(row)
            s.add(_answered("approvePlan", {"executionPlan": {"id": plan_id}}, result))

        await self.store.run(write)
        return result

    async def plan_proposal(self, plan_id: str, proposal: dict[str, Any]) -> dict[str, Any]:
        """Answer a proposal on a plan: approved for a plan this adapter approved, rejected for one it never saw."""
        cid = uuid.uuid4().hex

        def answer(s: Session) -> dict[str, Any]:
            approval = _proposal_answer(s, plan_id, proposal)
            result = {"cid": cid, "isCompleted": True, "approval": approval}
            s.add(_answered("planProposal", {"executionPlan": {"id": plan_id, "proposal": proposal}}, result))
            return result

        return await self.store.run(answer)

    async def plan_proposal_status(self, plan_id: str, proposal: dict[str, Any], status: str) -> None:
        def write(s: Session) -> None:
            row = s.get(AdapterPlanRow, plan_id) or AdapterPlanRow(
                plan_id=plan_id, status="unknown", proposals="[]", updated_ms=0
            )
            proposals = json.loads(row.proposals)
            proposals.append({"proposal": proposal, "status": status})
            if proposal.get("proposalType") == "cancel" and status == "approved":
                row.status = "cancelled"
            row.proposals, row.updated_ms = json.dumps(proposals), now_ms()
            s.add(row)

        await self.store.run(write)

    # -- account mapping -----------------------------------------------------------------------------------------
    async def map_owner(self, fin_id: str, accounts: dict[str, str], status: str) -> dict[str, Any]:
        """Create, update or (``status: inactive``) remove a FinID's accounts.

        As routers register owners: any hexadecimal finId up to 66 digits (test routers use short ones; FP7010 for
        one that is not hex), account fields beyond the ledger's kept as given (the declared ones checked by the
        ledger plugin, FP7010 otherwise). The account the ledger derives from a finId counts only for a finId that
        is a key (a point on secp256k1): nothing is provisioned, and no units move, for any other."""
        fin_id = _mapping_fin_id(fin_id)
        if not accounts:
            raise FinP2PError(ErrorCode.OPERATION_INVALID, "accountMappings is empty: give at least one account")
        declared = self._declared_fields()
        checked: dict[str, str] = {}
        for name, value in accounts.items():
            if name in declared:
                checked[name] = self.ledger.check_account(name, value)
            elif isinstance(value, str) and value.strip() and len(name) <= 128 and len(value) <= 1024:
                checked[name] = value  # a field of the router's own (e.g. custodyAccountId): kept, not interpreted
            else:
                raise FinP2PError(ErrorCode.OPERATION_INVALID, f"account field {name[:40]!r} needs a non-empty value")
        if status == "inactive":  # the owner's mapping goes: no later query returns it
            await self.store.run(lambda s: _delete_owner(s, fin_id))
            return {"finId": fin_id, "status": "inactive", "accountMappings": checked}
        derived = self._derived_accounts(fin_id)
        # An account the ledger did not derive is recorded for requests to name, but holds nothing this adapter
        # moves, so nothing is provisioned for it.
        own = bool(derived) and all(derived.get(name) == value for name, value in checked.items() if name in declared)

        def write(s: Session) -> None:
            row = s.get(AdapterOwnerRow, fin_id) or AdapterOwnerRow(
                fin_id=fin_id, status=status, accounts="{}", updated_ms=0
            )
            row.status, row.accounts, row.updated_ms = status, json.dumps(checked), now_ms()
            s.add(row)

        await self.store.run(write)
        return {
            "finId": fin_id,
            "status": status,
            "accountMappings": checked,
            "credentialCid": "none",
            "credentialStatus": "existing" if own else "skipped",
        }

    def _declared_fields(self) -> frozenset[str]:
        """The account fields the ledger declares (they do not change while it runs: read once)."""
        if self._fields is None:
            self._fields = frozenset(f["field"] for f in self.ledger.account_fields())
        return self._fields

    def _derived_accounts(self, fin_id: str) -> dict[str, str]:
        """The accounts the ledger derives from ``fin_id``: none unless it is a key someone can sign with."""
        try:
            check_point(fin_id)
        except FinP2PError:
            return {}
        return self.ledger.account_of(fin_id)

    async def owners(self, fin_ids: list[str] | None) -> list[dict[str, Any]]:
        def read(s: Session) -> list[AdapterOwnerRow]:
            # Active owners only: an inactive one is removed (and one an older version kept as inactive, skipped).
            query = select(AdapterOwnerRow).where(col(AdapterOwnerRow.status) == "active")
            query = query.order_by(col(AdapterOwnerRow.fin_id))
            if fin_ids is not None:
                query = query.where(col(AdapterOwnerRow.fin_id).in_([f.lower() for f in fin_ids]))
            return list(s.exec(query).all())

        return [
            {"finId": r.fin_id, "status": r.status, "accountMappings": json.loads(r.accounts)}
            for r in await self.store.run(read)
        ]

    async def accounts_of(self, fin_id: str) -> dict[str, str]:
        """The FinID's ledger accounts (the fields the ledger declares) when it has an active mapping, else the ones
        the ledger derives."""
        row = await self.store.run(lambda s: s.get(AdapterOwnerRow, fin_id))
        if row is not None and row.status == "active":
            declared = self._declared_fields()
            return {k: v for k, v in json.loads(row.accounts).items() if k in declared}
        return self._derived_accounts(fin_id)

    async def _check_ledger_account(self, fin_id: str, address: str) -> None:
        accounts = await self.accounts_of(fin_id)
        normal = {v.lower() for v in accounts.values()}
        if address.lower() not in normal:
            raise FinP2PError(
                ErrorCode.OPERATION_INVALID,
                f"ledger account {address} is not FinID {fin_id[:16]}…'s (its accounts: "
                f"{', '.join(accounts.values())})",
            )


def _repeated(request: OperationRequest, earlier: LedgerTransaction) -> FinP2PError:
    what = f"a {earlier.operation} of {earlier.quantity} {earlier.asset_id} in transaction {earlier.transaction_id}"
    if request.operation in SETTLES_HOLD and request.consent is None and earlier.operation in SETTLES_HOLD:
        detail = f"hold {request.operation_id!r} was settled already: {what}"
    else:
        detail = f"operation id {request.operation_id!r} was used already: {what}"
    return FinP2PError(ErrorCode.OPERATION_REPEATED, detail)


def _mapping_fin_id(fin_id: Any) -> str:
    if not isinstance(fin_id, str) or not _HEX.fullmatch(fin_id):
        raise FinP2PError(ErrorCode.OPERATION_INVALID, "finId must be a hexadecimal string (at most 66 digits)")
    return fin_id.lower()


def _delete_owner(s: Session, fin_id: str) -> None:
    row = s.get(AdapterOwnerRow, fin_id)
    if row is not None:
        s.delete(row)


#: An operation's columns in their order, for the statements written out for the driver.
_COLUMNS = tuple(AdapterOperationRow.model_fields)


def _claim_key(cursor: Any, m: str, row: AdapterOperationRow) -> tuple[AdapterOperationRow, bool]:
    """``row`` written, and ``True``; or the operation already holding its Idempotency-Key, and ``False``.

    Written out for the driver, as :func:`_write_result`: both are on every operation's path, and through a session
    they had the adapter's process at 8.1-8.2 ms of CPU a transfer against 5.7-6.3 now (``bench.adapter``, 16 in
    flight). A writer racing for the same key at the same moment stores nothing here and finds the other's row."""
    held = f"SELECT {', '.join(_COLUMNS)} FROM adapter_operation WHERE idempotency_key = {m}"  # noqa: S608
    found = cursor.execute(held, (row.idempotency_key,)).fetchone()
    if found is None:
        cursor.execute(
            f"INSERT INTO adapter_operation ({', '.join(_COLUMNS)}) VALUES ({', '.join([m] * len(_COLUMNS))}) "  # noqa: S608
            "ON CONFLICT (idempotency_key) DO NOTHING",
            tuple(getattr(row, c) for c in _COLUMNS),
        )
        if cursor.rowcount == 1:
            return row, True
        found = cursor.execute(held, (row.idempotency_key,)).fetchone()
    return AdapterOperationRow(**dict(zip(_COLUMNS, found, strict=True))), False


def _write_result(cursor: Any, m: str, values: tuple[Any, ...]) -> None:
    """An operation's result, its callback's state, operation and transaction ids: one UPDATE, nothing read."""
    cursor.execute(
        f"UPDATE adapter_operation SET state = 'done', result = {m}, callback = {m}, operation_id = {m}, "  # noqa: S608
        f"transaction_id = {m}, updated_ms = {m} WHERE cid = {m}",
        values,
    )


def _set(s: Session, cid: str, **values: Any) -> None:
    # One UPDATE, no read first: this write is on every operation's path.
    s.execute(
        sa.update(AdapterOperationRow).where(col(AdapterOperationRow.cid) == cid).values(**values, updated_ms=now_ms())
    )


def _proposal_answer(s: Session, plan_id: str, proposal: dict[str, Any]) -> dict[str, Any]:
    """Approved for a plan this adapter approved (and the proposal kept with it); rejected for any other."""
    row = s.get(AdapterPlanRow, plan_id)
    if row is None or row.status != "approved":
        return {
            "status": "rejected",
            "failure": {
                "failureType": "validationFailure",
                "code": int(ErrorCode.NOT_FOUND.code[2:]),
                "message": f"execution plan {plan_id!r} was not approved by this adapter",
            },
        }
    proposals = json.loads(row.proposals)
    proposals.append({"proposal": proposal, "answer": "approved"})
    row.proposals, row.updated_ms = json.dumps(proposals), now_ms()
    s.add(row)
    return {"status": "approved"}


def _answered(operation: str, body: dict[str, Any], result: dict[str, Any]) -> AdapterOperationRow:
    """An operation answered at once (an approval), kept so its cid can be asked about like any other."""
    now = now_ms()
    return AdapterOperationRow(
        cid=result["cid"],
        idempotency_key=f"{operation}:{result['cid']}",
        kind=kind_of(operation),
        operation=operation,
        request=json.dumps(body),
        request_hash="",
        state="done",
        result=json.dumps(result),
        created_ms=now,
        updated_ms=now,
    )
