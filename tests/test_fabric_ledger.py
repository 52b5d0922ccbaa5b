"""The Fabric ledger plugin on a real Fabric network (orderer, peer, the chaincode as a service): every operation of
the ledger interface and its failures, as the Ethereum plugin's tests have them.

The bodies take a world (``fab``: ``ledger``, ``consent(key, kind, op)``, ``new_asset()``, ``now()``,
``advance_time(s)``) and nothing Fabric-specific unless their name says so, so that they can become a conformance
suite every ledger plugin runs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from finp2p.assets import merkle
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.keys import SigningKey
from finp2p.ledger import OperationType, OwnerConsent
from finp2p_fabric.consent import Operation
from finp2p_fabric.ledger import ChaincodeEvent
from tests.support.fabric import FabricWorld

pytestmark = pytest.mark.fabric


def _code(exc: pytest.ExceptionInfo[FinP2PError]) -> ErrorCode:
    return exc.value.code


async def _funded(fab: FabricWorld, quantity: int = 100) -> tuple[str, SigningKey, SigningKey]:
    asset = await fab.new_asset()
    alice, bob = SigningKey.generate(), SigningKey.generate()
    await fab.ledger.issue(asset, alice.fin_id, quantity, f"issue-{asset}")
    return asset, alice, bob


async def _balances(fab: FabricWorld, asset: str, *keys: SigningKey) -> list[tuple[int, int]]:
    found = [await fab.ledger.balance(asset, k.fin_id) for k in keys]
    return [(b.available, b.held) for b in found]


async def test_issue_transfer_and_lookup_through_qscc(fab: FabricWorld) -> None:
    asset, alice, bob = await _funded(fab)
    op = Operation("t-1" + asset, asset, alice.fin_id, bob.fin_id, 30)
    tx = await fab.ledger.transfer(
        asset, alice.fin_id, bob.fin_id, 30, op.operation_id, fab.consent(alice, "Transfer", op)
    )
    assert tx.succeeded and tx.operation == OperationType.TRANSFER
    assert (tx.source, tx.destination, tx.quantity, tx.operation_id) == (alice.fin_id, bob.fin_id, 30, op.operation_id)
    assert await _balances(fab, asset, alice, bob) == [(70, 0), (30, 0)]
    assert await fab.ledger.supply(asset) == 100
    # The lookup asks the ledger itself (qscc: the processed transaction, its validation code, its block).
    found = await fab.ledger.transaction(tx.transaction_id)
    assert found == tx
    assert found is not None and found.event["name"] == "Transferred"
    assert found.event["op"]["quantity"] == 30 and found.height >= 1 and found.timestamp > 0
    assert found.height < await fab.ledger.height()
    assert await fab.ledger.transaction("00" * 32) is None
    assert await fab.ledger.transaction("not a transaction id") is None
    assert tx.ledger_id == fab.ledger.ledger_id == "fabric:finp2p/finp2p"
    # The submitter is the MSP identity that signed the transaction, as the chaincode names its operator.
    config = await fab.ledger.config()
    assert tx.submitter == fab.ledger.gateway.identity.name == f"{config['operatorMsp']}::{config['operatorId']}"
    assert tx.submitter.startswith("Org1MSP::x509::CN=User1@org1.example.com,")


async def test_insufficient_balance_changes_nothing(fab: FabricWorld) -> None:
    asset, alice, bob = await _funded(fab, 10)
    attempts = [
        ("Transfer", Operation("x-1" + asset, asset, alice.fin_id, bob.fin_id, 11)),
        ("Hold", Operation("x-2" + asset, asset, alice.fin_id, bob.fin_id, 11, 0)),
        ("Redeem", Operation("x-3" + asset, asset, alice.fin_id, "", 11)),
    ]
    for kind, op in attempts:
        consent = fab.consent(alice, kind, op)
        with pytest.raises(FinP2PError) as exc:
            if kind == "Transfer":
                await fab.ledger.transfer(asset, alice.fin_id, bob.fin_id, 11, op.operation_id, consent)
            elif kind == "Hold":
                await fab.ledger.hold(asset, alice.fin_id, bob.fin_id, 11, op.operation_id, 0, consent)
            else:
                await fab.ledger.redeem(asset, alice.fin_id, 11, op.operation_id, consent)
        assert _code(exc) is ErrorCode.LEDGER_INSUFFICIENT_BALANCE
        assert "10 available" in str(exc.value) and "needs 11" in str(exc.value)
    assert await _balances(fab, asset, alice, bob) == [(10, 0), (0, 0)]
    assert await fab.ledger.supply(asset) == 10


async def test_operation_id_is_used_once(fab: FabricWorld) -> None:
    asset, alice, bob = await _funded(fab)
    with pytest.raises(FinP2PError) as exc:
        await fab.ledger.issue(asset, bob.fin_id, 5, f"issue-{asset}")
    assert _code(exc) is ErrorCode.LEDGER_OPERATION_ID_USED
    op = Operation("once" + asset, asset, alice.fin_id, bob.fin_id, 1)
    consent = fab.consent(alice, "Transfer", op)
    await fab.ledger.transfer(asset, alice.fin_id, bob.fin_id, 1, op.operation_id, consent)
    with pytest.raises(FinP2PError) as exc:  # the very same signed operation, replayed
        await fab.ledger.transfer(asset, alice.fin_id, bob.fin_id, 1, op.operation_id, consent)
    assert _code(exc) is ErrorCode.LEDGER_OPERATION_ID_USED
    assert await _balances(fab, asset, alice, bob) == [(99, 0), (1, 0)]


async def test_owner_signature_is_checked_by_the_chaincode(fab: FabricWorld) -> None:
    asset, alice, bob = await _funded(fab)
    mallory = SigningKey.generate()
    op_id = "s-1" + asset
    op = Operation(op_id, asset, alice.fin_id, bob.fin_id, 5)
    forged = fab.consent(mallory, "Transfer", op)
    # Claim alice signed: the plugin's own check passes, so the chaincode is what refuses it. Alice's signatures
    # for another amount or kind of operation are refused before anything is sent.
    claimed = OwnerConsent("EIP712", alice.fin_id, forged.signature, forged.payload)
    wrong_amount = fab.consent(alice, "Transfer", Operation(op_id, asset, alice.fin_id, bob.fin_id, 50))
    wrong_kind = fab.consent(alice, "Hold", Operation(op_id, asset, alice.fin_id, bob.fin_id, 5, 0))
    for consent in (claimed, wrong_amount, wrong_kind):
        with pytest.raises(FinP2PError) as exc:
            await fab.ledger.transfer(asset, alice.fin_id, bob.fin_id, 5, op_id, consent)
        assert _code(exc) is ErrorCode.LEDGER_BAD_SIGNATURE, consent
    with pytest.raises(FinP2PError) as exc:  # a signature by someone else, said to be by someone else
        await fab.ledger.transfer(asset, alice.fin_id, bob.fin_id, 5, op_id, forged)
    assert _code(exc) is ErrorCode.LEDGER_BAD_SIGNATURE
    with pytest.raises(FinP2PError) as exc:  # no signature at all
        await fab.ledger.redeem(asset, alice.fin_id, 5, "s-2" + asset, None)
    assert _code(exc) is ErrorCode.LEDGER_BAD_SIGNATURE
    hash_list = OwnerConsent("hashList", alice.fin_id, "00" * 64, {})
    with pytest.raises(FinP2PError) as exc:  # a template that is not one
        await fab.ledger.transfer(asset, alice.fin_id, bob.fin_id, 5, "s-3" + asset, hash_list)
    assert _code(exc) is ErrorCode.CONSENT_INVALID
    with pytest.raises(FinP2PError) as exc:
        await fab.ledger.transfer(asset, alice.fin_id, bob.fin_id, 5, "s-3" + asset, replace(hash_list, template="PGP"))
    assert _code(exc) is ErrorCode.LEDGER_UNSUPPORTED_CONSENT
    assert await _balances(fab, asset, alice, bob) == [(100, 0), (0, 0)]
    assert await fab.ledger.find_operation(op_id, OperationType.TRANSFER) is None, "a refused operation is unused"


async def test_only_the_operator_submits(fab: FabricWorld) -> None:
    """A second identity of the peer's own organization, allowed on the channel, is not the chaincode's operator."""
    asset, alice, _ = await _funded(fab)
    other = fab.other_ledger("User2")
    intruder = SigningKey.generate()
    with pytest.raises(FinP2PError) as exc:
        await other.issue(asset, intruder.fin_id, 1000, "steal" + asset)
    assert _code(exc) is ErrorCode.LEDGER_NOT_OPERATOR
    assert "User2" in str(exc.value)
    op = Operation("steal-2" + asset, asset, alice.fin_id, intruder.fin_id, 5)
    with pytest.raises(FinP2PError) as exc:  # even with the owner's genuine consent
        await other.transfer(
            asset, alice.fin_id, intruder.fin_id, 5, op.operation_id, fab.consent(alice, "Transfer", op)
        )
    assert _code(exc) is ErrorCode.LEDGER_NOT_OPERATOR
    with pytest.raises(FinP2PError) as exc:
        await other.record_receipts([asset.encode()[:32].ljust(32, b"\1")])
    assert _code(exc) is ErrorCode.LEDGER_NOT_OPERATOR
    with pytest.raises(FinP2PError) as exc:  # nor can it make itself the operator
        await other.configure()
    assert _code(exc) is ErrorCode.LEDGER_NOT_OPERATOR
    assert (await other.balance(asset, alice.fin_id)).available == 100, "reading is open to the channel's members"
    assert await _balances(fab, asset, alice, intruder) == [(100, 0), (0, 0)]


async def test_hold_release_rollback_and_redeem(fab: FabricWorld) -> None:
    asset, alice, bob = await _funded(fab)
    h = {n: f"h-{n}-{asset}" for n in (1, 2, 3)}

    async def hold(op_id: str, quantity: int, destination: str | None = None, expiry: int = 0) -> None:
        op = Operation(op_id, asset, alice.fin_id, destination or "", quantity, expiry)
        await fab.ledger.hold(asset, alice.fin_id, destination, quantity, op_id, expiry, fab.consent(alice, "Hold", op))

    await hold(h[1], 40, bob.fin_id)
    assert await _balances(fab, asset, alice, bob) == [(60, 40), (0, 0)]
    with pytest.raises(FinP2PError) as exc:  # more than held
        await fab.ledger.release(asset, alice.fin_id, bob.fin_id, 41, h[1])
    assert _code(exc) is ErrorCode.LEDGER_HOLD_QUANTITY
    with pytest.raises(FinP2PError) as exc:  # the hold names its payee
        await fab.ledger.release(asset, alice.fin_id, alice.fin_id, 10, h[1])
    assert _code(exc) is ErrorCode.LEDGER_HOLD_MISMATCH
    with pytest.raises(FinP2PError) as exc:  # by the wrong source
        await fab.ledger.release(asset, bob.fin_id, bob.fin_id, 10, h[1])
    assert _code(exc) is ErrorCode.LEDGER_HOLD_MISMATCH
    tx = await fab.ledger.release(asset, alice.fin_id, bob.fin_id, 30, h[1])
    assert tx.operation == OperationType.RELEASE and tx.quantity == 30
    assert await _balances(fab, asset, alice, bob) == [(70, 0), (30, 0)], "the remainder returns to the source"
    with pytest.raises(FinP2PError) as exc:  # a hold is settled once
        await fab.ledger.release(asset, alice.fin_id, bob.fin_id, 10, h[1])
    assert _code(exc) is ErrorCode.LEDGER_UNKNOWN_HOLD
    with pytest.raises(FinP2PError) as exc:
        await fab.ledger.rollback(asset, alice.fin_id, 10, "never-held" + asset)
    assert _code(exc) is ErrorCode.LEDGER_UNKNOWN_HOLD

    await hold(h[2], 20)  # no payee named: any destination
    with pytest.raises(FinP2PError) as exc:
        await fab.ledger.rollback(asset, alice.fin_id, 19, h[2])
    assert _code(exc) is ErrorCode.LEDGER_HOLD_QUANTITY
    tx = await fab.ledger.rollback(asset, alice.fin_id, 20, h[2])
    assert tx.operation == OperationType.ROLLBACK
    assert await _balances(fab, asset, alice) == [(70, 0)]

    await hold(h[3], 25)
    tx = await fab.ledger.redeem(asset, alice.fin_id, 25, h[3], None)  # from the hold: consent was given for it
    assert tx.operation == OperationType.REDEEM
    assert await _balances(fab, asset, alice) == [(45, 0)]
    assert await fab.ledger.supply(asset) == 75

    # Every operation is found again by its id and kind, as a node that crashed after submitting would ask.
    assert await fab.ledger.find_operation(h[3], OperationType.REDEEM) == tx
    held = await fab.ledger.find_operation(h[3], OperationType.HOLD)
    assert held is not None and held.operation == OperationType.HOLD and held.quantity == 25
    released = await fab.ledger.find_operation(h[1], OperationType.RELEASE)
    assert released is not None and released.destination == bob.fin_id and released.quantity == 30
    assert await fab.ledger.find_operation(h[2], OperationType.ROLLBACK) is not None
    assert await fab.ledger.find_operation(h[2], OperationType.RELEASE) is None
    assert await fab.ledger.find_operation("never" + asset, OperationType.TRANSFER) is None
    issued = await fab.ledger.find_operation(f"issue-{asset}", OperationType.ISSUE)
    assert issued is not None and issued.quantity == 100


async def test_hold_expiry(fab: FabricWorld) -> None:
    asset, alice, bob = await _funded(fab)
    expiry = await fab.now() + 60
    op_id = "e-1" + asset
    op = Operation(op_id, asset, alice.fin_id, bob.fin_id, 10, expiry)
    await fab.ledger.hold(asset, alice.fin_id, bob.fin_id, 10, op_id, expiry, fab.consent(alice, "Hold", op))
    await fab.advance_time(120)
    with pytest.raises(FinP2PError) as exc:
        await fab.ledger.release(asset, alice.fin_id, bob.fin_id, 10, op_id)
    assert _code(exc) is ErrorCode.LEDGER_HOLD_EXPIRED
    assert str(expiry) in str(exc.value)
    with pytest.raises(FinP2PError) as exc:
        await fab.ledger.redeem(asset, alice.fin_id, 10, op_id, None)
    assert _code(exc) is ErrorCode.LEDGER_HOLD_EXPIRED
    await fab.ledger.rollback(asset, alice.fin_id, 10, op_id)  # an expired hold can still be rolled back
    assert await _balances(fab, asset, alice, bob) == [(100, 0), (0, 0)]


async def test_bad_fields_are_refused_before_the_ledger(fab: FabricWorld) -> None:
    asset, alice, _ = await _funded(fab)
    height = await fab.ledger.height()
    cases: list[tuple[Callable[[], Awaitable[object]], ErrorCode]] = [
        (lambda: fab.ledger.issue(asset, "02" + "zz" * 32, 1, "b-1" + asset), ErrorCode.LEDGER_INVALID_ACCOUNT),
        (lambda: fab.ledger.issue(asset, alice.fin_id, 0, "b-2" + asset), ErrorCode.LEDGER_INVALID_QUANTITY),
        (lambda: fab.ledger.issue(asset, alice.fin_id, -5, "b-3" + asset), ErrorCode.LEDGER_INVALID_QUANTITY),
        (lambda: fab.ledger.issue(asset, alice.fin_id, 1, ""), ErrorCode.LEDGER_INVALID_FIELD),
        (lambda: fab.ledger.issue("no-such-asset", alice.fin_id, 1, "b-4" + asset), ErrorCode.LEDGER_UNKNOWN_ASSET),
        (lambda: fab.ledger.create_asset(asset, {}), ErrorCode.LEDGER_ASSET_EXISTS),
    ]
    for call, code in cases:
        with pytest.raises(FinP2PError) as exc:
            await call()
        assert _code(exc) is code
    # An X coordinate that is not on the curve passes the format check; the chaincode refuses it.
    off_curve = "02" + "00" * 31 + "05"
    with pytest.raises(FinP2PError) as exc:
        await fab.ledger.issue(asset, off_curve, 1, "b-5" + asset)
    assert _code(exc) is ErrorCode.LEDGER_INVALID_ACCOUNT
    assert await fab.ledger.height() == height, "no block was cut for refused operations"


async def test_receipt_registry(fab: FabricWorld) -> None:
    salt = SigningKey.generate().secret_bytes()  # the session's registry is shared: fresh hashes per run
    hashes = [bytes([i]) + salt[1:] for i in range(1, 6)]
    tx = await fab.ledger.record_receipts(hashes)
    assert tx.operation == "record-receipts" and tx.quantity == 5
    assert tx.event["root"] == "0x" + merkle.root(hashes).hex()
    for leaf, proof in zip(hashes, merkle.proofs(hashes), strict=True):
        assert await fab.ledger.receipt_recorded(leaf, proof)
        assert not await fab.ledger.receipt_recorded(leaf), "a batch member alone is not a recorded root"
    assert not await fab.ledger.receipt_recorded(b"\x09" * 32, merkle.proofs(hashes)[0])
    single = bytes([0x42]) + salt[1:]
    await fab.ledger.record_receipts([single])
    assert await fab.ledger.receipt_recorded(single)
    with pytest.raises(FinP2PError) as exc:
        await fab.ledger.record_receipts([single])
    assert _code(exc) is ErrorCode.LEDGER_ALREADY_RECORDED
    with pytest.raises(FinP2PError) as exc:
        await fab.ledger.record_receipts([])
    assert _code(exc) is ErrorCode.LEDGER_INVALID_QUANTITY
    assert await fab.ledger.transaction(tx.transaction_id) == tx


async def test_concurrent_operations_on_one_asset(fab: FabricWorld) -> None:
    """Twelve issues at once on one asset: each records its change of the supply under its own key, so none
    invalidates another. Five transfers at once from one balance: those that lose the race within a block are
    invalidated by Fabric (read conflict), changed nothing, and are endorsed and submitted again by the plugin."""
    asset, alice, _ = await _funded(fab, 10)
    receivers = [SigningKey.generate() for _ in range(12)]
    txs = await asyncio.gather(
        *(fab.ledger.issue(asset, r.fin_id, i + 1, f"c-{i}-{asset}") for i, r in enumerate(receivers))
    )
    assert len({t.transaction_id for t in txs}) == 12 and all(t.succeeded for t in txs)
    assert [b[0] for b in await _balances(fab, asset, *receivers)] == list(range(1, 13))
    assert await fab.ledger.supply(asset) == 10 + sum(range(1, 13))
    ops = [Operation(f"ct-{i}-{asset}", asset, alice.fin_id, receivers[i].fin_id, 2) for i in range(5)]
    moved = await asyncio.gather(
        *(
            fab.ledger.transfer(
                asset, alice.fin_id, op.destination, 2, op.operation_id, fab.consent(alice, "Transfer", op)
            )
            for op in ops
        )
    )
    assert all(t.succeeded for t in moved)
    assert await _balances(fab, asset, alice) == [(0, 0)]
    assert [b[0] for b in await _balances(fab, asset, *receivers[:5])] == [3, 4, 5, 6, 7]


async def test_an_invalid_transaction_is_reported_as_failed(fab: FabricWorld) -> None:
    """Two transfers of one balance endorsed on the same state and both submitted (here without the plugin's
    retry): the peer commits one and invalidates the other (MVCC read conflict). The ledger's own record says so."""
    from fabric_protos.peer import transaction_pb2

    asset, alice, bob = await _funded(fab, 10)
    ledger, gw = fab.ledger, fab.ledger.gateway
    ops = [Operation(f"m-{n}-{asset}", asset, alice.fin_id, bob.fin_id, 6) for n in (1, 2)]
    proposals = [
        gw.proposal(
            ledger.channel,
            ledger.chaincode,
            "Transfer",
            [op.as_json(), ledger._consent(fab.consent(alice, "Transfer", op), "Transfer", op)],
        )
        for op in ops
    ]
    prepared = [await gw.endorse(p, "transfer") for p in proposals]  # both see 10 available
    for p in prepared:
        await gw.submit(p, "transfer")
    codes = [(await gw.commit_status(p, "transfer"))[0] for p in proposals]
    assert codes == [transaction_pb2.VALID, transaction_pb2.MVCC_READ_CONFLICT]
    failed = await ledger.transaction(proposals[1].tx_id)
    assert failed is not None and not failed.succeeded
    assert (failed.operation, failed.operation_id, failed.quantity) == (OperationType.TRANSFER, ops[1].operation_id, 6)
    good = await ledger.transaction(proposals[0].tx_id)
    assert good is not None and good.succeeded
    assert await _balances(fab, asset, alice, bob) == [(4, 0), (6, 0)]
    assert await ledger.find_operation(ops[1].operation_id, OperationType.TRANSFER) is None, "its id is unused"


async def test_a_routers_signed_template_authorises_one_operation(fab: FabricWorld) -> None:
    """A FinP2P router's template (typed data the chaincode cannot recompute) signed by the owner: the chaincode
    checks the owner's signature over its digest, lets it authorise one operation, and records it in the event."""
    from finp2p.identity import eip712

    asset, alice, bob = await _funded(fab)
    types = {
        "FinId": [("idkey", "string")],
        "Selling": [("nonce", "string"), ("seller", "FinId"), ("amount", "string")],
    }
    domain = {"name": "FinP2P", "version": "1", "chainId": 1, "verifyingContract": "0x" + "00" * 20}
    message = {"nonce": "n-1" + asset, "seller": {"idkey": alice.fin_id}, "amount": "7"}
    template = eip712.adapter_template(domain, "Selling", types, message)
    signed = OwnerConsent("EIP712", alice.fin_id, alice.sign_digest(bytes.fromhex(template["hash"])).hex(), template)
    tx = await fab.ledger.transfer(asset, alice.fin_id, bob.fin_id, 7, "r-1" + asset, signed)
    assert tx.succeeded and tx.event.get("consent_template") == "0x" + template["hash"]
    assert await _balances(fab, asset, alice, bob) == [(93, 0), (7, 0)]
    with pytest.raises(FinP2PError) as exc:  # the same signed template for a second operation
        await fab.ledger.transfer(asset, alice.fin_id, bob.fin_id, 7, "r-2" + asset, signed)
    assert _code(exc) is ErrorCode.LEDGER_CONSENT_USED
    template2 = eip712.adapter_template(domain, "Selling", types, {**message, "nonce": "n-2" + asset})
    forged = OwnerConsent("EIP712", alice.fin_id, bob.sign_digest(bytes.fromhex(template2["hash"])).hex(), template2)
    with pytest.raises(FinP2PError) as exc:  # signed by someone else, said to be alice's: refused by the chaincode
        await fab.ledger.transfer(asset, alice.fin_id, bob.fin_id, 7, "r-3" + asset, forged)
    assert _code(exc) is ErrorCode.LEDGER_BAD_SIGNATURE
    assert await _balances(fab, asset, alice, bob) == [(93, 0), (7, 0)]


async def test_chaincode_events_are_received(fab: FabricWorld) -> None:
    asset = await fab.new_asset()
    alice = SigningKey.generate()
    start = await fab.ledger.height()  # the number of the next block
    tx = await fab.ledger.issue(asset, alice.fin_id, 5, f"ev-{asset}")

    async def first_event_of(tx_id: str) -> ChaincodeEvent | None:
        async for event in fab.ledger.events(start_block=start):
            if event.transaction_id == tx_id:
                return event
        return None

    event = await asyncio.wait_for(first_event_of(tx.transaction_id), 30)
    assert event is not None and event.name == "Issued" and event.block == tx.height
    payload = event.payload
    assert payload["op"]["operationId"] == f"ev-{asset}" and payload["op"]["quantity"] == "5"


async def test_the_consent_digest_is_the_chaincodes_and_the_solidity_contracts(fab: FabricWorld) -> None:
    """One signature format for both ledgers: the plugin's digest, the chaincode's own, and the Ethereum plugin's
    (checked against the Solidity contract by the Ethereum tests) for the same domain."""
    from finp2p_ethereum.consent import Operation as EthOperation
    from finp2p_ethereum.consent import consent_digest as eth_digest
    from finp2p_fabric.consent import consent_digest

    alice, bob = SigningKey.generate(), SigningKey.generate()
    ops = {
        "Transfer": Operation("d-1", "org:102:ü-asset", alice.fin_id, bob.fin_id, 10**30),
        "Hold": Operation("d-2", "org:102:x", alice.fin_id, "", 7, 1_900_000_000),
        "Redeem": Operation("d-3", "org:102:x", alice.fin_id, "", 3),
    }
    config = await fab.ledger.config()
    assert config["verifyingContract"] == fab.ledger.verifying_contract
    assert int(config["chainId"]) == fab.ledger.chain_id
    for kind, op in ops.items():
        ours = consent_digest(kind, op, fab.ledger.chain_id, fab.ledger.verifying_contract)
        on_ledger = await fab.ledger.query("ConsentDigestOf", [kind, op.as_json()], "digest")
        ethereum = eth_digest(
            kind, EthOperation(*op.__dict__.values()), fab.ledger.chain_id, fab.ledger.verifying_contract
        )
        assert "0x" + ours.hex() == on_ledger.decode() and ours == ethereum, kind
        template = await fab.ledger.consent_template(
            OperationType(kind.lower()), op.asset_id, op.source, op.destination, op.quantity, op.operation_id, op.expiry
        )
        assert template["hash"] == ours.hex() and template["primaryType"] == kind


async def test_balance_history_accounts_and_settings(fab: FabricWorld) -> None:
    asset, alice, _ = await _funded(fab)
    now = await fab.ledger.balance(asset, alice.fin_id)
    assert now.height == await fab.ledger.height()
    assert (await fab.ledger.balance(asset, alice.fin_id, now.height)).available == 100
    with pytest.raises(FinP2PError) as exc:  # Fabric keeps no history of its state
        await fab.ledger.balance(asset, alice.fin_id, now.height - 1)
    assert _code(exc) is ErrorCode.LEDGER_NO_HISTORY
    with pytest.raises(FinP2PError) as exc:
        await fab.ledger.height_at(0)
    assert _code(exc) is ErrorCode.LEDGER_NO_HISTORY
    assert fab.ledger.account_of(alice.fin_id) == {"ledgerAccountId": alice.fin_id}
    assert fab.ledger.check_account("ledgerAccountId", alice.fin_id) == alice.fin_id
    with pytest.raises(FinP2PError) as exc:
        fab.ledger.check_account("ledgerAccountId", "0x" + "11" * 20)
    assert _code(exc) is ErrorCode.OPERATION_INVALID
    assert fab.ledger.public_settings() == {}
    assert json.dumps(fab.ledger.asset_identifier(asset))


async def test_the_peer_stopped_and_back(fab: FabricWorld) -> None:
    """With the peer down every call is a clear FP6013; once it is back the same ledger object works again."""
    asset, alice, bob = await _funded(fab)
    fab.network.stop_peer()
    try:
        for call in (
            lambda: fab.ledger.balance(asset, alice.fin_id),
            lambda: fab.ledger.issue(asset, bob.fin_id, 1, "down-1" + asset),
            lambda: fab.ledger.transaction("ab" * 32),
        ):
            with pytest.raises(FinP2PError) as exc:
                await call()
            assert _code(exc) is ErrorCode.LEDGER_UNREACHABLE
            assert fab.network.peer_endpoint in str(exc.value)
    finally:
        fab.network.start_peer()
    await fab.ledger.gateway.wait_ready(60)
    for _ in range(100):  # the peer reconnects to the orderer and the chaincode server: bounded, not timed
        try:
            await fab.ledger.height()
            break
        except FinP2PError as exc:
            assert exc.code is ErrorCode.LEDGER_UNREACHABLE
            await asyncio.sleep(0.2)
    op = Operation("back-1" + asset, asset, alice.fin_id, bob.fin_id, 3)
    await fab.ledger.transfer(asset, alice.fin_id, bob.fin_id, 3, op.operation_id, fab.consent(alice, "Transfer", op))
    assert await _balances(fab, asset, alice, bob) == [(97, 0), (3, 0)]
