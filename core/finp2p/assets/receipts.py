"""Receipts: the primary node's signed statement that an operation happened on its ledger.

A receipt follows the ledger-adapter API's receipt (id, operation type, source, destination, asset, quantity as a
string, timestamp, trade details, transaction details) and its signature proof: EIP-712 typed data (``Receipt``,
domain ``FinP2P``/``1``), keccak-256, signed by the primary organization's FinID key. Receipts are not bound to a
chain: the ledger id is part of the transaction details.

A **bundle** is what an auditor needs besides the genesis: the signed receipt, the issuer's credential chain, the
public part of the asset ledger's profile, and where the requester recorded the receipt (its ledger's profile, the
recording transaction, the Merkle proof).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import eip712, keys
from finp2p.identity.keys import SigningKey
from finp2p.ledger import LedgerProfile, LedgerTransaction

DOMAIN = {"name": "FinP2P", "version": "1"}
TYPES: dict[str, list[tuple[str, str]]] = {
    "Receipt": [
        ("id", "string"),
        ("operationType", "string"),
        ("source", "Account"),
        ("destination", "Account"),
        ("asset", "Asset"),
        ("quantity", "string"),
        ("timestamp", "uint256"),
        ("tradeDetails", "TradeDetails"),
        ("transactionDetails", "TransactionDetails"),
    ],
    "Account": [("accountType", "string"), ("finId", "string")],
    "Asset": [("assetId", "string"), ("assetType", "string")],
    "TradeDetails": [("executionPlanId", "string"), ("instructionSequenceNumber", "uint256")],
    "TransactionDetails": [("ledgerId", "string"), ("operationId", "string"), ("transactionId", "string")],
}
#: Profile settings that never leave the node (a bundle carries the rest, so an auditor can find the contracts);
#: ``key`` is where a Fabric profile's identity keeps its private key.
PRIVATE_SETTINGS = frozenset({"operator_key", "profile_dir", "key"})


@dataclass(frozen=True)
class Receipt:
    operation_type: str
    asset_id: str
    quantity: int
    timestamp: int
    ledger_id: str
    transaction_id: str
    operation_id: str
    source: str | None = None
    destination: str | None = None
    execution_plan_id: str = ""
    instruction_sequence: int = 0

    @property
    def id(self) -> str:
        """The receipt id: the ledger's transaction id, unique on its ledger."""
        return self.transaction_id

    @classmethod
    def of(cls, tx: LedgerTransaction, *, execution_plan_id: str = "", instruction_sequence: int = 0) -> Receipt:
        if not tx.succeeded:
            raise FinP2PError(ErrorCode.RECEIPT_INVALID, f"transaction {tx.transaction_id} failed: no receipt for it")
        return cls(
            operation_type=str(tx.operation),
            asset_id=tx.asset_id,
            quantity=tx.quantity,
            timestamp=tx.timestamp,
            ledger_id=tx.ledger_id,
            transaction_id=tx.transaction_id,
            operation_id=tx.operation_id,
            source=tx.source,
            destination=tx.destination,
            execution_plan_id=execution_plan_id,
            instruction_sequence=instruction_sequence,
        )

    def message(self) -> dict[str, Any]:
        """The EIP-712 message (absent accounts are empty strings, as typed data has no null)."""
        return {
            "id": self.id,
            "operationType": self.operation_type,
            "source": {"accountType": "finId" if self.source else "", "finId": self.source or ""},
            "destination": {"accountType": "finId" if self.destination else "", "finId": self.destination or ""},
            "asset": {"assetId": self.asset_id, "assetType": "finp2p"},
            "quantity": str(self.quantity),
            "timestamp": self.timestamp,
            "tradeDetails": {
                "executionPlanId": self.execution_plan_id,
                "instructionSequenceNumber": self.instruction_sequence,
            },
            "transactionDetails": {
                "ledgerId": self.ledger_id,
                "operationId": self.operation_id,
                "transactionId": self.transaction_id,
            },
        }

    def digest(self) -> bytes:
        """The 32-byte hash that is signed, and that the requester records in its receipt registry."""
        return eip712.digest(DOMAIN, "Receipt", TYPES, self.message())

    def to_adapter(self, signature: str | None = None) -> dict[str, Any]:
        """The receipt as the ledger-adapter API writes it; with its signature proof when ``signature`` is given.
        Accounts that do not apply are left out, not null."""
        out: dict[str, Any] = {
            "id": self.id,
            "operationType": self.operation_type,
            "asset": {"type": "finp2p", "resourceId": self.asset_id},
            "quantity": str(self.quantity),
            "timestamp": self.timestamp,
            "tradeDetails": {},
            "transactionDetails": {"transactionId": self.transaction_id, "operationId": self.operation_id},
            "ledgerId": self.ledger_id,
        }
        for name, fin_id in (("source", self.source), ("destination", self.destination)):
            if fin_id:
                out[name] = {"finId": fin_id, "account": {"type": "finId", "finId": fin_id}}
        if self.execution_plan_id:
            out["tradeDetails"] = {
                "executionContext": {
                    "executionPlanId": self.execution_plan_id,
                    "instructionSequenceNumber": self.instruction_sequence,
                }
            }
        if signature is not None:
            out["proof"] = {
                "type": "signatureProofPolicy",
                "signature": {
                    "signature": signature,
                    "template": eip712.adapter_template(DOMAIN, "Receipt", TYPES, self.message()),
                    "hashFunc": "keccak-256",
                },
            }
        return out

    @classmethod
    def from_adapter(cls, data: Any) -> Receipt:
        """Read a receipt back from its adapter form; FP7002 names what is missing or malformed."""
        try:
            details = data["transactionDetails"]
            context = (data.get("tradeDetails") or {}).get("executionContext") or {}
            quantity = int(str(data["quantity"]))
            receipt = cls(
                operation_type=_text(data["operationType"]),
                asset_id=_text(data["asset"]["resourceId"]),
                quantity=quantity,
                timestamp=int(data["timestamp"]),
                ledger_id=_text(data["ledgerId"]),
                transaction_id=_text(details["transactionId"]),
                operation_id=_text(details.get("operationId", "")),
                source=(data.get("source") or {}).get("finId"),
                destination=(data.get("destination") or {}).get("finId"),
                execution_plan_id=str(context.get("executionPlanId", "")),
                instruction_sequence=int(context.get("instructionSequenceNumber", 0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FinP2PError(ErrorCode.RECEIPT_INVALID, f"the receipt is malformed ({exc!r})") from None
        if receipt.id != data.get("id"):
            raise FinP2PError(ErrorCode.RECEIPT_INVALID, "the receipt id is not its transaction id")
        return receipt


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class SignedReceipt:
    receipt: Receipt
    signer: str  # the issuer's FinID
    signature: str  # 64-byte r || s, hex

    @classmethod
    def sign(cls, receipt: Receipt, key: SigningKey) -> SignedReceipt:
        return cls(receipt, key.fin_id, key.sign_digest(receipt.digest()).hex())

    def check_signature(self) -> None:
        """Raise FP7001 unless the signature over the receipt's digest is the signer's."""
        try:
            signature = bytes.fromhex(self.signature)
            good = keys.verify_digest(self.signer, self.receipt.digest(), signature)
        except (ValueError, FinP2PError):
            good = False
        if not good:
            raise FinP2PError(
                ErrorCode.RECEIPT_BAD_SIGNATURE, f"receipt {self.receipt.id} is not signed by {self.signer[:16]}…"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"receipt": self.receipt.to_adapter(self.signature), "signer": self.signer}

    @classmethod
    def from_dict(cls, data: Any) -> SignedReceipt:
        try:
            signature = data["receipt"]["proof"]["signature"]["signature"]
            signer = keys.check_fin_id(data["signer"], "receipt signer")
        except (KeyError, TypeError) as exc:
            raise FinP2PError(ErrorCode.RECEIPT_INVALID, f"the signed receipt lacks {exc}") from None
        return cls(Receipt.from_adapter(data["receipt"]), signer, str(signature))


def public_profile(profile: LedgerProfile) -> dict[str, Any]:
    """What of a ledger profile may travel in a bundle: never a key path or a local folder."""
    settings = {k: v for k, v in profile.settings.items() if k not in PRIVATE_SETTINGS}
    return {"kind": profile.kind, "ledger_id": profile.ledger_id, "settings": settings}


@dataclass(frozen=True)
class Record:
    """Where a requester recorded a receipt: its ledger, the recording transaction, and the Merkle proof."""

    ledger: dict[str, Any]  # a public profile
    transaction_id: str
    proof: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"ledger": self.ledger, "transaction_id": self.transaction_id, "proof": self.proof}


@dataclass(frozen=True)
class Bundle:
    """Everything an auditor needs, with the genesis, to verify a receipt."""

    signed: SignedReceipt
    issuer_org: str
    issuer_chain: list[dict[str, Any]]
    asset_ledger: dict[str, Any]  # a public profile
    record: Record | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "format": "finp2p-receipt-bundle/1",
            **self.signed.to_dict(),
            "issuer": {"org_id": self.issuer_org, "chain": self.issuer_chain},
            "asset_ledger": self.asset_ledger,
        }
        if self.record is not None:
            out["record"] = self.record.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Bundle:
        if not isinstance(data, dict) or data.get("format") != "finp2p-receipt-bundle/1":
            raise FinP2PError(ErrorCode.RECEIPT_INVALID, "not a receipt bundle (format finp2p-receipt-bundle/1)")
        try:
            record = data.get("record")
            return cls(
                signed=SignedReceipt.from_dict(data),
                issuer_org=str(data["issuer"]["org_id"]),
                issuer_chain=list(data["issuer"]["chain"]),
                asset_ledger=dict(data["asset_ledger"]),
                record=Record(dict(record["ledger"]), str(record["transaction_id"]), list(record.get("proof", [])))
                if record
                else None,
            )
        except (KeyError, TypeError) as exc:
            raise FinP2PError(ErrorCode.RECEIPT_INVALID, f"the bundle lacks {exc}") from None
