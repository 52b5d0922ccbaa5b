"""Verifying a receipt bundle with nothing but the genesis and read access to the ledgers (what an auditor does).

Four checks, each with its own verdict: **held**, **failed**, or **unchecked** (it could not be checked, and why:
a ledger nobody gave a profile for, one that does not answer), so a ledger that is down never hides the other
verdicts:

- **receipt proof**: the proof's template is exactly FinP2P's ``Receipt`` message rebuilt from the receipt, and the
  signature over it is the issuer's FinID key's;
- **issuer**: the issuer's credential chain leads to a founding node of the genesis (with the revocation lists
  given), the issuer is the organization that manages the asset (the asset id's organization), and its signed
  statement says where the transaction is;
- **asset ledger transaction**: on the auditor's own connection to that ledger, the deployment is FinP2P's genuine
  code, the transaction exists, succeeded, says what the receipt says, and was submitted by the operator the issuer
  names;
- **recorded by the requester**: the requester's credential chain leads to the genesis, its signed record names its
  registry, which is FinP2P's genuine code and holds the receipt's hash (alone or under a Merkle root), recorded by
  the transaction named, submitted by the requester's operator.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finp2p.assets.receipts import NO_DESTINATION, OPERATION_TYPES, Bundle, LedgerPlace, Party, check_proof
from finp2p.components import ComponentContext
from finp2p.config import Settings
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import keys, merkle
from finp2p.identity.credentials import chain_from
from finp2p.identity.genesis import Genesis
from finp2p.identity.revocation import RevocationList
from finp2p.identity.trust import Identity, Trust
from finp2p.ledger import Ledger, LedgerProfile, LedgerTransaction
from finp2p.ledger_profiles import open_ledger
from finp2p.plugins import PluginManager
from finp2p.resource_id import ResourceId

HELD, FAILED, UNCHECKED = "held", "failed", "unchecked"
#: Errors that say a ledger could not be asked, not that the receipt is wrong.
CANNOT_ASK = frozenset({ErrorCode.LEDGER_UNREACHABLE, ErrorCode.LEDGER_TIMEOUT, ErrorCode.LEDGER_NO_PROFILE})
MISMATCH, UNRECORDED = ErrorCode.RECEIPT_LEDGER_MISMATCH, ErrorCode.RECEIPT_NOT_RECORDED


@dataclass(frozen=True)
class Check:
    """One check's verdict: held, failed (with the code that says why) or unchecked (the ledger could not be asked).

    A failed check's ``code`` is FP7001 ``RECEIPT_BAD_SIGNATURE`` (the proof), FP7011 ``RECEIPT_UNTRUSTED`` (who
    signed), FP7003 ``RECEIPT_LEDGER_MISMATCH`` (the asset ledger's transaction), FP7004 ``RECEIPT_NOT_RECORDED``
    (the requester's record), or the code of the error met on the way.
    """

    name: str
    status: str
    detail: str
    code: ErrorCode | None = None

    @property
    def ok(self) -> bool:
        return self.status == HELD

    def to_dict(self) -> dict[str, Any]:
        out = {"check": self.name, "status": self.status, "ok": self.ok, "detail": self.detail}
        if self.code is not None:
            out["code"] = self.code.code
        return out


class Auditor:
    """Verifies bundles against one genesis. ``ledgers``: the ledgers the auditor reaches itself, by ledger id (the
    auditor's profiles, opened read-only, or a node's own ledgers); a bundle only names which deployment on them
    (its contracts, :meth:`finp2p.ledger.Ledger.view`). Where a bundle says a ledger is reached is used only with
    ``bundle_endpoints``: nobody signs it."""

    def __init__(
        self,
        genesis: Genesis,
        ledgers: Mapping[str, Ledger] | None = None,
        revocations: Sequence[RevocationList] = (),
        *,
        bundle_endpoints: bool = False,
        plugins: PluginManager | None = None,
        work_dir: Path | None = None,
    ) -> None:
        self.genesis = genesis
        self.ledgers = dict(ledgers or {})
        self.revocations = list(revocations)
        self.bundle_endpoints = bundle_endpoints
        self.plugins = plugins or PluginManager()
        self.work_dir = work_dir or Path.cwd()
        self._open: dict[str, Ledger] = {}  # ledgers opened from bundles (bundle_endpoints only)

    async def verify(self, bundle: Bundle) -> list[Check]:
        return [
            self._proof(bundle),
            self._issuer(bundle),
            await self._guard("asset ledger transaction", self._transaction(bundle)),
            await self._guard("recorded by the requester", self._recorded(bundle)),
        ]

    async def close(self) -> None:
        for ledger in self._open.values():
            await ledger.close()
        self._open.clear()

    async def check_transaction(self, bundle: Bundle) -> Check:
        """Whether the asset's ledger has the receipt's transaction, succeeded, saying what the receipt says."""
        return await self._guard("asset ledger transaction", self._transaction(bundle))

    # -- the checks ----------------------------------------------------------------------------------------------
    def _proof(self, bundle: Bundle) -> Check:
        name = "receipt proof"
        try:
            check_proof(bundle.receipt, bundle.proof, bundle.issuer.fin_id)
        except FinP2PError as exc:
            return Check(name, FAILED, str(exc), exc.code)
        d = bundle.domain
        where = f"domain FinP2P/1, chain {d.chain_id}, contract {d.verifying_contract[:10]}…"
        return Check(name, HELD, f"FinP2P Receipt ({where}) signed by {bundle.issuer.fin_id[:16]}…")

    def _issuer(self, bundle: Bundle) -> Check:
        name = "issuer"
        receipt = bundle.receipt
        try:
            # The credential had to be valid when the receipt was made; a revocation counts whenever it came.
            identity = self._identity(bundle.issuer, at=receipt.timestamp)
            manager = _manager(receipt.asset_id)
            if identity.org_id != manager:
                return Check(
                    name,
                    FAILED,
                    f"the receipt is signed by {identity.org_id}, but {receipt.asset_id} is managed by {manager}: "
                    "only the asset's organization issues its receipts",
                    ErrorCode.RECEIPT_UNTRUSTED,
                )
            bundle.check_statement()
        except FinP2PError as exc:
            return Check(name, FAILED, str(exc), exc.code)
        founder = identity.chain[-1].issuer[:16]
        return Check(
            name, HELD, f"{identity.org_id} manages {receipt.asset_id}, certified up to founding node {founder}…"
        )

    async def _transaction(self, bundle: Bundle) -> Check:
        name = "asset ledger transaction"
        receipt, place = bundle.receipt, bundle.asset_ledger
        ledger = self._ledger(place)
        await ledger.verify_deployment()
        tx = await ledger.transaction(receipt.id)
        if tx is None:
            return Check(
                name, FAILED, f"{place.ledger_id} has no transaction {receipt.id} in that deployment", MISMATCH
            )
        if not tx.succeeded:
            return Check(name, FAILED, f"transaction {receipt.id} failed on {place.ledger_id}", MISMATCH)
        differ = _differences(bundle, tx)
        if differ:
            return Check(name, FAILED, "; ".join(differ), MISMATCH)
        submitted = self._operator(ledger, place, tx, bundle.issuer)
        if submitted is not None:
            return Check(name, FAILED, submitted, MISMATCH)
        return Check(
            name,
            HELD,
            f"{receipt.operation_type} in block {tx.height} of {place.ledger_id}, submitted by "
            f"{bundle.issuer.org_id}'s operator, matches",
        )

    async def _recorded(self, bundle: Bundle) -> Check:
        name = "recorded by the requester"
        record = bundle.record
        if record is None:
            return Check(
                name, FAILED, "the bundle has no record: the requester did not record this receipt", UNRECORDED
            )
        identity = self._identity(record.requester, at=None)
        digest = bundle.digest()
        keys.verify(record.requester.fin_id, "receipt", record.signed_part(digest), record.signature)
        ledger = self._ledger(record.ledger)
        await ledger.verify_deployment()
        proof = [keys.decode_hex(p.removeprefix("0x"), "a proof hash", 32) for p in record.proof]
        if not await ledger.receipt_recorded(digest, proof):
            return Check(
                name,
                FAILED,
                f"the registry {identity.org_id} names on {record.ledger.ledger_id} does not hold it",
                UNRECORDED,
            )
        tx = await ledger.transaction(record.transaction_id)
        root = "0x" + merkle.root_of(digest, proof).hex()
        if tx is None or not tx.succeeded or tx.event.get("root") != root:
            return Check(name, FAILED, f"transaction {record.transaction_id} did not record root {root}", UNRECORDED)
        submitted = self._operator(ledger, record.ledger, tx, record.requester)
        if submitted is not None:
            return Check(name, FAILED, submitted, UNRECORDED)
        return Check(
            name,
            HELD,
            f"recorded by {identity.org_id} on {record.ledger.ledger_id} in block {tx.height} (batch of {tx.quantity})",
        )

    # -- helpers -------------------------------------------------------------------------------------------------
    def _identity(self, party: Party, *, at: int | None) -> Identity:
        trust = Trust(self.genesis, clock=(lambda: float(at)) if at is not None else time.time)
        for rl in self.revocations:
            trust.accept_revocations(rl)
        identity = trust.verify_chain(chain_from(party.chain), role="organization")
        if identity.fin_id != party.fin_id or identity.org_id != party.org_id:
            raise FinP2PError(
                ErrorCode.RECEIPT_UNTRUSTED,
                f"the chain is of {identity.org_id} ({identity.fin_id[:16]}…), not of {party.org_id} "
                f"({party.fin_id[:16]}…)",
            )
        return identity

    @staticmethod
    def _operator(ledger: Ledger, place: LedgerPlace, tx: LedgerTransaction, party: Party) -> str | None:
        """Why ``tx`` was not submitted by the operator ``party`` names (``None`` when it was)."""
        if not tx.submitter or tx.submitter.lower() != place.operator.lower():
            return (
                f"transaction {tx.transaction_id} was submitted by {tx.submitter}, not by {party.org_id}'s operator "
                f"{place.operator} (as its signed statement names it)"
            )
        return None

    async def _guard(self, name: str, work: Awaitable[Check]) -> Check:
        try:
            return await work
        except FinP2PError as exc:
            return Check(name, UNCHECKED if exc.code in CANNOT_ASK else FAILED, str(exc), exc.code)

    def _ledger(self, place: LedgerPlace) -> Ledger:
        """The deployment ``place`` names, on a ledger the auditor reaches itself (found by its id)."""
        own = self.ledgers.get(place.ledger_id)
        if own is not None:
            return own.view(place.settings)
        if not self.bundle_endpoints:
            raise FinP2PError(
                ErrorCode.LEDGER_NO_PROFILE,
                f"no ledger profile of yours reaches {place.ledger_id}: pass one with --ledger (or, trusting the "
                "bundle's unsigned endpoint, --use-bundle-endpoints)",
            )
        key = json.dumps([place.kind, place.ledger_id, place.settings], sort_keys=True, default=str)
        if key not in self._open:
            context = ComponentContext(Settings(), self.work_dir, self.plugins)
            profile = LedgerProfile(place.kind, place.ledger_id, {**place.settings, "read_only": True})
            self._open[key] = open_ledger(profile, context)
        return self._open[key]


def _manager(asset_id: str) -> str:
    """The organization that manages an asset: its resource id's organization."""
    try:
        return ResourceId.parse(asset_id).org_id
    except FinP2PError:
        raise FinP2PError(
            ErrorCode.RECEIPT_UNTRUSTED, f"{asset_id!r} is not a FinP2P asset id: its manager cannot be known"
        ) from None


def _differences(bundle: Bundle, tx: LedgerTransaction) -> list[str]:
    """What the ledger's record of ``tx`` says otherwise than the receipt."""
    receipt = bundle.receipt
    ledger_operation = str(tx.operation)
    said: dict[str, Any] = {
        "operation": receipt.operation_type,
        "operation id": receipt.operation_id,
        "asset": receipt.asset_id,
        "quantity": receipt.quantity_units,
        "source": receipt.source_fin_id,
        "timestamp": receipt.timestamp,
    }
    found: dict[str, Any] = {
        "operation": OPERATION_TYPES.get(ledger_operation, ledger_operation),
        "operation id": tx.operation_id or None,
        "asset": tx.asset_id,
        "quantity": tx.quantity,
        "source": tx.source,
        "timestamp": tx.timestamp,
    }
    if ledger_operation not in NO_DESTINATION:
        said["destination"], found["destination"] = receipt.destination_fin_id, tx.destination
    elif receipt.destination is not None:
        said["destination"], found["destination"] = receipt.destination_fin_id, None
    return [f"{k}: receipt {said[k]!r}, ledger {found[k]!r}" for k in said if said[k] != found[k]]
