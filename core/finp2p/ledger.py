"""The interface a ledger plugin implements, and the data it exchanges with the node.

This module and :mod:`finp2p.hookspecs` are the whole contract of a ledger plugin; the Ethereum plugin
(``plugins/ethereum``) is a complete one to read beside them, and :mod:`finp2p.testing.ledger` is the conformance
suite every ledger plugin runs against its own ledger.

**Operations.** They follow FinP2P's ledger-adapter API (create asset, issue, transfer, redeem, hold, release,
rollback, balance, receipt by transaction id), plus what the node itself needs from a ledger: recording receipt
hashes in a receipt registry and reporting the ledger's height. Quantities are integers in the asset's smallest
unit (the node converts decimal strings at its edge, and never passes a quantity below 1 or above 2**256 - 1).
Accounts are FinIDs (hex of a compressed secp256k1 public key); each ledger maps them to its own accounts.

**Errors.** A ledger refuses with :class:`finp2p.errors.FinP2PError` and an FP6xxx code; it never returns a
transaction with ``succeeded=False`` for a refusal that happened before anything reached the ledger. What the node
does with each code:

- *Transient* (``finp2p.errors.TRANSIENT``, the one retryable set; for a ledger FP6013 ``LEDGER_UNREACHABLE`` and
  FP6015 ``LEDGER_TIMEOUT``): the operation stays written down as executing. The node asks again later and, before
  submitting again, looks the operation up with :meth:`Ledger.find_operation`: FP6015 means the transaction may
  still be confirmed, so a ledger must raise it only when that lookup will find the transaction once it is.
- FP6003 ``LEDGER_OPERATION_ID_USED``: the node calls :meth:`Ledger.find_operation`; the transaction found is the
  answer when it is the same operation (asset and quantity), FP7005 ``OPERATION_ID_CONFLICT`` when the id was
  spent on another one, and the FP6003 stands when nothing is found.
- FP6017 ``LEDGER_ALREADY_RECORDED`` (from :meth:`Ledger.record_receipts`): the node asks
  :meth:`Ledger.find_receipts_record` and answers with that record.
- FP6016 ``LEDGER_PROFILE`` (from a factory, :meth:`Ledger.start` or :meth:`Ledger.verify_deployment`): the node
  does not start; an auditor reports the check as failed.
- Every other FP6xxx code is *final*: the operation fails with it, the failure is written down and every later ask
  of the same operation is answered with it. Use the code that says what happened (FP6001 insufficient balance,
  FP6002 bad signature, FP6004 to FP6007 holds, FP6008/FP6009 assets, FP6010 not the operator, FP6011 and FP6012
  accounts and quantities, FP6014 reverted, FP6018 no funds for fees, FP6019 and FP6021 consents, FP6020 fields,
  FP6022 history); their HTTP status and hint come with the code.

Any other exception is a bug in the plugin: the node logs it and leaves the operation to resume on its next start.

**Imports.** A plugin imports this module, :mod:`finp2p.hookspecs` (``finp2p.hookimpl``), :mod:`finp2p.components`,
:mod:`finp2p.errors`, :mod:`finp2p.ledger_profiles`, :mod:`finp2p.resource_id`, the bottom floor
(:mod:`finp2p.edge`, :mod:`finp2p.identity` for keys, canonical JSON and its operator's local key), the pure
functions a ledger shares with the node (:mod:`finp2p.identity.templates`, the consent digests, and
:mod:`finp2p.identity.merkle`, the receipt batches), :mod:`finp2p.cli.output` and :mod:`finp2p.cli.common` for
its commands and :mod:`finp2p.testing` in its tests; nothing else of the core. ``make lint`` checks it
(import-linter).

**Lifecycle.** A factory (see :func:`finp2p.hookspecs.finp2p_ledger_kinds`) builds the ledger without blocking; the
node then calls :meth:`Ledger.start` once, the operations concurrently, and :meth:`Ledger.close` once at the end.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from finp2p.errors import ErrorCode, FinP2PError


class OperationType(enum.StrEnum):
    """The asset operations a ledger executes; the values are the ledger-adapter API's names."""

    ISSUE = "issue"
    TRANSFER = "transfer"
    REDEEM = "redeem"
    HOLD = "hold"
    RELEASE = "release"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class LedgerProfile:
    """How to reach one ledger: its plugin kind, its id (CAIP-2 where one exists) and kind-specific settings.

    ``settings`` is the ``[settings]`` table of a profile file in ``chains/``; the factory receives it with two
    keys added, ``ledger_id`` and ``profile_dir`` (the profile's folder, against which its relative paths resolve).
    """

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

    - ``ledger_id``: the ledger's id (:attr:`Ledger.ledger_id`).
    - ``transaction_id``: the ledger's own id of the transaction (an Ethereum transaction hash, a Fabric
      transaction id), by which :meth:`Ledger.transaction` finds it again; it becomes the receipt's id, so it names
      this one operation: a ledger that executes several operations in one transaction (a batch) gives each its
      own id, the transaction's and the operation's place in it (Ethereum: ``0x<hash>:<log index of its event>``),
      and the transaction's id alone then names none of them.
    - ``operation``, ``operation_id``, ``asset_id``, ``quantity``, ``source``, ``destination``: the operation as the
      ledger executed it (read from the ledger, not echoed from the request: the node compares them with what it
      asked). ``source`` is ``None`` for an issue, ``destination`` for a redeem and a rollback; a record of receipt
      hashes has ``operation`` ``"record-receipts"`` and the number of hashes recorded as its quantity.
    - ``succeeded``: whether the transaction took effect (``False`` only for a transaction that is on the ledger and
      failed there, as :meth:`Ledger.transaction` may find one).
    - ``height`` and ``timestamp``: the block (or Fabric block) the transaction is in, and its time in unix seconds.
    - ``event``: what the ledger emitted for it, as the contract or chaincode saw the operation (a record's ``root``
      and ``count``).
    - ``submitter``: the account that submitted it, in the ledger's own form (an Ethereum address, a Fabric MSP
      identity), which an auditor compares with the operator the organization names.
    """

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
    """Units of one asset held by one FinID, read at ledger height ``height``: ``available`` to spend and ``held``
    in holds not yet released or rolled back."""

    asset_id: str
    fin_id: str
    available: int
    held: int
    height: int


class Ledger(abc.ABC):
    """One ledger, reached through one profile. Every method may be called concurrently.

    Each operation method names the codes it raises for its own refusals; any of them may also raise the transient
    FP6013 ``LEDGER_UNREACHABLE`` and FP6015 ``LEDGER_TIMEOUT``, FP6016 ``LEDGER_PROFILE`` when the profile turns out
    to be wrong, FP6018 ``LEDGER_NO_FUNDS`` and FP6014 ``LEDGER_REVERTED`` (the module docstring says what the node
    does with each). Every operation id is single-use across kinds: an issue, transfer, redeem or hold under an
    operation id already spent by any of them raises FP6003 ``LEDGER_OPERATION_ID_USED`` (a release, redeem or
    rollback of a hold names the hold's id, and spends the hold instead).
    """

    #: The ledger id, CAIP-2 where one exists (``eip155:31337``, ``fabric:<channel>``): the chain or channel, on which
    #: each organization has a deployment of its own (contracts, a chaincode) that :meth:`view` reads.
    ledger_id: str

    async def start(self) -> None:  # noqa: B027 - optional: a ledger may connect on first use instead
        """Connect, and check what the profile says (the chain's id, the contracts, the chaincode), once, before the
        node serves: a bad profile raises FP6016 and an unreachable ledger FP6013 here, so the node refuses to start
        rather than fail its first operation. Not called where a ledger is opened for one command (an auditor's
        lookup); every method must then work without it. Does nothing by default."""

    @abc.abstractmethod
    async def create_asset(self, asset_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
        """Make the asset known to the ledger; return its ledger-side identifier fields (token address, ...).

        Raises FP6009 ``LEDGER_ASSET_EXISTS`` when it exists already (the node takes that as done when it resumes a
        creation, or binds to an asset that exists), FP6020 ``LEDGER_INVALID_FIELD`` for an id it cannot hold."""

    @abc.abstractmethod
    async def issue(self, asset_id: str, destination: str, quantity: int, operation_id: str) -> LedgerTransaction:
        """Create ``quantity`` new units owned by ``destination``; only the ledger's operator may (FP6010
        ``LEDGER_NOT_OPERATOR``). Raises FP6008 ``LEDGER_UNKNOWN_ASSET``, FP6011 ``LEDGER_INVALID_ACCOUNT``, FP6012
        ``LEDGER_INVALID_QUANTITY``, FP6020 ``LEDGER_INVALID_FIELD``, FP6003 for a spent operation id."""

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
        that the caller has checked against the operation; the ledger checks the signature either way. A template
        of the ledger's own kind and domain must be this very operation's (FP6002 otherwise): a ledger tells its
        own templates from a router's by their domain (EIP-712) or by a field naming the ledger (hashList).

        Raises FP6001 ``LEDGER_INSUFFICIENT_BALANCE`` (available units only: held ones do not count), FP6002
        ``LEDGER_BAD_SIGNATURE`` (not the source's signature over exactly this operation), FP6019
        ``LEDGER_UNSUPPORTED_CONSENT`` (a template kind this ledger cannot check), FP6021 ``LEDGER_CONSENT_USED`` (a
        signed template authorises one operation), FP7009 ``CONSENT_INVALID`` (a template that is not well formed),
        and the codes of :meth:`issue` for the asset, accounts, quantity and operation id."""

    @abc.abstractmethod
    async def redeem(
        self, asset_id: str, source: str, quantity: int, operation_id: str, consent: OwnerConsent | None
    ) -> LedgerTransaction:
        """Destroy units of ``source``: from the active hold of the same ``operation_id`` when there is one (no
        consent needed: the hold's was given), else from its available units with its ``consent``.

        Raises the codes of :meth:`transfer`; from a hold FP6005 ``LEDGER_HOLD_EXPIRED``, FP6006
        ``LEDGER_HOLD_QUANTITY`` (more than held) and FP6007 ``LEDGER_HOLD_MISMATCH`` (another asset or source)."""

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
        """Escrow units of ``source`` under ``operation_id`` until ``expiry`` (unix seconds; 0 for none), for
        ``destination`` when it is known. Held units leave the available balance and count in :attr:`Balance.held`.

        Raises the codes of :meth:`transfer`, and FP6012 for a negative expiry."""

    @abc.abstractmethod
    async def release(
        self, asset_id: str, source: str, destination: str, quantity: int, operation_id: str
    ) -> LedgerTransaction:
        """Pay held units of ``operation_id`` to ``destination``; only the ledger's operator may (FP6010). It
        closes the hold: a release of part of it returns the rest to ``source``.

        Raises FP6004 ``LEDGER_UNKNOWN_HOLD`` (none active: never made, or released, redeemed or rolled back),
        FP6005 ``LEDGER_HOLD_EXPIRED``, FP6006 ``LEDGER_HOLD_QUANTITY``, FP6007 ``LEDGER_HOLD_MISMATCH`` (another
        asset, source, or a destination other than the hold's)."""

    @abc.abstractmethod
    async def rollback(self, asset_id: str, source: str, quantity: int, operation_id: str) -> LedgerTransaction:
        """Return held units of ``operation_id`` to ``source``: the whole hold, expired or not; only the ledger's
        operator may (FP6010). Raises FP6004, FP6006 (not exactly the held quantity) and FP6007."""

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
        checks a consent against it before executing; the ledger may check it again (on-chain). Reads nothing
        from the ledger that could change the answer: the same arguments give the same template. FP6020
        ``LEDGER_INVALID_FIELD`` for an operation that needs no consent (issue, release, rollback)."""

    @abc.abstractmethod
    async def balance(self, asset_id: str, fin_id: str, height: int | None = None) -> Balance:
        """The available and held units of ``fin_id`` in ``asset_id``, at ``height`` (the ledger's current height
        when ``None``); zero for an account the ledger has never seen; FP6011 ``LEDGER_INVALID_ACCOUNT`` for a
        ``fin_id`` that is not a FinID. A ledger that keeps no history, or a height it does not have (past or not
        reached yet), is refused with FP6022 ``LEDGER_NO_HISTORY``. An asset the ledger does not know holds
        nothing (zero), or is refused with FP6008 ``LEDGER_UNKNOWN_ASSET``."""

    @abc.abstractmethod
    async def transaction(self, transaction_id: str) -> LedgerTransaction | None:
        """Look a transaction up on the ledger itself, by :attr:`LedgerTransaction.transaction_id`; ``None`` when
        the ledger does not know it (never an error for an id of the wrong form: it is simply not there)."""

    @abc.abstractmethod
    async def find_operation(self, operation_id: str, operation: OperationType) -> LedgerTransaction | None:
        """The transaction that executed ``operation`` under ``operation_id``, or ``None`` if it never happened.

        This is how a node that crashed after submitting, or met FP6003 or FP6015, learns whether its operation took
        effect, so it never executes one twice: it must find every confirmed transaction, across restarts of the
        node and of the ledger's client. It returns what the operation itself returned (the same transaction
        id, asset and quantity: the node compares them with the request), and ``None`` when the id was spent by
        another kind of operation only. Release, rollback and a redeem from a hold carry the operation id of their
        hold.
        """

    @abc.abstractmethod
    async def record_receipts(self, receipt_hashes: list[bytes]) -> LedgerTransaction:
        """Record 32-byte receipt hashes in the receipt registry: one hash, or a batch as the Merkle root of
        :mod:`finp2p.identity.merkle`; only the ledger's operator may (FP6010). The transaction's ``event`` holds
        ``root`` (``"0x"`` and 64 lowercase hex digits, which an auditor compares) and ``count``, and its
        ``quantity`` is the batch's size. A root recorded before is refused with FP6017 ``LEDGER_ALREADY_RECORDED``,
        an empty batch with FP6012."""

    @abc.abstractmethod
    async def receipt_recorded(self, receipt_hash: bytes, proof: Sequence[bytes] = ()) -> bool:
        """Whether the receipt registry holds ``receipt_hash``: alone (no proof), or in a batch whose Merkle root was
        recorded (``proof`` from :func:`finp2p.identity.merkle.proofs`)."""

    @abc.abstractmethod
    async def find_receipts_record(self, root: bytes) -> LedgerTransaction | None:
        """The transaction that recorded ``root`` (a receipt hash, or a batch's Merkle root), or ``None``. The node
        asks it after FP6017, so a receipt recorded before a restart is answered with its record instead of
        failing: like :meth:`find_operation`, it must find every record across restarts."""

    @abc.abstractmethod
    async def height(self) -> int:
        """The ledger's current height (block number, Fabric block height); what ``/health`` asks to see whether
        the ledger answers."""

    async def height_at(self, timestamp: int) -> int:
        """The height of the last block at or before ``timestamp`` (unix seconds), for balances "as of" a time;
        FP6022 ``LEDGER_NO_HISTORY`` when the ledger cannot tell (the default) or starts after it."""
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
        """Release connections and anything :meth:`start` began. Called once when the node stops, also when it
        stops because a later part failed to start; must not raise for a ledger that never started."""
