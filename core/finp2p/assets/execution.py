"""One operation on one ledger, exactly once: the part of executing that the primary node and the ledger-adapter
server share.

Whoever calls :func:`execute_once` has written the operation down before (so a crash leaves a trace to resume
from). A resumed operation is looked up on the ledger by its operation id before anything is submitted, and a
submission the ledger refuses because the operation id is spent is answered with the transaction that spent it:
either way an operation that reached the ledger is never submitted again.
"""

from __future__ import annotations

from finp2p.assets.operations import OperationRequest
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.ledger import Ledger, LedgerTransaction, OperationType


async def execute_once(ledger: Ledger, request: OperationRequest, *, resumed: bool) -> LedgerTransaction:
    """Execute ``request`` on ``ledger`` unless it already happened; the transaction that executed it either way."""
    op, op_id = request.operation, request.operation_id
    if resumed:
        found = await ledger.find_operation(op_id, op)
        if found is not None:
            return _same(found, request)
    try:
        return await run_on(ledger, request)
    except FinP2PError as exc:
        if exc.code is not ErrorCode.LEDGER_OPERATION_ID_USED:
            raise
        found = await ledger.find_operation(op_id, op)  # it reached the ledger before it could be written down
        if found is None:
            raise
        return _same(found, request)


def _same(found: LedgerTransaction, request: OperationRequest) -> LedgerTransaction:
    """``found`` when it is this request's operation; FP7005 when the operation id was spent on another one (the
    same id asked again for another asset or quantity must not be answered with someone else's receipt)."""
    if (found.asset_id, found.quantity) != (request.asset_id, request.quantity):
        raise FinP2PError(
            ErrorCode.OPERATION_ID_CONFLICT,
            f"operation id {request.operation_id!r} was spent on {found.quantity} of {found.asset_id} "
            f"(transaction {found.transaction_id})",
        )
    return found


async def run_on(ledger: Ledger, r: OperationRequest) -> LedgerTransaction:
    """Submit ``r`` to ``ledger`` (no lookup first: see :func:`execute_once`)."""
    src, dst = str(r.source), str(r.destination)
    match r.operation:
        case OperationType.ISSUE:
            return await ledger.issue(r.asset_id, dst, r.quantity, r.operation_id)
        case OperationType.TRANSFER:
            assert r.consent is not None
            return await ledger.transfer(r.asset_id, src, dst, r.quantity, r.operation_id, r.consent)
        case OperationType.REDEEM:
            return await ledger.redeem(r.asset_id, src, r.quantity, r.operation_id, r.consent)
        case OperationType.HOLD:
            assert r.consent is not None
            return await ledger.hold(r.asset_id, src, r.destination, r.quantity, r.operation_id, r.expiry, r.consent)
        case OperationType.RELEASE:
            return await ledger.release(r.asset_id, src, dst, r.quantity, r.operation_id)
        case OperationType.ROLLBACK:
            return await ledger.rollback(r.asset_id, src, r.quantity, r.operation_id)
    raise AssertionError(r.operation)
