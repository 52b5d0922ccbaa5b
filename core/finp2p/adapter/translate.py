"""From the ledger-adapter API's requests to the ledger's operations, and back to its operation results.

Everything here is checked before a ledger sees the operation: the asset is on this adapter's ledger, the quantity
is a whole number, and the investor's signature (EIP712 or hashList template) is the source's, over a FinP2P
template whose terms (:mod:`finp2p.assets.router_templates`) authorise exactly this operation: the signer gives,
the destination receives, this asset, this quantity, under the request's nonce. A failure is a
:class:`FinP2PError`, which the service turns into the operation's result (``error`` with a code and a message),
never an HTTP error.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from finp2p.assets import router_templates
from finp2p.assets.operations import OperationRequest
from finp2p.assets.receipts import PUBLISHED_DOMAIN, Receipt, ReceiptDomain
from finp2p.assets.router_templates import Leg, Terms
from finp2p.edge.numbers import MAX_UNIX_S, parse_quantity
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.canonical import canonical
from finp2p.identity.keys import SigningKey
from finp2p.identity.templates import SIGNATURE_ERROR_CODE, verify_signature
from finp2p.ledger import Ledger, LedgerTransaction, OperationType, OwnerConsent

#: Operations answered with a receipt, and the ledger operation each runs.
RECEIPT_OPERATIONS = {
    **{kind.value: kind for kind in OperationType},  # the spec's routes are named as the ledger's operations
    "payout": OperationType.TRANSFER,  # or a redeem when the payout names no destination: see prepare()
}
#: Errors about the investor's signature: the spec's code 4.
SIGNATURE_ERRORS = frozenset(
    {
        ErrorCode.CONSENT_INVALID,
        ErrorCode.LEDGER_BAD_SIGNATURE,
        ErrorCode.LEDGER_CONSENT_USED,
        ErrorCode.LEDGER_UNSUPPORTED_CONSENT,
        ErrorCode.TEMPLATE_UNSUPPORTED,
    }
)
#: Expiries below this are a time to live in seconds; above it, unix seconds.
_TTL_LIMIT = 1_000_000_000


@dataclass(frozen=True)
class Prepared:
    """A receipt operation, checked: what the ledger executes and what its receipt says of the accounts."""

    request: OperationRequest
    source: dict[str, Any] | None  # the account as given (``finId``, ``asset``, ``ledgerAccount``)
    destination: dict[str, Any] | None
    execution_context: dict[str, Any] | None
    #: The template's leg that authorises the operation (transfer, hold, redeem, payout), and its terms.
    leg: Leg | None = None
    terms: Terms | None = None


def error_info(exc: FinP2PError) -> dict[str, Any]:
    """An operation's ``error``: code 4 for a signature, 1 for a regulation refusal, else the FinP2P code's number."""
    if exc.code in SIGNATURE_ERRORS:
        code = SIGNATURE_ERROR_CODE
    elif exc.code is ErrorCode.COMPLIANCE_REFUSED:
        code = 1
    else:
        code = int(exc.code.code[2:])
    info: dict[str, Any] = {"code": code, "message": f"{exc.code.code} {exc.code.title}: {exc.detail}. {exc.code.hint}"}
    if exc.context.get("regulation"):
        info["regulationErrorDetails"] = exc.context["regulation"]
    return info


def quantity_of(text: str) -> int:
    return parse_quantity(text)


def check_asset(ledger: Ledger, asset: dict[str, Any]) -> str:
    """The asset's resource id, once its ledger identifier says it lives on this adapter's ledger."""
    network = asset["ledgerIdentifier"]["network"]
    if network != ledger.ledger_id:
        raise FinP2PError(
            ErrorCode.ASSET_NOT_MANAGED, f"the asset is on network {network!r}; this adapter serves {ledger.ledger_id}"
        )
    return str(asset.get("resourceId") or asset.get("id"))


def expiry_of(value: int, now: float) -> int:
    """Unix seconds: 0 (no expiry) and absolute times as they are, a time to live added to now; FP7010 beyond the
    year 9999 (the schema bounds the value, this bounds the sum)."""
    expiry = value if value == 0 or value >= _TTL_LIMIT else int(now) + value
    if not 0 <= expiry <= MAX_UNIX_S:
        raise FinP2PError(ErrorCode.OPERATION_INVALID, f"expiry {value} is past the year 9999")
    return expiry


def signed_terms(body: dict[str, Any], signer: str) -> tuple[dict[str, Any], Terms]:
    """The request's ``signature``, verified as ``signer``'s over its template, and the template's terms, bound to
    the request's nonce (FP7009 otherwise; FP7012 for a template this adapter cannot read)."""
    signature = body.get("signature")
    if not signature:
        raise FinP2PError(ErrorCode.CONSENT_INVALID, f"the operation moves {signer[:16]}…'s units and has no signature")
    verify_signature(signature, signer)
    terms = router_templates.read(signature["template"])
    nonce = body.get("nonce")
    if nonce and terms.nonce.removeprefix("0x").lower() != str(nonce).removeprefix("0x").lower():
        raise FinP2PError(ErrorCode.CONSENT_INVALID, "the template was signed for another nonce than the request's")
    return signature, terms


def consent_of(
    body: dict[str, Any], signer: str, destination: str | None, asset_id: str, quantity: int
) -> tuple[OwnerConsent, Leg, Terms]:
    """The investor's signature, verified against ``signer`` (the source), and the leg of its template that
    authorises moving ``quantity`` of ``asset_id`` to ``destination`` (FP7009 when none does)."""
    signature, terms = signed_terms(body, signer)
    leg = router_templates.authorising_leg(
        terms, signer=signer, source=signer, destination=destination, asset_id=asset_id, quantity=quantity
    )
    template = signature["template"]
    consent = OwnerConsent(
        template=str(template["type"]),
        signer=signer,
        signature=str(signature["signature"]),
        payload=template,
        hash_func=str(signature.get("hashFunc") or "keccak-256"),
    )
    return consent, leg, terms


def prepare(ledger: Ledger, operation: str, body: dict[str, Any], cid: str, now: float) -> Prepared:
    """Check a receipt operation's request and translate it. An operation whose request names no operation id
    (issue, transfer, payout, a redeem not from a hold) gets one from its terms and nonce (:func:`operation_id_of`),
    or ``cid`` when it has no nonce."""
    source, destination = body.get("source"), body.get("destination")
    if operation == "payout":
        asset = body["asset"]
        asset_id = check_asset(ledger, asset)
        given = {"resourceId": asset_id, "ledgerIdentifier": asset["ledgerIdentifier"]}
        assert source is not None  # required by the schema
        source = {"finId": source["finId"], "asset": given}
        destination = {"finId": destination["finId"], "asset": given} if destination else None
    else:
        accounts = [a for a in (source, destination) if a is not None]
        asset_id = check_asset(ledger, accounts[0]["asset"])
        if any(check_asset(ledger, a["asset"]) != asset_id for a in accounts[1:]):
            raise FinP2PError(ErrorCode.OPERATION_INVALID, "the source and destination name different assets")
    quantity = quantity_of(body["quantity"])
    src = source["finId"] if source else None
    dst = destination["finId"] if destination else None
    kind = RECEIPT_OPERATIONS[operation]
    consent: OwnerConsent | None = None
    leg: Leg | None = None
    terms: Terms | None = None
    expiry = 0
    named = str(body.get("operationId") or "")
    operation_id = named or operation_id_of(operation, asset_id, src, dst, quantity, body) or cid
    if operation == "issue":
        assert dst is not None
        # Issuing moves no one's existing units: the asset manager's own issue comes with ``signature: {}``; a
        # buyer's PrimarySale is verified as its buyer's (who need not be the destination) and kept with the issue.
        if body.get("signature"):
            sold = router_templates.read(body["signature"].get("template"))
            buyer = router_templates.issue_buyer(sold, asset_id, quantity)
            _, terms = signed_terms(body, buyer)
            leg = router_templates.issue_leg(
                terms, signer=buyer, destination=buyer, asset_id=asset_id, quantity=quantity
            )
    elif operation == "payout" and dst is None:
        assert src is not None
        kind = OperationType.REDEEM
        consent, leg, terms = consent_of(body, src, None, asset_id, quantity)
        _require_redemption(terms)
    elif operation == "redeem" and body.get("operationId"):
        pass  # from a hold: the owner consented to the hold, whose terms the service checks against this redeem
    elif kind in (OperationType.TRANSFER, OperationType.HOLD, OperationType.REDEEM):
        assert src is not None
        consent, leg, terms = consent_of(body, src, dst, asset_id, quantity)
        if kind is OperationType.REDEEM:
            _require_redemption(terms)
        if operation == "hold":
            expiry = expiry_of(int(body["expiry"]), now)
            if dst is None and not terms.redemption:
                dst = leg.receiver  # held for the party the template pays: the ledger releases to it only
    request = OperationRequest(
        operation=kind,
        asset_id=asset_id,
        quantity=quantity,
        operation_id=operation_id,
        source=src,
        destination=dst,
        expiry=expiry,
        consent=consent,
    )
    return Prepared(request, source, destination, _context(body.get("executionContext")), leg, terms)


def operation_id_of(
    operation: str, asset_id: str, source: str | None, destination: str | None, quantity: int, body: dict[str, Any]
) -> str:
    """The ledger operation id of a request that names none (issue, transfer, payout, a redeem not from a hold):
    derived from its terms and its nonce, so the same operation sent again under a new Idempotency-Key meets its
    spent id on the ledger instead of executing twice. ``""`` without a nonce (the cid is the id then)."""
    the_nonce = str(body.get("nonce") or "")
    if not the_nonce:
        return ""
    terms = canonical([operation, asset_id, source or "", destination or "", str(quantity), the_nonce])
    return "n" + hashlib.sha256(terms).hexdigest()[:32]


def _context(context: Any) -> dict[str, Any] | None:
    """The request's execution context; one with an empty plan id (routers send it when there is no plan) is none."""
    if not isinstance(context, dict) or not str(context.get("executionPlanId", "")).strip():
        return None
    return context


def _require_redemption(terms: Terms) -> None:
    if not terms.redemption:
        raise FinP2PError(
            ErrorCode.CONSENT_INVALID,
            f"a {terms.kind} template does not authorise destroying the units: the investor signs a Redemption",
        )


def check_settles_hold(operation: str, prepared: Prepared, hold: Prepared) -> None:
    """A release or a redeem from a hold must be what the hold's template authorised: a release pays the party it
    names, a redeem destroys units held for their issuer (a Redemption). FP6007 otherwise."""
    request = prepared.request
    if hold.leg is None or hold.terms is None:
        raise FinP2PError(ErrorCode.LEDGER_UNKNOWN_HOLD, f"hold {request.operation_id!r} was not made here")
    if operation == "redeem" and not hold.terms.redemption:
        raise FinP2PError(
            ErrorCode.LEDGER_HOLD_MISMATCH,
            f"hold {request.operation_id!r} pays {str(hold.leg.receiver)[:16]}… ({hold.terms.kind}): release it",
        )
    if operation == "release" and hold.leg.receiver is not None and request.destination != hold.leg.receiver:
        raise FinP2PError(
            ErrorCode.LEDGER_HOLD_MISMATCH,
            f"hold {request.operation_id!r} pays {hold.leg.receiver[:16]}…, as its {hold.terms.kind} template says",
        )


def default_asset(ledger: Ledger, asset_id: str) -> dict[str, Any]:
    return {"resourceId": asset_id, "ledgerIdentifier": ledger.asset_identifier(asset_id)}


def receipt_of(
    ledger: Ledger,
    tx: LedgerTransaction,
    key: SigningKey | None,
    source: dict[str, Any] | None = None,
    destination: dict[str, Any] | None = None,
    execution_context: dict[str, Any] | None = None,
    domain: ReceiptDomain = PUBLISHED_DOMAIN,
) -> dict[str, Any]:
    """The adapter API's receipt of ``tx``, from the ledger's record (:class:`finp2p.assets.receipts.Receipt`):
    accounts as the request gave them (built from the ledger's FinIDs when there was no request), FinP2P's EIP-712
    proof signed by ``key`` when there is one. A rollback is a ``release`` back to the source."""
    receipt = Receipt.of(
        tx,
        default_asset(ledger, tx.asset_id),
        source=source,
        destination=destination,
        execution_context=execution_context,
    )
    return receipt.to_adapter(receipt.prove(key, domain) if key is not None else None)
