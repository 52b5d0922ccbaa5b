"""The Ethereum ledger plugin on real chains: the ledger conformance suite (:mod:`finp2p.testing.ledger`) and what
only an Ethereum ledger does, on the embedded chain and on a Hardhat node (the ``eth`` fixture runs each test on
both)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from eth_account import Account
from web3.exceptions import Web3RPCError

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.canonical import keccak256
from finp2p.identity.keys import SigningKey
from finp2p.ledger import LedgerTransaction, OperationType, OwnerConsent
from finp2p.testing import LedgerConformance, LedgerWorld, refused
from finp2p_ethereum import ledger as ledger_module
from finp2p_ethereum import reverts
from finp2p_ethereum.artifacts import calldata
from finp2p_ethereum.consent import Operation
from finp2p_ethereum.ledger import (
    BATCH_GAS_BASE,
    BATCH_GAS_PER_OPERATION,
    MAX_BATCH,
    TRANSACTION_GAS_CAP,
    BatchOptions,
    _decode_event,
)
from tests.support.ethereum import EthWorld


async def _funded(eth: EthWorld, quantity: int = 100) -> tuple[str, SigningKey, SigningKey]:
    asset = await eth.new_asset()
    alice, bob = SigningKey.generate(), SigningKey.generate()
    await eth.ledger.issue(asset, alice.fin_id, quantity, f"issue-{asset}")
    return asset, alice, bob


async def _balances(eth: EthWorld, asset: str, *keys: SigningKey) -> list[tuple[int, int]]:
    found = [await eth.ledger.balance(asset, k.fin_id) for k in keys]
    return [(b.available, b.held) for b in found]


class TestEthereumLedger(LedgerConformance):
    @pytest.fixture
    def ledger_world(self, eth: EthWorld) -> LedgerWorld:
        """Fresh FinP2P contracts on the embedded chain and on a Hardhat node, with the operator's ledger (an
        EthWorld: the Ethereum tests below use the rest of it)."""
        return eth  # mypy checks here that an EthWorld is a LedgerWorld

    # -- what only an Ethereum ledger does -----------------------------------------------------------------------
    async def test_transactions_are_read_from_their_receipt_and_block(self, ledger_world: EthWorld) -> None:
        eth = ledger_world
        asset, alice, bob = await _funded(eth)
        op = Operation("t-1", asset, alice.fin_id, bob.fin_id, 30)
        tx = await eth.ledger.transfer(asset, alice.fin_id, bob.fin_id, 30, "t-1", eth.consent(alice, "Transfer", op))
        found = await eth.ledger.transaction(tx.transaction_id)
        assert found == tx and found.event["name"] == "Transferred"
        assert found.event["op"]["quantity"] == 30 and found.event["contract"] == eth.deployment.assets.lower()
        assert found.submitter == Account.from_key(eth.operator.secret_bytes()).address
        assert tx.ledger_id == eth.chain.ledger_id == eth.ledger.ledger_id
        assert await eth.ledger.transaction("0x" + "00" * 32) is None

    async def test_reverts_say_what_happened(self, ledger_world: EthWorld) -> None:
        """A contract's custom error comes back as its FinP2P code with its arguments in the sentence."""
        eth = ledger_world
        asset, alice, bob = await _funded(eth, 10)
        op = Operation("x-1", asset, alice.fin_id, bob.fin_id, 11)
        exc = await refused(
            eth.ledger.transfer(asset, alice.fin_id, bob.fin_id, 11, "x-1", eth.consent(alice, "Transfer", op)),
            ErrorCode.LEDGER_INSUFFICIENT_BALANCE,
        )
        assert "10 available" in str(exc) and "needs 11" in str(exc) and exc.context["error"] == "InsufficientBalance"
        expiry = await eth.now() + 60
        held = Operation("e-1", asset, alice.fin_id, bob.fin_id, 10, expiry)
        await eth.ledger.hold(asset, alice.fin_id, bob.fin_id, 10, "e-1", expiry, eth.consent(alice, "Hold", held))
        await eth.advance_time(120)
        exc = await refused(
            eth.ledger.release(asset, alice.fin_id, bob.fin_id, 10, "e-1"), ErrorCode.LEDGER_HOLD_EXPIRED
        )
        assert str(expiry) in str(exc)

    async def test_contract_storage_agrees_with_the_plugin(self, ledger_world: EthWorld) -> None:
        """What the plugin reports is what the contract's storage says, read directly; a refused operation leaves
        its id unspent on-chain."""
        eth = ledger_world
        asset, alice, bob = await _funded(eth)
        op = Operation("t-1", asset, alice.fin_id, bob.fin_id, 30)
        await eth.ledger.transfer(asset, alice.fin_id, bob.fin_id, 30, "t-1", eth.consent(alice, "Transfer", op))
        held = Operation("h-1", asset, alice.fin_id, "", 20, 0)
        await eth.ledger.hold(asset, alice.fin_id, None, 20, "h-1", 0, eth.consent(alice, "Hold", held))
        wrong = Operation("s-1", asset, alice.fin_id, bob.fin_id, 50)
        await refused(
            eth.ledger.transfer(asset, alice.fin_id, bob.fin_id, 5, "s-1", eth.consent(alice, "Transfer", wrong)),
            ErrorCode.LEDGER_BAD_SIGNATURE,
        )
        contract = await eth.ledger._assets()
        on_chain = [tuple(await contract.functions.balanceOf(asset, k.fin_id).call()) for k in (alice, bob)]
        assert on_chain == await _balances(eth, asset, alice, bob) == [(50, 20), (30, 0)]
        assert await contract.functions.totalSupply(keccak256(asset.encode())).call() == 100
        assert await eth.ledger.supply(asset) == 100
        assert await contract.functions.operationUsed("t-1").call()
        assert not await contract.functions.operationUsed("s-1").call(), "a refused operation leaves its id unused"

    async def test_off_curve_fin_ids_are_refused_on_chain(self, ledger_world: EthWorld) -> None:
        """An X coordinate that is not on the curve passes the plugin's format check; the contract refuses it (in
        the pre-check: nothing is mined)."""
        eth = ledger_world
        asset, _, _ = await _funded(eth)
        height = await eth.ledger.height()
        off_curve = "02" + "00" * 31 + "05"
        await refused(eth.ledger.issue(asset, off_curve, 1, "b-5"), ErrorCode.LEDGER_INVALID_ACCOUNT)
        assert await eth.ledger.height() == height

    async def test_a_batch_runs_each_operation_alone_in_one_transaction(self, ledger_world: EthWorld) -> None:
        """``executeBatch``: the operations that hold stand, each one that reverts undoes only itself (its id stays
        unspent) and says why in ``OperationFailed``; all in one transaction. ``executeOne`` is the batch's alone."""
        eth = ledger_world
        asset, alice, bob = await _funded(eth)
        good = Operation("b-1", asset, alice.fin_id, bob.fin_id, 30)
        too_much = Operation("b-2", asset, alice.fin_id, bob.fin_id, 500)
        issue = Operation("b-3", asset, "", bob.fin_id, 5)
        forged = Operation("b-4", asset, alice.fin_id, bob.fin_id, 10)
        signed_for_less = Operation("b-4", asset, alice.fin_id, bob.fin_id, 1)
        none = (b"\0" * 32, b"")
        transfer, issued = 1, 0  # FinP2PAssets.Kind

        async def signed(op: Operation) -> tuple[bytes, bytes]:
            return await eth.ledger._consent(eth.consent(alice, "Transfer", op), "Transfer", op)

        calls = [
            (transfer, good.as_abi(), await signed(good)),
            (transfer, too_much.as_abi(), await signed(too_much)),
            (issued, issue.as_abi(), none),
            (transfer, forged.as_abi(), (none[0], (await signed(signed_for_less))[1])),
        ]
        contract = await eth.ledger._assets()
        data = calldata("FinP2PAssets", "executeBatch", [calls])
        receipt = await eth.ledger.submitter.submit(contract.address, data, "batch")
        events = [e for e in (_decode_event(contract, entry) for entry in receipt["logs"]) if e is not None]
        assert [name for name, _ in events] == ["Transferred", "OperationFailed", "Issued", "OperationFailed"]
        failed = [reverts.decode(bytes.fromhex(a["reason"][2:])) for name, a in events if name == "OperationFailed"]
        assert failed == [("InsufficientBalance", {"available": 70, "required": 500}), ("BadSignature", {})]
        used = [await contract.functions.operationUsed(i).call() for i in ("b-1", "b-2", "b-3", "b-4")]
        assert used == [True, False, True, False]
        assert await _balances(eth, asset, alice, bob) == [(70, 0), (35, 0)]
        with pytest.raises(FinP2PError) as info:
            data = calldata("FinP2PAssets", "executeOne", [calls[2]])
            await eth.ledger.submitter.submit(contract.address, data, "a batch's call alone")
        assert info.value.code is ErrorCode.LEDGER_NOT_OPERATOR and "executeBatch does" in info.value.detail

    async def test_operations_that_arrive_together_share_a_transaction_and_keep_their_own_receipts(
        self, ledger_world: EthWorld
    ) -> None:
        """Transfers sent at once go in one ``executeBatch``: each one that holds has its own id (the hash and its
        event's log index), by which it is found again, and each one that fails fails alone, with its own code."""
        eth = ledger_world
        asset, alice, bob = await _funded(eth)
        assert eth.ledger.batches is not None
        eth.ledger.batches.window_s = 0.5  # wide enough that all five arrive within it on a busy machine
        steps: list[tuple[str, int]] = []
        eth.ledger.on_batch_step = lambda step, size: steps.append((step, size))

        def transfer(op_id: str, quantity: int, signed_quantity: int | None = None) -> Any:
            signed = Operation(op_id, asset, alice.fin_id, bob.fin_id, signed_quantity or quantity)
            consent = eth.consent(alice, "Transfer", signed)
            return eth.ledger.transfer(asset, alice.fin_id, bob.fin_id, quantity, op_id, consent)

        outcomes = await asyncio.gather(
            transfer("g-1", 10),
            transfer("g-2", 500),
            transfer("g-3", 20),
            transfer("g-4", 5, signed_quantity=4),
            transfer("g-5", 30),
            return_exceptions=True,
        )
        good = [outcomes[i] for i in (0, 2, 4)]
        assert all(isinstance(t, LedgerTransaction) for t in good), outcomes
        txs = [t for t in good if isinstance(t, LedgerTransaction)]
        assert [t.operation_id for t in txs] == ["g-1", "g-3", "g-5"]
        hashes = {t.transaction_id.split(":")[0] for t in txs}
        assert len(hashes) == 1 and len({t.transaction_id for t in txs}) == 3, "one transaction, three receipts"
        failed = [outcomes[1], outcomes[3]]
        assert [e.code for e in failed if isinstance(e, FinP2PError)] == [
            ErrorCode.LEDGER_INSUFFICIENT_BALANCE,
            ErrorCode.LEDGER_BAD_SIGNATURE,
        ]
        # The one signed for another quantity is refused by the plugin before it reaches the chain; the other four
        # went together, and the one without the units failed alone in the contract.
        assert steps == [("sending", 4), ("sent", 4), ("mined", 4)]
        for t in txs:
            assert await eth.ledger.transaction(t.transaction_id) == t
            assert await eth.ledger.find_operation(t.operation_id, OperationType.TRANSFER) == t
        (only,) = hashes
        assert await eth.ledger.transaction(only) is None, "a batch's hash alone names no one operation"
        assert await eth.ledger.transaction(f"{only}:999") is None
        assert await eth.ledger.transaction(f"{only}:{txs[0].event['log_index']} ") is None
        assert await eth.ledger.find_operation("g-2", OperationType.TRANSFER) is None, "a failed one stays unspent"
        assert await _balances(eth, asset, alice, bob) == [(40, 0), (60, 0)]
        alone = await transfer("g-2", 40)  # its id was never spent: it can go again, alone now
        assert ":" not in alone.transaction_id and await eth.ledger.transaction(alone.transaction_id) == alone

    async def test_a_full_batch_fits_the_gas_a_transaction_may_ask_for(self, ledger_world: EthWorld) -> None:
        """As many transfers as a batch holds go in one transaction: its gas stays within EIP-7825's cap of 2**24,
        which Hardhat enforces (a batch of 64 asked 25.7M, was refused whole, and each operation went alone)."""
        eth = ledger_world
        asset, alice, bob = await _funded(eth, MAX_BATCH)
        assert eth.ledger.batches is not None and eth.ledger.batches.max_size == MAX_BATCH
        eth.ledger.batches.window_s = 2.0  # all of them within it, on a busy machine; a full batch goes at once
        steps: list[tuple[str, int]] = []
        eth.ledger.on_batch_step = lambda step, size: steps.append((step, size))
        ops = [Operation(f"f-{i}", asset, alice.fin_id, bob.fin_id, 1) for i in range(MAX_BATCH)]
        txs = await asyncio.gather(
            *(
                eth.ledger.transfer(
                    asset, alice.fin_id, bob.fin_id, 1, op.operation_id, eth.consent(alice, "Transfer", op)
                )
                for op in ops
            )
        )
        assert steps == [("sending", MAX_BATCH), ("sent", MAX_BATCH), ("mined", MAX_BATCH)]
        assert len({t.transaction_id.split(":")[0] for t in txs}) == 1
        assert await _balances(eth, asset, alice, bob) == [(0, 0), (MAX_BATCH, 0)]
        assert BATCH_GAS_BASE + BATCH_GAS_PER_OPERATION * MAX_BATCH <= TRANSACTION_GAS_CAP
        with pytest.raises(ValueError, match=f"1 to {MAX_BATCH}"):
            BatchOptions(max_size=MAX_BATCH + 1)

    async def test_an_operation_that_runs_out_of_gas_in_a_batch_goes_again_alone(
        self, ledger_world: EthWorld, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A batch's gas bound too small for its operations: each fails in its own frame without a reason, which
        is not the contract's refusal, so each is sent again in a transaction of its own and holds."""
        eth = ledger_world
        asset, _, _ = await _funded(eth)
        assert eth.ledger.batches is not None
        eth.ledger.batches.window_s = 0.5
        monkeypatch.setattr(ledger_module, "BATCH_GAS_PER_OPERATION", 40_000)
        receivers = [SigningKey.generate() for _ in range(3)]
        txs = await asyncio.gather(*(eth.ledger.issue(asset, r.fin_id, 7, f"o-{i}") for i, r in enumerate(receivers)))
        assert len({t.transaction_id for t in txs}) == 3 and all(":" not in t.transaction_id for t in txs)
        assert [b[0] for b in await _balances(eth, asset, *receivers)] == [7, 7, 7]

    async def test_concurrent_operations_get_their_own_nonces(self, ledger_world: EthWorld) -> None:
        eth = ledger_world
        asset, _, _ = await _funded(eth, 1)
        receivers = [SigningKey.generate() for _ in range(12)]
        txs = await asyncio.gather(
            *(eth.ledger.issue(asset, r.fin_id, i + 1, f"c-{i}") for i, r in enumerate(receivers))
        )
        assert len({t.transaction_id for t in txs}) == 12
        assert [b[0] for b in await _balances(eth, asset, *receivers)] == list(range(1, 13))
        assert await eth.ledger.supply(asset) == 1 + sum(range(1, 13))

    async def test_a_failed_transaction_is_described_from_the_chain(self, ledger_world: EthWorld) -> None:
        """A transaction that reached the chain and reverted (sent here without the plugin's pre-check)."""
        eth = ledger_world
        asset, alice, bob = await _funded(eth, 5)
        contract = await eth.ledger._assets()
        op = Operation("f-1", asset, alice.fin_id, bob.fin_id, 500)
        data = contract.encode_abi(
            "transfer", args=[op.as_abi(), (b"\0" * 32, bytes.fromhex(eth.consent(alice, "Transfer", op).signature))]
        )
        account = Account.from_key(eth.operator.secret_bytes())
        w3 = eth.chain.w3
        signed = account.sign_transaction(
            {
                "to": contract.address,
                "data": data,
                "gas": 500_000,
                "nonce": await w3.eth.get_transaction_count(account.address, "pending"),
                "chainId": eth.chain.chain_id,
                "maxFeePerGas": 10**11,
                "maxPriorityFeePerGas": 10**9,
            }
        )
        tx_hash = signed.hash
        try:
            await w3.eth.send_raw_transaction(signed.raw_transaction)
        except Web3RPCError as exc:  # a Hardhat node mines it and reports the revert at once
            assert "InsufficientBalance" in str(exc)
        receipt = await w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)
        assert receipt["status"] == 0
        found = await eth.ledger.transaction("0x" + bytes(tx_hash).hex())
        assert found is not None and not found.succeeded
        assert (found.operation, found.operation_id, found.quantity) == (OperationType.TRANSFER, "f-1", 500)
        eth.ledger.submitter._nonce = None  # the test spent a nonce behind the plugin's back
        await eth.ledger.issue(asset, bob.fin_id, 1, "f-2")

    async def test_a_routers_template_is_recorded_in_the_event(self, ledger_world: EthWorld) -> None:
        """A consent over a router's template is recorded on-chain (the ``Consented`` event) with the operation."""
        from finp2p.identity import eip712

        eth = ledger_world
        asset, alice, bob = await _funded(eth)
        types = {"FinId": [("idkey", "string")], "Selling": [("nonce", "string"), ("seller", "FinId")]}
        domain = {"name": "FinP2P", "version": "1", "chainId": 1, "verifyingContract": "0x" + "00" * 20}
        template = eip712.adapter_template(
            domain, "Selling", types, {"nonce": "n-1", "seller": {"idkey": alice.fin_id}}
        )
        signed = OwnerConsent(
            "EIP712", alice.fin_id, alice.sign_digest(bytes.fromhex(template["hash"])).hex(), template
        )
        tx = await eth.ledger.transfer(asset, alice.fin_id, bob.fin_id, 7, "r-1", signed)
        assert tx.event.get("consent_template") == "0x" + template["hash"]
        assert await eth.ledger.transaction(tx.transaction_id) == tx
