"""The ``fabric`` ledger: FinP2P's ledger operations on the FinP2P chaincode, through the Fabric Gateway."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fabric_protos.common import common_pb2, ledger_pb2
from fabric_protos.peer import chaincode_event_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2

from finp2p.errors import TRANSIENT, ErrorCode, FinP2PError
from finp2p.identity import merkle
from finp2p.identity.consent import check_account, check_text, operation_template, owner_signature
from finp2p.identity.keys import check_point
from finp2p.ledger import Balance, Ledger, LedgerTransaction, OperationType, OwnerConsent
from finp2p_fabric.consent import Operation, consent_digest, verifying_contract
from finp2p_fabric.gateway import Gateway, Prepared
from finp2p_fabric.identity import name_of

log = logging.getLogger(__name__)

_TX_ID = re.compile(r"[0-9a-f]{64}")
#: A chaincode name, in a profile or a deployment another party names.
CHAINCODE_NAME = r"[A-Za-z0-9_.+\-]{1,128}"
_CHAINCODE = re.compile(CHAINCODE_NAME)
#: Other organizations' chaincodes this ledger reads (broadcast questions, audits), the oldest dropped beyond.
MAX_VIEWS = 64
#: Which operation each chaincode event is.
_EVENTS = {
    "Issued": OperationType.ISSUE,
    "Transferred": OperationType.TRANSFER,
    "Redeemed": OperationType.REDEEM,
    "Held": OperationType.HOLD,
    "Released": OperationType.RELEASE,
    "RolledBack": OperationType.ROLLBACK,
}
_FUNCTIONS = {
    "Issue": OperationType.ISSUE,
    "Transfer": OperationType.TRANSFER,
    "Redeem": OperationType.REDEEM,
    "Hold": OperationType.HOLD,
    "Release": OperationType.RELEASE,
    "Rollback": OperationType.ROLLBACK,
}
#: Validation codes after which a transaction can be endorsed and submitted again: it changed nothing, and
#: another transaction changed what it read (two operations on one balance in one block).
_RETRYABLE = {transaction_pb2.MVCC_READ_CONFLICT, transaction_pb2.PHANTOM_READ_CONFLICT}


@dataclass(frozen=True)
class ChaincodeEvent:
    """One event of the chaincode, as a block committed it."""

    block: int
    transaction_id: str
    name: str
    payload: dict[str, Any]


class FabricLedger(Ledger):
    """The FinP2P chaincode on one channel, used as one MSP identity (the operator, unless read only).

    The ledger is the channel (``fabric:<channel>``); each organization's deployment on it is a chaincode of its
    own (as each has its own contracts on an Ethereum chain), named in its public settings and read through this
    connection with :meth:`view`."""

    def __init__(
        self,
        gateway: Gateway,
        channel: str,
        chaincode: str,
        *,
        ledger_id: str | None = None,
        chain_id: int = 0,
        mvcc_retries: int = 8,
    ) -> None:
        self.gateway = gateway
        self.channel = channel
        self.chaincode = chaincode
        self.ledger_id = ledger_id or f"fabric:{channel}"
        self.chain_id = chain_id
        self.verifying_contract = verifying_contract(channel, chaincode)
        self.mvcc_retries = max(1, mvcc_retries)
        self._views: dict[str, FabricLedger] = {}
        self._owns_gateway = True
        self._checked = False

    # -- chaincode calls ----------------------------------------------------------------------------------------
    async def submit(self, function: str, args: Sequence[str], what: str) -> tuple[Prepared, int, int]:
        """Endorse, submit and await the commit of ``function(*args)``: ``(prepared, validation code, block)``.

        A refusal by the chaincode raises its FinP2P error at endorsement, before anything is ordered. A
        transaction invalidated by a read conflict (another operation on the same balance in the same block)
        changed nothing and is endorsed and submitted again, a few times; any other invalid one is FP6014."""
        gw = self.gateway
        for attempt in range(self.mvcc_retries):
            proposal = gw.proposal(self.channel, self.chaincode, function, args)
            prepared = await gw.endorse(proposal, what)
            await gw.submit(prepared, what)
            code, block = await gw.commit_status(proposal, what)
            if code == transaction_pb2.VALID:
                return prepared, code, block
            if code not in _RETRYABLE or attempt == self.mvcc_retries - 1:
                name = transaction_pb2.TxValidationCode.Name(code)
                raise FinP2PError(
                    ErrorCode.LEDGER_REVERTED,
                    f"{what}: transaction {proposal.tx_id} was invalidated by the peer ({name}); nothing changed",
                )
            await asyncio.sleep(random.uniform(0.0, 0.05) * (attempt + 1))  # noqa: S311 - jitter, not a secret
        raise AssertionError("unreachable")  # pragma: no cover

    async def query(self, function: str, args: Sequence[str], what: str, chaincode: str | None = None) -> bytes:
        proposal = self.gateway.proposal(self.channel, chaincode or self.chaincode, function, args)
        return await self.gateway.evaluate(proposal, what)

    async def _query_json(self, function: str, args: Sequence[str], what: str) -> Any:
        return json.loads(await self.query(function, args, what))

    async def config(self) -> dict[str, Any]:
        """The chaincode's configuration: its operator (MSP id and identity) and its EIP-712 domain."""
        config: dict[str, Any] = await self._query_json("GetConfig", [], "read the chaincode's configuration")
        return config

    async def start(self) -> None:
        """Reach the peer and check the profile against the chaincode's configuration, before the node serves: the
        chaincode answers on the channel, has an operator (its ``Configure`` ran), and signs consents in the
        profile's EIP-712 domain (chain id, and the verifying contract of this channel and chaincode), or every
        owner's signature would be checked against another digest. A peer that does not answer is FP6013 (the
        node starts without this ledger and it connects on first use); anything else that does not fit is FP6016."""
        try:
            config = await self.config()
        except FinP2PError as exc:
            # The Gateway answers UNAVAILABLE for a channel its peer has not joined: the peer answered, the
            # profile names a channel that is not there.
            unknown_channel = "failed to get config for channel" in exc.detail
            if exc.code in TRANSIENT and not unknown_channel:
                raise
            raise FinP2PError(
                ErrorCode.LEDGER_PROFILE,
                f"chaincode {self.chaincode!r} on channel {self.channel!r} at {self.gateway.endpoint}: {exc.detail}",
            ) from None
        expected = {
            "channel": self.channel,
            "chaincode": self.chaincode,
            "chainId": str(self.chain_id),
            "verifyingContract": self.verifying_contract,
        }
        found = {name: str(config.get(name, "")) for name in expected}
        wrong = [
            f"{name} {found[name]!r}, the profile's {value!r}"
            for name, value in expected.items()
            if found[name] != value
        ]
        if wrong:
            raise FinP2PError(
                ErrorCode.LEDGER_PROFILE,
                f"chaincode {self.chaincode!r} on channel {self.channel!r} was configured with "
                + "; ".join(wrong)
                + " (set chain_id in the profile to the chaincode's)",
            )
        identity = self.gateway.identity
        if config.get("operatorMsp") != identity.msp_id or identity.subject not in str(config.get("operatorId", "")):
            log.warning(
                "ledger %s: the profile's identity (%s, %s) is not the chaincode's operator (%s, %s): it can read, and "
                "every operation it submits is refused (FP6010)",
                self.ledger_id,
                identity.msp_id,
                identity.subject,
                config.get("operatorMsp"),
                config.get("operatorId"),
            )

    async def verify_deployment(self) -> None:
        """The chaincode answers on this channel as a configured FinP2P chaincode of this name (its operator fixed,
        its EIP-712 domain this channel's and chaincode's). Which code a chaincode runs is not something a client
        can read on Fabric: the channel's endorsement policy vouches for it, through the peer the auditor asks."""
        if self._checked:
            return
        try:
            config = await self.config()
        except FinP2PError as exc:
            if exc.code in TRANSIENT:
                raise
            raise FinP2PError(
                ErrorCode.LEDGER_PROFILE,
                f"chaincode {self.chaincode!r} on channel {self.channel!r} is no FinP2P chaincode: {exc.detail}",
            ) from None
        fits = (
            config.get("channel") == self.channel
            and config.get("chaincode") == self.chaincode
            and config.get("verifyingContract") == self.verifying_contract
            and bool(config.get("operatorMsp"))
        )
        if not fits:
            raise FinP2PError(
                ErrorCode.LEDGER_PROFILE,
                f"chaincode {self.chaincode!r} on channel {self.channel!r} is not a configured FinP2P chaincode",
            )
        self._checked = True

    def view(self, settings: Mapping[str, Any]) -> FabricLedger:
        """Another organization's chaincode on this channel (its name checked), read through this connection.
        A deployment on another channel is another ledger: FP6016."""
        channel = settings.get("channel", self.channel)
        chaincode = settings.get("chaincode")
        if channel != self.channel:
            raise FinP2PError(ErrorCode.LEDGER_PROFILE, f"{channel!r} is not channel {self.channel!r}, this ledger's")
        if not isinstance(chaincode, str) or not _CHAINCODE.fullmatch(chaincode):
            raise FinP2PError(ErrorCode.LEDGER_PROFILE, "a deployment on Fabric is named by its chaincode's name")
        if chaincode == self.chaincode:
            return self
        found = self._views.get(chaincode)
        if found is None:
            chain_id = settings.get("chain_id", 0)
            valid = isinstance(chain_id, int) and not isinstance(chain_id, bool) and 0 <= chain_id < 2**256
            found = FabricLedger(
                self.gateway, self.channel, chaincode, ledger_id=self.ledger_id, chain_id=chain_id if valid else 0
            )
            found._owns_gateway = False
            if len(self._views) >= MAX_VIEWS:  # the oldest view goes: a peer cannot make this grow without end
                self._views.pop(next(iter(self._views)))
            self._views[chaincode] = found
        return found

    async def configure(self, chain_id: int | None = None) -> str:
        """Make this identity the chaincode's operator and fix the chain id of its EIP-712 domain (once); return
        the transaction id."""
        chain = str(self.chain_id if chain_id is None else chain_id)
        prepared, _, _ = await self.submit("Configure", [chain], "configure")
        return prepared.proposal.tx_id

    # -- operations ---------------------------------------------------------------------------------------------
    async def _execute(self, function: str, op: Operation, *extra: str) -> LedgerTransaction:
        prepared, code, block = await self.submit(
            function, [op.as_json(), *extra], f"{function.lower()} {op.operation_id}"
        )
        found = self._describe(prepared.envelope, code, block)
        assert found is not None
        return found

    async def create_asset(self, asset_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
        check_text(asset_id, "asset id")
        prepared, _, _ = await self.submit("CreateAsset", [asset_id], f"create asset {asset_id}")
        return {"chaincode": self.chaincode, "channel": self.channel, "transaction_id": prepared.proposal.tx_id}

    async def issue(self, asset_id: str, destination: str, quantity: int, operation_id: str) -> LedgerTransaction:
        return await self._execute(
            "Issue", Operation.checked(operation_id, asset_id, destination=destination, quantity=quantity)
        )

    async def transfer(
        self,
        asset_id: str,
        source: str,
        destination: str,
        quantity: int,
        operation_id: str,
        consent: OwnerConsent,
    ) -> LedgerTransaction:
        op = Operation.checked(operation_id, asset_id, source=source, destination=destination, quantity=quantity)
        return await self._execute("Transfer", op, self._consent(consent, "Transfer", op))

    async def redeem(
        self, asset_id: str, source: str, quantity: int, operation_id: str, consent: OwnerConsent | None
    ) -> LedgerTransaction:
        op = Operation.checked(operation_id, asset_id, source=source, quantity=quantity)
        # A redeem from a hold needs no new consent: the owner gave it for the hold.
        owner = self._consent(consent, "Redeem", op) if consent is not None else "{}"
        return await self._execute("Redeem", op, owner)

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
        if isinstance(expiry, bool) or not isinstance(expiry, int) or not 0 <= expiry < 2**256:
            raise FinP2PError(ErrorCode.LEDGER_INVALID_QUANTITY, "a hold's expiry is a unix time, or 0 for none")
        op = Operation.checked(
            operation_id, asset_id, source=source, destination=destination or "", quantity=quantity, expiry=expiry
        )
        return await self._execute("Hold", op, self._consent(consent, "Hold", op))

    async def release(
        self, asset_id: str, source: str, destination: str, quantity: int, operation_id: str
    ) -> LedgerTransaction:
        op = Operation.checked(operation_id, asset_id, source=source, destination=destination, quantity=quantity)
        return await self._execute("Release", op)

    async def rollback(self, asset_id: str, source: str, quantity: int, operation_id: str) -> LedgerTransaction:
        return await self._execute(
            "Rollback", Operation.checked(operation_id, asset_id, source=source, quantity=quantity)
        )

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
        return operation_template(
            operation,
            asset_id,
            source,
            destination,
            quantity,
            operation_id,
            expiry,
            self.chain_id,
            self.verifying_contract,
        )

    def _consent(self, consent: OwnerConsent | None, kind: str, op: Operation) -> str:
        """The chaincode's ``Consent`` argument (JSON): ``{"template": "", "signature": r||s}`` for this ledger's
        own typed data (the chaincode recomputes the digest), or the digest of another template (a FinP2P router's,
        which the caller must have checked against the operation), which the chaincode accepts once."""
        own = consent_digest(kind, op, self.chain_id, self.verifying_contract)
        template, signature = owner_signature(consent, op.source, own, (self.chain_id, self.verifying_contract))
        return json.dumps({"template": template.hex() if template else "", "signature": signature.hex()})

    # -- reads --------------------------------------------------------------------------------------------------
    async def balance(self, asset_id: str, fin_id: str, height: int | None = None) -> Balance:
        check_text(asset_id, "asset id")
        check_account(fin_id, "account")
        if not self._owns_gateway:  # another organization's chaincode, named by a peer: a FinP2P one first
            await self.verify_deployment()
        found, current = await asyncio.gather(
            self._query_json("BalanceOf", [asset_id, fin_id], "balance"), self.height()
        )
        if height is not None and height != current:
            raise FinP2PError(
                ErrorCode.LEDGER_NO_HISTORY,
                f"Fabric keeps no history of its state: only the current balance (height {current}) can be read",
            )
        return Balance(asset_id, fin_id, int(found["available"]), int(found["held"]), current)

    async def supply(self, asset_id: str) -> int:
        """All units of ``asset_id`` in existence (available plus held, of every owner)."""
        return int(await self.query("SupplyOf", [asset_id], "supply"))

    async def height(self) -> int:
        raw = await self.query("GetChainInfo", [self.channel], "height", chaincode="qscc")
        return int(ledger_pb2.BlockchainInfo.FromString(raw).height)

    async def transaction(self, transaction_id: str) -> LedgerTransaction | None:
        """The transaction as the ledger itself records it: qscc's processed transaction (the envelope and the
        validation code the peer gave it) and the block it is in."""
        if not isinstance(transaction_id, str) or not _TX_ID.fullmatch(transaction_id):
            return None
        args = [self.channel, transaction_id]
        try:
            processed_raw, block_raw = await asyncio.gather(
                self.query("GetTransactionByID", args, "transaction lookup", chaincode="qscc"),
                self.query("GetBlockByTxID", args, "transaction lookup", chaincode="qscc"),
            )
        except FinP2PError as exc:
            if exc.code is ErrorCode.LEDGER_REVERTED and "no such transaction" in exc.detail.lower():
                return None
            raise
        processed = transaction_pb2.ProcessedTransaction.FromString(processed_raw)
        block = common_pb2.Block.FromString(block_raw)
        return self._describe(processed.transactionEnvelope, int(processed.validationCode), int(block.header.number))

    def _describe(self, envelope: common_pb2.Envelope, code: int, block: int) -> LedgerTransaction | None:
        """What a receipt and an auditor need from a transaction of this chaincode, from its envelope alone."""
        payload = common_pb2.Payload.FromString(envelope.payload)
        header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        signature_header = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
        if header.type != common_pb2.ENDORSER_TRANSACTION:
            return None
        transaction = transaction_pb2.Transaction.FromString(payload.data)
        if not transaction.actions:
            return None
        action_payload = transaction_pb2.ChaincodeActionPayload.FromString(transaction.actions[0].payload)
        response = proposal_response_pb2.ProposalResponsePayload.FromString(
            action_payload.action.proposal_response_payload
        )
        action = proposal_pb2.ChaincodeAction.FromString(response.extension)
        if action.chaincode_id.name != self.chaincode:
            return None
        base: dict[str, Any] = {
            "ledger_id": self.ledger_id,
            "transaction_id": header.tx_id,
            "height": block,
            "timestamp": int(header.timestamp.seconds),
            "succeeded": code == transaction_pb2.VALID,
            "submitter": name_of(bytes(signature_header.creator)),
        }
        event = chaincode_event_pb2.ChaincodeEvent.FromString(action.events) if action.events else None
        if event is None or not event.event_name:
            return None
        try:
            data = json.loads(event.payload)
        except ValueError:
            return None
        described: dict[str, Any] = {"name": event.event_name, "chaincode": self.chaincode}
        if event.event_name == "ReceiptsRecorded":
            root, count = str(data["root"]), int(data["count"])
            return LedgerTransaction(
                operation="record-receipts",
                operation_id=root,
                asset_id="",
                quantity=count,
                event={**described, "root": root, "count": count},
                **base,
            )
        operation = _EVENTS.get(event.event_name)
        if operation is None:
            return None  # a transaction of ours that is not an operation (an asset's creation)
        op = data["op"]
        described["op"] = {**op, "quantity": int(op["quantity"]), "expiry": int(op.get("expiry") or 0)}
        if data.get("consentTemplate"):
            described["consent_template"] = data["consentTemplate"]
        return LedgerTransaction(
            operation=operation,
            operation_id=op["operationId"],
            asset_id=op["assetId"],
            quantity=int(op["quantity"]),
            source=op["source"] or None,
            destination=op["destination"] or None,
            event=described,
            **base,
        )

    async def find_operation(self, operation_id: str, operation: OperationType) -> LedgerTransaction | None:
        """One read of the chaincode's record of the operation id (the transaction that spent it, the hold and the
        transaction that settled it), then that transaction from the ledger itself."""
        record = await self._query_json("OperationOf", [operation_id], "find operation")
        spent, hold = record.get("spent") or {}, record.get("hold") or {}
        settled = {"released": OperationType.RELEASE, "rolledback": OperationType.ROLLBACK}
        settled["redeemed"] = OperationType.REDEEM
        tx_id: str | None = None
        if spent.get("operation") == str(operation):
            tx_id = spent["txId"]
        elif settled.get(hold.get("status", "")) == operation:
            tx_id = hold.get("settledIn")
        if not tx_id:
            return None
        found = await self.transaction(tx_id)
        if found is None or found.operation != operation or found.operation_id != operation_id:
            return None
        return found

    async def events(self, start_block: int | None = None) -> AsyncIterator[ChaincodeEvent]:
        """The chaincode's events as blocks commit them, from ``start_block`` (default: from the next block)."""
        async for block, event in self.gateway.chaincode_events(self.channel, self.chaincode, start_block):
            try:
                payload = json.loads(event.payload)
            except ValueError:
                payload = {}
            yield ChaincodeEvent(block, event.tx_id, event.event_name, payload)

    # -- receipts -----------------------------------------------------------------------------------------------
    async def record_receipts(self, receipt_hashes: list[bytes]) -> LedgerTransaction:
        try:
            root = merkle.root(receipt_hashes)
        except ValueError as exc:
            raise FinP2PError(ErrorCode.LEDGER_INVALID_QUANTITY, f"record receipts: {exc}") from None
        what = f"record receipts 0x{root.hex()[:12]}…"
        prepared, code, block = await self.submit("Record", [root.hex(), str(len(receipt_hashes))], what)
        found = self._describe(prepared.envelope, code, block)
        assert found is not None
        return found

    async def receipt_recorded(self, receipt_hash: bytes, proof: Sequence[bytes] = ()) -> bool:
        answer = await self.query("IsRecorded", [receipt_hash.hex(), json.dumps([p.hex() for p in proof])], "receipt")
        return answer.strip() == b"true"

    async def find_receipts_record(self, root: bytes) -> LedgerTransaction | None:
        """One read of the registry (the transaction that recorded ``root``), then that transaction from the ledger
        itself, as :meth:`find_operation` finds an operation."""
        if not isinstance(root, bytes) or len(root) != 32:
            return None
        tx_id = (await self.query("RecordedIn", [root.hex()], "receipt lookup")).decode().strip()
        if not tx_id:
            return None
        found = await self.transaction(tx_id)
        if found is None or found.event.get("root") != "0x" + root.hex():
            return None
        return found

    # -- accounts -----------------------------------------------------------------------------------------------
    def account_fields(self) -> list[dict[str, str]]:
        return [
            {
                "field": "ledgerAccountId",
                "description": "the FinID itself: the chaincode keeps a FinID's units under its own key",
                "exampleValue": "02" + "ab" * 32,
            }
        ]

    def check_account(self, field: str, value: str) -> str:
        super().check_account(field, value)
        try:
            return check_point(value, field)
        except FinP2PError:
            raise FinP2PError(ErrorCode.OPERATION_INVALID, f"{field} {value[:16]!r}… is not a FinID") from None

    def public_settings(self) -> dict[str, Any]:
        """What names this deployment for others (the profile's, repeated so that no profile can leave it out)."""
        return {"channel": self.channel, "chaincode": self.chaincode, "chain_id": self.chain_id}

    async def close(self) -> None:
        self._views.clear()
        if self._owns_gateway:
            await self.gateway.close()
