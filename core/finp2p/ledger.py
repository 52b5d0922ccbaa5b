"""The interface a ledger plugin implements, and the data it exchanges with the node.

The operations and their fields follow FinP2P's ledger-adapter API (create asset, issue, transfer, redeem, hold,
release, rollback, balance, receipt by transaction id), plus what the node itself needs from a ledger: recording
receipt hashes in a receipt registry and reporting the ledger's height.

Quantities are integers in the asset's smallest unit; converting decimal strings happens at the API edge. Accounts
are FinIDs (hex of a compressed secp256k1 public key); each ledger maps them to its own accounts.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from finp2p.errors import ErrorCode, FinP2PError


class OperationType(enum.StrEnum):
    ISSUE = "issue"
    TRANSFER = "transfer"
    REDEEM = "redeem"
    HOLD = "hold"
    RELEASE = "release"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class LedgerProfile:
    """How to reach one ledger: its plugin kind, its id (CAIP-2 where one exists) and kind-specific settings."""

    kind: str
    ledger_id: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OwnerConsent:
    """The owner's signature authorising an operation, as the adapter API's ``signature`` object carries it.

    ``template`` is ``"EIP712"`` or ``"hashList"``; ``payload`` is the template as received (typed data or hash
    groups, with the digest signed in ``hash``); ``signature`` is the 64-byte r||s signature in hex by ``signer``
    (a FinID); ``hash_func`` is the adapter API's ``hashFunc`` (hashList templates).
    """

    template: str
    signer: str
    signature: str
    payload: dict[str, Any]
    hash_func: str = "keccak-256"


@dataclass(frozen=True)
class LedgerTransaction:
    """What a ledger reports of one executed operation: everything a receipt and an auditor need.

    ``transaction_id``: the ledger's id of the transaction (a receipt's id); ``height`` and ``timestamp`` (unix
    seconds): of the block it is in; ``event``: what the ledger emitted for it (the operation as the contract or
    chaincode saw it); ``submitter``: the account that submitted it, in the ledger's own form (an Ethereum address,
    a Fabric MSP identity), which an auditor compares with the operator the organization names."""

    ledger_id: str
    transaction_id: str
    operation: OperationType | str
    operation_id: str
    asset_id: str
    quantity: int
    succeeded: bool
    height: int
    timestamp: int
    source: str | None = None
    destination: str | None = None
    event: dict[str, Any] = field(default_factory=dict)
    submitter: str | None = None


@dataclass(frozen=True)
class Balance:
    asset_id: str
    fin_id: str
    available: int
    held: int
    height: int


class Ledger(abc.ABC):
    """One ledger, reached through one profile. All methods may be called concurrently.

    A failed operation raises ``finp2p.errors.FinP2PError`` with an FP6xxx code (insufficient balance, bad signature,
    unknown or reused operation id, ...); it never returns a transaction with ``succeeded=False`` for a refusal
    that happened before anything reached the ledger.
    """

    #: The ledger id, CAIP-2 where one exists (``eip155:31337``, ``fabric:<channel>/<chaincode>``).
    ledger_id: str

    @abc.abstractmethod
    async def create_asset(self, asset_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
        """Make the asset known to the ledger; return its ledger-side identifier fields (token address, ...)."""

    @abc.abstractmethod
    async def issue(self, asset_id: str, destination: str, quantity: int, operation_id: str) -> LedgerTransaction:
        """Create ``quantity`` new units owned by ``destination``."""

    @abc.abstractmethod
    async def transfer(
        self,
        asset_id: str,
        source: str,
        destination: str,
        quantity: int,
        operation_id: str,
        consent: OwnerConsent,
    ) -> LedgerTransaction:
        """Move units from ``source`` to ``destination``, authorised by the source's ``consent``: over the ledger's
        own template for this operation (:meth:`consent_template`), or over another template (a FinP2P router's)
        that the caller has checked against the operation; the ledger checks the signature either way."""

    @abc.abstractmethod
    async def redeem(
        self, asset_id: str, source: str, quantity: int, operation_id: str, consent: OwnerConsent | None
    ) -> LedgerTransaction:
        """Destroy units of ``source``; from a hold of the same ``operation_id`` when one exists."""

    @abc.abstractmethod
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
        """Escrow units of ``source`` under ``operation_id`` until ``expiry`` (unix seconds)."""

    @abc.abstractmethod
    async def release(
        self, asset_id: str, source: str, destination: str, quantity: int, operation_id: str
    ) -> LedgerTransaction:
        """Pay held units of ``operation_id`` to ``destination``."""

    @abc.abstractmethod
    async def rollback(self, asset_id: str, source: str, quantity: int, operation_id: str) -> LedgerTransaction:
        """Return held units of ``operation_id`` to ``source``."""

    @abc.abstractmethod
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
        """What the source signs to consent to an operation (transfer, hold, redeem) on this ledger: the adapter
        API's signature template (``EIP712`` or ``hashList``) with the digest to sign in ``hash``. The primary node
        checks a consent against it before executing; the ledger may check it again (on-chain)."""

    @abc.abstractmethod
    async def balance(self, asset_id: str, fin_id: str, height: int | None = None) -> Balance:
        """The available and held units of ``fin_id`` in ``asset_id``, at ``height`` (the ledger's current height
        when ``None``). A ledger that keeps no history refuses a past height with FP6022."""

    @abc.abstractmethod
    async def transaction(self, transaction_id: str) -> LedgerTransaction | None:
        """Look a transaction up on the ledger itself; ``None`` when the ledger does not know it."""

    @abc.abstractmethod
    async def find_operation(self, operation_id: str, operation: OperationType) -> LedgerTransaction | None:
        """The transaction that executed ``operation`` under ``operation_id``, or ``None`` if it never happened.

        This is how a node that crashed after submitting learns whether its operation took effect, so it never
        executes one twice. Release, rollback and a redeem from a hold carry the operation id of their hold.
        """

    @abc.abstractmethod
    async def record_receipts(self, receipt_hashes: list[bytes]) -> LedgerTransaction:
        """Record 32-byte receipt hashes in the receipt registry: one hash, or a batch as the Merkle root of
        :mod:`finp2p.assets.merkle` (the transaction's ``event`` holds ``root`` and ``count``). A root recorded
        before is refused with FP6017."""

    @abc.abstractmethod
    async def receipt_recorded(self, receipt_hash: bytes, proof: Sequence[bytes] = ()) -> bool:
        """Whether the receipt registry holds ``receipt_hash``: alone (no proof), or in a batch whose Merkle root was
        recorded (``proof`` from :func:`finp2p.assets.merkle.proofs`)."""

    async def find_receipts_record(self, root: bytes) -> LedgerTransaction | None:
        """The transaction that recorded ``root`` (a receipt hash, or a batch's Merkle root), or ``None``. The node
        asks it after FP6017, so a receipt recorded before a restart is answered with its record. By default the
        ledger cannot tell, and the FP6017 stands."""
        return None

    @abc.abstractmethod
    async def height(self) -> int:
        """The ledger's current height (block number, Fabric block height)."""

    async def height_at(self, timestamp: int) -> int:
        """The height of the last block at or before ``timestamp`` (unix seconds), for balances "as of" a time."""
        raise FinP2PError(ErrorCode.LEDGER_NO_HISTORY, "this ledger cannot find its height at a time")

    def account_of(self, fin_id: str) -> dict[str, str]:
        """The ledger accounts that hold ``fin_id``'s units, by the field names of :meth:`account_fields` (the
        ledger-adapter mapping API's ``accountMappings``). By default a FinID is its own account."""
        return {"ledgerAccountId": fin_id}

    def account_fields(self) -> list[dict[str, str]]:
        """The fields of a FinID's ledger account mapping: ``field``, ``description``, ``exampleValue``."""
        return [
            {
                "field": "ledgerAccountId",
                "description": "the account on this ledger that holds the FinID's units",
                "exampleValue": "02" + "ab" * 32,
            }
        ]

    def check_account(self, field: str, value: str) -> str:
        """``value`` of mapping ``field`` in this ledger's canonical form; FP7010 when it is not a valid account."""
        if field not in {f["field"] for f in self.account_fields()}:
            raise FinP2PError(ErrorCode.OPERATION_INVALID, f"this ledger has no account field {field!r}")
        if not isinstance(value, str) or not value.strip():
            raise FinP2PError(ErrorCode.OPERATION_INVALID, f"account field {field!r} must be a non-empty string")
        return value

    def asset_identifier(self, asset_id: str) -> dict[str, str]:
        """How the ledger-adapter API names ``asset_id`` on this ledger (a CAIP-19 ledger asset identifier)."""
        return {"assetIdentifierType": "CAIP-19", "network": self.ledger_id, "tokenId": asset_id, "standard": "finp2p"}

    async def verify_deployment(self) -> None:  # noqa: B027 - optional, nothing to check by default
        """Raise FP6016 unless this ledger's deployment (its contracts, its chaincode) is the genuine FinP2P code:
        what a view of a deployment someone else named must be before anything it says is believed. By default
        there is nothing to check."""

    def view(self, settings: Mapping[str, Any]) -> Ledger:
        """A read-only view of another deployment on this same ledger (another organization's contracts on this
        chain, another chaincode on this channel), named by the public ``settings`` that organization's node or
        bundle gives. Only what names a deployment is taken from them (contract addresses, a chaincode name),
        checked; never an endpoint, a backend or a file: the view reads through this ledger's own connection, so
        nothing a peer sends decides where this node connects. ``self`` when they name this ledger's own
        deployment, or when the ledger has no other kind (the default)."""
        return self

    def public_settings(self) -> dict[str, Any]:
        """Settings another party needs to read this ledger besides its profile's: an endpoint this node serves,
        contracts deployed when it started. Never a secret. None by default."""
        return {}

    async def close(self) -> None:  # noqa: B027 - optional hook with nothing to do by default
        """Release connections. Called once when the node stops."""
