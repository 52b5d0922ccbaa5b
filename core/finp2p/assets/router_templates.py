"""FinP2P's investor templates, read by their published types: who gives, who receives, what and how much.

A FinP2P router asks an investor to sign FinP2P's own typed data (``PrimarySale``, ``Buying``, ``Selling``,
``Redemption``, ``Transfer``, ``PrivateOffer``, ``Loan``: the definitions Ownera publishes in its adapters), or the
hashList form of the same terms. A template names one or two **legs**: the asset leg (units of the asset from the
party who gives them to the party who receives them, ``asset.amount`` of them) and, where the template has one, the
settlement leg (the payment the other way, ``settlement.amount``). A signature authorises exactly the legs its
template names, each party in its role: an operation is authorised only when it is one of them, with the signer as
the party who gives, the operation's destination as the party who receives, the same asset and the same quantity.

Parties of each template (the "seller" side gives the asset, the "buyer" side pays the settlement):

==============  ===================  ==================  ==================================================
template        gives the asset      receives the asset  note
==============  ===================  ==================  ==================================================
PrimarySale     ``issuer``           ``buyer``           the buyer pays the settlement to the issuer
Buying          ``seller``           ``buyer``
Selling         ``seller``           ``buyer``
PrivateOffer    ``seller``           ``buyer``
Transfer        ``seller``           ``buyer``           no settlement
Redemption      ``seller``           ``issuer``          the issuer takes the units back (a redeem) and pays
Loan            ``borrower``         ``lender``          at the close, the other way; money: lender to borrower
                                                         ``borrowedMoneyAmount``, back ``returnedMoneyAmount``
==============  ===================  ==================  ==================================================

hashList templates name the same terms by field: the asset group (``nonce``, ``operation``, ``assetType``,
``assetId``, ``srcAccountType``, ``srcAccount``, ``dstAccountType``, ``dstAccount``, ``amount``) and an optional
settlement group (the same without ``nonce`` and ``operation``, with an ``expiry``). A template of any other type,
or whose type definitions differ from the published ones, is refused with FP7012.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from finp2p.assets.asset_types import ASSET_TYPES
from finp2p.edge.identifiers import FIN_ID
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import eip712

_FIN_ID_TYPE = [("idkey", "string")]
_TERM = [("assetId", "string"), ("assetType", "string"), ("amount", "string")]
_LOAN_TERMS = [
    ("openTime", "string"),
    ("closeTime", "string"),
    ("borrowedMoneyAmount", "string"),
    ("returnedMoneyAmount", "string"),
]


def _trade(first: str, second: str, *, settlement: bool = True) -> list[tuple[str, str]]:
    fields = [("nonce", "string"), (first, "FinId"), (second, "FinId"), ("asset", "Term")]
    return [*fields, ("settlement", "Term")] if settlement else fields


#: The published EIP-712 types of each template (besides ``EIP712Domain``), field order included.
PUBLISHED_TYPES: dict[str, dict[str, list[tuple[str, str]]]] = {
    "PrimarySale": {"PrimarySale": _trade("buyer", "issuer"), "FinId": _FIN_ID_TYPE, "Term": _TERM},
    "Buying": {"Buying": _trade("buyer", "seller"), "FinId": _FIN_ID_TYPE, "Term": _TERM},
    "Selling": {"Selling": _trade("buyer", "seller"), "FinId": _FIN_ID_TYPE, "Term": _TERM},
    "PrivateOffer": {"PrivateOffer": _trade("buyer", "seller"), "FinId": _FIN_ID_TYPE, "Term": _TERM},
    "Transfer": {"Transfer": _trade("buyer", "seller", settlement=False), "FinId": _FIN_ID_TYPE, "Term": _TERM},
    "Redemption": {"Redemption": _trade("seller", "issuer"), "FinId": _FIN_ID_TYPE, "Term": _TERM},
    "Loan": {
        "Loan": [*_trade("borrower", "lender"), ("loanTerms", "LoanTerms")],
        "FinId": _FIN_ID_TYPE,
        "Term": _TERM,
        "LoanTerms": _LOAN_TERMS,
    },
}
#: Which party gives the asset and which receives it, per template.
ASSET_PARTIES = {
    "PrimarySale": ("issuer", "buyer"),
    "Buying": ("seller", "buyer"),
    "Selling": ("seller", "buyer"),
    "PrivateOffer": ("seller", "buyer"),
    "Transfer": ("seller", "buyer"),
    "Redemption": ("seller", "issuer"),
    "Loan": ("borrower", "lender"),
}
_AMOUNT = re.compile(r"[0-9]{1,78}(\.[0-9]{1,78})?", re.ASCII)


@dataclass(frozen=True)
class Leg:
    """One movement a template authorises: ``amount`` of ``asset_id`` from ``giver`` to ``receiver``."""

    name: str
    giver: str
    receiver: str | None
    asset_id: str
    asset_type: str
    amount: Decimal


@dataclass(frozen=True)
class Terms:
    """What a template says: its kind (the primary type, or ``hashList``), its nonce and the legs it authorises.
    ``redemption``: the asset leg gives the units back to their issuer, so they may be redeemed (destroyed)."""

    kind: str
    nonce: str
    legs: tuple[Leg, ...]
    redemption: bool = False

    @property
    def parties(self) -> set[str]:
        return {p for leg in self.legs for p in (leg.giver, leg.receiver) if p}


def _invalid(detail: str) -> FinP2PError:
    return FinP2PError(ErrorCode.CONSENT_INVALID, detail)


def read(template: Any) -> Terms:
    """The terms of an adapter signature template (``EIP712`` or ``hashList``). FP7012 for a kind or a type this
    module cannot read; FP7009 for one of its kinds that is malformed."""
    if not isinstance(template, dict):
        raise _invalid("the signature template must be an object")
    if template.get("type") == "EIP712":
        return _read_typed(template)
    if template.get("type") == "hashList":
        return _read_hash_list(template)
    raise FinP2PError(ErrorCode.TEMPLATE_UNSUPPORTED, f"a signature template of type {template.get('type')!r}")


def _read_typed(template: dict[str, Any]) -> Terms:
    try:
        domain, primary, types, message = eip712.from_adapter_template(template)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _invalid(f"the EIP712 template is malformed ({exc!r})") from None
    published = PUBLISHED_TYPES.get(primary)
    if published is None:
        raise FinP2PError(
            ErrorCode.TEMPLATE_UNSUPPORTED, f"an EIP712 template of primary type {primary!r}: not a FinP2P template"
        )
    if types != published:
        raise FinP2PError(
            ErrorCode.TEMPLATE_UNSUPPORTED, f"the {primary} template's type definitions differ from FinP2P's"
        )
    if domain.get("name") != "FinP2P" or domain.get("version") != "1":
        raise _invalid("the template's EIP-712 domain is not FinP2P's (name FinP2P, version 1)")
    nonce = _text(message.get("nonce"), "nonce")
    giver_role, receiver_role = ASSET_PARTIES[primary]
    giver, receiver = _party(message, giver_role), _party(message, receiver_role)
    asset = _term(message.get("asset"), "asset")
    legs = [Leg("asset", giver, receiver, *asset)]
    if primary == "Loan":
        loan = message.get("loanTerms")
        if not isinstance(loan, dict):
            raise _invalid("the Loan template has no loanTerms")
        money_id, money_type, _ = _term(message.get("settlement"), "settlement")
        borrowed = _amount(loan.get("borrowedMoneyAmount"), "loanTerms.borrowedMoneyAmount")
        returned = _amount(loan.get("returnedMoneyAmount"), "loanTerms.returnedMoneyAmount")
        legs += [
            Leg("money lent", receiver, giver, money_id, money_type, borrowed),
            Leg("asset returned at the close", receiver, giver, *asset),
            Leg("money returned at the close", giver, receiver, money_id, money_type, returned),
        ]
    elif any(name == "settlement" for name, _ in published[primary]):
        legs.append(Leg("settlement", receiver, giver, *_term(message.get("settlement"), "settlement")))
    return Terms(primary, nonce, tuple(legs), redemption=primary == "Redemption")


def _read_hash_list(template: dict[str, Any]) -> Terms:
    groups = template.get("hashGroups")
    if not isinstance(groups, list) or not 1 <= len(groups) <= 2:
        raise _invalid("a hashList template has one or two hash groups (asset, settlement)")
    named = [_fields(g, n) for n, g in enumerate(groups)]
    asset = named[0]
    operation = asset.get("operation")
    if operation not in ("transfer", "redeem", "issue"):
        raise FinP2PError(
            ErrorCode.TEMPLATE_UNSUPPORTED, f"a hashList asset group for operation {operation!r}: transfer or redeem"
        )
    nonce = _text(asset.get("nonce"), "nonce")
    legs = [_hash_leg("asset", asset)]
    if len(named) == 2:
        legs.append(_hash_leg("settlement", named[1]))
    return Terms("hashList", nonce, tuple(legs), redemption=operation == "redeem")


def _fields(group: Any, n: int) -> dict[str, str]:
    fields = group.get("fields") if isinstance(group, dict) else None
    if not isinstance(fields, list):
        raise _invalid(f"hash group {n} has no fields")
    out: dict[str, str] = {}
    for f in fields:
        if not isinstance(f, dict) or not isinstance(f.get("name"), str) or f["name"] in out:
            raise _invalid(f"hash group {n} has a field without a name, or a name twice")
        out[f["name"]] = field_text(f)
    return out


def field_text(field: dict[str, Any]) -> str:
    """A hashList field's value as text: ``bytes`` fields are hex (kept as the lowercase hex), others as given."""
    value = field.get("value")
    if not isinstance(value, str):
        raise _invalid(f"hashList field {field.get('name')!r} has no string value")
    return value.removeprefix("0x").lower() if field.get("type") == "bytes" else value


def _hash_leg(name: str, group: dict[str, str]) -> Leg:
    giver = group.get("srcAccount")
    if giver is None:
        raise _invalid(f"the hashList {name} group names no srcAccount: nobody gives anything")
    receiver = group.get("dstAccount")
    for role, value in (("srcAccount", giver), ("dstAccount", receiver)):
        if value is not None:
            FIN_ID.check(value, f"the hashList {name} group's {role}", ErrorCode.CONSENT_INVALID)
            if group.get(f"{role}Type", "finId") != "finId":
                raise _invalid(f"the hashList {name} group's {role}Type is not finId")
    asset_type = _text(group.get("assetType"), f"{name} assetType")
    if asset_type not in ASSET_TYPES:
        raise _invalid(f"the {name} group's assetType {asset_type!r} is not one of {', '.join(sorted(ASSET_TYPES))}")
    return Leg(
        name,
        giver,
        receiver,
        _text(group.get("assetId"), f"{name} assetId"),
        asset_type,
        _amount(group.get("amount"), f"{name} amount"),
    )


def _party(message: dict[str, Any], role: str) -> str:
    value = message.get(role)
    idkey = value.get("idkey") if isinstance(value, dict) else None
    return FIN_ID.check(idkey, f"the template's {role}", ErrorCode.CONSENT_INVALID)


def _term(value: Any, what: str) -> tuple[str, str, Decimal]:
    if not isinstance(value, dict):
        raise _invalid(f"the template's {what} term is missing")
    asset_type = _text(value.get("assetType"), f"{what}.assetType")
    if asset_type not in ASSET_TYPES:
        raise _invalid(f"the {what} term's assetType {asset_type!r} is not one of {', '.join(sorted(ASSET_TYPES))}")
    return _text(value.get("assetId"), f"{what}.assetId"), asset_type, _amount(value.get("amount"), f"{what}.amount")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise _invalid(f"the template's {what} must be a non-empty string")
    return value


def _amount(value: Any, what: str) -> Decimal:
    if not isinstance(value, str) or not _AMOUNT.fullmatch(value):
        raise _invalid(f"the template's {what} {value!r} is not a decimal amount")
    return Decimal(value)


def authorising_leg(
    terms: Terms, *, signer: str, source: str, destination: str | None, asset_id: str, quantity: int
) -> Leg:
    """The leg of ``terms`` that authorises moving ``quantity`` of ``asset_id`` from ``source`` (who signed) to
    ``destination`` (``None``: an escrow or a redemption, whose receiver the template names). FP7009 says which
    term differs when none does."""
    if signer != source:
        raise _invalid("the signature is not the source's: only the party who gives units authorises moving them")
    mismatches = []
    for leg in terms.legs:
        differs = []
        if leg.giver != source:
            differs.append("the party who gives")
        if destination is not None and leg.receiver != destination:
            differs.append("the party who receives")
        if leg.asset_id != asset_id:
            differs.append("the asset")
        if leg.amount != quantity:
            differs.append("the quantity")
        if not differs:
            return leg
        mismatches.append(f"{leg.name} leg: {', '.join(differs)}")
    raise _invalid(f"the signed {terms.kind} template authorises something else ({'; '.join(mismatches)})")


def issue_buyer(terms: Terms, asset_id: str, quantity: int) -> str:
    """Who buys ``quantity`` of ``asset_id`` in a primary sale's template: the receiver of its asset leg, the party
    whose signature it must carry. FP7009 when it sells no such units."""
    for leg in terms.legs:
        if leg.name == "asset" and leg.asset_id == asset_id and leg.amount == quantity and leg.receiver:
            return leg.receiver
    raise _invalid(f"the signed {terms.kind} template does not sell {quantity} of {asset_id}")


def issue_leg(terms: Terms, *, signer: str, destination: str, asset_id: str, quantity: int) -> Leg:
    """The asset leg of a primary sale to ``destination``: the units it receives, signed by a party of the
    template. FP7009 otherwise."""
    for leg in terms.legs:
        if leg.name == "asset" and leg.receiver == destination and leg.asset_id == asset_id and leg.amount == quantity:
            if signer not in terms.parties:
                raise _invalid("the issue's signature is not by a party of its template")
            return leg
    raise _invalid(f"the signed {terms.kind} template does not sell {quantity} of {asset_id} to the destination")
