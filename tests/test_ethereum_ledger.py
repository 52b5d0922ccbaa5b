"""The Ethereum ledger plugin on real chains: every operation and its failures, on the embedded chain and on a
Hardhat node (the ``eth`` fixture runs each test on both)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
from eth_account import Account
from web3.exceptions import Web3RPCError

from finp2p.assets import merkle
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.keys import SigningKey
from finp2p.ledger import OperationType, OwnerConsent
from finp2p_ethereum.consent import Operation
from tests.support.ethereum import EthWorld


def _code(exc: pytest.ExceptionInfo[FinP2PError]) -> ErrorCode:
    return exc.value.code


async def _funded(eth: EthWorld, quantity: int = 100) -> tuple[str, SigningKey, SigningKey]:
    asset = await eth.new_asset()
    alice, bob = SigningKey.generate(), SigningKey.generate()
    await eth.ledger.issue(asset, alice.fin_id, quantity, f"issue-{asset}")
    return asset, alice, bob


async def _balances(eth: EthWorld, asset: str, *keys: SigningKey) -> list[tuple[int, int]]:
    found = [await eth.ledger.balance(asset, k.fin_id) for k in keys]
    return [(b.available, b.held) for b in found]


async def test_issue_transfer_and_lookup(eth: EthWorld) -> None:
    asset, alice, bob = await _funded(eth)
    op = Operation("t-1", asset, alice.fin_id, bob.fin_id, 30)
    tx = await eth.ledger.transfer(asset, alice.fin_id, bob.fin_id, 30, "t-1", eth.consent(alice, "Transfer", op))
    assert tx.succeeded and tx.operation == OperationType.TRANSFER
    assert (tx.source, tx.destination, tx.quantity, tx.operation_id) == (alice.fin_id, bob.fin_id, 30, "t-1")
    assert await _balances(eth, asset, alice, bob) == [(70, 0), (30, 0)]
    assert await eth.ledger.supply(asset) == 100
    # The lookup reads the ledger itself: the same facts, from the receipt, the block and the event.
    found = await eth.ledger.transaction(tx.transaction_id)
    assert found == tx
    assert found is not None and found.event["name"] == "Transferred"
    assert found.event["op"]["quantity"] == 30 and found.height >= 1 and found.timestamp > 0
    assert await eth.ledger.transaction("0x" + "00" * 32) is None
    assert await eth.ledger.transaction("not a hash") is None
    assert tx.ledger_id == eth.chain.ledger_id == eth.ledger.ledger_id


async def test_insufficient_balance_changes_nothing(eth: EthWorld) -> None:
    asset, alice, bob = await _funded(eth, 10)
    attempts = [
        ("Transfer", Operation("x-1", asset, alice.fin_id, bob.fin_id, 11)),
        ("Hold", Operation("x-2", asset, alice.fin_id, bob.fin_id, 11, 0)),
        ("Redeem", Operation("x-3", asset, alice.fin_id, "", 11)),
    ]
    for kind, op in attempts:
        consent = eth.consent(alice, kind, op)
        with pytest.raises(FinP2PError) as exc:
            if kind == "Transfer":
                await eth.ledger.transfer(asset, alice.fin_id, bob.fin_id, 11, op.operation_id, consent)
            elif kind == "Hold":
                await eth.ledger.hold(asset, alice.fin_id, bob.fin_id, 11, op.operation_id, 0, consent)
            else:
                await eth.ledger.redeem(asset, alice.fin_id, 11, op.operation_id, consent)
        assert _code(exc) is ErrorCode.LEDGER_INSUFFICIENT_BALANCE
        assert "10 available" in str(exc.value) and "needs 11" in str(exc.value)
    assert await _balances(eth, asset, alice, bob) == [(10, 0), (0, 0)]
    assert await eth.ledger.supply(asset) == 10


async def test_operation_id_is_used_once(eth: EthWorld) -> None:
    asset, alice, bob = await _funded(eth)
    with pytest.raises(FinP2PError) as exc:
        await eth.ledger.issue(asset, bob.fin_id, 5, f"issue-{asset}")
    assert _code(exc) is ErrorCode.LEDGER_OPERATION_ID_USED
    op = Operation("once", asset, alice.fin_id, bob.fin_id, 1)
    consent = eth.consent(alice, "Transfer", op)
    await eth.ledger.transfer(asset, alice.fin_id, bob.fin_id, 1, "once", consent)
    with pytest.raises(FinP2PError) as exc:  # the very same signed operation, replayed
        await eth.ledger.transfer(asset, alice.fin_id, bob.fin_id, 1, "once", consent)
    assert _code(exc) is ErrorCode.LEDGER_OPERATION_ID_USED
    assert await _balances(eth, asset, alice, bob) == [(99, 0), (1, 0)]


async def test_owner_signature_is_checked_on_chain(eth: EthWorld) -> None:
    asset, alice, bob = await _funded(eth)
    mallory = SigningKey.generate()
    op = Operation("s-1", asset, alice.fin_id, bob.fin_id, 5)
    forged = eth.consent(mallory, "Transfer", op)
    # Claim alice signed: the plugin's own check passes, so the contract is what refuses it. Alice's signatures for
    # another amount or kind of operation are refused before anything is sent.
    claimed = OwnerConsent("EIP712", alice.fin_id, forged.signature, forged.payload)
    wrong_amount = eth.consent(alice, "Transfer", Operation("s-1", asset, alice.fin_id, bob.fin_id, 50))
    wrong_kind = eth.consent(alice, "Hold", Operation("s-1", asset, alice.fin_id, bob.fin_id, 5, 0))
    for consent in (claimed, wrong_amount, wrong_kind):
        with pytest.raises(FinP2PError) as exc:
            await eth.ledger.transfer(asset, alice.fin_id, bob.fin_id, 5, "s-1", consent)
        assert _code(exc) is ErrorCode.LEDGER_BAD_SIGNATURE, consent
    with pytest.raises(FinP2PError) as exc:  # a signature by someone else, said to be by someone else
        await eth.ledger.transfer(asset, alice.fin_id, bob.fin_id, 5, "s-1", forged)
    assert _code(exc) is ErrorCode.LEDGER_BAD_SIGNATURE
    with pytest.raises(FinP2PError) as exc:  # no signature at all
        await eth.ledger.redeem(asset, alice.fin_id, 5, "s-2", None)
    assert _code(exc) is ErrorCode.LEDGER_BAD_SIGNATURE
    hash_list = OwnerConsent("hashList", alice.fin_id, "00" * 64, {})
    with pytest.raises(FinP2PError) as exc:  # a template that is not one
        await eth.ledger.transfer(asset, alice.fin_id, bob.fin_id, 5, "s-3", hash_list)
    assert _code(exc) is ErrorCode.CONSENT_INVALID
    with pytest.raises(FinP2PError) as exc:
        await eth.ledger.transfer(asset, alice.fin_id, bob.fin_id, 5, "s-3", replace(hash_list, template="PGP"))
    assert _code(exc) is ErrorCode.LEDGER_UNSUPPORTED_CONSENT
    assert await _balances(eth, asset, alice, bob) == [(100, 0), (0, 0)]
    assert not await eth.ledger.submitter._call(
        (await eth.ledger._assets()).functions.operationUsed("s-1").call(), "lookup"
    ), "a refused operation leaves its id unused"


async def test_only_the_operator_submits(eth: EthWorld) -> None:
    asset, alice, _ = await _funded(eth)
    intruder = SigningKey.generate()
    await eth.chain.fund_for_development(Account.from_key(intruder.secret_bytes()).address)
    other = eth.other_ledger(intruder)
    try:
        with pytest.raises(FinP2PError) as exc:
            await other.issue(asset, intruder.fin_id, 1000, "steal")
        assert _code(exc) is ErrorCode.LEDGER_NOT_OPERATOR
        op = Operation("steal-2", asset, alice.fin_id, intruder.fin_id, 5)
        with pytest.raises(FinP2PError) as exc:  # even with the owner's genuine consent
            await other.transfer(asset, alice.fin_id, intruder.fin_id, 5, "steal-2", eth.consent(alice, "Transfer", op))
        assert _code(exc) is ErrorCode.LEDGER_NOT_OPERATOR
        with pytest.raises(FinP2PError) as exc:
            await other.record_receipts([b"\x01" * 32])
        assert _code(exc) is ErrorCode.LEDGER_NOT_OPERATOR
    finally:
        await other.close()
    assert await _balances(eth, asset, alice, intruder) == [(100, 0), (0, 0)]


async def test_hold_release_rollback_and_redeem(eth: EthWorld) -> None:
    asset, alice, bob = await _funded(eth)

    async def hold(op_id: str, quantity: int, destination: str | None = None, expiry: int = 0) -> None:
        op = Operation(op_id, asset, alice.fin_id, destination or "", quantity, expiry)
        await eth.ledger.hold(asset, alice.fin_id, destination, quantity, op_id, expiry, eth.consent(alice, "Hold", op))

    await hold("h-1", 40, bob.fin_id)
    assert await _balances(eth, asset, alice, bob) == [(60, 40), (0, 0)]
    with pytest.raises(FinP2PError) as exc:  # more than held
        await eth.ledger.release(asset, alice.fin_id, bob.fin_id, 41, "h-1")
    assert _code(exc) is ErrorCode.LEDGER_HOLD_QUANTITY
    with pytest.raises(FinP2PError) as exc:  # the hold names its payee
        await eth.ledger.release(asset, alice.fin_id, alice.fin_id, 10, "h-1")
    assert _code(exc) is ErrorCode.LEDGER_HOLD_MISMATCH
    with pytest.raises(FinP2PError) as exc:  # by the wrong source
        await eth.ledger.release(asset, bob.fin_id, bob.fin_id, 10, "h-1")
    assert _code(exc) is ErrorCode.LEDGER_HOLD_MISMATCH
    tx = await eth.ledger.release(asset, alice.fin_id, bob.fin_id, 30, "h-1")
    assert tx.operation == OperationType.RELEASE and tx.quantity == 30
    assert await _balances(eth, asset, alice, bob) == [(70, 0), (30, 0)], "the remainder returns to the source"
    with pytest.raises(FinP2PError) as exc:  # a hold is settled once
        await eth.ledger.release(asset, alice.fin_id, bob.fin_id, 10, "h-1")
    assert _code(exc) is ErrorCode.LEDGER_UNKNOWN_HOLD
    with pytest.raises(FinP2PError) as exc:
        await eth.ledger.rollback(asset, alice.fin_id, 10, "never-held")
    assert _code(exc) is ErrorCode.LEDGER_UNKNOWN_HOLD

    await hold("h-2", 20)  # no payee named: any destination
    with pytest.raises(FinP2PError) as exc:
        await eth.ledger.rollback(asset, alice.fin_id, 19, "h-2")
    assert _code(exc) is ErrorCode.LEDGER_HOLD_QUANTITY
    tx = await eth.ledger.rollback(asset, alice.fin_id, 20, "h-2")
    assert tx.operation == OperationType.ROLLBACK
    assert await _balances(eth, asset, alice) == [(70, 0)]

    await hold("h-3", 25)
    tx = await eth.ledger.redeem(asset, alice.fin_id, 25, "h-3", None)  # from the hold: consent was given for it
    assert tx.operation == OperationType.REDEEM
    assert await _balances(eth, asset, alice) == [(45, 0)]
    assert await eth.ledger.supply(asset) == 75

    # Every operation is found again by its id and kind, as a node that crashed after submitting would ask.
    assert await eth.ledger.find_operation("h-3", OperationType.REDEEM) == tx
    held = await eth.ledger.find_operation("h-3", OperationType.HOLD)
    assert held is not None and held.operation == OperationType.HOLD and held.quantity == 25
    released = await eth.ledger.find_operation("h-1", OperationType.RELEASE)
    assert released is not None and released.destination == bob.fin_id and released.quantity == 30
    assert await eth.ledger.find_operation("h-2", OperationType.ROLLBACK) is not None
    assert await eth.ledger.find_operation("h-2", OperationType.RELEASE) is None
    assert await eth.ledger.find_operation("never", OperationType.TRANSFER) is None
    issued = await eth.ledger.find_operation(f"issue-{asset}", OperationType.ISSUE)
    assert issued is not None and issued.quantity == 100


async def test_hold_expiry(eth: EthWorld) -> None:
    asset, alice, bob = await _funded(eth)
    expiry = await eth.now() + 3600
    op = Operation("e-1", asset, alice.fin_id, bob.fin_id, 10, expiry)
    await eth.ledger.hold(asset, alice.fin_id, bob.fin_id, 10, "e-1", expiry, eth.consent(alice, "Hold", op))
    await eth.advance_time(7200)
    with pytest.raises(FinP2PError) as exc:
        await eth.ledger.release(asset, alice.fin_id, bob.fin_id, 10, "e-1")
    assert _code(exc) is ErrorCode.LEDGER_HOLD_EXPIRED
    assert str(expiry) in str(exc.value)
    with pytest.raises(FinP2PError) as exc:
        await eth.ledger.redeem(asset, alice.fin_id, 10, "e-1", None)
    assert _code(exc) is ErrorCode.LEDGER_HOLD_EXPIRED
    await eth.ledger.rollback(asset, alice.fin_id, 10, "e-1")  # an expired hold can still be rolled back
    assert await _balances(eth, asset, alice, bob) == [(100, 0), (0, 0)]


async def test_bad_fields_are_refused_before_the_chain(eth: EthWorld) -> None:
    asset, alice, _ = await _funded(eth)
    height = await eth.ledger.height()
    cases: list[tuple[Callable[[], Awaitable[object]], ErrorCode]] = [
        (lambda: eth.ledger.issue(asset, "02" + "zz" * 32, 1, "b-1"), ErrorCode.LEDGER_INVALID_ACCOUNT),
        (lambda: eth.ledger.issue(asset, alice.fin_id, 0, "b-2"), ErrorCode.LEDGER_INVALID_QUANTITY),
        (lambda: eth.ledger.issue(asset, alice.fin_id, -5, "b-3"), ErrorCode.LEDGER_INVALID_QUANTITY),
        (lambda: eth.ledger.issue(asset, alice.fin_id, 1, ""), ErrorCode.LEDGER_INVALID_FIELD),
        (lambda: eth.ledger.issue("no-such-asset", alice.fin_id, 1, "b-4"), ErrorCode.LEDGER_UNKNOWN_ASSET),
        (lambda: eth.ledger.create_asset(asset, {}), ErrorCode.LEDGER_ASSET_EXISTS),
    ]
    for call, code in cases:
        with pytest.raises(FinP2PError) as exc:
            await call()
        assert _code(exc) is code
    # An X coordinate that is not on the curve passes the format check; the contract refuses it.
    off_curve = "02" + "00" * 31 + "05"
    with pytest.raises(FinP2PError) as exc:
        await eth.ledger.issue(asset, off_curve, 1, "b-5")
    assert _code(exc) is ErrorCode.LEDGER_INVALID_ACCOUNT
    assert await eth.ledger.height() == height, "nothing was mined for refused operations"


async def test_receipt_registry(eth: EthWorld) -> None:
    hashes = [bytes([i]) * 32 for i in range(1, 6)]
    tx = await eth.ledger.record_receipts(hashes)
    assert tx.operation == "record-receipts" and tx.quantity == 5
    assert tx.event["root"] == "0x" + merkle.root(hashes).hex()
    for leaf, proof in zip(hashes, merkle.proofs(hashes), strict=True):
        assert await eth.ledger.receipt_recorded(leaf, proof)
        assert not await eth.ledger.receipt_recorded(leaf), "a batch member alone is not a recorded root"
    assert not await eth.ledger.receipt_recorded(b"\x09" * 32, merkle.proofs(hashes)[0])
    single = b"\x42" * 32
    await eth.ledger.record_receipts([single])
    assert await eth.ledger.receipt_recorded(single)
    with pytest.raises(FinP2PError) as exc:
        await eth.ledger.record_receipts([single])
    assert _code(exc) is ErrorCode.LEDGER_ALREADY_RECORDED
    with pytest.raises(FinP2PError) as exc:
        await eth.ledger.record_receipts([])
    assert _code(exc) is ErrorCode.LEDGER_INVALID_QUANTITY
    assert await eth.ledger.transaction(tx.transaction_id) == tx


async def test_concurrent_operations_get_their_own_nonces(eth: EthWorld) -> None:
    asset, _, _ = await _funded(eth, 1)
    receivers = [SigningKey.generate() for _ in range(12)]
    txs = await asyncio.gather(*(eth.ledger.issue(asset, r.fin_id, i + 1, f"c-{i}") for i, r in enumerate(receivers)))
    assert len({t.transaction_id for t in txs}) == 12
    assert [b[0] for b in await _balances(eth, asset, *receivers)] == list(range(1, 13))
    assert await eth.ledger.supply(asset) == 1 + sum(range(1, 13))


async def test_a_failed_transaction_is_described_from_the_chain(eth: EthWorld) -> None:
    """A transaction that reached the chain and reverted (sent here without the plugin's pre-check)."""
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


async def test_a_routers_signed_template_authorises_one_operation(eth: EthWorld) -> None:
    """A FinP2P router's template (typed data the contract cannot recompute) signed by the owner: the contract
    checks the owner's signature over its digest, lets it authorise one operation, and records it."""
    from finp2p.identity import eip712

    asset, alice, bob = await _funded(eth)
    types = {
        "FinId": [("idkey", "string")],
        "Selling": [("nonce", "string"), ("seller", "FinId"), ("amount", "string")],
    }
    domain = {"name": "FinP2P", "version": "1", "chainId": 1, "verifyingContract": "0x" + "00" * 20}
    message = {"nonce": "n-1", "seller": {"idkey": alice.fin_id}, "amount": "7"}
    template = eip712.adapter_template(domain, "Selling", types, message)
    signed = OwnerConsent("EIP712", alice.fin_id, alice.sign_digest(bytes.fromhex(template["hash"])).hex(), template)
    tx = await eth.ledger.transfer(asset, alice.fin_id, bob.fin_id, 7, "r-1", signed)
    assert tx.succeeded and tx.event.get("consent_template") == "0x" + template["hash"]
    assert await _balances(eth, asset, alice, bob) == [(93, 0), (7, 0)]
    with pytest.raises(FinP2PError) as exc:  # the same signed template for a second operation
        await eth.ledger.transfer(asset, alice.fin_id, bob.fin_id, 7, "r-2", signed)
    assert _code(exc) is ErrorCode.LEDGER_CONSENT_USED
    message2 = {**message, "nonce": "n-2"}
    template2 = eip712.adapter_template(domain, "Selling", types, message2)
    forged = OwnerConsent("EIP712", alice.fin_id, bob.sign_digest(bytes.fromhex(template2["hash"])).hex(), template2)
    with pytest.raises(FinP2PError) as exc:  # signed by someone else, said to be alice's: refused on-chain
        await eth.ledger.transfer(asset, alice.fin_id, bob.fin_id, 7, "r-3", forged)
    assert _code(exc) is ErrorCode.LEDGER_BAD_SIGNATURE
    assert await _balances(eth, asset, alice, bob) == [(93, 0), (7, 0)]
