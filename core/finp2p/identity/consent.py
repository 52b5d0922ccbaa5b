"""The owner's consent to an operation: EIP-712 typed data over the operation's fields, one format for every ledger.

A ledger recomputes the digest from the operation it is asked to execute (the Solidity contract and the Fabric
chaincode alike), so a signature authorises exactly one operation (its operation id is single-use) on one
deployment. Domain: name ``FinP2P``, version ``1``, the ledger's chain id and verifying contract (on Fabric, a
stand-in derived from the channel and chaincode). Primary types::

    Transfer(string operationId,string assetId,string source,string destination,uint256 quantity)
    Hold(string operationId,string assetId,string source,string destination,uint256 quantity,uint256 expiry)
    Redeem(string operationId,string assetId,string source,uint256 quantity)

FinIDs appear as their lowercase hex, as FinP2P's typed data carries them. Ledger plugins subclass
:class:`ConsentOperation` with the encoding their ledger takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import eip712
from finp2p.identity.keys import SigningKey, check_fin_id
from finp2p.identity.templates import template_digest
from finp2p.ledger import OperationType, OwnerConsent

DOMAIN_NAME = "FinP2P"
DOMAIN_VERSION = "1"
_MOVE = [("operationId", "string"), ("assetId", "string"), ("source", "string"), ("destination", "string")]
FIELDS: dict[str, list[tuple[str, str]]] = {
    "Transfer": [*_MOVE, ("quantity", "uint256")],
    "Hold": [*_MOVE, ("quantity", "uint256"), ("expiry", "uint256")],
    "Redeem": [("operationId", "string"), ("assetId", "string"), ("source", "string"), ("quantity", "uint256")],
}

#: The primary type of the owner's consent for each operation that needs one.
CONSENT_TYPES = {OperationType.TRANSFER: "Transfer", OperationType.HOLD: "Hold", OperationType.REDEEM: "Redeem"}


@dataclass(frozen=True)
class ConsentOperation:
    """One operation as a ledger takes it; fields an operation does not use stay empty (zero)."""

    operation_id: str
    asset_id: str
    source: str = ""
    destination: str = ""
    quantity: int = 0
    expiry: int = 0

    @classmethod
    def checked(
        cls,
        operation_id: str,
        asset_id: str,
        *,
        source: str = "",
        destination: str = "",
        quantity: int,
        expiry: int = 0,
    ) -> Self:
        """The operation, once its fields are checked with the ledger's codes (FP6020, FP6011, FP6012): before it
        costs a transaction, and more clearly than the ledger would refuse it."""
        check_text(operation_id, "operation id")
        check_text(asset_id, "asset id")
        for value, what in ((source, "source"), (destination, "destination")):
            if value:
                check_account(value, what)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity < 2**256:
            raise FinP2PError(ErrorCode.LEDGER_INVALID_QUANTITY, f"quantity {quantity!r} is not a positive integer")
        return cls(operation_id, asset_id, source, destination, quantity, expiry)

    def message(self, primary_type: str) -> dict[str, Any]:
        values = {
            "operationId": self.operation_id,
            "assetId": self.asset_id,
            "source": self.source,
            "destination": self.destination,
            "quantity": self.quantity,
            "expiry": self.expiry,
        }
        return {name: values[name] for name, _ in FIELDS[primary_type]}


def check_text(value: Any, what: str) -> None:
    """A non-empty string of at most 1024 characters, or FP6010."""
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise FinP2PError(
            ErrorCode.LEDGER_INVALID_FIELD, f"the {what} must be a non-empty string of at most 1024 characters"
        )


def check_account(value: Any, what: str) -> None:
    """A FinID, or FP6011."""
    try:
        check_fin_id(value, what)
    except FinP2PError:
        raise FinP2PError(ErrorCode.LEDGER_INVALID_ACCOUNT, f"the {what} {str(value)[:16]!r} is not a FinID") from None


def domain(chain_id: int, contract: str) -> dict[str, Any]:
    return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id, "verifyingContract": contract}


def _parts(primary_type: str, op: ConsentOperation, chain_id: int, contract: str) -> tuple[Any, ...]:
    if primary_type not in FIELDS:
        raise ValueError(f"no consent is defined for {primary_type!r}; there is {', '.join(FIELDS)}")
    return domain(chain_id, contract), primary_type, {primary_type: FIELDS[primary_type]}, op.message(primary_type)


def consent_digest(primary_type: str, op: ConsentOperation, chain_id: int, contract: str) -> bytes:
    """The 32-byte EIP-712 digest the source signs for ``op``."""
    return eip712.digest(*_parts(primary_type, op, chain_id, contract))


def typed_data(primary_type: str, op: ConsentOperation, chain_id: int, contract: str) -> dict[str, Any]:
    """The typed data in the JSON form wallets sign (``eth_signTypedData_v4``)."""
    return eip712.wallet_json(*_parts(primary_type, op, chain_id, contract))


def adapter_template(primary_type: str, op: ConsentOperation, chain_id: int, contract: str) -> dict[str, Any]:
    """The same typed data as the ledger-adapter API's ``EIP712Template`` carries it."""
    return eip712.adapter_template(*_parts(primary_type, op, chain_id, contract))


def operation_template(
    operation: OperationType,
    asset_id: str,
    source: str,
    destination: str | None,
    quantity: int,
    operation_id: str,
    expiry: int,
    chain_id: int,
    contract: str,
) -> dict[str, Any]:
    """A ledger's answer to ``consent_template``: the adapter template of the operation in the ledger's domain;
    FP6020 for an operation that needs no owner consent."""
    if operation not in CONSENT_TYPES:
        raise FinP2PError(ErrorCode.LEDGER_INVALID_FIELD, f"{operation} needs no owner consent")
    op = ConsentOperation(operation_id, asset_id, source, destination or "", quantity, expiry)
    return adapter_template(CONSENT_TYPES[operation], op, chain_id, contract)


def sign_consent(
    key: SigningKey, primary_type: str, op: ConsentOperation, chain_id: int, contract: str
) -> OwnerConsent:
    """What an owner's wallet does: sign the operation's typed data with the owner's FinID key. The payload is the
    adapter API's EIP712 template of it."""
    digest = consent_digest(primary_type, op, chain_id, contract)
    return OwnerConsent(
        template="EIP712",
        signer=key.fin_id,
        signature=key.sign_digest(digest).hex(),
        payload=adapter_template(primary_type, op, chain_id, contract),
    )


def owner_signature(
    consent: OwnerConsent | None, source: str, own_digest: bytes, own_domain: tuple[int, str]
) -> tuple[bytes | None, bytes]:
    """What a ledger checks of an owner's consent before it sends it: ``(the digest of the template signed, or
    None when it is the ledger's own; the 64-byte signature r || s)``.

    Typed data of the ledger's own domain (``own_domain``: chain id, verifying contract) must be this very
    operation's (``own_digest``): the ledger recomputes it, so a signature over it for any other operation is
    refused here, more clearly. A signature over another template (a FinP2P router's EIP712 or hashList, which the
    caller must have checked against the operation, as the adapter API does) goes with that template's digest,
    recomputed from its content. Raises FP6002 ``LEDGER_BAD_SIGNATURE`` and FP6019 ``LEDGER_UNSUPPORTED_CONSENT``.
    """
    if consent is None:
        raise FinP2PError(ErrorCode.LEDGER_BAD_SIGNATURE, "the operation needs the source's signature and has none")
    if consent.template not in ("EIP712", "hashList"):
        raise FinP2PError(ErrorCode.LEDGER_UNSUPPORTED_CONSENT, f"the consent is a {consent.template!r} signature")
    if consent.signer != source:
        raise FinP2PError(ErrorCode.LEDGER_BAD_SIGNATURE, "the consent is signed by someone other than the source")
    try:
        signature = bytes.fromhex(consent.signature.removeprefix("0x"))
    except ValueError:
        raise FinP2PError(ErrorCode.LEDGER_BAD_SIGNATURE, "the consent's signature is not hex") from None
    if len(signature) == 65:
        signature = signature[:64]
    if len(signature) != 64:
        raise FinP2PError(ErrorCode.LEDGER_BAD_SIGNATURE, f"the signature is {len(signature)} bytes, not 64 (r || s)")
    if consent.template == "EIP712":
        domain = consent.payload.get("domain")
        domain = domain if isinstance(domain, dict) else {}
        chain_id, contract = own_domain
        if str(domain.get("verifyingContract", "")).lower() == contract.lower() and domain.get("chainId") == chain_id:
            if consent.payload.get("hash") != own_digest.hex():
                raise FinP2PError(ErrorCode.LEDGER_BAD_SIGNATURE, "the consent was signed for another operation")
            return None, signature
    return template_digest(consent.payload, consent.hash_func), signature
