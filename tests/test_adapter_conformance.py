"""Conformance of ``finp2p adapter serve`` to FinP2P's ledger-adapter API, driven over HTTP as a router drives it,
on the embedded chain, on a real Hardhat node and on a real Fabric devnet (each server a separate process)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from devnet.fabric import FabricNetwork
from devnet.hardhat import HardhatNode
from finp2p.adapter import router
from finp2p.edge.files import write_private
from finp2p.identity.keys import SigningKey, eth_address, save_key
from finp2p.identity.templates import verify_signature
from finp2p.ledger import LedgerProfile
from finp2p.ledger_profiles import EMBEDDED_PROFILE, save_profile
from tests.support.adapter import (
    ISSUER,
    AdapterClient,
    AdapterProcess,
    Investor,
    deploy_profile,
    nonce,
    wait_for,
)
from tests.support.fuzz import run_schemathesis
from tests.support.ports import free_port

SPEC_OPERATIONS = {
    "approveExecutionPlan",
    "executionPlanProposal",
    "executionPlanProposalStatus",
    "depositInstruction",
    "payout",
    "getAssetBalance",
    "createAsset",
    "issueAssets",
    "redeemAssets",
    "transferAsset",
    "getReceipt",
    "holdOperation",
    "releaseOperation",
    "rollbackOperation",
    "getOperation",
    "GetAssetBalanceInfo",
    "getHealth",
    "createOwnerMapping",
    "getOwnerMappings",
    "getMappingFields",
}


class Served:
    """An adapter process and what a test needs to know of it."""

    def __init__(self, process: AdapterProcess, ledger_id: str, org: SigningKey, backend: str) -> None:
        self.process = process
        self.ledger_id = ledger_id
        self.org = org
        self.backend = backend


#: The ledgers the adapter is tested on, each with the mark of what it needs started.
BACKENDS = [
    "embedded",
    pytest.param("hardhat", marks=pytest.mark.hardhat),
    pytest.param("fabric", marks=pytest.mark.fabric),
]


def start_adapter(work: Path, ledger: HardhatNode | FabricNetwork | None, *extra: str) -> Served:
    """A server with its own organization key: on the embedded chain (``None``); on Hardhat, on contracts freshly
    deployed by its own operator; on Fabric, on a chaincode of its own on the devnet's channel."""
    work.mkdir(parents=True, exist_ok=True)
    org = SigningKey.generate()
    save_key(work / "org.key", org)
    args = ["--key", str(work / "org.key"), *extra]
    ledger_id, backend = EMBEDDED_PROFILE.ledger_id, "embedded"
    if isinstance(ledger, HardhatNode):
        ledger_id, backend = deploy_profile(ledger.url, org, work / "ledger.toml").ledger_id, "hardhat"
        args += ["--ledger", str(work / "ledger.toml")]
    elif isinstance(ledger, FabricNetwork):
        settings = ledger.deploy_chaincode(f"ad-{uuid.uuid4().hex[:8]}", "User1")
        save_profile(work / "ledger.toml", LedgerProfile("fabric", ledger.ledger_id, settings))
        ledger_id, backend = ledger.ledger_id, "fabric"
        args += ["--ledger", str(work / "ledger.toml")]
    return Served(AdapterProcess(work, *args).start(), ledger_id, org, backend)


def ledger_of(request: pytest.FixtureRequest, backend: str) -> HardhatNode | FabricNetwork | None:
    """The session's Hardhat node or Fabric network for ``backend`` (``None``: the embedded chain)."""
    names = {"hardhat": "hardhat", "fabric": "fabric_network"}
    return request.getfixturevalue(names[backend]) if backend in names else None


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = start_adapter(tmp_path_factory.mktemp(f"adapter-{request.param}"), ledger_of(request, request.param))
    try:
        yield s
    finally:
        s.process.stop()


@pytest.fixture
async def api(served: Served) -> AsyncIterator[AdapterClient]:
    async with aiohttp.ClientSession() as session:
        yield AdapterClient(served.process.url, session, served.ledger_id, served.process.token)


#: The operation result's code of a finished operation sent again under a new Idempotency-Key (FP7016).
REPEATED = 7016


def receipt_of(result: dict[str, Any]) -> dict[str, Any]:
    assert result["isCompleted"] is True and "error" not in result, result
    receipt: dict[str, Any] = result["response"]
    return receipt


def error_of(result: dict[str, Any]) -> dict[str, Any]:
    assert result["isCompleted"] is True and "response" not in result, result
    error: dict[str, Any] = result["error"]
    assert isinstance(error["code"], int) and error["message"].strip()
    return error


async def funded(api: AdapterClient, quantity: int = 100) -> tuple[str, Investor, Investor]:
    asset = await api.create_asset()
    alice, bob = Investor.new(), Investor.new()
    receipt_of(await api.issue(asset, alice, quantity))
    return asset, alice, bob


# -- the server ----------------------------------------------------------------------------------------------------
async def test_health_and_document_name_every_operation_of_the_spec(api: AdapterClient) -> None:
    assert await api.get("/health") == (200, {"status": "ok"})
    status, document = await api.get("/openapi.json")
    assert status == 200
    served = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    assert served >= SPEC_OPERATIONS


# -- token lifecycle -----------------------------------------------------------------------------------------------
async def test_token_lifecycle_with_signed_receipts_built_from_the_ledger(api: AdapterClient, served: Served) -> None:
    asset = await api.create_asset()
    alice, bob = Investor.new(), Investor.new()
    issued = receipt_of(await api.issue(asset, alice, 100))
    assert issued["operationType"] == "issue" and issued["quantity"] == "100"
    assert issued["destination"] == api.account(alice.fin_id, asset)  # the asset exactly as it was given
    assert "source" not in issued  # left out, not null

    body = api.transfer_body(asset, alice, bob.fin_id, 30)
    moved = receipt_of(await api.run("/assets/transfer", body))
    assert moved["operationType"] == "transfer" and moved["quantity"] == "30"
    assert moved["source"] == body["source"] and moved["destination"] == body["destination"]
    assert await api.balance(asset, alice.fin_id) == {"current": 70, "available": 70, "held": 0}
    assert await api.balance(asset, bob.fin_id) == {"current": 30, "available": 30, "held": 0}
    status, old = await api.post("/assets/getBalance", {"owner": api.account(bob.fin_id, asset)}, key=None)
    assert (status, old) == (200, {"asset": api.asset(asset), "balance": "30"})

    # The proof: the organization's EIP-712 signature over a template naming this receipt.
    proof = moved["proof"]
    assert proof["type"] == "signatureProofPolicy"
    verify_signature(proof["signature"], served.org.fin_id)
    message = proof["signature"]["template"]["message"]
    assert message["id"] == moved["id"] and message["quantity"] == "30"
    assert message["source"]["finId"] == alice.fin_id and message["transactionDetails"]["transactionId"] == moved["id"]
    assert proof["signature"]["template"]["primaryType"] == "Receipt"  # FinP2P's published type, a router checks it

    status, again = await api.get(f"/assets/receipts/{moved['id']}")
    assert status == 200 and receipt_of(again) == moved
    status, _ = await api.get("/assets/receipts/0x" + "ab" * 32)
    assert status == 404


async def test_balance_as_of_a_time_and_a_block(api: AdapterClient, served: Served) -> None:
    """A balance at a past time or block, read from the chain's history; Fabric keeps none (its state database
    holds the current state only), so there it is a clear FP6022 and the current balance stays readable."""
    asset = await api.create_asset()
    alice, bob = Investor.new(), Investor.new()
    issued = receipt_of(await api.issue(asset, alice, 100))
    await asyncio.sleep(1.1)  # block times are whole seconds: the transfer's block is after the issue's second
    receipt_of(await api.run("/assets/transfer", api.transfer_body(asset, alice, bob.fin_id, 40)))

    async def as_of(marker: dict[str, Any]) -> tuple[int, Any]:
        body = {"account": {"type": "finId", "finId": alice.fin_id}, "asset": api.asset(asset), "marker": marker}
        return await api.post("/asset/balance", body, key=None)

    status, then = await as_of({"type": "timestamp", "timestamp": issued["timestamp"]})
    if served.backend == "fabric":
        assert status == 400 and then["code"] == "FP6022" and "current balance" in then["error"], then
        assert (await api.balance(asset, alice.fin_id))["available"] == 60
        return
    assert status == 200 and then["balanceInfo"]["available"] == "100", then
    assert (await api.balance(asset, alice.fin_id))["available"] == 60
    status, genesis = await as_of({"type": "transactionBlock", "blockNumber": 0, "transaction": "genesis"})
    assert status == 200 and genesis["balanceInfo"]["current"] == "0"
    status, error = await as_of({"type": "transactionBlock", "blockNumber": 2**40, "transaction": "future"})
    assert status == 400 and error["code"] == "FP6022"


# -- escrow --------------------------------------------------------------------------------------------------------
async def test_hold_then_release_and_the_second_release_fails(api: AdapterClient) -> None:
    asset, alice, bob = await funded(api)
    hold_id = uuid.uuid4().hex
    held = receipt_of(await api.run("/assets/hold", api.hold_body(asset, alice, bob.fin_id, 40, hold_id)))
    assert held["operationType"] == "hold" and held["transactionDetails"]["operationId"] == hold_id
    assert "destination" not in held  # the escrow is no destination, even with the hold naming its payee
    assert await api.balance(asset, alice.fin_id) == {"current": 100, "available": 60, "held": 40}
    release = {
        "operationId": hold_id,
        "source": api.account(alice.fin_id, asset),
        "destination": api.account(bob.fin_id, asset),
        "quantity": "40",
    }
    released = receipt_of(await api.run("/assets/release", release))
    assert released["operationType"] == "release" and released["destination"]["finId"] == bob.fin_id
    assert await api.balance(asset, alice.fin_id) == {"current": 60, "available": 60, "held": 0}
    assert await api.balance(asset, bob.fin_id) == {"current": 40, "available": 40, "held": 0}
    assert error_of(await api.run("/assets/release", release))["code"] == REPEATED  # a new key, a settled hold
    assert await api.balance(asset, bob.fin_id) == {"current": 40, "available": 40, "held": 0}


async def test_rollback_returns_held_units_and_redeem_takes_them_from_a_hold(api: AdapterClient) -> None:
    asset, alice, bob = await funded(api)
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    receipt_of(await api.run("/assets/hold", api.hold_body(asset, alice, bob.fin_id, 30, first)))
    rollback = {"operationId": first, "source": api.account(alice.fin_id, asset), "quantity": "30"}
    back = receipt_of(await api.run("/assets/rollback", rollback))
    assert back["operationType"] == "release"  # the spec's types have no rollback: a release back to the source,
    assert back["source"]["finId"] == alice.fin_id and "destination" not in back  # which names no destination
    assert await api.balance(asset, alice.fin_id) == {"current": 100, "available": 100, "held": 0}

    # A hold for a redemption (units back to their issuer), then the redeem that destroys them.
    hold = api.redemption_body(asset, alice, 25, operationId=second, expiry=0)
    receipt_of(await api.run("/assets/hold", hold))
    redeem = {**hold, "settlementRef": "redeem-1"}
    del redeem["expiry"]
    redeemed = receipt_of(await api.run("/assets/redeem", redeem))
    assert redeemed["operationType"] == "redeem" and "destination" not in redeemed
    assert await api.balance(asset, alice.fin_id) == {"current": 75, "available": 75, "held": 0}


async def test_get_balance_during_a_hold_is_the_spendable_balance(api: AdapterClient) -> None:
    """A router asks ``/assets/getBalance`` before it moves units: held units are not spendable, so they are not in
    it; ``/asset/balance`` shows them apart (``held``; ``current`` counts them, as the schema defines it)."""
    asset, alice, bob = await funded(api, 1000)
    receipt_of(await api.run("/assets/hold", api.hold_body(asset, alice, bob.fin_id, 500, uuid.uuid4().hex)))
    status, old = await api.post("/assets/getBalance", {"owner": api.account(alice.fin_id, asset)}, key=None)
    assert (status, old["balance"]) == (200, "500"), old
    assert await api.balance(asset, alice.fin_id) == {"current": 1000, "available": 500, "held": 500}


async def test_unknown_hold_and_wrong_source_are_refused(api: AdapterClient) -> None:
    asset, alice, bob = await funded(api)
    carol = Investor.new()
    unknown = {
        "operationId": uuid.uuid4().hex,
        "source": api.account(alice.fin_id, asset),
        "destination": api.account(bob.fin_id, asset),
        "quantity": "10",
    }
    error_of(await api.run("/assets/release", unknown))
    hold_id = uuid.uuid4().hex
    receipt_of(await api.run("/assets/hold", api.hold_body(asset, alice, bob.fin_id, 10, hold_id)))
    wrong_source = {**unknown, "operationId": hold_id, "source": api.account(carol.fin_id, asset)}
    error_of(await api.run("/assets/release", wrong_source))
    assert await api.balance(asset, alice.fin_id) == {"current": 100, "available": 90, "held": 10}
    assert await api.balance(asset, bob.fin_id) == {"current": 0, "available": 0, "held": 0}


async def test_a_hold_id_spent_on_another_hold_is_refused_not_answered_with_its_receipt(api: AdapterClient) -> None:
    asset, alice, bob = await funded(api)
    hold_id = uuid.uuid4().hex
    first = receipt_of(await api.run("/assets/hold", api.hold_body(asset, alice, bob.fin_id, 10, hold_id)))
    # The same hold asked again (a new key, a new signature), and another hold under its id: both are repeats.
    for quantity in (10, 20):
        again = error_of(await api.run("/assets/hold", api.hold_body(asset, alice, bob.fin_id, quantity, hold_id)))
        assert again["code"] == REPEATED and first["id"] in again["message"], again
    assert await api.balance(asset, alice.fin_id) == {"current": 100, "available": 90, "held": 10}


async def test_insufficient_balance_for_transfer_hold_and_redeem_changes_nothing(api: AdapterClient) -> None:
    asset, alice, bob = await funded(api, 10)
    before = await api.balance(asset, alice.fin_id)
    assert error_of(await api.run("/assets/transfer", api.transfer_body(asset, alice, bob.fin_id, 11)))["code"] == 6001
    hold = api.hold_body(asset, alice, bob.fin_id, 11, uuid.uuid4().hex)
    assert error_of(await api.run("/assets/hold", hold))["code"] == 6001
    redeem = api.redemption_body(asset, alice, 11, settlementRef="r")
    assert error_of(await api.run("/assets/redeem", redeem))["code"] == 6001
    assert await api.balance(asset, alice.fin_id) == before
    assert await api.balance(asset, bob.fin_id) == {"current": 0, "available": 0, "held": 0}


# -- signatures ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hash_func", ["keccak-256", "sha3-256", "blake2b"])
async def test_hash_list_signatures_move_units(api: AdapterClient, hash_func: str) -> None:
    asset, alice, bob = await funded(api)
    body = api.transfer_body(asset, alice, bob.fin_id, 7)
    body["signature"] = alice.hash_list(asset, 7, bob.fin_id, body["nonce"], hash_func)
    receipt_of(await api.run("/assets/transfer", body))
    assert (await api.balance(asset, bob.fin_id))["available"] == 7


async def test_bad_missing_and_misbound_signatures_are_the_spec_signature_error(api: AdapterClient) -> None:
    asset, alice, bob = await funded(api)
    wrong_key = api.transfer_body(asset, alice, bob.fin_id, 5)
    wrong_key["signature"] = bob.eip712(asset, 5, bob.fin_id, wrong_key["nonce"])
    wrong_key_hash_list = api.transfer_body(asset, alice, bob.fin_id, 5, "hashList")
    wrong_key_hash_list["signature"] = bob.hash_list(asset, 5, bob.fin_id, wrong_key_hash_list["nonce"])
    missing = api.transfer_body(asset, alice, bob.fin_id, 5)
    del missing["signature"]
    other_quantity = api.transfer_body(asset, alice, bob.fin_id, 5)
    other_quantity["signature"] = alice.eip712(asset, 50, bob.fin_id, other_quantity["nonce"])
    tampered = api.transfer_body(asset, alice, bob.fin_id, 5)
    tampered["signature"]["template"]["message"]["asset"]["amount"] = "6"
    for body in (wrong_key, wrong_key_hash_list, missing, other_quantity, tampered):
        assert error_of(await api.run("/assets/transfer", body))["code"] == 4
    issue_by_other = {
        "nonce": nonce(),
        "destination": api.account(bob.fin_id, asset),
        "quantity": "5",
        "settlementRef": "s",
        "signature": alice.eip712(asset, 5, bob.fin_id, nonce()),
    }
    assert error_of(await api.run("/assets/issue", issue_by_other))["code"] == 4
    assert await api.balance(asset, alice.fin_id) == {"current": 100, "available": 100, "held": 0}
    assert await api.balance(asset, bob.fin_id) == {"current": 0, "available": 0, "held": 0}


async def test_a_signed_template_authorises_one_operation(api: AdapterClient) -> None:
    asset, alice, bob = await funded(api)
    body = api.transfer_body(asset, alice, bob.fin_id, 5)
    receipt_of(await api.run("/assets/transfer", body))
    assert error_of(await api.run("/assets/transfer", body))["code"] == REPEATED  # the same signature, a new key
    other = {**body, "destination": api.account(Investor.new().fin_id, asset)}
    assert error_of(await api.run("/assets/transfer", other))["code"] == 4  # its signature, for something else
    assert (await api.balance(asset, bob.fin_id))["available"] == 5


# -- idempotency and asynchronous results ----------------------------------------------------------------------
async def test_the_same_idempotency_key_returns_the_first_result_and_never_runs_twice(api: AdapterClient) -> None:
    asset, alice, bob = await funded(api)
    body = api.transfer_body(asset, alice, bob.fin_id, 10)
    key = uuid.uuid4().hex
    answers = await asyncio.gather(*(api.post("/assets/transfer", body, key) for _ in range(4)))
    assert {status for status, _ in answers} == {200}
    assert len({answer["cid"] for _, answer in answers}) == 1
    first = await api.result(answers[0][1])
    status, again = await api.post("/assets/transfer", body, key)
    assert status == 200 and again == first
    assert (await api.balance(asset, bob.fin_id))["available"] == 10
    status, conflict = await api.post("/assets/transfer", {**body, "quantity": "11"}, key)
    assert status == 409 and conflict["code"] == "FP3011"
    status, missing = await api.post("/assets/transfer", body, key=None)
    assert status == 400 and "Idempotency-Key" in missing["error"]


async def test_operations_answer_with_a_cid_and_complete_by_polling(api: AdapterClient) -> None:
    asset, alice, bob = await funded(api)
    status, accepted = await api.post("/assets/transfer", api.transfer_body(asset, alice, bob.fin_id, 3))
    assert status == 200 and accepted["isCompleted"] is False and accepted["cid"]
    assert accepted["operationMetadata"]["operationResponseStrategy"]["type"] == "poll"
    status, polled = await api.get(f"/operations/status/{accepted['cid']}?wait=30")
    assert status == 200 and polled["type"] == "receipt"
    assert receipt_of(polled["operation"])["quantity"] == "3"
    status, missing = await api.get("/operations/status/no-such-cid")
    assert status == 404 and missing["code"] == "FP0001"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_results_are_sent_to_the_router_callback(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    received: dict[str, Any] = {}

    async def callback(req: web.Request) -> web.Response:
        received[req.match_info["cid"]] = await req.json()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/operations/callback/{cid}", callback)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    ledger = ledger_of(request, backend)
    s = await asyncio.to_thread(start_adapter, tmp_path / "a", ledger, "--callback", f"http://127.0.0.1:{port}")
    try:
        async with aiohttp.ClientSession() as session:
            api = AdapterClient(s.process.url, session, s.ledger_id, s.process.token)
            asset, alice, bob = await funded(api)
            status, accepted = await api.post("/assets/transfer", api.transfer_body(asset, alice, bob.fin_id, 4))
            assert status == 200 and accepted["isCompleted"] is False
            assert accepted["operationMetadata"]["operationResponseStrategy"]["type"] == "callback"
            await wait_for(lambda: accepted["cid"] in received)
            sent = received[accepted["cid"]]
            assert sent["type"] == "receipt" and receipt_of(sent["operation"])["quantity"] == "4"
            assert (await api.get(f"/operations/status/{accepted['cid']}"))[1] == sent
    finally:
        s.process.stop()
        await runner.cleanup()


# -- account mapping -----------------------------------------------------------------------------------------------
async def test_mapping_api_validates_and_is_used_for_ledger_accounts(api: AdapterClient, served: Served) -> None:
    """A FinID's own account is what the ledger derives from it: its Ethereum address (checksummed), or on Fabric
    the FinID itself (the chaincode keeps units under it). The declared field is checked; anything else is refused,
    or moves nothing."""
    status, fields = await api.get("/mapping/fields")
    assert status == 200 and [f["field"] for f in fields] == ["ledgerAccountId"]
    fabric = served.backend == "fabric"
    while True:  # an owner whose address has letters of both cases to spare: one flipped is a checksum typo
        alice = Investor.new()
        derived = alice.fin_id if fabric else _checksummed(eth_address(alice.fin_id))
        if fabric or (sum(c.isupper() for c in derived[2:]) >= 2 and sum(c.islower() for c in derived[2:]) >= 2):
            break
    misspelt = ("03" if derived.startswith("02") else "02") + "00" * 32 if fabric else _typo(derived)
    status, mapped = await api.post("/mapping/owners", {"finId": alice.fin_id, "accountMappings": {}}, key=None)
    assert status == 400
    body = {"finId": alice.fin_id, "accountMappings": {"ledgerAccountId": derived.lower()}}
    status, mapped = await api.post("/mapping/owners", body, key=None)
    assert status == 200, mapped
    assert mapped["accountMappings"] == {"ledgerAccountId": derived} and mapped["status"] == "active"
    assert mapped["credentialStatus"] == "existing"
    for bad in (
        {"finId": alice.fin_id, "accountMappings": {"ledgerAccountId": "0x1234"}},
        {"finId": alice.fin_id, "accountMappings": {"ledgerAccountId": misspelt}},
        {"finId": alice.fin_id, "accountMappings": {"custodyAccountId": ""}},
        {"finId": "xyz", "accountMappings": {"ledgerAccountId": derived}},
    ):
        status, error = await api.post("/mapping/owners", bad, key=None)
        assert status == 400 and error["error"], (bad, error)
    status, error = await api.post("/mapping/owners", {"finId": "0xz1", "accountMappings": {"a": "b"}}, key=None)
    assert status == 400 and "hexadecimal" in error["error"]
    status, listed = await api.get(f"/mapping/owners?finIds={alice.fin_id}")
    assert status == 200 and listed == [
        {"finId": alice.fin_id, "status": "active", "accountMappings": mapped["accountMappings"]}
    ]

    asset = await api.create_asset()
    stranger = Investor.new().fin_id if fabric else _checksummed("0x" + "12" * 20)
    destination = {**api.account(alice.fin_id, asset), "ledgerAccount": {"type": "walletAccount", "address": stranger}}
    n = nonce()
    issue = {
        "nonce": n,
        "destination": destination,
        "quantity": "5",
        "settlementRef": "s",
        "signature": alice.buys(ISSUER, asset, 5, n),
    }
    assert error_of(await api.run("/assets/issue", issue))["code"] == 7010
    issue["destination"] = {**destination, "ledgerAccount": {"type": "walletAccount", "address": derived}}
    assert receipt_of(await api.run("/assets/issue", issue))["destination"] == issue["destination"]


async def test_mapping_takes_owners_as_routers_register_them(api: AdapterClient) -> None:
    """Routers' owners: short hex finIds, account fields of their own (kept and returned as given), and
    ``status: inactive`` that removes the mapping from every later query. A finId that is no key gets no derived
    account (nothing is provisioned for it) and moves nothing."""
    short = "aabb01"
    body = {"finId": short, "accountMappings": {"custodyAccountId": "cust-42"}}
    status, mapped = await api.post("/mapping/owners", body, key=None)
    assert status == 200 and mapped["accountMappings"] == {"custodyAccountId": "cust-42"}, mapped
    assert mapped["credentialStatus"] == "skipped", "no account is derived from a finId that is no key"
    status, mapped = await api.post("/mapping/owners", {**body, "finId": "AABB02"}, key=None)
    assert status == 200 and mapped["finId"] == "aabb02"
    status, listed = await api.get("/mapping/owners?finIds=aabb01,aabb02")
    assert status == 200 and [o["finId"] for o in listed] == ["aabb01", "aabb02"]
    assert listed[0]["accountMappings"] == {"custodyAccountId": "cust-42"}
    status, gone = await api.post("/mapping/owners", {**body, "status": "inactive"}, key=None)
    assert status == 200 and gone["status"] == "inactive"
    status, listed = await api.get("/mapping/owners?finIds=aabb01,aabb02")
    assert [o["finId"] for o in listed] == ["aabb02"], "an inactive owner is in no later answer"
    status, listed = await api.get("/mapping/owners")
    assert "aabb01" not in [o["finId"] for o in listed]


def _checksummed(address: str) -> str:
    from web3 import Web3

    return str(Web3.to_checksum_address(address))


def _typo(address: str) -> str:
    """``address`` with its first letter's case flipped: the same address, a failing EIP-55 checksum. (Changing a
    digit instead would make another address, whose checksum this one's letters may happen to pass.)"""
    at = next(i for i, c in enumerate(address) if i > 1 and c.isalpha())
    return address[:at] + address[at].swapcase() + address[at + 1 :]


# -- payments and execution plans ------------------------------------------------------------------------------------
async def test_deposit_instruction_and_payouts(api: AdapterClient) -> None:
    asset, alice, bob = await funded(api)
    account = {"finId": bob.fin_id, "account": {"type": "finId", "finId": bob.fin_id}}
    deposit = {"destination": account, "owner": account, "asset": {"type": "finp2p", "resourceId": asset}}
    status, instruction = await api.post("/payments/depositInstruction", deposit)
    assert status == 200 and instruction["isCompleted"] is True
    assert instruction["response"]["account"] == account and bob.fin_id in instruction["response"]["description"]
    status, custom = await api.post("/payments/depositInstruction", {**deposit, "asset": {"type": "custom"}})
    assert status == 200 and custom["error"]["code"] == 7010
    nobody = "02" + "00" * 32  # well formed, but no point on the curve: no account, unless one is mapped
    nowhere = {"finId": nobody, "account": {"type": "finId", "finId": nobody}}
    status, unknown = await api.post("/payments/depositInstruction", {**deposit, "destination": nowhere})
    assert status == 200 and unknown["error"]["code"] == 7010 and "/mapping/owners" in unknown["error"]["message"]

    alice_account = {"finId": alice.fin_id, "account": {"type": "finId", "finId": alice.fin_id}}
    payout_asset = {"id": asset, "ledgerIdentifier": api.asset(asset)["ledgerIdentifier"]}
    n = nonce()
    to_bob = {
        "source": alice_account,
        "destination": account,
        "quantity": "15",
        "asset": payout_asset,
        "nonce": n,
        "signature": alice.eip712(asset, 15, bob.fin_id, n),
    }
    assert receipt_of(await api.run("/payments/payout", to_bob))["operationType"] == "transfer"
    n = nonce()
    redemption = alice.eip712(asset, 5, ISSUER, n, kind="Redemption")
    out = {**to_bob, "nonce": n, "quantity": "5", "signature": redemption}
    del out["destination"]
    assert receipt_of(await api.run("/payments/payout", out))["operationType"] == "redeem"
    assert await api.balance(asset, alice.fin_id) == {"current": 80, "available": 80, "held": 0}
    assert (await api.balance(asset, bob.fin_id))["available"] == 15


async def test_execution_plans_are_approved_and_proposals_answered(api: AdapterClient) -> None:
    plan = uuid.uuid4().hex
    status, approved = await api.post("/plan/approve", {"executionPlan": {"id": plan}}, key=None)
    assert status == 200 and approved["isCompleted"] and approved["approval"] == {"status": "approved"}
    status, asked = await api.get(f"/operations/status/{approved['cid']}")
    assert (status, asked) == (200, {"type": "approval", "operation": approved})
    proposal = {"executionPlan": {"id": plan, "proposal": {"proposalType": "cancel"}}}
    status, answer = await api.post("/plan/proposal", proposal, key=None)
    assert status == 200 and answer["approval"]["status"] == "approved"
    unknown = {"executionPlan": {"id": "never-seen", "proposal": {"proposalType": "reset", "proposedSequence": 2}}}
    status, answer = await api.post("/plan/proposal", unknown, key=None)
    assert status == 200 and answer["approval"]["status"] == "rejected"
    assert answer["approval"]["failure"]["failureType"] == "validationFailure"
    status, _ = await api.post("/plan/proposal/status", {"status": "approved", "request": proposal}, key=None)
    assert status == 204


# -- bad input -------------------------------------------------------------------------------------------------------
async def test_bad_input_gets_a_clear_answer_and_the_server_keeps_serving(api: AdapterClient) -> None:
    asset, alice, bob = await funded(api)
    async with api.session.post(
        api.url + "/assets/transfer", data=b"{not json", headers={**api.auth, "Idempotency-Key": "k1"}
    ) as r:
        assert r.status == 400 and "JSON" in (await r.json())["error"]
    async with api.session.post(
        api.url + "/assets/transfer", data=b"x" * (300 * 1024), headers={**api.auth, "Idempotency-Key": "k2"}
    ) as r:
        assert r.status == 413
    body = api.transfer_body(asset, alice, bob.fin_id, 5)
    status, error = await api.post("/assets/transfer", {**body, "quantity": "-5"})
    assert status == 400 and "quantity" in error["error"]
    status, error = await api.post("/assets/transfer", {k: v for k, v in body.items() if k != "source"})
    assert status == 400 and "source" in error["error"]
    fractional = api.transfer_body(asset, alice, bob.fin_id, 5)
    fractional["quantity"] = "1.5"
    assert error_of(await api.run("/assets/transfer", fractional))["code"] == 6012
    elsewhere = api.transfer_body(asset, alice, bob.fin_id, 5)
    elsewhere["source"]["asset"]["ledgerIdentifier"]["network"] = "eip155:1"
    assert error_of(await api.run("/assets/transfer", elsewhere))["code"] == 7006
    assert await api.get("/health") == (200, {"status": "ok"})


def test_the_served_document_matches_what_is_served_and_nothing_errs(served: Served) -> None:
    """schemathesis drives every documented route with generated input, on the embedded chain and on Fabric: no
    server error, and every status and body as the served document says. (On Hardhat the document and the plugin
    are the embedded chain's; 30 s of the suite spared.)"""
    if served.backend == "hardhat":
        pytest.skip("the same document and plugin as on the embedded chain")
    url = served.process.url
    run_schemathesis(f"{url}/openapi.json", url, f"Authorization: Bearer {served.process.token}")


# -- as FinP2P routers really call it -----------------------------------------------------------------------------
async def test_an_issue_comes_with_an_empty_signature_or_a_buyers_primary_sale(api: AdapterClient) -> None:
    """An issue moves no one's existing units: the asset manager's own issue comes with ``signature: {}``; a
    PrimarySale is verified as its buyer's, who need not be the destination (reference routers name the issuer),
    and must sell exactly these units."""
    asset = await api.create_asset()
    alice, buyer = Investor.new(), Investor.new()

    def issue(quantity: int, signature: dict[str, Any], the_nonce: str) -> dict[str, Any]:
        return {
            "nonce": the_nonce,
            "destination": api.account(alice.fin_id, asset),
            "quantity": str(quantity),
            "settlementRef": "",
            "signature": signature,
        }

    assert receipt_of(await api.run("/assets/issue", issue(10, {}, nonce())))["quantity"] == "10"
    n = nonce()
    sale = buyer.buys(ISSUER, asset, 5, n)
    assert receipt_of(await api.run("/assets/issue", issue(5, sale, n)))["quantity"] == "5"
    other = buyer.buys(ISSUER, asset, 5, n)  # the buyer's template for 5, sent for 6
    assert error_of(await api.run("/assets/issue", issue(6, other, n)))["code"] == 4
    forged = json.loads(json.dumps(sale))
    forged["template"]["message"]["asset"]["amount"] = "7"  # no longer what the buyer signed
    assert error_of(await api.run("/assets/issue", issue(7, forged, n)))["code"] == 4
    assert (await api.balance(asset, alice.fin_id))["available"] == 15
    unknown = {**issue(1, {}, nonce()), "destination": api.account(alice.fin_id, f"bank-z:102:{uuid.uuid4()}")}
    assert error_of(await api.run("/assets/issue", unknown))["code"] == 6008, "an operation result, not a 4xx"


async def test_empty_settlement_refs_and_plan_ids_are_absent_not_invalid(api: AdapterClient) -> None:
    """Routers send ``settlementRef: ""`` and an execution context with an empty plan id when they have none."""
    asset, alice, bob = await funded(api)
    body = api.transfer_body(asset, alice, bob.fin_id, 3)
    body |= {"settlementRef": "", "executionContext": {"executionPlanId": "", "instructionSequenceNumber": 0}}
    moved = receipt_of(await api.run("/assets/transfer", body))
    assert moved["quantity"] == "3" and not moved.get("tradeDetails", {}).get("executionContext"), moved
    with_plan = api.transfer_body(asset, alice, bob.fin_id, 2)
    with_plan["executionContext"] = {"executionPlanId": "plan-1", "instructionSequenceNumber": 2}
    moved = receipt_of(await api.run("/assets/transfer", with_plan))
    assert moved["tradeDetails"]["executionContext"]["executionPlanId"] == "plan-1"


# -- payment assets, repeats, the network a router is configured for ----------------------------------------------
def payment_asset(api: AdapterClient, code: str) -> dict[str, Any]:
    """A payment asset as routers name it: its code is its id, bound to an ERC20 token of that code."""
    identifier = {"assetIdentifierType": "CAIP-19", "network": api.ledger_id, "tokenId": code, "standard": "ERC20"}
    return {"resourceId": code, "ledgerIdentifier": identifier}


def pays(api: AdapterClient, buyer: Investor, seller: str, code: str, amount: int, **fields: Any) -> dict[str, Any]:
    """``buyer`` pays ``amount`` of ``code`` to ``seller`` for a FinP2P asset (a Buying template's settlement leg),
    as a hold's body (with ``operationId`` and ``expiry`` in ``fields``) or a transfer's."""
    n = nonce()
    settlement = {"assetId": code, "assetType": "fiat", "amount": str(amount)}
    message = router.message(
        "Buying", n, giver=seller, receiver=buyer.fin_id, asset_id="bank-x:102:bond", quantity=1, settlement=settlement
    )
    account = {"finId": buyer.fin_id, "asset": payment_asset(api, code)}
    return {
        "nonce": n,
        "source": account,
        "destination": {"finId": seller, "asset": payment_asset(api, code)},
        "quantity": str(amount),
        "signature": router.sign(buyer.key, "Buying", message),
        **fields,
    }


async def test_a_fiat_escrow_flow_as_routers_run_it(api: AdapterClient) -> None:
    """Routers name payment assets by code (``USD``) and hold, release and roll them back; a settled hold released
    or rolled back again is refused the same way; receipts type the asset (fiat) and name no escrow destination."""
    usd = payment_asset(api, "USD")
    created = await api.run(
        "/assets/create", {"asset": {"resourceId": "USD"}, "ledgerAssetBinding": usd["ledgerIdentifier"]}
    )
    assert created["response"]["ledgerAssetInfo"]["ledgerIdentifier"]["tokenId"] == "USD", created
    buyer, seller = Investor.new(), Investor.new()
    issue = {
        "nonce": nonce(),
        "destination": {"finId": buyer.fin_id, "asset": usd},
        "quantity": "1000",
        "settlementRef": "",
        "signature": {},
    }
    issued = receipt_of(await api.run("/assets/issue", issue))
    assert issued["proof"]["signature"]["template"]["message"]["asset"] == {"assetId": "USD", "assetType": "fiat"}

    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    held = receipt_of(
        await api.run("/assets/hold", pays(api, buyer, seller.fin_id, "USD", 500, operationId=first, expiry=0))
    )
    assert held["operationType"] == "hold" and "destination" not in held
    assert held["proof"]["signature"]["template"]["message"]["asset"]["assetType"] == "fiat"
    status, spendable = await api.post("/assets/getBalance", {"owner": {"finId": buyer.fin_id, "asset": usd}}, key=None)
    assert (status, spendable["balance"]) == (200, "500")
    release = {
        "operationId": first,
        "source": {"finId": buyer.fin_id, "asset": usd},
        "destination": {"finId": seller.fin_id, "asset": usd},
        "quantity": "300",
    }
    released = receipt_of(await api.run("/assets/release", release))  # part of it: the rest goes back to the buyer
    assert released["operationType"] == "release" and released["quantity"] == "300"
    assert await api.balance("USD", buyer.fin_id) == {"current": 700, "available": 700, "held": 0}
    assert await api.balance("USD", seller.fin_id) == {"current": 300, "available": 300, "held": 0}

    receipt_of(await api.run("/assets/hold", pays(api, buyer, seller.fin_id, "USD", 200, operationId=second, expiry=0)))
    rollback = {"operationId": second, "source": {"finId": buyer.fin_id, "asset": usd}, "quantity": "200"}
    back = receipt_of(await api.run("/assets/rollback", rollback))
    assert back["operationType"] == "release" and "destination" not in back
    refusals = [
        error_of(await api.run("/assets/release", release)),  # released already
        error_of(await api.run("/assets/rollback", {**rollback, "operationId": first, "quantity": "500"})),
        error_of(await api.run("/assets/rollback", rollback)),  # rolled back already
        error_of(await api.run("/assets/release", {**release, "operationId": second, "quantity": "200"})),
    ]
    assert {r["code"] for r in refusals} == {REPEATED}, refusals
    assert all("settled already" in r["message"] for r in refusals), refusals
    assert await api.balance("USD", buyer.fin_id) == {"current": 700, "available": 700, "held": 0}
    assert await api.balance("USD", seller.fin_id) == {"current": 300, "available": 300, "held": 0}


async def test_every_operation_repeated_under_a_new_key_is_the_same_business_error(api: AdapterClient) -> None:
    """One rule: a finished operation is answered with its receipt under its own Idempotency-Key only; under a new
    key it is FP7016 in the operation result, whatever the operation."""
    asset = await api.create_asset()
    alice, bob = Investor.new(), Investor.new()
    issue = {
        "nonce": nonce(),
        "destination": api.account(alice.fin_id, asset),
        "quantity": "100",
        "settlementRef": "",
        "signature": {},
    }
    key = uuid.uuid4().hex
    first = receipt_of(await api.run("/assets/issue", issue, key))
    assert receipt_of(await api.run("/assets/issue", issue, key)) == first  # its own key: its receipt
    hold_id, redeem_hold = uuid.uuid4().hex, uuid.uuid4().hex
    for_redeem = api.redemption_body(asset, alice, 5, operationId=redeem_hold, expiry=0)
    redeem_from_hold = {k: v for k, v in for_redeem.items() if k != "expiry"} | {"settlementRef": ""}
    n = nonce()
    payout = {
        "source": {"finId": alice.fin_id, "account": {"type": "finId", "finId": alice.fin_id}},
        "destination": {"finId": bob.fin_id, "account": {"type": "finId", "finId": bob.fin_id}},
        "quantity": "5",
        "asset": {"id": asset, "ledgerIdentifier": api.asset(asset)["ledgerIdentifier"]},
        "nonce": n,
        "signature": alice.eip712(asset, 5, bob.fin_id, n),
    }
    steps = [
        ("/assets/issue", issue),
        ("/assets/transfer", api.transfer_body(asset, alice, bob.fin_id, 10)),
        ("/assets/hold", api.hold_body(asset, alice, bob.fin_id, 10, hold_id)),
        (
            "/assets/release",
            {
                "operationId": hold_id,
                "source": api.account(alice.fin_id, asset),
                "destination": api.account(bob.fin_id, asset),
                "quantity": "10",
            },
        ),
        ("/assets/redeem", api.redemption_body(asset, alice, 5, settlementRef="")),
        ("/assets/hold", for_redeem),
        ("/assets/redeem", redeem_from_hold),
        ("/payments/payout", payout),
    ]
    for path, body in steps[1:]:
        receipt_of(await api.run(path, body))
    for path, body in steps:
        again = error_of(await api.run(path, body))
        assert again["code"] == REPEATED and "FP7016" in again["message"], (path, again)
    assert await api.balance(asset, alice.fin_id) == {"current": 65, "available": 65, "held": 0}
    assert await api.balance(asset, bob.fin_id) == {"current": 25, "available": 25, "held": 0}


async def test_business_failures_are_operation_results_on_every_operation_route(api: AdapterClient) -> None:
    """Where a router expects an operation, a business failure is HTTP 200 with the error in the result; 400 is
    for a body that does not match the schema."""
    asset, alice, bob = await funded(api)
    unknown = f"bank-z:102:{uuid.uuid4()}"
    assert error_of(await api.run("/assets/create", {"asset": {"resourceId": asset}}))["code"] == 6009
    hold = api.hold_body(unknown, alice, bob.fin_id, 1, uuid.uuid4().hex)
    payout = {
        "source": {"finId": alice.fin_id, "account": {"type": "finId", "finId": alice.fin_id}},
        "quantity": "1",
        "asset": {"id": unknown, "ledgerIdentifier": api.asset(unknown)["ledgerIdentifier"]},
        "nonce": (n := nonce()),
        "signature": alice.eip712(unknown, 1, ISSUER, n, kind="Redemption"),
    }
    for path, body in [
        ("/assets/transfer", api.transfer_body(unknown, alice, bob.fin_id, 1)),
        ("/assets/hold", hold),
        ("/assets/redeem", api.redemption_body(unknown, alice, 1, settlementRef="")),
        ("/payments/payout", payout),
    ]:
        assert error_of(await api.run(path, body))["code"] == 6008, path
    status, bad = await api.post("/assets/transfer", {"nonce": nonce()})
    assert status == 400 and bad["code"] == "FP7010", bad


@pytest.mark.parametrize("backend", BACKENDS[:2])
async def test_a_chain_presenting_the_id_a_router_is_configured_for(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A test router assumes chain id 1: the embedded chain and a Hardhat node present it when their profile (or
    ``devnet/hardhat up --chain-id 1``) says so; a binding to a network the adapter does not serve stays refused."""
    profile = tmp_path / "chain-1.toml"
    node = HardhatNode(tmp_path / "hardhat", free_port(), chain_id=1)
    org = SigningKey.generate()
    save_key(tmp_path / "org.key", org)
    process = AdapterProcess(tmp_path / "adapter", "--key", str(tmp_path / "org.key"), "--ledger", str(profile))
    try:  # whatever fails, the node and the server are stopped by their PIDs
        if backend == "hardhat":
            await asyncio.to_thread(node.start)
            await asyncio.to_thread(deploy_profile, node.url, org, profile)
        else:
            save_profile(profile, LedgerProfile("ethereum", "eip155:1", {"backend": "embedded", "chain_id": 1}))
        await asyncio.to_thread(process.start)
        async with aiohttp.ClientSession() as session:
            api = AdapterClient(process.url, session, "eip155:1", process.token)
            usd = payment_asset(api, "USD")
            assert usd["ledgerIdentifier"]["network"] == "eip155:1"
            bound = await api.run(
                "/assets/create", {"asset": {"resourceId": "USD"}, "ledgerAssetBinding": usd["ledgerIdentifier"]}
            )
            assert bound["response"]["ledgerAssetInfo"]["ledgerIdentifier"]["network"] == "eip155:1", bound
            elsewhere = {**usd["ledgerIdentifier"], "network": "eip155:5"}
            refused = await api.run("/assets/create", {"asset": {"resourceId": "EUR"}, "ledgerAssetBinding": elsewhere})
            assert "eip155:5" in error_of(refused)["message"]
            alice, bob = Investor.new(), Investor.new()
            issue = {
                "nonce": nonce(),
                "destination": {"finId": alice.fin_id, "asset": usd},
                "quantity": "50",
                "settlementRef": "",
                "signature": {},
            }
            receipt_of(await api.run("/assets/issue", issue))
            moved = receipt_of(
                await api.run("/assets/transfer", pays(api, alice, bob.fin_id, "USD", 20, settlementRef=""))
            )
            assert moved["destination"]["finId"] == bob.fin_id
            assert await api.balance("USD", bob.fin_id) == {"current": 20, "available": 20, "held": 0}
    finally:
        process.stop()
        node.stop()


# -- crash and restart -----------------------------------------------------------------------------------------------
async def crash_during(
    s: Served, api: AdapterClient, site: Path, step: str, path: str, body: dict[str, Any], key: str
) -> None:
    """Restart ``s`` with the test plugin's fault at ``step``, send the operation, and see the server die of it
    (SIGKILL: no clean-up). ``s`` is left stopped, its data as the crash left it."""
    s.process.stop()
    crashing = AdapterProcess(s.process.work, *s.process.args, site=site, env={"FINP2P_TEST_CRASH_AT": step})
    crashing.start()
    api.url = crashing.url
    with contextlib.suppress(aiohttp.ClientError):  # the answer may die with the server
        await api.post(path, body, key)
    assert crashing.proc is not None
    await asyncio.to_thread(crashing.proc.wait, 30)
    assert crashing.proc.returncode == -signal.SIGKILL


LEDGER_BACKENDS = BACKENDS[1:]


@pytest.mark.parametrize("backend", LEDGER_BACKENDS)
@pytest.mark.parametrize("step", ["received", "executing", "on-ledger", "done"])
async def test_a_transfer_interrupted_at_any_step_completes_once_after_restart(
    backend: str, request: pytest.FixtureRequest, good_plugin_site: Path, tmp_path: Path, step: str
) -> None:
    """The server is killed (SIGKILL, by the test plugin) when a transfer reaches ``step``: before it is written,
    written but not yet on the ledger, on the ledger but not written, written but not yet polled. Started again on
    the same data, it resumes; the router retries with the same Idempotency-Key; the units move once."""
    s = await asyncio.to_thread(start_adapter, tmp_path / "a", ledger_of(request, backend))
    try:
        async with aiohttp.ClientSession() as session:
            api = AdapterClient(s.process.url, session, s.ledger_id, s.process.token)
            asset, alice, bob = await funded(api)
            key = uuid.uuid4().hex
            body = api.transfer_body(asset, alice, bob.fin_id, 9)
            await crash_during(s, api, good_plugin_site, step, "/assets/transfer", body, key)
            s.process.start()  # again, without the fault
            api.url = s.process.url
            status, accepted = await api.post("/assets/transfer", body, key)  # the router's retry
            assert status == 200, accepted
            done = await api.result(accepted)
            assert receipt_of(done)["quantity"] == "9"
            assert await api.balance(asset, bob.fin_id) == {"current": 9, "available": 9, "held": 0}
            assert await api.balance(asset, alice.fin_id) == {"current": 91, "available": 91, "held": 0}
    finally:
        s.process.stop()


@pytest.mark.parametrize("backend", LEDGER_BACKENDS)
async def test_a_transfer_on_the_ledger_before_a_crash_is_its_answer_whatever_the_rules_say_now(
    backend: str, request: pytest.FixtureRequest, good_plugin_site: Path, tmp_path: Path
) -> None:
    """Killed after the ledger executed a transfer, the server restarts under a compliance rule that now blocks the
    destination: the transfer happened, so its receipt is the answer (the rule stops new operations only)."""
    s = await asyncio.to_thread(start_adapter, tmp_path / "a", ledger_of(request, backend))
    try:
        async with aiohttp.ClientSession() as session:
            api = AdapterClient(s.process.url, session, s.ledger_id, s.process.token)
            asset, alice, bob = await funded(api)
            key = uuid.uuid4().hex
            body = api.transfer_body(asset, alice, bob.fin_id, 9)
            await crash_during(s, api, good_plugin_site, "on-ledger", "/assets/transfer", body, key)
            config = tmp_path / "rules.toml"
            config.write_text(f'[compliance]\nblocked_fin_ids = ["{bob.fin_id}"]\n')
            ruled = AdapterProcess(s.process.work, *s.process.args, env={"FINP2P_CONFIG": str(config)})
            s.process = ruled.start()
            api.url = ruled.url
            status, accepted = await api.post("/assets/transfer", body, key)
            assert status == 200, accepted
            assert receipt_of(await api.result(accepted))["quantity"] == "9"
            assert await api.balance(asset, bob.fin_id) == {"current": 9, "available": 9, "held": 0}
            again = api.transfer_body(asset, alice, bob.fin_id, 1)  # a new one is refused by the rule
            assert error_of(await api.run("/assets/transfer", again))["code"] == 1
    finally:
        s.process.stop()


# -- inside a node -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["embedded", pytest.param("fabric", marks=pytest.mark.fabric)])
async def test_a_node_serves_the_adapter_from_its_config(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A node's ``[adapter]`` serves the API over the node's own ledger (the embedded chain, or its chaincode on
    the Fabric channel), with the node's key and its compliance rules."""
    from finp2p.identity.local import LocalIdentity
    from finp2p.node import Node

    node_key = LocalIdentity(tmp_path / "data").key(create=True)  # as `finp2p org init` makes it
    blocked = Investor.new()  # on the node's [compliance] blocked list
    profile = EMBEDDED_PROFILE
    if backend == "fabric":
        network: FabricNetwork = request.getfixturevalue("fabric_network")
        settings = network.deploy_chaincode(f"nd-{uuid.uuid4().hex[:8]}", "User1")
        profile = LedgerProfile("fabric", network.ledger_id, settings)
    save_profile(tmp_path / "ledger.toml", profile)
    (tmp_path / "node.toml").write_text(
        '[node]\nname = "adapter-node"\ndata_dir = "data"\n\n[ledgers]\nprofiles = ["ledger.toml"]\n\n'
        '[adapter]\nport = 0\nbase_path = "/adapter"\ntoken_file = "adapter.token"\n\n'
        f'[compliance]\nblocked_fin_ids = ["{blocked.fin_id}"]\n'
    )
    write_private(tmp_path / "adapter.token", "node-adapter-token\n")
    node = Node.from_config(tmp_path / "node.toml")
    await node.start()
    try:
        assert node.describe()["adapter"].endswith("/adapter")
        async with aiohttp.ClientSession() as session:
            api = AdapterClient(node.adapter.url, session, profile.ledger_id, "node-adapter-token")
            assert await api.get("/health") == (200, {"status": "ok"})
            asset = await api.create_asset()
            alice = Investor.new()
            issued = receipt_of(await api.issue(asset, alice, 3))
            verify_signature(issued["proof"]["signature"], node_key.fin_id)  # signed with the node's own key
            refused = error_of(await api.run("/assets/transfer", api.transfer_body(asset, alice, blocked.fin_id, 1)))
            assert refused["code"] == 1  # the spec's regulation failure, with the rule's reason
            assert refused["regulationErrorDetails"][0]["regulationType"] == "blocked-party"
            assert blocked.fin_id in refused["regulationErrorDetails"][0]["details"]
            assert await api.balance(asset, alice.fin_id) == {"current": 3, "available": 3, "held": 0}
    finally:
        await node.close()


async def test_an_operation_written_but_not_answered_is_finished_at_start(tmp_path: Path) -> None:
    """A deposit instruction is answered at once; written but not answered when the server died, it is finished
    when the service starts again (as every pending operation is)."""
    from finp2p.adapter.service import AdapterService
    from finp2p.components import ComponentContext
    from finp2p.config import Settings
    from finp2p.ledger import LedgerProfile
    from finp2p.ledger_profiles import open_ledger
    from finp2p.plugins import PluginManager
    from finp2p.store import Store
    from finp2p.store.models import AdapterOperationRow

    store = Store(f"sqlite:///{tmp_path / 'adapter.db'}")
    await asyncio.to_thread(store.migrate)
    save_key(tmp_path / "operator.key", SigningKey.generate())
    settings = {**EMBEDDED_PROFILE.settings, "operator_key": str(tmp_path / "operator.key"), "chain": "resume"}
    profile = LedgerProfile(EMBEDDED_PROFILE.kind, EMBEDDED_PROFILE.ledger_id, settings)
    ledger = open_ledger(profile, ComponentContext(Settings(), tmp_path, PluginManager(), store))
    fin_id = Investor.new().fin_id
    account = {"finId": fin_id, "account": {"type": "finId", "finId": fin_id}}
    body = {"destination": account, "owner": account, "asset": {"type": "finp2p", "resourceId": "bank-x:102:a"}}
    row = AdapterOperationRow(
        cid="c1",
        idempotency_key="deposit:k1",
        kind="deposit",
        operation="deposit",
        request=json.dumps(body),
        request_hash="-",
        state="pending",
        created_ms=0,
        updated_ms=0,
    )
    await store.run(lambda s: s.add(row))
    service = AdapterService(ledger, store)
    try:
        assert await service.start() == 1
        status = await service.status("c1", wait_s=10)
        assert status is not None and status["type"] == "deposit"
        assert status["operation"]["isCompleted"] and status["operation"]["response"]["account"] == account
    finally:
        await service.close()
        await ledger.close()
        await asyncio.to_thread(store.close)
