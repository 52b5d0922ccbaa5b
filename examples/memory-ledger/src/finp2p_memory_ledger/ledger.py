"""The ``memory`` ledger: the whole :class:`finp2p.ledger.Ledger` contract in one module, kept in memory.

Copy it to start a ledger plugin: keep the checks and their error codes, and replace :class:`_State` with your
ledger. Each write is one block, and every block keeps its time: balances are read at any past height, and
``height_at`` finds a block by its time. Nothing between a method's checks and its writes suspends, so concurrent
calls cannot interleave; a ledger behind a network relies on the ledger itself to refuse the second of two
conflicting writes (as a contract does). Everything is gone when the process exits.
"""

from __future__ import annotations

import bisect
import copy
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from finp2p import hookimpl
from finp2p.components import ComponentContext, ComponentKind
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import merkle
from finp2p.identity.keys import check_fin_id, verify_digest
from finp2p.identity.templates import hash_list_template, template_digest
from finp2p.ledger import Balance, Ledger, LedgerTransaction, OperationType, OwnerConsent

_SETTINGS = {"ledger_id", "profile_dir", "operator"}


@hookimpl
def finp2p_ledger_kinds() -> list[ComponentKind[Ledger]]:
    return [ComponentKind("memory", build_ledger, "in-memory ledger, kept until the process exits (an example)")]


def build_ledger(settings: dict[str, Any], context: ComponentContext) -> Ledger:
    """The factory: a profile's ``[settings]`` (the node adds ``ledger_id`` and ``profile_dir``) may name the
    ``operator``, the only submitter the ledger accepts and the ``submitter`` of its transactions."""
    unknown = sorted(set(settings) - _SETTINGS)
    if unknown:
        raise FinP2PError(ErrorCode.LEDGER_PROFILE, f"a memory ledger has no setting {', '.join(unknown)}")
    return MemoryLedger(str(settings["ledger_id"]), operator=str(settings.get("operator", "operator")))


@dataclass
class _State:
    """One deployment, shared by every :class:`MemoryLedger` that submits to it."""

    operator: str
    clock: Callable[[], int]
    blocks: list[int]  # the time of each block; the height is the last index
    supply: dict[str, int] = field(default_factory=dict)  # every asset created, with the units that exist
    history: dict[tuple[str, str], list[tuple[int, int, int]]] = field(default_factory=dict)  # (height, avail, held)
    holds: dict[str, LedgerTransaction] = field(default_factory=dict)  # active holds by operation id
    spent: set[str] = field(default_factory=set)  # operation ids
    operations: dict[tuple[str, str], LedgerTransaction] = field(default_factory=dict)  # (operation id, kind)
    transactions: dict[str, LedgerTransaction] = field(default_factory=dict)
    consents: set[bytes] = field(default_factory=set)  # digests of routers' templates that authorised an operation
    receipts: dict[bytes, LedgerTransaction] = field(default_factory=dict)  # recorded roots


class MemoryLedger(Ledger):
    """A ledger that submits as ``operator``; :meth:`as_submitter` gives the same ledger as another identity.
    ``clock`` is the ledger's time in unix seconds (a test moves it to expire holds)."""

    def __init__(
        self, ledger_id: str = "memory:local", *, operator: str = "operator", clock: Callable[[], int] | None = None
    ) -> None:
        self.ledger_id = ledger_id
        self.submitter = operator
        clock = clock or (lambda: int(time.time()))
        self._s = _State(operator, clock, [clock()])

    def as_submitter(self, submitter: str) -> MemoryLedger:
        """This ledger's state, as ``submitter`` sees it: it reads everything and may write nothing."""
        other = copy.copy(self)
        other.submitter = submitter
        return other

    # -- operations ----------------------------------------------------------------------------------------------
    async def create_asset(self, asset_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
        _text(asset_id, "asset id")
        self._operator()
        if asset_id in self._s.supply:
            raise FinP2PError(ErrorCode.LEDGER_ASSET_EXISTS, f"{asset_id} exists already on {self.ledger_id}")
        self._s.supply[asset_id] = 0
        return {"tokenId": asset_id}

    async def issue(self, asset_id: str, destination: str, quantity: int, operation_id: str) -> LedgerTransaction:
        self._check(asset_id, operation_id, quantity, destination)
        self._unspent(operation_id)
        self._add(asset_id, destination, available=quantity)
        self._s.supply[asset_id] += quantity
        return self._commit(OperationType.ISSUE, operation_id, asset_id, quantity, destination=destination)

    async def transfer(
        self, asset_id: str, source: str, destination: str, quantity: int, operation_id: str, consent: OwnerConsent
    ) -> LedgerTransaction:
        self._check(asset_id, operation_id, quantity, source, destination)
        self._unspent(operation_id)
        own = await self.consent_template(OperationType.TRANSFER, asset_id, source, destination, quantity, operation_id)
        router = self._authorise(consent, own, source)
        self._debit(asset_id, source, quantity)
        self._add(asset_id, destination, available=quantity)
        return self._commit(OperationType.TRANSFER, operation_id, asset_id, quantity, source, destination, router)

    async def redeem(
        self, asset_id: str, source: str, quantity: int, operation_id: str, consent: OwnerConsent | None
    ) -> LedgerTransaction:
        self._check(asset_id, operation_id, quantity, source)
        router: bytes | None = None
        if operation_id in self._s.holds:  # from the hold: the owner consented when the units were held
            self._settle(operation_id, asset_id, source, quantity)
        else:
            self._unspent(operation_id)
            own = await self.consent_template(OperationType.REDEEM, asset_id, source, None, quantity, operation_id)
            router = self._authorise(consent, own, source)
            self._debit(asset_id, source, quantity)
        self._s.supply[asset_id] -= quantity
        return self._commit(OperationType.REDEEM, operation_id, asset_id, quantity, source, None, router)

    async def hold(
        self,
        asset_id: str,
        source: str,
        destination: str | None,
        quantity: int,
        operation_id: str,
        expiry: int,
        consent: OwnerConsent,
    ) -> LedgerTransaction:
        if isinstance(expiry, bool) or not isinstance(expiry, int) or expiry < 0:
            raise FinP2PError(ErrorCode.LEDGER_INVALID_QUANTITY, f"expiry {expiry!r} is not a unix time, or 0")
        self._check(asset_id, operation_id, quantity, source, destination)
        self._unspent(operation_id)
        own = await self.consent_template(
            OperationType.HOLD, asset_id, source, destination, quantity, operation_id, expiry
        )
        router = self._authorise(consent, own, source)
        self._debit(asset_id, source, quantity, held=quantity)
        tx = self._commit(OperationType.HOLD, operation_id, asset_id, quantity, source, destination, router, expiry)
        self._s.holds[operation_id] = tx
        return tx

    async def release(
        self, asset_id: str, source: str, destination: str, quantity: int, operation_id: str
    ) -> LedgerTransaction:
        self._check(asset_id, operation_id, quantity, source, destination)
        hold = self._s.holds.get(operation_id)
        if hold is not None and hold.destination not in (None, destination):  # None: the hold names no payee
            raise FinP2PError(ErrorCode.LEDGER_HOLD_MISMATCH, f"hold {operation_id} pays {hold.destination}")
        self._settle(operation_id, asset_id, source, quantity)
        self._add(asset_id, destination, available=quantity)
        return self._commit(OperationType.RELEASE, operation_id, asset_id, quantity, source, destination)

    async def rollback(self, asset_id: str, source: str, quantity: int, operation_id: str) -> LedgerTransaction:
        self._check(asset_id, operation_id, quantity, source)
        self._settle(operation_id, asset_id, source, quantity, rollback=True)
        return self._commit(OperationType.ROLLBACK, operation_id, asset_id, quantity, source)

    # -- the owner's consent -------------------------------------------------------------------------------------
    async def consent_template(
        self,
        operation: OperationType,
        asset_id: str,
        source: str,
        destination: str | None,
        quantity: int,
        operation_id: str,
        expiry: int = 0,
    ) -> dict[str, Any]:
        """A ``hashList`` template: a first group naming this ledger, by which its own templates are told from a
        router's, then the operation's fields."""
        if operation not in (OperationType.TRANSFER, OperationType.HOLD, OperationType.REDEEM):
            raise FinP2PError(ErrorCode.LEDGER_INVALID_FIELD, f"{operation} needs no owner consent")
        fields = [
            ("operation", operation.value),
            ("operationId", operation_id),
            ("assetId", asset_id),
            ("source", source),
            ("destination", destination or ""),
            ("quantity", str(quantity)),
            ("expiry", str(expiry)),
        ]
        return hash_list_template([[("ledger", self.ledger_id)], fields])

    def _authorise(self, consent: OwnerConsent | None, own: dict[str, Any], source: str) -> bytes | None:
        """Check the source's consent: over this ledger's template for exactly this operation, or over a router's
        template (which the caller checked against the operation), once. Returns a router template's digest."""
        if consent is None:
            raise FinP2PError(ErrorCode.LEDGER_BAD_SIGNATURE, "the operation needs the source's consent")
        if consent.template not in ("hashList", "EIP712"):
            raise FinP2PError(ErrorCode.LEDGER_UNSUPPORTED_CONSENT, f"cannot check a {consent.template!r} consent")
        digest = template_digest(consent.payload, consent.hash_func)  # CONSENT_INVALID when it is not well formed
        router = digest.hex() != own["hash"]
        if router and (consent.payload.get("hashGroups") or [None])[0] == own["hashGroups"][0]:
            raise FinP2PError(ErrorCode.LEDGER_BAD_SIGNATURE, "the consent was given for another operation")
        if router and digest in self._s.consents:
            raise FinP2PError(ErrorCode.LEDGER_CONSENT_USED, "this signed template authorised an operation already")
        if consent.signer != source or not _signed(source, digest, consent.signature):
            raise FinP2PError(ErrorCode.LEDGER_BAD_SIGNATURE, "the consent is not the source's signature")
        return digest if router else None

    # -- checks and writes ---------------------------------------------------------------------------------------
    def _check(self, asset_id: str, operation_id: str, quantity: int, *accounts: str | None) -> None:
        """What is refused before anything reaches the ledger, then a submitter other than the operator."""
        _text(asset_id, "asset id")
        _text(operation_id, "operation id")
        for account in accounts:
            if account is not None:
                _fin_id(account)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity < 2**256:
            raise FinP2PError(ErrorCode.LEDGER_INVALID_QUANTITY, f"quantity {quantity!r} is not a positive integer")
        if asset_id not in self._s.supply:
            raise FinP2PError(ErrorCode.LEDGER_UNKNOWN_ASSET, f"no asset {asset_id} on {self.ledger_id}")
        self._operator()

    def _operator(self) -> None:
        if self.submitter != self._s.operator:
            raise FinP2PError(ErrorCode.LEDGER_NOT_OPERATOR, f"{self.submitter} is not this ledger's operator")

    def _unspent(self, operation_id: str) -> None:
        if operation_id in self._s.spent:
            raise FinP2PError(ErrorCode.LEDGER_OPERATION_ID_USED, f"operation id {operation_id} is spent")

    def _settle(self, operation_id: str, asset_id: str, source: str, quantity: int, *, rollback: bool = False) -> None:
        """Close the active hold of ``operation_id``: pay out ``quantity`` of it before its expiry and return the
        rest to its source, or, for a rollback, return all of it."""
        hold = self._s.holds.get(operation_id)
        if hold is None:
            raise FinP2PError(ErrorCode.LEDGER_UNKNOWN_HOLD, f"no active hold {operation_id}")
        if (hold.asset_id, hold.source) != (asset_id, source):
            raise FinP2PError(ErrorCode.LEDGER_HOLD_MISMATCH, f"hold {operation_id} is another asset's or source's")
        expiry = hold.event["expiry"]
        if not rollback and expiry and self._now() > expiry:
            raise FinP2PError(ErrorCode.LEDGER_HOLD_EXPIRED, f"hold {operation_id} expired at {expiry}")
        if quantity > hold.quantity or (rollback and quantity != hold.quantity):
            raise FinP2PError(ErrorCode.LEDGER_HOLD_QUANTITY, f"{quantity} of the {hold.quantity} held")
        del self._s.holds[operation_id]
        paid = 0 if rollback else quantity
        self._add(asset_id, source, available=hold.quantity - paid, held=-hold.quantity)

    def _debit(self, asset_id: str, fin_id: str, quantity: int, held: int = 0) -> None:
        """The last check of an operation (the source has ``quantity`` available), and its first write."""
        available = self._s.history.get((asset_id, fin_id), [(0, 0, 0)])[-1][1]
        if available < quantity:
            raise FinP2PError(ErrorCode.LEDGER_INSUFFICIENT_BALANCE, f"{available} available, needs {quantity}")
        self._add(asset_id, fin_id, available=-quantity, held=held)

    def _add(self, asset_id: str, fin_id: str, available: int = 0, held: int = 0) -> None:
        """Change a balance in the block being written (the next height)."""
        entries = self._s.history.setdefault((asset_id, fin_id), [(0, 0, 0)])
        height = len(self._s.blocks)
        last, was_available, was_held = entries[-1]
        if last == height:  # changed already in this block
            entries.pop()
        entries.append((height, was_available + available, was_held + held))

    def _commit(
        self,
        operation: OperationType | str,
        operation_id: str,
        asset_id: str,
        quantity: int,
        source: str | None = None,
        destination: str | None = None,
        router: bytes | None = None,
        expiry: int | None = None,
        event: dict[str, Any] | None = None,
    ) -> LedgerTransaction:
        """Write the block of one transaction, after the balances it changed; spend its operation id and the
        router's template that authorised it."""
        s, event = self._s, event or {}
        if router is not None:
            s.consents.add(router)
            event["consent_template"] = router.hex()
        if expiry is not None:
            event["expiry"] = expiry
        tx = LedgerTransaction(
            ledger_id=self.ledger_id,
            transaction_id="0x" + secrets.token_hex(32),
            operation=operation,
            operation_id=operation_id,
            asset_id=asset_id,
            quantity=quantity,
            succeeded=True,
            height=len(s.blocks),
            timestamp=self._now(),
            source=source,
            destination=destination,
            event=event,
            submitter=self.submitter,
        )
        s.blocks.append(tx.timestamp)
        s.transactions[tx.transaction_id] = tx
        if isinstance(operation, OperationType):
            s.spent.add(operation_id)
            s.operations[operation_id, operation] = tx
        return tx

    def _now(self) -> int:
        return max(self._s.clock(), self._s.blocks[-1])  # block times never go back

    # -- reads ---------------------------------------------------------------------------------------------------
    async def balance(self, asset_id: str, fin_id: str, height: int | None = None) -> Balance:
        _fin_id(fin_id)
        current = len(self._s.blocks) - 1
        if height is None:
            height = current
        elif not 0 <= height <= current:
            raise FinP2PError(ErrorCode.LEDGER_NO_HISTORY, f"height {height} is not on this ledger (at {current})")
        entries = self._s.history.get((asset_id, fin_id), [(0, 0, 0)])
        available, held = next((a, h) for at, a, h in reversed(entries) if at <= height)
        return Balance(asset_id, fin_id, available, held, height)

    def supply(self, asset_id: str) -> int:
        """The units of ``asset_id`` that exist (issued less redeemed), as the ledger counts them."""
        return self._s.supply.get(asset_id, 0)

    async def transaction(self, transaction_id: str) -> LedgerTransaction | None:
        return self._s.transactions.get(transaction_id)

    async def find_operation(self, operation_id: str, operation: OperationType) -> LedgerTransaction | None:
        return self._s.operations.get((operation_id, operation))

    async def height(self) -> int:
        return len(self._s.blocks) - 1

    async def height_at(self, timestamp: int) -> int:
        height = bisect.bisect_right(self._s.blocks, timestamp) - 1
        if height < 0:
            raise FinP2PError(ErrorCode.LEDGER_NO_HISTORY, f"this ledger starts at {self._s.blocks[0]}")
        return height

    def check_account(self, field: str, value: str) -> str:
        """A FinID is its own account here (the default :meth:`account_of`): anything else is FP7010."""
        super().check_account(field, value)
        try:
            return check_fin_id(value.lower())
        except FinP2PError:
            raise FinP2PError(ErrorCode.OPERATION_INVALID, f"{field} {value[:20]!r} is not a FinID") from None

    # -- the receipt registry ------------------------------------------------------------------------------------
    async def record_receipts(self, receipt_hashes: list[bytes]) -> LedgerTransaction:
        try:
            root = merkle.root(receipt_hashes)
        except ValueError as exc:  # no hashes, or one that is not 32 bytes
            raise FinP2PError(ErrorCode.LEDGER_INVALID_QUANTITY, f"record receipts: {exc}") from None
        self._operator()
        if root in self._s.receipts:
            raise FinP2PError(ErrorCode.LEDGER_ALREADY_RECORDED, f"0x{root.hex()} is recorded already")
        root_hex, count = "0x" + root.hex(), len(receipt_hashes)
        tx = self._commit("record-receipts", root_hex, "", count, event={"root": root_hex, "count": count})
        self._s.receipts[root] = tx
        return tx

    async def receipt_recorded(self, receipt_hash: bytes, proof: Sequence[bytes] = ()) -> bool:
        return merkle.root_of(receipt_hash, proof) in self._s.receipts

    async def find_receipts_record(self, root: bytes) -> LedgerTransaction | None:
        return self._s.receipts.get(root)


def _text(value: Any, what: str) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= 1024:
        raise FinP2PError(ErrorCode.LEDGER_INVALID_FIELD, f"the {what} must be a string of 1 to 1024 characters")


def _fin_id(value: Any) -> None:
    try:
        check_fin_id(value)
    except FinP2PError:
        raise FinP2PError(ErrorCode.LEDGER_INVALID_ACCOUNT, f"{str(value)[:20]!r} is not a FinID") from None


def _signed(fin_id: str, digest: bytes, signature: str) -> bool:
    """Whether ``signature`` (hex of r || s, or of r || s || v as wallets write it) is ``fin_id``'s over ``digest``."""
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
        return verify_digest(fin_id, digest, raw[:64] if len(raw) == 65 else raw)
    except (ValueError, FinP2PError):  # not hex, not 64 bytes, high S, or a FinID off the curve
        return False
