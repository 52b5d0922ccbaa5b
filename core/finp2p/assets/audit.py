"""Verifying a receipt bundle with nothing but the genesis and read access to the ledgers (what an auditor does).

Four checks, each reported with what it found: the receipt's signature; the issuer's credential chain up to a
founding node of the genesis (and not revoked, given the revocation lists the auditor holds); the transaction on
the asset's ledger (it exists, it succeeded, its event says what the receipt says); and the record on the
requester's ledger (its receipt registry holds the receipt's hash, alone or in a recorded batch).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finp2p.assets import merkle
from finp2p.assets.receipts import Bundle
from finp2p.components import ComponentContext
from finp2p.config import Settings
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.credentials import chain_from
from finp2p.identity.genesis import Genesis
from finp2p.identity.revocation import RevocationList
from finp2p.identity.trust import Trust
from finp2p.ledger import Ledger, LedgerProfile
from finp2p.ledger_profiles import open_ledger
from finp2p.plugins import PluginManager


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


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
        checks = [self._signature(bundle), self._issuer(bundle)]
        checks.append(await self._guard("asset ledger transaction", self._transaction(bundle)))
        if bundle.record is None:
            checks.append(Check("recorded by the requester", False, "the bundle has no record"))
        else:
            checks.append(await self._guard("recorded by the requester", self._recorded(bundle)))
        return checks

    async def close(self) -> None:
        for ledger in self._open.values():
            await ledger.close()
        self._open.clear()

    # -- the checks ----------------------------------------------------------------------------------------------
    def _signature(self, bundle: Bundle) -> Check:
        try:
            bundle.signed.check_signature()
        except FinP2PError as exc:
            return Check("receipt signature", False, str(exc))
        return Check("receipt signature", True, f"EIP-712 Receipt signed by {bundle.signed.signer[:16]}…")

    def _issuer(self, bundle: Bundle) -> Check:
        receipt = bundle.signed.receipt
        # The credential had to be valid when the receipt was signed; a revocation counts whenever it came.
        trust = Trust(self.genesis, clock=lambda: float(receipt.timestamp))
        try:
            for rl in self.revocations:
                trust.accept_revocations(rl)
            identity = trust.verify_chain(chain_from(bundle.issuer_chain), role="organization")
        except FinP2PError as exc:
            return Check("issuer credential chain", False, str(exc))
        if identity.fin_id != bundle.signed.signer or identity.org_id != bundle.issuer_org:
            detail = f"the chain is of {identity.org_id} ({identity.fin_id[:16]}…), not of the receipt's signer"
            return Check("issuer credential chain", False, detail)
        founder = identity.chain[-1].issuer[:16]
        return Check("issuer credential chain", True, f"{identity.org_id} certified up to founding node {founder}…")

    async def check_transaction(self, bundle: Bundle) -> Check:
        """Whether the asset's ledger has the receipt's transaction, succeeded, saying what the receipt says."""
        return await self._guard("asset ledger transaction", self._transaction(bundle))

    async def _transaction(self, bundle: Bundle) -> Check:
        receipt = bundle.signed.receipt
        ledger = self._ledger(receipt.ledger_id, bundle.asset_ledger)
        tx = await ledger.transaction(receipt.transaction_id)
        name = "asset ledger transaction"
        if tx is None:
            return Check(name, False, f"{receipt.ledger_id} has no transaction {receipt.transaction_id}")
        if not tx.succeeded:
            return Check(name, False, f"transaction {receipt.transaction_id} failed on {receipt.ledger_id}")
        said = {
            "operation": receipt.operation_type,
            "operation id": receipt.operation_id,
            "asset": receipt.asset_id,
            "quantity": receipt.quantity,
            "source": receipt.source,
            "destination": receipt.destination,
            "timestamp": receipt.timestamp,
        }
        found = {
            "operation": str(tx.operation),
            "operation id": tx.operation_id,
            "asset": tx.asset_id,
            "quantity": tx.quantity,
            "source": tx.source,
            "destination": tx.destination,
            "timestamp": tx.timestamp,
        }
        differ = [f"{k}: receipt {said[k]!r}, ledger {found[k]!r}" for k in said if said[k] != found[k]]
        if differ:
            return Check(name, False, "; ".join(differ))
        return Check(name, True, f"{receipt.operation_type} in block {tx.height} of {receipt.ledger_id} matches")

    async def _recorded(self, bundle: Bundle) -> Check:
        assert bundle.record is not None
        record = bundle.record
        name = "recorded by the requester"
        ledger_id = str(record.ledger.get("ledger_id", ""))
        ledger = self._ledger(ledger_id, record.ledger)
        leaf = bundle.signed.receipt.digest()
        proof = [bytes.fromhex(p.removeprefix("0x")) for p in record.proof]
        if not await ledger.receipt_recorded(leaf, proof):
            return Check(name, False, f"the receipt registry on {ledger_id} does not hold this receipt")
        tx = await ledger.transaction(record.transaction_id)
        root = "0x" + merkle.root_of(leaf, proof).hex()
        if tx is None or not tx.succeeded or tx.event.get("root") != root:
            return Check(name, False, f"transaction {record.transaction_id} did not record root {root}")
        return Check(name, True, f"recorded on {ledger_id} in block {tx.height} (batch of {tx.quantity})")

    # -- helpers -------------------------------------------------------------------------------------------------
    async def _guard(self, name: str, work: Any) -> Check:
        try:
            check: Check = await work
        except FinP2PError as exc:
            return Check(name, False, str(exc))
        return check

    def _ledger(self, ledger_id: str, bundled: dict[str, Any]) -> Ledger:
        """The deployment a bundle names, on a ledger the auditor reaches itself (found by its id)."""
        try:
            kind, settings = str(bundled["kind"]), dict(bundled.get("settings", {}))
        except (KeyError, TypeError, ValueError):
            raise FinP2PError(ErrorCode.RECEIPT_INVALID, f"the bundle's profile for {ledger_id} is malformed") from None
        own = self.ledgers.get(ledger_id)
        if own is not None:
            return own.view(settings)
        if not self.bundle_endpoints:
            raise FinP2PError(
                ErrorCode.LEDGER_PROFILE,
                f"no ledger profile of yours reaches {ledger_id}: pass one with --ledger (or, trusting the bundle's "
                "unsigned endpoint, --use-bundle-endpoints)",
            )
        key = json.dumps([kind, ledger_id, settings], sort_keys=True, default=str)
        if key not in self._open:
            context = ComponentContext(Settings(), self.work_dir, self.plugins)
            profile = LedgerProfile(kind, ledger_id, {**settings, "read_only": True})
            self._open[key] = open_ledger(profile, context)
        return self._open[key]
