"""Receipts: the primary node's signed statement that an operation happened on its ledger, in FinP2P's own form.

A receipt is the ledger-adapter API's ``receipt`` (``id``, ``operationType``, ``source``, ``destination``,
``quantity``, ``timestamp``, ``tradeDetails``, ``transactionDetails``, ``proof``: the fields the schema defines and
no other). Its proof is a ``signatureProofPolicy``: FinP2P's published EIP-712 ``Receipt`` typed data, signed with
the organization's FinID key (65 bytes, ``r || s || v``), so a FinP2P router verifies it with its own code::

    Receipt(string id,string operationType,Source source,Destination destination,Asset asset,
            TradeDetails tradeDetails,TransactionDetails transactionDetails,string quantity)
    Source(string accountType,string finId)      Destination(string accountType,string finId)
    Asset(string assetId,string assetType)       TradeDetails(ExecutionContext executionContext)
    ExecutionContext(string executionPlanId,string instructionSequenceNumber)
    TransactionDetails(string operationId,string transactionId)

in the domain ``FinP2P`` / ``1`` with the chain id and verifying contract of the network's configuration (FinP2P's
published values, 1 and the zero address, by default). An absent source or destination is ``{"", ""}``; the asset
type is ``finp2p``; the sequence number is a decimal string (both ``""`` without an execution context); the
transaction id signed is the receipt's id. A hold's and a redeem's receipt name no destination; a rollback is a
``release`` back to the source, which names none either.

A **bundle** (``finp2p-receipt-bundle/2``) is what an auditor needs besides the genesis: the receipt, the issuer's
credential chain, where the transaction is (the ledger, the deployment, the account that submitted it) signed by the
issuer, and where the requester recorded the receipt, signed by the requester. ``docs/receipts.md`` describes it
field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from finp2p.assets.asset_types import asset_type_of
from finp2p.edge.numbers import parse_quantity
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import eip712, keys
from finp2p.identity.keys import SigningKey
from finp2p.ledger import LedgerProfile, LedgerTransaction

FORMAT = "finp2p-receipt-bundle/2"
TYPES: dict[str, list[tuple[str, str]]] = {
    "Receipt": [
        ("id", "string"),
        ("operationType", "string"),
        ("source", "Source"),
        ("destination", "Destination"),
        ("asset", "Asset"),
        ("tradeDetails", "TradeDetails"),
        ("transactionDetails", "TransactionDetails"),
        ("quantity", "string"),
    ],
    "Source": [("accountType", "string"), ("finId", "string")],
    "Destination": [("accountType", "string"), ("finId", "string")],
    "Asset": [("assetId", "string"), ("assetType", "string")],
    "TradeDetails": [("executionContext", "ExecutionContext")],
    "ExecutionContext": [("executionPlanId", "string"), ("instructionSequenceNumber", "string")],
    "TransactionDetails": [("operationId", "string"), ("transactionId", "string")],
}
#: The receipt operation each ledger operation is reported as (the spec's types have no rollback).
OPERATION_TYPES = {
    "issue": "issue",
    "transfer": "transfer",
    "hold": "hold",
    "release": "release",
    "rollback": "release",
    "redeem": "redeem",
}
#: Ledger operations whose receipt names no destination (an escrow, a destruction, a return to the source).
NO_DESTINATION = frozenset({"hold", "redeem", "rollback"})
#: Profile settings that never leave the node (a bundle carries the rest, so an auditor can find the contracts).
PRIVATE_SETTINGS = frozenset(
    {
        "operator_key",
        "profile_dir",
        "key",
        "cert",
        "tls_ca",
        "rpc_token_file",
        "serve_rpc_token_file",
        "serve_rpc_open",
        "fund_accounts",
        "read_only",
    }
)


@dataclass(frozen=True)
class ReceiptDomain:
    """The EIP-712 domain receipts are signed in: FinP2P/1 with the network's chain id and verifying contract."""

    chain_id: int = 1
    verifying_contract: str = "0x" + "00" * 20

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": "FinP2P",
            "version": "1",
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }


PUBLISHED_DOMAIN = ReceiptDomain()


def _invalid(detail: str) -> FinP2PError:
    return FinP2PError(ErrorCode.RECEIPT_INVALID, detail)


@dataclass(frozen=True)
class Receipt:
    """A receipt as the ledger-adapter API writes it, without its proof. Accounts are the API's (``finId``,
    ``asset`` and maybe ``ledgerAccount``), as the request gave them."""

    id: str
    operation_type: str
    asset_id: str
    quantity: str
    timestamp: int
    operation_id: str | None = None
    source: dict[str, Any] | None = None
    destination: dict[str, Any] | None = None
    execution_context: dict[str, Any] | None = None

    @property
    def source_fin_id(self) -> str | None:
        return str(self.source["finId"]) if self.source else None

    @property
    def destination_fin_id(self) -> str | None:
        return str(self.destination["finId"]) if self.destination else None

    @property
    def quantity_units(self) -> int:
        return parse_quantity(self.quantity, code=ErrorCode.RECEIPT_INVALID)

    @classmethod
    def of(
        cls,
        tx: LedgerTransaction,
        asset: dict[str, Any],
        *,
        source: dict[str, Any] | None = None,
        destination: dict[str, Any] | None = None,
        execution_context: dict[str, Any] | None = None,
    ) -> Receipt:
        """The receipt of a transaction the ledger executed: accounts as the request gave them, else built from
        the ledger's FinIDs with ``asset`` (the API's asset: ``resourceId`` and ``ledgerIdentifier``)."""
        if not tx.succeeded:
            raise _invalid(f"transaction {tx.transaction_id} failed: no receipt for it")
        operation = str(tx.operation)
        if operation not in OPERATION_TYPES:
            raise _invalid(f"a {operation} has no receipt")
        src = source or ({"finId": tx.source, "asset": asset} if tx.source else None)
        dst = destination or ({"finId": tx.destination, "asset": asset} if tx.destination else None)
        if operation in NO_DESTINATION:
            dst = None
        if operation == "issue":
            src = None
        return cls(
            id=tx.transaction_id,
            operation_type=OPERATION_TYPES[operation],
            asset_id=tx.asset_id,
            quantity=str(tx.quantity),
            timestamp=tx.timestamp,
            operation_id=tx.operation_id or None,
            source=src,
            destination=dst,
            execution_context=execution_context or None,
        )

    def message(self) -> dict[str, Any]:
        """The published EIP-712 message of this receipt."""
        context = self.execution_context or {}
        sequence = context.get("instructionSequenceNumber")
        return {
            "id": self.id,
            "operationType": self.operation_type,
            "source": _party(self.source_fin_id),
            "destination": _party(self.destination_fin_id),
            "asset": {"assetId": self.asset_id, "assetType": asset_type_of(self.asset_id)},
            "tradeDetails": {
                "executionContext": {
                    "executionPlanId": str(context.get("executionPlanId", "")),
                    "instructionSequenceNumber": "" if sequence is None else str(sequence),
                }
            },
            "transactionDetails": {"operationId": self.operation_id or "", "transactionId": self.id},
            "quantity": self.quantity,
        }

    def template(self, domain: ReceiptDomain = PUBLISHED_DOMAIN) -> dict[str, Any]:
        """The proof's ``EIP712`` template: the domain, the types (``EIP712Domain`` among them, as routers read
        them), the message and its digest in ``hash`` (0x hex)."""
        template = eip712.adapter_template(domain.as_dict(), "Receipt", TYPES, self.message())
        template["hash"] = "0x" + template["hash"]
        return template

    def digest(self, domain: ReceiptDomain = PUBLISHED_DOMAIN) -> bytes:
        """The 32-byte hash that is signed, and that the requester records in its receipt registry."""
        return eip712.digest(domain.as_dict(), "Receipt", TYPES, self.message())

    def prove(self, key: SigningKey, domain: ReceiptDomain = PUBLISHED_DOMAIN) -> dict[str, Any]:
        """The ``signatureProofPolicy`` proof: ``key``'s 65-byte signature over the template's hash."""
        template = self.template(domain)
        signature = key.sign_digest_recoverable(bytes.fromhex(template["hash"][2:]))
        return {
            "type": "signatureProofPolicy",
            "signature": {"signature": "0x" + signature.hex(), "template": template, "hashFunc": "keccak-256"},
        }

    def to_adapter(self, proof: dict[str, Any] | None = None) -> dict[str, Any]:
        """The receipt in the API's JSON: the schema's fields only, the ones that do not apply left out."""
        out: dict[str, Any] = {
            "id": self.id,
            "quantity": self.quantity,
            "timestamp": self.timestamp,
            "operationType": self.operation_type,
            "tradeDetails": {"executionContext": self.execution_context} if self.execution_context else {},
            "transactionDetails": {"transactionId": self.id},
        }
        if self.operation_id:
            out["transactionDetails"]["operationId"] = self.operation_id
        for name, account in (("source", self.source), ("destination", self.destination)):
            if account is not None:
                out[name] = account
        out["proof"] = proof or {"type": "noProofPolicy"}
        return out

    @classmethod
    def from_adapter(cls, data: Any) -> Receipt:
        """Read a receipt back from its API form; FP7002 names what is missing or malformed."""
        if not isinstance(data, dict):
            raise _invalid("a receipt is a JSON object")
        try:
            details = data["transactionDetails"]
            if details["transactionId"] != data["id"]:
                raise ValueError("its transactionDetails.transactionId is not its id")
            trade = data.get("tradeDetails") or {}
            context = trade.get("executionContext") if isinstance(trade, dict) else None
            if context is not None and (
                not isinstance(context, dict)
                or not isinstance(context.get("executionPlanId"), str)
                or not isinstance(context.get("instructionSequenceNumber"), int)
            ):
                raise ValueError("its executionContext needs executionPlanId and an integer instructionSequenceNumber")
            accounts = {n: data.get(n) for n in ("source", "destination")}
            asset_ids = set()
            for name, account in accounts.items():
                if account is None:
                    continue
                keys.check_fin_id(account.get("finId") if isinstance(account, dict) else None, f"{name}.finId")
                asset_ids.add(_text(account["asset"]["resourceId"], f"{name}.asset.resourceId"))
            if len(asset_ids) != 1:
                raise ValueError("its accounts must name one asset (source.asset, destination.asset)")
            operation = _text(data["operationType"], "operationType")
            if operation not in set(OPERATION_TYPES.values()):
                raise ValueError(f"operationType {operation!r} is not one of the spec's")
            timestamp = data["timestamp"]
            if isinstance(timestamp, bool) or not isinstance(timestamp, int):
                raise ValueError("timestamp must be an integer")
            receipt = cls(
                id=_text(data["id"], "id"),
                operation_type=operation,
                asset_id=asset_ids.pop(),
                quantity=_text(data["quantity"], "quantity"),
                timestamp=timestamp,
                operation_id=details.get("operationId"),
                source=accounts["source"],
                destination=accounts["destination"],
                execution_context=context,
            )
        except FinP2PError as exc:
            raise _invalid(f"the receipt is malformed: {exc.detail}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _invalid(f"the receipt is malformed ({exc})") from None
        receipt.quantity_units  # noqa: B018 - a quantity the spec means
        return receipt


def _party(fin_id: str | None) -> dict[str, str]:
    return {"accountType": "finId", "finId": fin_id} if fin_id else {"accountType": "", "finId": ""}


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string")
    return value


def check_proof(receipt: Receipt, proof: Any, signer: str) -> bytes:
    """The receipt's digest, once its proof holds: a ``signatureProofPolicy`` whose template is exactly the message
    rebuilt from the receipt, in FinP2P's domain (any chain id and contract), signed by ``signer``. FP7001 for a
    signature that is not the signer's, FP7002 for a template that says something else than the receipt."""
    signature = proof.get("signature") if isinstance(proof, dict) else None
    if not isinstance(proof, dict) or proof.get("type") != "signatureProofPolicy" or not isinstance(signature, dict):
        raise _invalid("the receipt has no signatureProofPolicy proof")
    template = signature.get("template")
    try:
        domain_data = template["domain"]  # type: ignore[index]
        domain = ReceiptDomain(int(domain_data["chainId"]), str(domain_data["verifyingContract"]))
    except (KeyError, TypeError, ValueError):
        raise _invalid("the proof's template has no FinP2P domain") from None
    rebuilt = receipt.template(domain)
    if not isinstance(template, dict) or _comparable(template) != _comparable(rebuilt):
        raise _invalid("the proof's template is not this receipt's: it says something the receipt does not")
    digest = bytes.fromhex(rebuilt["hash"][2:])
    try:
        raw = keys.decode_signature(str(signature.get("signature", "")))
        good = keys.verify_digest(signer, digest, raw)
    except FinP2PError:
        good = False
    if not good:
        raise FinP2PError(ErrorCode.RECEIPT_BAD_SIGNATURE, f"receipt {receipt.id} is not signed by {signer[:16]}…")
    return digest


def _comparable(template: dict[str, Any]) -> Any:
    """A template as compared: its hash with or without 0x, its type definitions in any order."""
    definitions = template.get("types", {}).get("definitions", []) if isinstance(template.get("types"), dict) else []
    ordered = sorted(definitions, key=lambda d: str(d.get("name"))) if isinstance(definitions, list) else definitions
    return {
        **template,
        "hash": str(template.get("hash", "")).removeprefix("0x").lower(),
        "types": {"definitions": ordered},
    }


def public_profile(profile: LedgerProfile) -> dict[str, Any]:
    """What of a ledger profile may travel (in a bundle, a broadcast): never a key, a token or a local folder. A
    number with a fraction (a timeout, a batch window) travels as its decimal string: signed statements are
    canonical JSON, which has no fractions, and a profile's settings read a number from its string."""
    settings = {k: _travels(v) for k, v in profile.settings.items() if k not in PRIVATE_SETTINGS}
    return {"kind": profile.kind, "ledger_id": profile.ledger_id, "settings": settings}


def _travels(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return [_travels(v) for v in value]
    if isinstance(value, dict):
        return {k: _travels(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Party:
    """An organization as a bundle names it: its org id, FinID and credential chain (leaf first)."""

    org_id: str
    fin_id: str
    chain: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"org_id": self.org_id, "fin_id": self.fin_id, "chain": self.chain}

    @classmethod
    def from_dict(cls, data: Any, what: str) -> Party:
        try:
            return cls(str(data["org_id"]), keys.check_fin_id(data["fin_id"], f"{what}.fin_id"), list(data["chain"]))
        except (KeyError, TypeError) as exc:
            raise _invalid(f"the bundle's {what} lacks {exc}") from None


@dataclass(frozen=True)
class LedgerPlace:
    """Where a transaction is: the ledger (by id), the deployment on it (``settings``: contracts, a chaincode;
    endpoints there are hints only), and the account that submitted it for the organization."""

    kind: str
    ledger_id: str
    settings: dict[str, Any]
    operator: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "ledger_id": self.ledger_id, "settings": self.settings, "operator": self.operator}

    @classmethod
    def of(cls, profile: dict[str, Any], operator: str) -> LedgerPlace:
        """From a public profile (:func:`public_profile`, plus what the ledger adds) and the submitting account."""
        return cls(str(profile["kind"]), str(profile["ledger_id"]), dict(profile.get("settings") or {}), operator)

    @classmethod
    def from_dict(cls, data: Any, what: str) -> LedgerPlace:
        try:
            settings = data.get("settings") or {}
            if not isinstance(settings, dict):
                raise TypeError("settings")
            return cls(str(data["kind"]), str(data["ledger_id"]), settings, str(data["operator"]))
        except (KeyError, TypeError, AttributeError) as exc:
            raise _invalid(f"the bundle's {what} lacks {exc}") from None


def statement(role: str, digest: bytes, place: dict[str, Any], **more: Any) -> dict[str, Any]:
    """What an issuer (``asset ledger``) or a requester (``record``) signs beside a receipt, in the ``receipt``
    signing domain: the receipt's digest and where the transaction is."""
    return {"role": role, "receipt": "0x" + digest.hex(), "place": place, **more}


@dataclass(frozen=True)
class Record:
    """Where a requester recorded a receipt: its registry's ledger, the recording transaction, the Merkle proof;
    signed by the requester."""

    requester: Party
    ledger: LedgerPlace
    transaction_id: str
    proof: list[str] = field(default_factory=list)
    signature: str = ""

    def signed_part(self, digest: bytes) -> dict[str, Any]:
        return statement("record", digest, self.ledger.to_dict(), transaction_id=self.transaction_id, proof=self.proof)

    def sign(self, key: SigningKey, digest: bytes) -> Record:
        return Record(
            self.requester,
            self.ledger,
            self.transaction_id,
            self.proof,
            key.sign("receipt", self.signed_part(digest)).hex(),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "requester": self.requester.to_dict(),
            "ledger": self.ledger.to_dict(),
            "transaction_id": self.transaction_id,
            "proof": self.proof,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Record:
        if not isinstance(data, dict):
            raise _invalid("the bundle's record is not an object")
        proof = data.get("proof", [])
        if not isinstance(proof, list) or not all(isinstance(p, str) for p in proof) or len(proof) > 64:
            raise _invalid("the record's proof is a list of at most 64 hashes")
        return cls(
            Party.from_dict(data.get("requester"), "record.requester"),
            LedgerPlace.from_dict(data.get("ledger"), "record.ledger"),
            str(data.get("transaction_id", "")),
            list(proof),
            str(data.get("signature", "")),
        )


@dataclass(frozen=True)
class Bundle:
    """Everything an auditor needs, with the genesis, to verify a receipt."""

    receipt: Receipt
    proof: dict[str, Any]
    issuer: Party
    asset_ledger: LedgerPlace
    #: The issuer's signature over :func:`statement` of the asset ledger (``receipt`` signing domain).
    signature: str
    record: Record | None = None

    @classmethod
    def issue(
        cls, receipt: Receipt, key: SigningKey, issuer: Party, asset_ledger: LedgerPlace, domain: ReceiptDomain
    ) -> Bundle:
        """The primary node's bundle: the receipt with its proof, and its signed statement of where it is."""
        proof = receipt.prove(key, domain)
        digest = receipt.digest(domain)
        signature = key.sign("receipt", statement("asset ledger", digest, asset_ledger.to_dict())).hex()
        return cls(receipt, proof, issuer, asset_ledger, signature)

    @property
    def domain(self) -> ReceiptDomain:
        data = self.proof["signature"]["template"]["domain"]
        return ReceiptDomain(int(data["chainId"]), str(data["verifyingContract"]))

    def digest(self) -> bytes:
        return self.receipt.digest(self.domain)

    def check_statement(self) -> None:
        """Raise FP2002/FP2003 unless the issuer signed where the transaction is (``asset_ledger``)."""
        place = statement("asset ledger", self.digest(), self.asset_ledger.to_dict())
        keys.verify(self.issuer.fin_id, "receipt", place, self.signature)

    def with_record(self, record: Record) -> Bundle:
        return Bundle(self.receipt, self.proof, self.issuer, self.asset_ledger, self.signature, record)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "format": FORMAT,
            "receipt": self.receipt.to_adapter(self.proof),
            "issuer": self.issuer.to_dict(),
            "asset_ledger": self.asset_ledger.to_dict(),
            "signature": self.signature,
        }
        if self.record is not None:
            out["record"] = self.record.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Bundle:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise _invalid(f"not a receipt bundle (format {FORMAT})")
        receipt_data = data.get("receipt")
        receipt = Receipt.from_adapter(receipt_data)
        proof = receipt_data.get("proof") if isinstance(receipt_data, dict) else None
        if not isinstance(proof, dict):
            raise _invalid("the receipt has no proof")
        try:
            _ = proof["signature"]["template"]["domain"]
        except (KeyError, TypeError):
            raise _invalid("the receipt's proof is not a signatureProofPolicy with an EIP712 template") from None
        record = data.get("record")
        return cls(
            receipt,
            proof,
            Party.from_dict(data.get("issuer"), "issuer"),
            LedgerPlace.from_dict(data.get("asset_ledger"), "asset_ledger"),
            str(data.get("signature", "")),
            Record.from_dict(record) if record is not None else None,
        )
