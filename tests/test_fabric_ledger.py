"""The Fabric ledger plugin on a real Fabric network (orderer, peer, the chaincode as a service): the ledger
conformance suite (:mod:`finp2p.testing.ledger`) and what only a Fabric ledger does, on the session's devnet."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.keys import SigningKey
from finp2p.ledger import OperationType, OwnerConsent
from finp2p.testing import LedgerConformance, LedgerWorld, refused
from finp2p_fabric.consent import Operation
from finp2p_fabric.factory import ledger_from, settings_from
from finp2p_fabric.ledger import ChaincodeEvent
from tests.support.fabric import FabricWorld

pytestmark = pytest.mark.fabric


async def _funded(fab: FabricWorld, quantity: int = 100) -> tuple[str, SigningKey, SigningKey]:
    asset = await fab.new_asset()
    alice, bob = SigningKey.generate(), SigningKey.generate()
    await fab.ledger.issue(asset, alice.fin_id, quantity, f"issue-{asset}")
    return asset, alice, bob


async def _balances(fab: FabricWorld, asset: str, *keys: SigningKey) -> list[tuple[int, int]]:
    found = [await fab.ledger.balance(asset, k.fin_id) for k in keys]
    return [(b.available, b.held) for b in found]


class TestFabricLedger(LedgerConformance):
    @pytest.fixture
    def ledger_world(self, fab: FabricWorld) -> LedgerWorld:
        """The operator's ledger on the session's Fabric devnet, with its own clock (a FabricWorld: the Fabric
        tests below use the rest of it)."""
        return fab  # mypy checks here that a FabricWorld is a LedgerWorld

    # -- what only a Fabric ledger does --------------------------------------------------------------------------
    async def test_transactions_are_read_through_qscc(self, ledger_world: FabricWorld) -> None:
        """A lookup asks the ledger itself (qscc: the processed transaction, its validation code, its block); the
        submitter is the MSP identity that signed the transaction, as the chaincode names its operator."""
        fab = ledger_world
        asset, alice, bob = await _funded(fab)
        op = Operation(f"t-1-{asset}", asset, alice.fin_id, bob.fin_id, 30)
        tx = await fab.ledger.transfer(
            asset, alice.fin_id, bob.fin_id, 30, op.operation_id, fab.consent(alice, "Transfer", op)
        )
        found = await fab.ledger.transaction(tx.transaction_id)
        assert found == tx
        assert found is not None and found.event["name"] == "Transferred" and found.event["chaincode"] == "finp2p"
        assert found.event["op"]["quantity"] == 30 and found.height >= 1
        assert found.height < await fab.ledger.height()
        assert tx.ledger_id == fab.ledger.ledger_id == "fabric:finp2p"
        config = await fab.ledger.config()
        assert tx.submitter == fab.ledger.gateway.identity.name == f"{config['operatorMsp']}::{config['operatorId']}"
        assert tx.submitter.startswith("Org1MSP::x509::CN=User1@org1.example.com,")

    async def test_chaincode_refusals_say_what_happened(self, ledger_world: FabricWorld) -> None:
        """A chaincode refusal comes back as its FinP2P code with its arguments in the sentence and its name in the
        context; a template that is not one (an empty hashList) is CONSENT_INVALID, not merely unsupported."""
        fab = ledger_world
        asset, alice, bob = await _funded(fab, 10)
        op = Operation(f"x-1-{asset}", asset, alice.fin_id, bob.fin_id, 11)
        exc = await refused(
            fab.ledger.transfer(
                asset, alice.fin_id, bob.fin_id, 11, op.operation_id, fab.consent(alice, "Transfer", op)
            ),
            ErrorCode.LEDGER_INSUFFICIENT_BALANCE,
        )
        assert "10 available" in str(exc) and "needs 11" in str(exc) and exc.context["error"] == "InsufficientBalance"
        expiry = await fab.now() + 60
        held = Operation(f"e-1-{asset}", asset, alice.fin_id, bob.fin_id, 10, expiry)
        await fab.ledger.hold(
            asset, alice.fin_id, bob.fin_id, 10, held.operation_id, expiry, fab.consent(alice, "Hold", held)
        )
        await fab.advance_time(120)
        exc = await refused(
            fab.ledger.release(asset, alice.fin_id, bob.fin_id, 10, held.operation_id), ErrorCode.LEDGER_HOLD_EXPIRED
        )
        assert str(expiry) in str(exc)
        not_a_template = OwnerConsent("hashList", alice.fin_id, "00" * 64, {})
        await refused(
            fab.ledger.transfer(asset, alice.fin_id, bob.fin_id, 5, f"s-1-{asset}", not_a_template),
            ErrorCode.CONSENT_INVALID,
        )

    async def test_another_identity_is_named_and_cannot_configure(self, ledger_world: FabricWorld) -> None:
        """A second identity of the peer's own organization, allowed on the channel, is refused by name, and cannot
        make itself the chaincode's operator."""
        fab = ledger_world
        asset, _, _ = await _funded(fab)
        other = fab.other_ledger(user="User2")
        intruder = SigningKey.generate()
        exc = await refused(other.issue(asset, intruder.fin_id, 1000, f"steal-{asset}"), ErrorCode.LEDGER_NOT_OPERATOR)
        assert "User2" in str(exc)
        await refused(other.configure(), ErrorCode.LEDGER_NOT_OPERATOR)

    async def test_off_curve_fin_ids_are_refused_by_the_chaincode(self, ledger_world: FabricWorld) -> None:
        """An X coordinate that is not on the curve passes the plugin's format check; the chaincode refuses it at
        endorsement: no block is cut."""
        fab = ledger_world
        asset, _, _ = await _funded(fab)
        height = await fab.ledger.height()
        off_curve = "02" + "00" * 31 + "05"
        await refused(fab.ledger.issue(asset, off_curve, 1, f"b-5-{asset}"), ErrorCode.LEDGER_INVALID_ACCOUNT)
        assert await fab.ledger.height() == height

    async def test_concurrent_operations_on_one_asset(self, ledger_world: FabricWorld) -> None:
        """Twelve issues at once on one asset: each records its change of the supply under its own key, so none
        invalidates another. Five transfers at once from one balance: those that lose the race within a block are
        invalidated by Fabric (read conflict), changed nothing, and are endorsed and submitted again by the
        plugin."""
        fab = ledger_world
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

    async def test_an_invalid_transaction_is_reported_as_failed(self, ledger_world: FabricWorld) -> None:
        """Two transfers of one balance endorsed on the same state and both submitted (here without the plugin's
        retry): the peer commits one and invalidates the other (MVCC read conflict). The ledger's own record says
        so, and the invalidated one left its operation id unused."""
        from fabric_protos.peer import transaction_pb2

        fab = ledger_world
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
        assert (failed.operation, failed.operation_id, failed.quantity) == (
            OperationType.TRANSFER,
            ops[1].operation_id,
            6,
        )
        good = await ledger.transaction(proposals[0].tx_id)
        assert good is not None and good.succeeded
        assert await _balances(fab, asset, alice, bob) == [(4, 0), (6, 0)]
        assert await ledger.find_operation(ops[1].operation_id, OperationType.TRANSFER) is None, "its id is unused"

    async def test_a_commit_not_seen_in_time_is_found_later(self, ledger_world: FabricWorld) -> None:
        """FP6015 (transient) when the commit is not seen within ``commit_timeout_s``: the transaction was submitted
        and may still commit, so the node looks it up before submitting again. ``find_operation`` and
        ``find_receipts_record`` find it once it has, also through a new ledger client (a restarted node)."""
        fab = ledger_world
        asset, alice, _ = await _funded(fab)
        raw = {**fab.network.profile_settings(), "ledger_id": fab.network.ledger_id, "commit_timeout_s": 0.001}
        impatient = ledger_from(settings_from(raw))
        receipt = SigningKey.generate().secret_bytes()
        try:
            await refused(impatient.issue(asset, alice.fin_id, 5, f"late-{asset}"), ErrorCode.LEDGER_TIMEOUT)
            await refused(impatient.record_receipts([receipt]), ErrorCode.LEDGER_TIMEOUT)
        finally:
            await impatient.close()
        restarted = ledger_from(settings_from({**raw, "commit_timeout_s": 60}))
        try:
            for _ in range(100):  # until the block is cut (BatchTimeout): bounded, not timed
                issued = await restarted.find_operation(f"late-{asset}", OperationType.ISSUE)
                recorded = await restarted.find_receipts_record(receipt)
                if issued is not None and recorded is not None:
                    break
                await asyncio.sleep(0.1)
            assert issued is not None and issued.succeeded and issued.quantity == 5
            assert recorded is not None and recorded.event["root"] == "0x" + receipt.hex()
            await refused(restarted.record_receipts([receipt]), ErrorCode.LEDGER_ALREADY_RECORDED)
        finally:
            await restarted.close()
        assert await _balances(fab, asset, alice) == [(105, 0)]

    async def test_a_routers_template_is_recorded_in_the_event(self, ledger_world: FabricWorld) -> None:
        """A consent over a router's template (typed data the chaincode cannot recompute) is recorded with the
        operation, in its chaincode event."""
        from finp2p.identity import eip712

        fab = ledger_world
        asset, alice, bob = await _funded(fab)
        types = {"FinId": [("idkey", "string")], "Selling": [("nonce", "string"), ("seller", "FinId")]}
        domain = {"name": "FinP2P", "version": "1", "chainId": 1, "verifyingContract": "0x" + "00" * 20}
        template = eip712.adapter_template(
            domain, "Selling", types, {"nonce": f"n-1-{asset}", "seller": {"idkey": alice.fin_id}}
        )
        signed = OwnerConsent(
            "EIP712", alice.fin_id, alice.sign_digest(bytes.fromhex(template["hash"])).hex(), template
        )
        tx = await fab.ledger.transfer(asset, alice.fin_id, bob.fin_id, 7, f"r-1-{asset}", signed)
        assert tx.event.get("consent_template") == "0x" + template["hash"]
        assert await fab.ledger.transaction(tx.transaction_id) == tx

    async def test_chaincode_events_are_received(self, ledger_world: FabricWorld) -> None:
        fab = ledger_world
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

    async def test_the_consent_digest_is_the_chaincodes_and_the_solidity_contracts(
        self, ledger_world: FabricWorld
    ) -> None:
        """One signature format for both ledgers: the plugin's digest, the chaincode's own, and the Ethereum plugin's
        (checked against the Solidity contract by the Ethereum tests) for the same domain."""
        from finp2p_ethereum.consent import Operation as EthOperation
        from finp2p_ethereum.consent import consent_digest as eth_digest
        from finp2p_fabric.consent import consent_digest

        fab = ledger_world
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
                OperationType(kind.lower()),
                op.asset_id,
                op.source,
                op.destination,
                op.quantity,
                op.operation_id,
                op.expiry,
            )
            assert template["hash"] == ours.hex() and template["primaryType"] == kind

    async def test_balance_history_accounts_and_settings(self, ledger_world: FabricWorld) -> None:
        """Fabric keeps no history of its state: a balance at any height but the current one, or the height at a
        time, is LEDGER_NO_HISTORY. A FinID is its own account on the chaincode."""
        fab = ledger_world
        asset, alice, _ = await _funded(fab)
        now = await fab.ledger.balance(asset, alice.fin_id)
        assert now.height == await fab.ledger.height()
        await refused(fab.ledger.balance(asset, alice.fin_id, now.height - 1), ErrorCode.LEDGER_NO_HISTORY)
        await refused(fab.ledger.height_at(0), ErrorCode.LEDGER_NO_HISTORY)
        assert fab.ledger.account_of(alice.fin_id) == {"ledgerAccountId": alice.fin_id}
        assert fab.ledger.check_account("ledgerAccountId", alice.fin_id) == alice.fin_id
        with pytest.raises(FinP2PError) as exc:
            fab.ledger.check_account("ledgerAccountId", "0x" + "11" * 20)
        assert exc.value.code is ErrorCode.OPERATION_INVALID
        assert fab.ledger.public_settings() == {"channel": "finp2p", "chaincode": fab.ledger.chaincode, "chain_id": 0}
        assert json.dumps(fab.ledger.asset_identifier(asset))
        with pytest.raises(FinP2PError) as exc:
            fab.ledger.check_account("ledgerAccountId", "02" + "00" * 32)  # a FinID's form, but no key
        assert exc.value.code is ErrorCode.OPERATION_INVALID

    async def test_another_organizations_chaincode_is_read_through_a_view(self, ledger_world: FabricWorld) -> None:
        """The channel is the ledger; another organization's deployment on it is a chaincode of its own, read
        through this connection by its name alone. A name that is no FinP2P chaincode, another channel or a name
        Fabric could not have are FP6016; a transaction of one chaincode is not found through another's view."""
        fab = ledger_world
        name = f"v-{uuid.uuid4().hex[:8]}"
        theirs = ledger_from(
            settings_from({**fab.network.deploy_chaincode(name, "User2"), "ledger_id": fab.ledger.ledger_id})
        )
        try:
            assert theirs.ledger_id == fab.ledger.ledger_id == "fabric:finp2p"
            asset, alice, _ = await _funded(fab)
            assert fab.ledger.view(fab.ledger.public_settings()) is fab.ledger
            view = theirs.view(fab.ledger.public_settings())
            await view.verify_deployment()
            assert (await view.balance(asset, alice.fin_id)).available == 100
            issued = await fab.ledger.find_operation(f"issue-{asset}", OperationType.ISSUE)
            assert issued is not None
            assert (await view.transaction(issued.transaction_id)) == issued
            assert await theirs.transaction(issued.transaction_id) is None, "not a transaction of their chaincode"
            recorded = await theirs.record_receipts([b"\x07" * 32])
            assert await fab.ledger.view(theirs.public_settings()).receipt_recorded(b"\x07" * 32)
            assert not await fab.ledger.receipt_recorded(b"\x07" * 32), "each registry is its own"
            assert recorded.submitter and "User2" in recorded.submitter
            for bad in ({"chaincode": "no-such-chaincode"}, {"chaincode": "a b"}, {"chaincode": name, "channel": "x"}):
                with pytest.raises(FinP2PError) as exc:
                    await fab.ledger.view(bad).balance(asset, alice.fin_id)
                assert exc.value.code is ErrorCode.LEDGER_PROFILE, bad
        finally:
            await theirs.close()
        assert (await fab.ledger.balance(asset, alice.fin_id)).available == 100, "closing a view's owner is its own"

    async def test_the_peer_stopped_and_back(self, ledger_world: FabricWorld) -> None:
        """With the peer down every call is a clear FP6013 (transient); once it is back the same ledger object
        works again."""
        fab = ledger_world
        asset, alice, bob = await _funded(fab)
        fab.network.stop_peer()
        try:
            for call in (
                lambda: fab.ledger.balance(asset, alice.fin_id),
                lambda: fab.ledger.issue(asset, bob.fin_id, 1, f"down-1-{asset}"),
                lambda: fab.ledger.transaction("ab" * 32),
                lambda: fab.ledger.start(),
            ):
                exc = await refused(call(), ErrorCode.LEDGER_UNREACHABLE)
                assert fab.network.peer_endpoint in str(exc)
        finally:
            fab.network.start_peer()
        await fab.ledger.gateway.wait_ready(60)
        for _ in range(100):  # the peer reconnects to the orderer and the chaincode server: bounded, not timed
            try:
                await fab.ledger.height()
                break
            except FinP2PError as exc:
                assert exc.code is ErrorCode.LEDGER_UNREACHABLE, exc
                await asyncio.sleep(0.2)
        op = Operation(f"back-1-{asset}", asset, alice.fin_id, bob.fin_id, 3)
        await fab.ledger.transfer(
            asset, alice.fin_id, bob.fin_id, 3, op.operation_id, fab.consent(alice, "Transfer", op)
        )
        assert await _balances(fab, asset, alice, bob) == [(97, 0), (3, 0)]
