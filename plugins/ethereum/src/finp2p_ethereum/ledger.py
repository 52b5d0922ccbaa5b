"""The ``ethereum`` ledger: FinP2P's ledger operations on the FinP2PAssets and ReceiptRegistry contracts."""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from web3 import AsyncWeb3
from web3.exceptions import TransactionNotFound

from finp2p.edge.gather import Gatherer
from finp2p.errors import TRANSIENT, ErrorCode, FinP2PError
from finp2p.identity import merkle
from finp2p.identity.canonical import keccak256
from finp2p.identity.consent import check_account, check_text, operation_template, owner_signature
from finp2p.identity.keys import SigningKey, check_fin_id, eth_address
from finp2p.ledger import Balance, Ledger, LedgerTransaction, OperationType, OwnerConsent
from finp2p_ethereum import reverts
from finp2p_ethereum.artifacts import artifact, calldata, signature
from finp2p_ethereum.chain import Chain
from finp2p_ethereum.consent import Operation, consent_digest
from finp2p_ethereum.deploy import Deployment, deploy_contracts
from finp2p_ethereum.submit import DEFAULT_OPTIONS, SubmitOptions, Submitter

log = logging.getLogger(__name__)

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}", re.ASCII)
#: Views of other deployments a ledger keeps (:meth:`EthereumLedger.view`).
MAX_VIEWS = 64
#: Which operation each contract function and event is.
_FUNCTIONS = {
    "issue": OperationType.ISSUE,
    "transfer": OperationType.TRANSFER,
    "redeem": OperationType.REDEEM,
    "hold": OperationType.HOLD,
    "release": OperationType.RELEASE,
    "rollback": OperationType.ROLLBACK,
}
_EVENTS = {
    "Issued": OperationType.ISSUE,
    "Transferred": OperationType.TRANSFER,
    "Redeemed": OperationType.REDEEM,
    "Held": OperationType.HOLD,
    "Released": OperationType.RELEASE,
    "RolledBack": OperationType.ROLLBACK,
}
#: Gas limit of every operation (any operation of these contracts needs well under a third of it; what is not used
#: is not paid). Checking an operation with one eth_call and sending it with this limit costs one execution on the
#: node instead of the several of a gas estimate's search.
OPERATION_GAS_LIMIT = 1_000_000
#: Each function's ``FinP2PAssets.Kind`` in a batch.
_KINDS = {"issue": 0, "transfer": 1, "redeem": 2, "hold": 3, "release": 4, "rollback": 5}
#: The gas of a batch: what the transaction itself needs, and a bound for each operation in it (the costliest, a
#: hold with a router's consent, measured at under half of it). An operation that still runs out fails alone
#: without a reason, and is then sent alone.
BATCH_GAS_BASE = 100_000
BATCH_GAS_PER_OPERATION = 400_000
#: The most gas one transaction may ask for: EIP-7825 (Osaka) caps it at 2**24, and Hardhat enforces the cap. A
#: batch of 64 asked 25.7M and was refused whole, so that each of its operations went alone: at 64 in flight the
#: batched plugin ran at 73 transfers/s against 172/s with batches of 40 (bench.transfers).
TRANSACTION_GAS_CAP = 2**24
#: The most operations in one batch, at the gas a batch asks for each, within :data:`TRANSACTION_GAS_CAP`: 41.
MAX_BATCH = (TRANSACTION_GAS_CAP - BATCH_GAS_BASE) // BATCH_GAS_PER_OPERATION
#: An operation's transaction id: the transaction hash, and the log index of the operation's event when the
#: transaction carries several operations (a batch).
_TRANSACTION_ID = re.compile(r"0x[0-9a-fA-F]{64}(?::([0-9]{1,7}))?", re.ASCII)
_NO_CONSENT = (b"\0" * 32, b"")


@dataclass(frozen=True)
class BatchOptions:
    """How operations that arrive together share a transaction (a profile's ``batch_window_ms`` and
    ``batch_max``): the first one waits ``window_s`` for others, a batch holds at most ``max_size`` (1 to
    :data:`MAX_BATCH`); 1 sends each operation in a transaction of its own."""

    window_s: float = 0.005
    max_size: int = MAX_BATCH

    def __post_init__(self) -> None:
        if not 1 <= self.max_size <= MAX_BATCH:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH} operations (a transaction's gas is capped at 2**24)")


@dataclass(frozen=True)
class _Call:
    """One operation waiting for a batch: the contract function, its fields and the owner's consent."""

    function: str
    op: Operation
    consent: tuple[bytes, bytes] | None = None


@dataclass(frozen=True)
class _Event:
    """An operation's event, or a batch's ``OperationFailed``, as the assets contract emitted it."""

    log_index: int
    name: str
    args: dict[str, Any]
    consent_template: str | None = None


@dataclass(frozen=True)
class Serving:
    """How an embedded chain is served over JSON-RPC (see :mod:`finp2p_ethereum.rpc_server`): where, the token
    callers need (``None``: opened explicitly, on loopback), and the addresses funded for development."""

    host: str
    port: int
    token: str | None
    fund: tuple[str, ...] = ()


class EthereumLedger(Ledger):
    """One operator's contracts on one chain. ``deployment`` may be ``None`` on the embedded chain: the contracts
    are then deployed on first use (an embedded chain starts empty)."""

    def __init__(
        self,
        chain: Chain,
        operator: SigningKey,
        deployment: Deployment | None,
        *,
        ledger_id: str | None = None,
        options: SubmitOptions = DEFAULT_OPTIONS,
        serving: Serving | None = None,
        batch: BatchOptions = BatchOptions(),
    ) -> None:
        self.chain = chain
        #: How to serve an embedded chain over JSON-RPC, when its profile asks for it.
        self.serving = serving
        self._server: Any = None
        #: From the profile; checked against the chain's own id on first use.
        self.ledger_id = ledger_id or ""
        self.operator = operator
        if options.gas_limit is None:
            options = replace(options, gas_limit=OPERATION_GAS_LIMIT)
        elif options.gas_limit == 0:  # estimate each transaction instead
            options = replace(options, gas_limit=None)
        self.submitter = Submitter(chain, operator, options)
        #: Where operations wait to share a transaction (``None``: each goes alone).
        self.batches: Gatherer[_Call, LedgerTransaction] | None = None
        if batch.max_size > 1:
            self.batches = Gatherer(self._run_batch, window_s=batch.window_s, max_size=batch.max_size)
        #: Told each step of a batch of several operations, with its size: ``sending`` (gathered, about to be
        #: sent), ``sent`` (the chain has it, not yet confirmed), ``mined`` (confirmed, outcomes not yet given to
        #: the operations): for metrics and fault tests.
        self.on_batch_step: Callable[[str, int], None] | None = None
        self._deployment = deployment
        #: Views of other operators' contracts on this chain (:meth:`view`), sharing its connection.
        self._views: dict[tuple[str, str], EthereumLedger] = {}
        self._owns_chain = True
        self._genuine = False  # whether verify_deployment found FinP2P's code at the contracts' addresses
        self._ready = asyncio.Lock()
        self._connected = False
        # Built once: a web3 contract object costs more to make than most calls through it.
        self._assets_contract: Any = None
        self._registry_contract: Any = None
        w3 = chain.w3
        self._assets_abi = w3.eth.contract(abi=artifact("FinP2PAssets").abi)
        self._registry_abi = w3.eth.contract(abi=artifact("ReceiptRegistry").abi)

    # -- set-up --------------------------------------------------------------------------------------------------
    async def deployment(self) -> Deployment:
        """The contracts' addresses, deploying them first on an embedded chain that has none yet."""
        if not self._connected:
            await self.submitter._call(self.chain.connect(), "connect")
            self._connected = True
            if not self.ledger_id:
                self.ledger_id = self.chain.ledger_id
            elif self.ledger_id != self.chain.ledger_id:
                raise FinP2PError(
                    ErrorCode.LEDGER_PROFILE,
                    f"the profile is for {self.ledger_id}; {self.chain.url or 'the chain'} is {self.chain.ledger_id}",
                )
        if self._deployment is None and not self.chain.embedded:
            raise FinP2PError(
                ErrorCode.LEDGER_PROFILE, "this profile names no contracts: it reads the deployments bundles name only"
            )
        if self._deployment is None:
            async with self._ready:
                if self._deployment is None:
                    self._deployment = await deploy_contracts(self.chain, self.operator)
        return self._deployment

    async def start(self) -> None:
        """Connect and check the chain's id, deploy on an embedded chain that has no contracts yet, then serve the
        embedded chain over JSON-RPC when the profile asks (``serve_rpc``)."""
        await self.deployment()
        if self.serving is not None and self._server is None:
            url = await self.serve()
            log.info("embedded chain %s served at %s", self.ledger_id, url)

    async def verify_deployment(self) -> None:
        if self._genuine:
            return
        d = await self.deployment()
        for address, name in ((d.assets, "FinP2PAssets"), (d.registry, "ReceiptRegistry")):
            code = await self.submitter._call(self.chain.w3.eth.get_code(_checksum(address)), "deployment check")
            if keccak256(bytes(code)) != _code_hash(name):
                raise FinP2PError(
                    ErrorCode.LEDGER_PROFILE,
                    f"{address} on {self.ledger_id} is not FinP2P's {name} contract (its code is not the genuine one)",
                )
        self._genuine = True

    async def _assets(self) -> Any:
        if not self._owns_chain:  # a deployment another party named: read only once its code is FinP2P's
            await self.verify_deployment()
        if self._assets_contract is None:
            address = _checksum((await self.deployment()).assets)
            self._assets_contract = self.chain.w3.eth.contract(address=address, abi=self._assets_abi.abi)
        return self._assets_contract

    async def _registry(self) -> Any:
        if not self._owns_chain:
            await self.verify_deployment()
        if self._registry_contract is None:
            address = _checksum((await self.deployment()).registry)
            self._registry_contract = self.chain.w3.eth.contract(address=address, abi=self._registry_abi.abi)
        return self._registry_contract

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
        deployment = await self.deployment()
        return operation_template(
            operation,
            asset_id,
            source,
            destination,
            quantity,
            operation_id,
            expiry,
            self.chain.chain_id,
            deployment.assets,
        )

    # -- operations ----------------------------------------------------------------------------------------------
    async def create_asset(self, asset_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
        check_text(asset_id, "asset id")
        contract = await self._assets()
        data = calldata("FinP2PAssets", "createAsset", [asset_id])
        receipt = await self.submitter.submit(contract.address, data, f"create asset {asset_id}")
        return {"contract": contract.address, "transaction_id": _hex(receipt["transactionHash"])}

    async def issue(self, asset_id: str, destination: str, quantity: int, operation_id: str) -> LedgerTransaction:
        op = Operation.checked(operation_id, asset_id, destination=destination, quantity=quantity)
        return await self._execute("issue", op)

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
        return await self._execute("transfer", op, await self._consent(consent, "Transfer", op))

    async def redeem(
        self, asset_id: str, source: str, quantity: int, operation_id: str, consent: OwnerConsent | None
    ) -> LedgerTransaction:
        op = Operation.checked(operation_id, asset_id, source=source, quantity=quantity)
        # A redeem from a hold needs no new consent: the owner gave it for the hold.
        owner = await self._consent(consent, "Redeem", op) if consent is not None else (b"\0" * 32, b"")
        return await self._execute("redeem", op, owner)

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
        if expiry < 0:
            raise FinP2PError(ErrorCode.LEDGER_INVALID_QUANTITY, "a hold's expiry is a unix time, or 0 for none")
        op = Operation.checked(
            operation_id, asset_id, source=source, destination=destination or "", quantity=quantity, expiry=expiry
        )
        return await self._execute("hold", op, await self._consent(consent, "Hold", op))

    async def release(
        self, asset_id: str, source: str, destination: str, quantity: int, operation_id: str
    ) -> LedgerTransaction:
        op = Operation.checked(operation_id, asset_id, source=source, destination=destination, quantity=quantity)
        return await self._execute("release", op)

    async def rollback(self, asset_id: str, source: str, quantity: int, operation_id: str) -> LedgerTransaction:
        op = Operation.checked(operation_id, asset_id, source=source, quantity=quantity)
        return await self._execute("rollback", op)

    async def _consent(self, consent: OwnerConsent | None, kind: str, op: Operation) -> tuple[bytes, bytes]:
        deployment = await self.deployment()
        own = consent_digest(kind, op, self.chain.chain_id, deployment.assets)
        # The contract's Consent: a zero template stands for the contract's own (it recomputes the digest).
        template, signature = owner_signature(consent, op.source, own, (self.chain.chain_id, deployment.assets))
        return template or b"\0" * 32, signature

    async def _execute(self, function: str, op: Operation, *consent: tuple[bytes, bytes]) -> LedgerTransaction:
        call = _Call(function, op, consent[0] if consent else None)
        if self.batches is None:
            return await self._execute_alone(call)
        return await self.batches.submit(call)

    async def _execute_alone(self, call: _Call) -> LedgerTransaction:
        contract = await self._assets()
        consent = [call.consent] if call.consent is not None else []
        data = calldata("FinP2PAssets", call.function, [call.op.as_abi(), *consent])
        receipt = await self.submitter.submit(contract.address, data, f"{call.function} {call.op.operation_id}")
        found = await self._describe(receipt)
        assert found is not None
        return found

    async def _each_alone(self, calls: Sequence[_Call]) -> list[LedgerTransaction | BaseException]:
        return list(await asyncio.gather(*(self._execute_alone(c) for c in calls), return_exceptions=True))

    async def _run_batch(self, calls: list[_Call]) -> list[LedgerTransaction | BaseException]:
        """``calls`` in one transaction of ``executeBatch``; each call's transaction, or its own error."""
        if len(calls) == 1:
            return await self._each_alone(calls)
        contract = await self._assets()
        encoded = [(_KINDS[c.function], c.op.as_abi(), c.consent or _NO_CONSENT) for c in calls]
        data = calldata("FinP2PAssets", "executeBatch", [encoded])
        what, size = f"a batch of {len(calls)} operations", len(calls)
        self._step("sending", size)
        try:
            receipt = await self.submitter.submit(
                contract.address,
                data,
                what,
                gas=BATCH_GAS_BASE + BATCH_GAS_PER_OPERATION * size,
                on_sent=lambda _hash: self._step("sent", size),
            )
        except FinP2PError as exc:
            if exc.code in TRANSIENT:  # it may still be confirmed: each operation is looked up before it is resent
                return [exc] * size
            # Nothing of it took effect (refused, or reverted as a whole): each operation alone, for its own answer.
            log.warning("%s failed as a whole (%s); each is sent alone", what, exc)
            return await self._each_alone(calls)
        self._step("mined", size)
        return await self._outcomes(receipt, calls)

    async def _outcomes(self, receipt: dict[str, Any], calls: list[_Call]) -> list[LedgerTransaction | BaseException]:
        """Each call's outcome in a confirmed batch: its event (the i-th operation event or failure is the i-th
        call's, which its operation id confirms)."""
        deployment = await self.deployment()
        events = self._events(receipt, deployment)
        if len(events) != len(calls) or any(
            e.args["operation"] != "0x" + keccak256(c.op.operation_id.encode()).hex()
            for e, c in zip(events, calls, strict=False)
        ):
            raise RuntimeError(f"batch 0x{bytes(receipt['transactionHash']).hex()} does not match its calls")
        base = await self._base(receipt)
        done = sum(e.name != "OperationFailed" for e in events)
        outcomes: list[LedgerTransaction | BaseException] = []
        alone: list[int] = []
        for i, (event, call) in enumerate(zip(events, calls, strict=True)):
            if event.name != "OperationFailed":
                outcomes.append(self._operation(event, done, base, deployment))
                continue
            reason = bytes.fromhex(str(event.args["reason"]).removeprefix("0x"))
            outcomes.append(reverts.to_error(reason, f"{call.function} {call.op.operation_id}"))
            if not reason:  # out of gas in its frame, not refused by the contract: it goes again alone
                alone.append(i)
        for i, outcome in zip(alone, await self._each_alone([calls[i] for i in alone]), strict=True):
            outcomes[i] = outcome
        return outcomes

    def _step(self, step: str, size: int) -> None:
        if self.on_batch_step is not None:
            self.on_batch_step(step, size)

    # -- reads ---------------------------------------------------------------------------------------------------
    async def balance(self, asset_id: str, fin_id: str, height: int | None = None) -> Balance:
        check_text(asset_id, "asset id")
        check_account(fin_id, "account")
        contract = await self._assets()
        current = int(await self.chain.w3.eth.block_number)
        if height is None:
            height = current
        elif not 0 <= height <= current:
            raise FinP2PError(
                ErrorCode.LEDGER_NO_HISTORY, f"block {height} is not on this chain (its height is {current})"
            )
        if height < (await self.deployment()).block:
            return Balance(asset_id, fin_id, 0, 0, height)  # before the contracts existed, nobody held anything
        available, held = await self.submitter._call(
            contract.functions.balanceOf(asset_id, fin_id).call(block_identifier=height), "balance"
        )
        return Balance(asset_id, fin_id, int(available), int(held), height)

    async def height_at(self, timestamp: int) -> int:
        """Binary search over block timestamps: about log2(height) block reads."""
        w3 = self.chain.w3
        low, high = 0, int(await w3.eth.block_number)
        if (await w3.eth.get_block(0))["timestamp"] > timestamp:
            raise FinP2PError(ErrorCode.LEDGER_NO_HISTORY, f"the chain starts after {timestamp}")
        while low < high:
            middle = (low + high + 1) // 2
            if (await w3.eth.get_block(middle))["timestamp"] <= timestamp:
                low = middle
            else:
                high = middle - 1
        return low

    def account_of(self, fin_id: str) -> dict[str, str]:
        # The contract keeps a FinID's units at the address derived from its key, and derives it itself.
        return {"ledgerAccountId": str(_checksum(eth_address(check_fin_id(fin_id))))}

    def account_fields(self) -> list[dict[str, str]]:
        return [
            {
                "field": "ledgerAccountId",
                "description": "the Ethereum address of the FinID (derived from its key; FinP2PAssets keeps its units "
                "there)",
                "exampleValue": "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf",
            }
        ]

    def check_account(self, field: str, value: str) -> str:
        super().check_account(field, value)
        if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
            raise FinP2PError(
                ErrorCode.OPERATION_INVALID, f"{field} {value!r} is not an Ethereum address (0x and 40 hex)"
            )
        lower = value[2:].lower() == value[2:] or value[2:].upper() == value[2:]
        if not lower and _checksum(value) != value:
            raise FinP2PError(ErrorCode.OPERATION_INVALID, f"{field} {value!r} fails its EIP-55 checksum: a typo?")
        return str(_checksum(value))

    async def supply(self, asset_id: str) -> int:
        """All units of ``asset_id`` in existence (available plus held, of every owner)."""
        contract = await self._assets()
        return int(await contract.functions.supplyOf(asset_id).call())

    async def transaction(self, transaction_id: str) -> LedgerTransaction | None:
        matched = _TRANSACTION_ID.fullmatch(transaction_id) if isinstance(transaction_id, str) else None
        if matched is None:
            return None
        receipt = await self._receipt_of(transaction_id[:66])
        if receipt is None:
            return None
        index = matched.group(1)
        found = await self._describe(receipt, int(index) if index is not None else None)
        # Named whole: a batch's operation by its own id only, a lone operation's without an index.
        if found is None or found.transaction_id.lower() != transaction_id.lower():
            return None
        return found

    async def _receipt_of(self, tx_hash: str) -> dict[str, Any] | None:
        try:
            return dict(await self.chain.w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    async def _base(self, receipt: dict[str, Any]) -> dict[str, Any]:
        """What every transaction described from ``receipt`` shares: the chain, the block and the submitter."""
        block = await self.chain.w3.eth.get_block(receipt["blockNumber"])
        return {
            "ledger_id": self.ledger_id,
            "transaction_id": _hex(receipt["transactionHash"]),
            "height": int(receipt["blockNumber"]),
            "timestamp": int(block["timestamp"]),
            "submitter": str(_checksum(receipt["from"])) if receipt.get("from") else None,
        }

    def _events(self, receipt: dict[str, Any], deployment: Deployment) -> list[_Event]:
        """The operations' events and a batch's failures in ``receipt``, in order, each event with the router's
        template its owner signed when there was one (``Consented``, emitted by the same operation before it)."""
        found: list[_Event] = []
        consented: dict[str, str] = {}
        for entry in receipt["logs"]:
            if str(entry["address"]).lower() != deployment.assets.lower():
                continue
            event = _decode_event(self._assets_abi, entry)
            if event is None:
                continue
            name, args = event
            if name == "Consented":
                consented[str(args["operation"])] = str(args["template"])
            elif name in _EVENTS or name == "OperationFailed":
                template = consented.pop(str(args["operation"]), None)
                found.append(_Event(int(entry["logIndex"]), name, args, template))
        return found

    def _operation(
        self, event: _Event, operations: int, base: dict[str, Any], deployment: Deployment
    ) -> LedgerTransaction:
        """The transaction of the operation whose event is ``event``, in a transaction of ``operations``."""
        described: dict[str, Any] = {
            "name": event.name,
            "contract": deployment.assets.lower(),
            "log_index": event.log_index,
            "op": event.args["op"],
        }
        if event.consent_template is not None:
            described["consent_template"] = event.consent_template
        if operations > 1:
            base = {**base, "transaction_id": f"{base['transaction_id']}:{event.log_index}"}
        return _transaction(_EVENTS[event.name], event.args["op"], True, described, base)

    async def _describe(self, receipt: dict[str, Any], log_index: int | None = None) -> LedgerTransaction | None:
        """What a receipt and an auditor need from a mined transaction, from its receipt and its block alone: its
        operation (the one whose event is at ``log_index``, in a batch), or the receipts it recorded."""
        deployment = await self.deployment()
        operations = [e for e in self._events(receipt, deployment) if e.name in _EVENTS]
        if operations:
            chosen = [e for e in operations if log_index is None or e.log_index == log_index]
            if len(chosen) != 1:
                return None  # a batch's operations are each named by their own id
            return self._operation(chosen[0], len(operations), await self._base(receipt), deployment)
        if log_index is not None:
            return None
        for entry in receipt["logs"]:
            if str(entry["address"]).lower() != deployment.registry.lower():
                continue
            event = _decode_event(self._registry_abi, entry)
            if event is not None and event[0] == "ReceiptsRecorded":
                root, count = _hex(event[1]["root"]), int(event[1]["count"])
                return LedgerTransaction(
                    operation="record-receipts",
                    operation_id=root,
                    asset_id="",
                    quantity=count,
                    succeeded=True,
                    event={
                        "name": "ReceiptsRecorded",
                        "contract": deployment.registry.lower(),
                        "root": root,
                        "count": count,
                    },
                    **await self._base(receipt),
                )
        if receipt["status"] == 1:
            return None  # a transaction of ours that is not an operation (a deployment, a payment, a failed batch)
        return await self._describe_failed(receipt, deployment, await self._base(receipt))

    async def _describe_failed(
        self, receipt: dict[str, Any], deployment: Deployment, base: dict[str, Any]
    ) -> LedgerTransaction | None:
        tx = await self.chain.w3.eth.get_transaction(receipt["transactionHash"])
        if str(tx.get("to") or "").lower() != deployment.assets.lower():
            return None
        try:
            function, args = self._assets_abi.decode_function_input(tx["input"])
        except ValueError:
            return None
        operation = _FUNCTIONS.get(function.fn_name)
        if operation is None:
            return None
        op = args["op"]
        fields = op if isinstance(op, dict) else dict(zip(_OP_FIELDS, op, strict=True))
        return _transaction(operation, fields, False, {}, base)

    async def find_operation(self, operation_id: str, operation: OperationType) -> LedgerTransaction | None:
        contract = await self._assets()
        key = keccak256(operation_id.encode())
        spent = await self.submitter._call(contract.functions.executedIn(key).call(), "find operation")
        hold = await self.submitter._call(contract.functions.holdOf(operation_id).call(), "find operation")
        # The block the id was spent in, and the block its hold was settled in: one log query each, no scan.
        for block in sorted({int(spent), int(hold[6])} - {0}):
            query: Any = {"fromBlock": block, "toBlock": block, "address": contract.address, "topics": [None, key]}
            logs = await self.chain.w3.eth.get_logs(query)
            for entry in logs:
                receipt = await self._receipt_of(_hex(entry["transactionHash"]))
                found = await self._describe(receipt, int(entry["logIndex"])) if receipt is not None else None
                if found is not None and found.operation == operation and found.operation_id == operation_id:
                    return found
        return None

    # -- receipts ------------------------------------------------------------------------------------------------
    async def record_receipts(self, receipt_hashes: list[bytes]) -> LedgerTransaction:
        try:
            root = merkle.root(receipt_hashes)
        except ValueError as exc:
            raise FinP2PError(ErrorCode.LEDGER_INVALID_QUANTITY, f"record receipts: {exc}") from None
        contract = await self._registry()
        data = calldata("ReceiptRegistry", "record", [root, len(receipt_hashes)])
        receipt = await self.submitter.submit(contract.address, data, f"record receipts 0x{root.hex()[:12]}…")
        found = await self._describe(receipt)
        assert found is not None
        return found

    async def find_receipts_record(self, root: bytes) -> LedgerTransaction | None:
        contract = await self._registry()
        block = int(await self.submitter._call(contract.functions.recordedIn(root).call(), "receipt lookup"))
        if block == 0:
            return None
        topic = keccak256(b"ReceiptsRecorded(bytes32,uint256)")
        query: Any = {"fromBlock": block, "toBlock": block, "address": contract.address, "topics": [topic, root]}
        for entry in await self.chain.w3.eth.get_logs(query):
            found = await self.transaction(_hex(entry["transactionHash"]))
            if found is not None and found.event.get("root") == "0x" + root.hex():
                return found
        return None

    async def receipt_recorded(self, receipt_hash: bytes, proof: Sequence[bytes] = ()) -> bool:
        contract = await self._registry()
        return bool(
            await self.submitter._call(
                contract.functions.isRecorded(receipt_hash, list(proof)).call(), "receipt lookup"
            )
        )

    async def height(self) -> int:
        return int(await self.submitter._call(self.chain.w3.eth.block_number, "height"))

    async def serve(self) -> str:
        """Deploy if needed, fund the accounts the profile names, then serve the embedded chain; its URL."""
        from finp2p_ethereum.rpc_server import ChainServer

        assert self.serving is not None and self.chain.embedded
        await self.deployment()
        for address in self.serving.fund:
            await self.chain.fund_for_development(address)
        server = ChainServer(self.chain, token=self.serving.token)
        self._server = server
        return await server.start(self.serving.host, self.serving.port)

    def view(self, settings: Mapping[str, Any]) -> EthereumLedger:
        """Another operator's contracts on this chain (their addresses checked), read through this connection."""
        names = (settings.get("assets_contract"), settings.get("registry_contract"))
        if not all(isinstance(a, str) and _ADDRESS.fullmatch(a) for a in names):
            raise FinP2PError(
                ErrorCode.LEDGER_PROFILE, "a deployment is named by two contract addresses (0x and 40 hex)"
            )
        assets, registry = str(names[0]).lower(), str(names[1]).lower()
        own = self._deployment
        if own is not None and (own.assets.lower(), own.registry.lower()) == (assets, registry):
            return self
        found = self._views.get((assets, registry))
        if found is None:
            block = settings.get("deployed_block", 0)
            block = block if isinstance(block, int) and not isinstance(block, bool) and block >= 0 else 0
            found = EthereumLedger(
                self.chain, SigningKey.generate(), Deployment(assets, registry, block), ledger_id=self.ledger_id
            )
            found._owns_chain = False
            if len(self._views) >= MAX_VIEWS:  # the oldest view goes: a peer cannot make this grow without end
                self._views.pop(next(iter(self._views)))
            self._views[(assets, registry)] = found
        return found

    def public_settings(self) -> dict[str, Any]:
        """An embedded chain served over JSON-RPC is read like any other: by its URL and contracts."""
        if self._server is None or self._deployment is None:
            return {}
        d = self._deployment
        return {
            "backend": "rpc",
            "rpc": self._server.url,
            "assets_contract": d.assets,
            "registry_contract": d.registry,
            "deployed_block": d.block,
        }

    async def close(self) -> None:
        if self.batches is not None:
            await self.batches.close()  # the batches being sent finish before the connection goes
        if self._server is not None:
            await self._server.close()
            self._server = None
        self._views.clear()
        if self._owns_chain:
            await self.chain.close()


_OP_FIELDS = ("operationId", "assetId", "source", "destination", "quantity", "expiry")


@functools.lru_cache(maxsize=4)
def _code_hash(name: str) -> bytes:
    return keccak256(bytes.fromhex(artifact(name).deployed_bytecode.removeprefix("0x")))


def _transaction(
    operation: OperationType, op: dict[str, Any], succeeded: bool, event: dict[str, Any], base: dict[str, Any]
) -> LedgerTransaction:
    """A LedgerTransaction from an operation's fields as the contract saw them (from its event or its input)."""
    return LedgerTransaction(
        operation=operation,
        operation_id=op["operationId"],
        asset_id=op["assetId"],
        quantity=int(op["quantity"]),
        succeeded=succeeded,
        source=op["source"] or None,
        destination=op["destination"] or None,
        event=event,
        **base,
    )


def _decode_event(contract: Any, entry: Any) -> tuple[str, dict[str, Any]] | None:
    topics = entry["topics"]
    name = _event_names(id(contract.abi), contract).get(bytes(topics[0])) if topics else None
    if name is None:
        return None
    decoded = contract.events[name]().process_log(entry)
    return name, {k: _plain(v) for k, v in decoded["args"].items()}


_TOPICS: dict[int, dict[bytes, str]] = {}


def _event_names(key: int, contract: Any) -> dict[bytes, str]:
    """Event names by their topic (keccak of the signature), per ABI."""
    if key not in _TOPICS:
        _TOPICS[key] = {keccak256(signature(e).encode()): e["name"] for e in contract.abi if e.get("type") == "event"}
    return _TOPICS[key]


def _plain(value: Any) -> Any:
    """Event arguments as JSON-ready values: structs as dicts, bytes as 0x-hex."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _hex(value: Any) -> str:
    if isinstance(value, str):
        return value if value.startswith("0x") else "0x" + value
    return "0x" + bytes(value).hex()


def _checksum(address: str) -> Any:
    return AsyncWeb3.to_checksum_address(address)
