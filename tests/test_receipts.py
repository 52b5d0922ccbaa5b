"""Receipts and the auditor: EIP-712 receipts signed by the primary organization, bundles, and `finp2p receipt
verify` against a real Hardhat node, with tampered, failed, unknown, unrecorded and revoked-issuer receipts."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account.messages import encode_typed_data

from devnet.hardhat import HardhatNode
from finp2p.assets.receipts import DOMAIN, TYPES, Bundle, Receipt, Record, SignedReceipt, public_profile
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import eip712
from finp2p.identity.canonical import keccak256
from finp2p.identity.credentials import chain_document
from finp2p.identity.keys import SigningKey
from finp2p.identity.revocation import Revoked, next_list
from finp2p.ledger import LedgerProfile
from finp2p.ledger_profiles import save_profile
from finp2p_ethereum.chain import rpc_chain
from finp2p_ethereum.consent import Operation, sign_consent
from finp2p_ethereum.deploy import deploy_contracts, profile_for
from finp2p_ethereum.ledger import EthereumLedger
from tests.support.cli import run_cli
from tests.support.world import World, make_world

RECEIPT = Receipt(
    operation_type="transfer",
    asset_id="org-a:102:bond",
    quantity=25,
    timestamp=1_800_000_000,
    ledger_id="eip155:31337",
    transaction_id="0x" + "ab" * 32,
    operation_id="op-1",
    source="02" + "11" * 32,
    destination="03" + "22" * 32,
)


def test_receipt_digest_is_eip712_as_wallets_compute_it() -> None:
    data = eip712.wallet_json(DOMAIN, "Receipt", TYPES, RECEIPT.message())
    signable = encode_typed_data(full_message=data)
    assert RECEIPT.digest() == keccak256(b"\x19" + signable.version + signable.header + signable.body)


def test_receipt_round_trip_and_tampering() -> None:
    key = SigningKey.generate()
    signed = SignedReceipt.sign(RECEIPT, key)
    again = SignedReceipt.from_dict(json.loads(json.dumps(signed.to_dict())))
    assert again == signed
    again.check_signature()
    adapter = signed.to_dict()["receipt"]
    assert adapter["quantity"] == "25" and adapter["proof"]["signature"]["hashFunc"] == "keccak-256"
    assert adapter["proof"]["signature"]["template"]["hash"] == RECEIPT.digest().hex()
    issue = replace(RECEIPT, operation_type="issue", source=None)
    assert "source" not in issue.to_adapter(), "accounts that do not apply are left out, not null"
    for changed in (replace(RECEIPT, quantity=26), replace(RECEIPT, destination="03" + "33" * 32)):
        with pytest.raises(FinP2PError) as exc:
            SignedReceipt(changed, signed.signer, signed.signature).check_signature()
        assert exc.value.code is ErrorCode.RECEIPT_BAD_SIGNATURE
    with pytest.raises(FinP2PError) as exc:
        Bundle.from_dict({"format": "something else"})
    assert exc.value.code is ErrorCode.RECEIPT_INVALID


class Scenario:
    """Org A is the asset's primary node on a Hardhat node; org B, the requester, records receipts there too."""

    def __init__(self, world: World, hardhat: HardhatNode, tmp: Path) -> None:
        self.world, self.hardhat, self.tmp = world, hardhat, tmp
        self.org_a_key, self.org_a_chain = world.new_org("org-a")
        self.org_b_key, _ = world.new_org("org-b")
        self.alice, self.bob = SigningKey.generate(), SigningKey.generate()

    async def setup(self) -> None:
        self.ledgers: list[EthereumLedger] = []
        self.profiles: list[LedgerProfile] = []
        for key in (self.org_a_key, self.org_b_key):
            chain = rpc_chain(self.hardhat.url)
            await chain.connect()
            deployment = await deploy_contracts(chain, key)
            self.ledgers.append(EthereumLedger(chain, key, deployment, ledger_id=chain.ledger_id))
            self.profiles.append(profile_for(chain, deployment))
        # Both deployments are on the same chain: the auditor tells them apart by their contracts.
        self.asset_ledger, self.record_ledger = self.ledgers
        self.asset = "org-a:102:bond"
        await self.asset_ledger.create_asset(self.asset, {})
        await self.asset_ledger.issue(self.asset, self.alice.fin_id, 100, "issue-1")

    async def transfer(self, op_id: str, quantity: int) -> SignedReceipt:
        ledger = self.asset_ledger
        deployment = await ledger.deployment()
        op = Operation(op_id, self.asset, self.alice.fin_id, self.bob.fin_id, quantity)
        consent = sign_consent(self.alice, "Transfer", op, ledger.chain.chain_id, deployment.assets)
        tx = await ledger.transfer(self.asset, self.alice.fin_id, self.bob.fin_id, quantity, op_id, consent)
        return SignedReceipt.sign(Receipt.of(tx), self.org_a_key)

    async def bundle(self, signed: SignedReceipt, *, record: bool = True) -> Path:
        recorded = None
        if record:
            tx = await self.record_ledger.record_receipts([signed.receipt.digest()])
            recorded = Record(public_profile(self.profiles[1]), tx.transaction_id, [])
        bundle = Bundle(
            signed,
            "org-a",
            chain_document(self.org_a_chain)["chain"],
            public_profile(self.profiles[0]),
            recorded,
        )
        path = self.tmp / f"bundle-{signed.receipt.operation_id}-{len(list(self.tmp.iterdir()))}.json"
        path.write_text(json.dumps(bundle.to_dict()))
        return path

    def verify(self, bundle: Path, *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
        genesis = self.tmp.parent / "net" / "genesis.json"
        own = self.tmp.parent / "auditor.toml"  # the auditor's own endpoint for the chain, no contracts of its own
        save_profile(
            own,
            LedgerProfile(
                "ethereum", self.profiles[0].ledger_id, {"backend": "rpc", "rpc": self.hardhat.url, "read_only": True}
            ),
        )
        args = ["--genesis", str(genesis), "--ledger", str(own), "--json", *extra]
        result = run_cli("receipt", "verify", str(bundle), *args, timeout=120)
        return result.returncode, json.loads(result.stdout)

    async def close(self) -> None:
        for ledger in self.ledgers:
            await ledger.close()


@pytest.fixture
async def scenario(hardhat: HardhatNode, tmp_path: Path) -> AsyncIterator[Scenario]:
    (tmp_path / "net").mkdir()
    (tmp_path / "bundles").mkdir()
    s = Scenario(make_world(tmp_path / "net"), hardhat, tmp_path / "bundles")
    await s.setup()
    try:
        yield s
    finally:
        await s.close()


def _failed(report: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {c["check"]: c["detail"] for c in report["checks"] if not c["ok"]}


@pytest.mark.hardhat
async def test_the_auditor_verifies_a_recorded_receipt(scenario: Scenario) -> None:
    signed = await scenario.transfer("t-1", 30)
    status, report = scenario.verify(await scenario.bundle(signed))
    assert status == 0 and report["ok"], report
    assert [c["check"] for c in report["checks"]] == [
        "receipt signature",
        "issuer credential chain",
        "asset ledger transaction",
        "recorded by the requester",
    ]
    shown = run_cli("receipt", "show", str(await scenario.bundle(signed, record=False)))
    assert shown.returncode == 0 and "transfer of 30 org-a:102:bond" in shown.stdout


@pytest.mark.hardhat
async def test_the_auditor_refuses_bad_receipts(scenario: Scenario) -> None:
    signed = await scenario.transfer("t-2", 10)
    good = await scenario.bundle(signed)

    # Tampered: the quantity in the bundle no longer matches what was signed.
    data = json.loads(good.read_text())
    data["receipt"]["quantity"] = "1000"
    tampered = good.with_name("tampered.json")
    tampered.write_text(json.dumps(data))
    status, report = scenario.verify(tampered)
    assert status == 1 and "receipt signature" in _failed(report)

    # Signed by the issuer, but for a transaction the ledger does not have.
    unknown = replace(signed.receipt, transaction_id="0x" + "00" * 32)
    status, report = scenario.verify(await scenario.bundle(SignedReceipt.sign(unknown, scenario.org_a_key)))
    assert status == 1 and "has no transaction" in _failed(report)["asset ledger transaction"]

    # Signed, but saying something else than the ledger (more units than moved).
    inflated = replace(signed.receipt, quantity=99)
    status, report = scenario.verify(await scenario.bundle(SignedReceipt.sign(inflated, scenario.org_a_key)))
    assert status == 1 and "quantity: receipt 99, ledger 10" in _failed(report)["asset ledger transaction"]

    # A transaction that failed on the ledger.
    failed_tx = await _failed_transfer(scenario)
    failed = replace(signed.receipt, transaction_id=failed_tx)
    status, report = scenario.verify(await scenario.bundle(SignedReceipt.sign(failed, scenario.org_a_key)))
    assert status == 1 and "failed" in _failed(report)["asset ledger transaction"]

    # Never recorded by the requester.
    status, report = scenario.verify(await scenario.bundle(signed, record=False))
    assert status == 1 and set(_failed(report)) == {"recorded by the requester"}

    # Signed by an organization that is then revoked.
    rl = next_list(
        scenario.world.gov_key,
        None,
        scenario.world.genesis.network_id,
        [Revoked(scenario.org_a_key.fin_id, "licence withdrawn", 1)],
        (scenario.world.gov,),
    )
    revocations = good.with_name("revocations.json")
    revocations.write_text(json.dumps(rl.to_dict()))
    status, report = scenario.verify(good, "--revocations", str(revocations))
    assert status == 1 and "revoked" in _failed(report)["issuer credential chain"].lower()

    # A stranger's signature over a genuine receipt: its chain is not the signer's.
    stranger = SignedReceipt.sign(signed.receipt, SigningKey.generate())
    status, report = scenario.verify(await scenario.bundle(stranger, record=False))
    assert status == 1 and "issuer credential chain" in _failed(report)


async def _failed_transfer(scenario: Scenario) -> str:
    """A transfer that reached the chain and reverted (sent without the plugin's pre-check)."""
    from eth_account import Account
    from web3.exceptions import Web3RPCError

    ledger = scenario.asset_ledger
    deployment = await ledger.deployment()
    op = Operation("f-1", scenario.asset, scenario.alice.fin_id, scenario.bob.fin_id, 10_000)
    consent = sign_consent(scenario.alice, "Transfer", op, ledger.chain.chain_id, deployment.assets)
    contract = await ledger._assets()
    account = Account.from_key(scenario.org_a_key.secret_bytes())
    w3 = ledger.chain.w3
    signed = account.sign_transaction(
        {
            "to": contract.address,
            "data": contract.encode_abi("transfer", args=[op.as_abi(), (b"\0" * 32, bytes.fromhex(consent.signature))]),
            "gas": 500_000,
            "nonce": await w3.eth.get_transaction_count(account.address, "pending"),
            "chainId": ledger.chain.chain_id,
            "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 10**9,
        }
    )
    with contextlib.suppress(Web3RPCError):  # Hardhat mines it and reports the revert at once
        await w3.eth.send_raw_transaction(signed.raw_transaction)
    ledger.submitter._nonce = None
    return "0x" + bytes(signed.hash).hex()


def test_profiles_in_bundles_carry_no_secrets(tmp_path: Path) -> None:
    profile = LedgerProfile("ethereum", "eip155:1", {"rpc": "http://x", "operator_key": "/secret", "profile_dir": "/d"})
    save_profile(tmp_path / "p.toml", profile)
    assert public_profile(profile) == {"kind": "ethereum", "ledger_id": "eip155:1", "settings": {"rpc": "http://x"}}


async def test_receipts_arriving_together_are_recorded_in_one_batch() -> None:
    import asyncio

    from finp2p.assets.recorder import ReceiptRecorder
    from tests.support.ethereum import make_eth_world

    eth = await make_eth_world("embedded", None)
    recorder = ReceiptRecorder(eth.ledger, max_batch=8, linger_s=0.05)
    try:
        hashes = [keccak256(bytes([i])) for i in range(12)]
        results = await asyncio.gather(*(recorder.record(h) for h in hashes))
        assert len({tx for tx, _ in results}) == 2, "12 receipts, batches of at most 8: two transactions"
        for h, (_, proof) in zip(hashes, results, strict=True):
            assert await eth.ledger.receipt_recorded(h, proof)
        alone = await recorder.record(keccak256(b"alone"))
        assert alone[1] == [] and await eth.ledger.receipt_recorded(keccak256(b"alone"))
    finally:
        await recorder.close()
        await eth.close()
