"""Receipts and the auditor: FinP2P's published ``Receipt`` typed data, bundles, and ``finp2p receipt verify`` on a
served embedded chain and on a real Hardhat node, refusing each way a bundle can lie (a member that does not manage
the asset, a stranger's registry, an altered template, an endpoint nobody signed) and saying what it could not
check when a ledger does not answer."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from devnet.hardhat import HardhatNode
from finp2p.assets.asset_types import CURRENCY_CODES, asset_type_of
from finp2p.assets.receipts import (
    PUBLISHED_DOMAIN,
    TYPES,
    Bundle,
    LedgerPlace,
    Party,
    Receipt,
    ReceiptDomain,
    Record,
    check_proof,
    public_profile,
)
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import eip712, merkle
from finp2p.identity.canonical import canonical, keccak256
from finp2p.identity.credentials import Credential, chain_document
from finp2p.identity.keys import SigningKey
from finp2p.identity.revocation import Revoked, next_list
from finp2p.ledger import LedgerProfile, LedgerTransaction
from finp2p.ledger_profiles import save_profile
from finp2p_ethereum.chain import embedded_chain, rpc_chain
from finp2p_ethereum.consent import Operation, sign_consent
from finp2p_ethereum.deploy import deploy_contracts
from finp2p_ethereum.ledger import EthereumLedger, Serving
from tests.support.cli import run_cli
from tests.support.world import World, make_world

ROOT = Path(__file__).resolve().parent.parent
SRC = "034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa"
DST = "02466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f27"
ASSET = "org-a:102:bb4dfc13-fa75-4387-82eb-2efaeabad499"
PLAN = "org-a:106:2c7c4b0e-8a57-4a1e-9d7e-5b0f3b1c9a11"


def _account(fin_id: str, asset: str = ASSET) -> dict[str, Any]:
    identifier = {"assetIdentifierType": "CAIP-19", "network": "eip155:1", "tokenId": asset, "standard": "finp2p"}
    return {"finId": fin_id, "asset": {"resourceId": asset, "ledgerIdentifier": identifier}}


# Receipts whose published typed data was hashed with eth-account from Ownera's type definitions and mapping
# (FinP2P's skeleton adapter's receiptToEIP712Message); the digests are those vectors'. The skeleton types every
# asset "finp2p"; here a currency code is "fiat" (docs/receipts.md), so the two USD receipts were hashed again with
# eth-account with that one field changed.
VECTORS: list[tuple[Receipt, str]] = [
    (
        Receipt(
            "rcpt-transfer-0001",
            "transfer",
            ASSET,
            "10",
            0,
            None,
            _account(SRC),
            _account(DST),
            {"executionPlanId": PLAN, "instructionSequenceNumber": 2},
        ),
        "de25e903bd2c7bb4aec9da56a740fc8b44f2787684945872832b22ec05565e51",
    ),
    (
        Receipt(
            "rcpt-issue-0001",
            "issue",
            ASSET,
            "1000",
            0,
            None,
            None,
            _account(DST),
            {"executionPlanId": PLAN, "instructionSequenceNumber": 1},
        ),
        "2784de4871894e1a4e57ef2054f9500136384a329adfaa5549fb0948dcb8dcf3",
    ),
    (
        Receipt(
            "rcpt-redeem-0001",
            "redeem",
            ASSET,
            "5",
            0,
            f"{PLAN}:hold:1",
            _account(SRC),
            None,
            {"executionPlanId": PLAN, "instructionSequenceNumber": 4},
        ),
        "4f8304bac9dffea8ecf248c842e7d7cf8d3cdbdc5dd98ec9d9db41c7188dbf51",
    ),
    (
        Receipt(
            "rcpt-hold-0001",
            "hold",
            "USD",
            "100.50",
            0,
            f"{PLAN}:hold:1",
            _account(DST, "USD"),
            None,
            {"executionPlanId": PLAN, "instructionSequenceNumber": 1},
        ),
        "668be7a70c6a28acb469a8e05815d94ce153e5a0c926825bc07388b3d0fc399b",
    ),
    (
        Receipt(
            "rcpt-release-0001",
            "release",
            "USD",
            "100.50",
            0,
            f"{PLAN}:hold:1",
            _account(DST, "USD"),
            _account(SRC, "USD"),
            {"executionPlanId": PLAN, "instructionSequenceNumber": 3},
        ),
        "48bd5793ff76b0a1d08365435117e38663acc2db28eae5ad32387bc1c9a53c5e",
    ),
    (
        Receipt("rcpt-issue-0002", "issue", ASSET, "1", 0, None, None, _account(DST)),
        "40a06b8e76fb3aa06b38da6869eb97a274619359a7beabe6b6daee669b7b578b",
    ),
]


@pytest.mark.parametrize(("receipt", "digest"), VECTORS, ids=[r.id for r, _ in VECTORS])
def test_receipt_digests_are_finp2p_published_typed_data(receipt: Receipt, digest: str) -> None:
    assert receipt.digest().hex() == digest
    typed = eip712.wallet_json(PUBLISHED_DOMAIN.as_dict(), "Receipt", TYPES, receipt.message())
    signable = encode_typed_data(full_message=typed)
    assert keccak256(b"\x19" + signable.version + signable.header + signable.body).hex() == digest
    type_string = eip712.encode_type("Receipt", TYPES)
    assert type_string == (
        "Receipt(string id,string operationType,Source source,Destination destination,Asset asset,"
        "TradeDetails tradeDetails,TransactionDetails transactionDetails,string quantity)"
        "Asset(string assetId,string assetType)Destination(string accountType,string finId)"
        "ExecutionContext(string executionPlanId,string instructionSequenceNumber)"
        "Source(string accountType,string finId)TradeDetails(ExecutionContext executionContext)"
        "TransactionDetails(string operationId,string transactionId)"
    )


def test_a_receipt_follows_the_adapter_api_schema_and_its_proof_is_a_wallet_signature() -> None:
    import jsonschema_rs

    from finp2p.adapter import schemas

    key = SigningKey.generate()
    receipt, _ = VECTORS[0]
    domain = ReceiptDomain(31337, "0x" + "12" * 20)
    proof = receipt.prove(key, domain)
    data = receipt.to_adapter(proof)
    # The fields the API's receipt schema defines and no other, the required ones present, patterns respected.
    jsonschema_rs.Draft7Validator({**schemas.RECEIPT, "additionalProperties": False}).validate(data)
    assert set(data) == {
        "id",
        "quantity",
        "timestamp",
        "operationType",
        "source",
        "destination",
        "tradeDetails",
        "transactionDetails",
        "proof",
    }
    assert data["transactionDetails"] == {"transactionId": receipt.id}
    template = proof["signature"]["template"]
    assert template["domain"] == {
        "name": "FinP2P",
        "version": "1",
        "chainId": 31337,
        "verifyingContract": "0x" + "12" * 20,
    }
    signer = Account.recover_message(
        encode_typed_data(full_message=eip712.wallet_json(template["domain"], "Receipt", TYPES, template["message"])),
        signature=bytes.fromhex(proof["signature"]["signature"][2:]),
    )
    assert signer == key.address  # 65 bytes, r || s || v: what a router's ethers verifies
    assert check_proof(Receipt.from_adapter(data), proof, key.fin_id) == receipt.digest(domain)
    hold = replace(receipt, operation_type="hold", destination=None)
    assert "destination" not in hold.to_adapter(), "accounts that do not apply are left out, not null"
    altered = json.loads(json.dumps(proof))
    altered["signature"]["template"]["message"]["quantity"] = "999"
    with pytest.raises(FinP2PError) as exc:
        check_proof(receipt, altered, key.fin_id)
    assert exc.value.code is ErrorCode.RECEIPT_INVALID
    with pytest.raises(FinP2PError) as exc:
        check_proof(replace(receipt, quantity="11"), proof, key.fin_id)  # the receipt changed under the proof
    assert exc.value.code is ErrorCode.RECEIPT_INVALID
    with pytest.raises(FinP2PError) as exc:
        check_proof(receipt, proof, SigningKey.generate().fin_id)
    assert exc.value.code is ErrorCode.RECEIPT_BAD_SIGNATURE


def test_receipts_of_each_ledger_operation_name_the_parties_the_spec_gives_them() -> None:
    def tx(operation: str, source: str | None, destination: str | None) -> LedgerTransaction:
        return LedgerTransaction(
            "eip155:1", "0x" + "aa" * 32, operation, "op", ASSET, 5, True, 3, 1700000000, source, destination
        )

    asset = _account(SRC)["asset"]
    shapes = {
        "issue": (None, DST),
        "transfer": (SRC, DST),
        "hold": (SRC, None),  # the escrow is not a destination, even when the hold names its payee
        "release": (SRC, DST),
        "rollback": (SRC, None),  # a release back to the source
        "redeem": (SRC, None),
    }
    for operation, (source, destination) in shapes.items():
        receipt = Receipt.of(tx(operation, SRC if operation != "issue" else None, DST), asset)
        assert (receipt.source_fin_id, receipt.destination_fin_id) == (source, destination), operation
        assert receipt.operation_type == ("release" if operation == "rollback" else operation)


def test_receipts_type_the_asset_from_its_id_as_the_documentation_lists_the_codes() -> None:
    """The signed message's ``assetType`` follows from the asset id alone, by the rule and the code list of
    docs/receipts.md, so an auditor rebuilds it without the node."""
    assert [asset_type_of(a) for a in ("bank-a:102:bond", "USD", "EUR", "USDC", "BTC", "usd")] == [
        "finp2p",
        "fiat",
        "fiat",
        "cryptocurrency",
        "cryptocurrency",
        "cryptocurrency",
    ]
    doc = (Path(__file__).resolve().parent.parent / "docs" / "receipts.md").read_text()
    listed = doc.split("typed `fiat`", 1)[1].split("```text", 1)[1].split("```", 1)[0].split()
    assert frozenset(listed) == CURRENCY_CODES and len(listed) == len(CURRENCY_CODES) == 162
    paid = LedgerTransaction("eip155:1", "0x" + "bb" * 32, "hold", "op", "USD", 5, True, 3, 1700000000, SRC, None)
    receipt = Receipt.of(paid, {"resourceId": "USD"})
    assert receipt.message()["asset"] == {"assetId": "USD", "assetType": "fiat"}


def test_profiles_in_bundles_carry_no_secrets(tmp_path: Path) -> None:
    profile = LedgerProfile(
        "ethereum",
        "eip155:1",
        {"rpc": "http://x", "operator_key": "/secret", "profile_dir": "/d", "rpc_token_file": "t"},
    )
    save_profile(tmp_path / "p.toml", profile)
    assert public_profile(profile) == {"kind": "ethereum", "ledger_id": "eip155:1", "settings": {"rpc": "http://x"}}
    tuned = LedgerProfile("ethereum", "eip155:1", {"poll_s": 0.02, "batch_window_ms": 5.0, "batch_max": 40})
    travelling = public_profile(tuned)
    assert travelling["settings"] == {"poll_s": "0.02", "batch_window_ms": "5.0", "batch_max": 40}
    canonical(travelling)  # what a signed statement holds: no fractions
    with pytest.raises(FinP2PError) as exc:
        Bundle.from_dict({"format": "something else"})
    assert exc.value.code is ErrorCode.RECEIPT_INVALID


# -- the auditor on real chains ---------------------------------------------------------------------------------------
@dataclass
class Org:
    name: str
    key: SigningKey
    chain: list[Credential]
    ledger: EthereumLedger

    @property
    def party(self) -> Party:
        return Party(self.name, self.key.fin_id, chain_document(self.chain)["chain"])

    def place(self, settings: dict[str, Any] | None = None) -> LedgerPlace:
        d = self.ledger._deployment
        assert d is not None
        base = {  # as a node's public profile says it: the endpoint too, which is only a hint
            "backend": "rpc",
            "rpc": self.ledger.chain.url,
            "assets_contract": d.assets,
            "registry_contract": d.registry,
            "deployed_block": d.block,
        }
        return LedgerPlace("ethereum", self.ledger.ledger_id, {**base, **(settings or {})}, self.key.address)


class Scenario:
    """org-a manages the asset; org-b, the requester, records receipts; org-c is a member with contracts of its own.
    All three deploy on one chain: a served embedded chain, or a Hardhat node."""

    def __init__(self, world: World, backend: str, hardhat: HardhatNode | None, tmp: Path) -> None:
        self.world, self.backend, self.hardhat, self.tmp = world, backend, hardhat, tmp
        self.alice, self.bob = SigningKey.generate(), SigningKey.generate()
        self.asset = "org-a:102:bond"
        self.host: EthereumLedger | None = None

    async def setup(self) -> None:
        keys = {name: self.world.new_org(name) for name in ("org-a", "org-b", "org-c")}
        token = None
        if self.hardhat is None:  # an embedded chain, served as a node serves it (token, operators funded)
            token = "receipts-test-token"
            serving = Serving("127.0.0.1", 0, token, fund=tuple(k.address for k, _ in keys.values()))
            self.host = EthereumLedger(
                embedded_chain(f"receipts-{id(self)}"), SigningKey.generate(), None, serving=serving
            )
            self.url = await self.host.serve()
        else:
            self.url = self.hardhat.url
        self.token = token
        self.orgs: dict[str, Org] = {}
        for name, (key, chain) in keys.items():
            c = rpc_chain(self.url, token=token)
            await c.connect()
            deployment = await deploy_contracts(c, key)
            self.orgs[name] = Org(name, key, chain, EthereumLedger(c, key, deployment, ledger_id=c.ledger_id))
        a = self.orgs["org-a"].ledger
        await a.create_asset(self.asset, {})
        await a.issue(self.asset, self.alice.fin_id, 100, "issue-1")
        settings: dict[str, Any] = {"backend": "rpc", "rpc": self.url, "read_only": True}
        if token is not None:
            (self.tmp / "token").write_text(token + "\n")
            (self.tmp / "token").chmod(0o600)
            settings["rpc_token_file"] = str(self.tmp / "token")
        self.auditor_profile = self.tmp / "auditor.toml"  # the auditor's own endpoint, no contracts of its own
        save_profile(self.auditor_profile, LedgerProfile("ethereum", a.ledger_id, settings))

    async def transfer(self, op_id: str, quantity: int) -> LedgerTransaction:
        ledger = self.orgs["org-a"].ledger
        deployment = await ledger.deployment()
        op = Operation(op_id, self.asset, self.alice.fin_id, self.bob.fin_id, quantity)
        consent = sign_consent(self.alice, "Transfer", op, ledger.chain.chain_id, deployment.assets)
        return await ledger.transfer(self.asset, self.alice.fin_id, self.bob.fin_id, quantity, op_id, consent)

    def issued(self, tx: LedgerTransaction, by: str = "org-a", **place: Any) -> Bundle:
        org = self.orgs[by]
        asset = {"resourceId": tx.asset_id, "ledgerIdentifier": org.ledger.asset_identifier(tx.asset_id)}
        return Bundle.issue(Receipt.of(tx, asset), org.key, org.party, org.place(place), PUBLISHED_DOMAIN)

    async def recorded(self, bundle: Bundle, by: str = "org-b") -> Bundle:
        org = self.orgs[by]
        tx = await org.ledger.record_receipts([bundle.digest()])
        return bundle.with_record(Record(org.party, org.place(), tx.transaction_id, []).sign(org.key, bundle.digest()))

    async def verify(
        self, bundle: Bundle | dict[str, Any], *extra: str, ledger: Path | None = None
    ) -> tuple[int, dict[str, Any]]:
        """``finp2p receipt verify`` as a process (on a thread: the embedded chain it reads is served by this one)."""
        data = bundle.to_dict() if isinstance(bundle, Bundle) else bundle
        path = self.tmp / f"bundle-{len(list(self.tmp.glob('bundle-*')))}.json"
        path.write_text(json.dumps(data))
        genesis = self.tmp.parent / "net" / "genesis.json"
        args = ["--genesis", str(genesis), "--json", *extra]
        if ledger is not None or not extra or "--use-bundle-endpoints" not in extra:
            args += ["--ledger", str(ledger or self.auditor_profile)]
        result = await asyncio.to_thread(run_cli, "receipt", "verify", str(path), *args, timeout=120)
        return result.returncode, json.loads(result.stdout)

    async def close(self) -> None:
        for org in self.orgs.values():
            await org.ledger.close()
        if self.host is not None:
            await self.host.close()


@pytest.fixture(params=["embedded", pytest.param("hardhat", marks=pytest.mark.hardhat)])
async def scenario(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Scenario]:
    (tmp_path / "net").mkdir()
    (tmp_path / "bundles").mkdir()
    hardhat = request.getfixturevalue("hardhat") if request.param == "hardhat" else None
    s = Scenario(make_world(tmp_path / "net"), request.param, hardhat, tmp_path / "bundles")
    await s.setup()
    try:
        yield s
    finally:
        await s.close()


def _verdicts(report: dict[str, Any]) -> dict[str, str]:
    return {c["check"]: c["status"] for c in report["checks"]}


def _detail(report: dict[str, Any], check: str) -> str:
    return next(str(c["detail"]) for c in report["checks"] if c["check"] == check)


def _code(report: dict[str, Any], check: str) -> str | None:
    """The code a failed check gives for its verdict."""
    return next(str(c["code"]) if "code" in c else None for c in report["checks"] if c["check"] == check)


CHECKS = ["receipt proof", "issuer", "asset ledger transaction", "recorded by the requester"]


async def test_the_auditor_verifies_a_recorded_receipt_check_by_check(scenario: Scenario) -> None:
    bundle = await scenario.recorded(scenario.issued(await scenario.transfer("t-1", 30)))
    status, report = await scenario.verify(bundle)
    assert status == 0 and report["ok"], report
    assert [c["check"] for c in report["checks"]] == CHECKS
    assert set(_verdicts(report).values()) == {"held"}
    shown = await asyncio.to_thread(run_cli, "receipt", "show", str(scenario.tmp / "bundle-0.json"))
    assert shown.returncode == 0 and "transfer of 30 org-a:102:bond" in shown.stdout


async def test_the_auditor_refuses_each_forgery_and_names_the_check(scenario: Scenario) -> None:
    tx = await scenario.transfer("t-2", 40)
    good = await scenario.recorded(scenario.issued(tx))

    # A member with its real key, credentials and its own contracts, about units of org-a's asset it never saw.
    c = scenario.orgs["org-c"]
    await c.ledger.create_asset(scenario.asset, {})
    minted = await c.ledger.issue(scenario.asset, scenario.bob.fin_id, 777, "c-777")
    status, report = await scenario.verify(await scenario.recorded(scenario.issued(minted, by="org-c")))
    assert status == 1 and _verdicts(report)["issuer"] == "failed"
    assert "managed by org-a" in _detail(report, "issuer") and _code(report, "issuer") == "FP7011"

    # The receipt recorded in a registry anyone deployed, from a development account; twice: unsigned by the
    # requester, and signed by it but with the record submitted by the stranger.
    stranger = SigningKey.generate()
    chain = rpc_chain(scenario.url, token=scenario.token)
    await chain.connect()
    if scenario.host is not None:
        await scenario.host.chain.fund_for_development(stranger.address)
    else:
        await chain.fund_for_development(stranger.address)
    deployment = await deploy_contracts(chain, stranger)
    rogue = EthereumLedger(chain, stranger, deployment, ledger_id=chain.ledger_id)
    try:
        digest = good.digest()
        record_tx = await rogue.record_receipts([digest])
        b = scenario.orgs["org-b"]
        place = LedgerPlace(
            "ethereum",
            chain.ledger_id,
            {"assets_contract": deployment.assets, "registry_contract": deployment.registry},
            stranger.address,
        )
        unsigned = good.with_record(Record(b.party, place, record_tx.transaction_id, [], "00" * 64))
        status, report = await scenario.verify(unsigned)
        assert status == 1 and _verdicts(report)["recorded by the requester"] == "failed"
        assert _code(report, "recorded by the requester") in {"FP2001", "FP2002"}  # the requester's signature
        claimed = replace(place, operator=b.key.address)  # org-b's own operator named, a stranger's transaction
        signed = good.with_record(Record(b.party, claimed, record_tx.transaction_id, []).sign(b.key, digest))
        status, report = await scenario.verify(signed)
        assert status == 1 and _verdicts(report)["recorded by the requester"] == "failed"
        assert "submitted by" in _detail(report, "recorded by the requester")
        assert _code(report, "recorded by the requester") == "FP7004"
    finally:
        await rogue.close()

    # A proof whose template says 999 while the receipt says 40, signed by the issuer itself.
    data = good.to_dict()
    template = data["receipt"]["proof"]["signature"]["template"]
    template["message"]["quantity"] = "999"
    template["hash"] = "0x" + eip712.digest(template["domain"], "Receipt", TYPES, template["message"]).hex()
    data["receipt"]["proof"]["signature"]["signature"] = (
        "0x" + scenario.orgs["org-a"].key.sign_digest_recoverable(bytes.fromhex(template["hash"][2:])).hex()
    )
    status, report = await scenario.verify(data)
    assert status == 1 and _verdicts(report)["receipt proof"] == "failed"
    assert "says something the receipt does not" in _detail(report, "receipt proof")

    # Tampered after signing; a transaction the ledger does not have; a revoked issuer.
    data = good.to_dict()
    data["receipt"]["quantity"] = "1000"
    status, report = await scenario.verify(data)
    assert status == 1 and _verdicts(report)["receipt proof"] == "failed"
    unknown = replace(tx, transaction_id="0x" + "00" * 32)
    status, report = await scenario.verify(await scenario.recorded(scenario.issued(unknown)))
    assert status == 1 and "has no transaction" in _detail(report, "asset ledger transaction")
    assert _code(report, "asset ledger transaction") == "FP7003"
    rl = next_list(
        scenario.world.gov_key,
        None,
        scenario.world.genesis.network_id,
        [Revoked(scenario.orgs["org-a"].key.fin_id, "licence withdrawn", 1)],
        (scenario.world.gov,),
    )
    revocations = scenario.tmp.parent / "revocations.json"
    revocations.write_text(json.dumps(rl.to_dict()))
    status, report = await scenario.verify(good, "--revocations", str(revocations))
    assert status == 1 and "revoked" in _detail(report, "issuer").lower()
    status, report = await scenario.verify(scenario.issued(tx))
    assert status == 1 and "no record" in _detail(report, "recorded by the requester")


async def test_the_auditor_reads_ledgers_through_its_own_profiles_and_reports_what_it_could_not_check(
    scenario: Scenario,
) -> None:
    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen()
    trap.setblocking(False)
    trap_url = f"http://127.0.0.1:{trap.getsockname()[1]}"
    try:
        # The issuer's bundle says its ledger is reached at the trap: nobody signs where a ledger is reached.
        bundle = await scenario.recorded(scenario.issued(await scenario.transfer("t-3", 5), rpc=trap_url))
        status, report = await scenario.verify(bundle)  # through the auditor's own profile: verified, trap untouched
        assert status == 0, report
        with pytest.raises(BlockingIOError):
            trap.accept()
    finally:
        trap.close()
    # With the flag, a ledger no profile of the auditor's reaches is read where the bundle says: here nowhere.
    dead_url = f"http://127.0.0.1:{trap_port_closed()}"
    elsewhere = await scenario.recorded(scenario.issued(await scenario.transfer("t-4", 5), rpc=dead_url))
    status, report = await scenario.verify(elsewhere, "--use-bundle-endpoints")
    assert status == 1 and dead_url in _detail(report, "asset ledger transaction")
    dead = scenario.tmp.parent / "dead.toml"
    save_profile(
        dead,
        LedgerProfile(
            "ethereum",
            bundle.asset_ledger.ledger_id,
            {"backend": "rpc", "rpc": trap_url, "read_only": True, "timeout_s": 5},
        ),
    )
    status, report = await scenario.verify(bundle, ledger=dead)  # the auditor's ledger does not answer
    assert status == 1
    assert _verdicts(report) == {
        "receipt proof": "held",
        "issuer": "held",
        "asset ledger transaction": "unchecked",
        "recorded by the requester": "unchecked",
    }
    assert "cannot reach" in _detail(report, "asset ledger transaction")
    genesis = scenario.tmp.parent / "net" / "genesis.json"
    path = scenario.tmp / "no-profile.json"
    path.write_text(json.dumps(bundle.to_dict()))
    result = await asyncio.to_thread(run_cli, "receipt", "verify", str(path), "--genesis", str(genesis), "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 1 and _verdicts(report)["asset ledger transaction"] == "unchecked"
    assert "--ledger" in _detail(report, "asset ledger transaction")


async def test_an_independent_auditor_verifies_a_receipt_with_the_documentation_alone(scenario: Scenario) -> None:
    """``tests/independent_auditor.py`` follows docs/receipts.md with eth-account, eth-abi, coincurve and JSON-RPC,
    importing nothing from the project: the receipt verifies, and a member's receipt about another's asset does
    not."""
    good = await scenario.recorded(scenario.issued(await scenario.transfer("t-9", 12)))
    c = scenario.orgs["org-c"]
    await c.ledger.create_asset(scenario.asset, {})
    forged = await scenario.recorded(
        scenario.issued(await c.ledger.issue(scenario.asset, scenario.bob.fin_id, 5, "f"), by="org-c")
    )
    genesis = scenario.tmp.parent / "net" / "genesis.json"
    artifacts = ROOT / "plugins" / "ethereum" / "src" / "finp2p_ethereum" / "artifacts"
    for bundle, expected in ((good, "held"), (forged, "failed")):
        path = scenario.tmp / f"independent-{expected}.json"
        path.write_text(json.dumps(bundle.to_dict()))
        args = [
            sys.executable,
            str(ROOT / "tests" / "independent_auditor.py"),
            str(path),
            str(genesis),
            scenario.url,
            str(artifacts),
            *([scenario.token] if scenario.token else []),
        ]
        run = await asyncio.to_thread(
            subprocess.run, args, capture_output=True, text=True, timeout=120, cwd=scenario.tmp, check=False
        )
        assert run.returncode == 0, run.stderr
        out = json.loads(run.stdout)
        assert out["project_modules"] == []
        if expected == "held":
            assert set(out["checks"].values()) == {"held"}, out
        else:
            assert out["checks"]["issuer"].startswith("failed"), out


async def test_receipts_arriving_together_are_recorded_in_one_batch() -> None:
    from finp2p.assets.recorder import ReceiptRecorder
    from tests.support.ethereum import make_eth_world

    eth = await make_eth_world("embedded", None)
    recorder = ReceiptRecorder(eth.ledger, max_batch=8, linger_s=0.05)
    try:
        hashes = [keccak256(bytes([i])) for i in range(12)]
        results = await asyncio.gather(*(recorder.record(h) for h in hashes))
        assert len({tx.transaction_id for tx, _ in results}) == 2, "12 receipts, batches of at most 8"
        for h, (_, proof) in zip(hashes, results, strict=True):
            assert await eth.ledger.receipt_recorded(h, proof)
        again = await asyncio.gather(*(recorder.record(hashes[0]) for _ in range(5)))  # asked again: its record
        assert {tx.transaction_id for tx, _ in again} == {results[0][0].transaction_id}
        alone = await recorder.record(keccak256(b"alone"))
        assert alone[1] == [] and await eth.ledger.receipt_recorded(keccak256(b"alone"))
        fresh = ReceiptRecorder(eth.ledger)  # as after a restart: the registry's record is the answer
        try:
            tx, proof = await fresh.record(keccak256(b"alone"))
            assert tx.transaction_id == alone[0].transaction_id and proof == []
        finally:
            await fresh.close()
        assert merkle.root_of(hashes[0], results[0][1]) == bytes.fromhex(results[0][0].event["root"][2:])
    finally:
        await recorder.close()
        await eth.close()


def trap_port_closed() -> int:
    """A port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
