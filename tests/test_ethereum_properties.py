"""Invariants of the Ethereum ledger under random sequences of operations, and agreement of the EIP-712 and Merkle
encodings between Python, the contracts and eth-account."""

from __future__ import annotations

import asyncio

# py-evm raises the recursion limit when first imported; imported here, not inside a hypothesis run, which
# would report the change.
import eth as _py_evm  # noqa: F401
from eth_account.messages import encode_typed_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finp2p.assets import merkle
from finp2p.errors import FinP2PError
from finp2p.identity.keys import SigningKey
from finp2p_ethereum.consent import FIELDS, Operation, adapter_template, consent_digest, typed_data
from tests.support.ethereum import make_eth_world

HOLDERS = [SigningKey(bytes([i + 1]) * 32) for i in range(3)]

_operation = st.one_of(
    st.tuples(st.just("issue"), st.integers(0, 2), st.integers(0, 2), st.integers(1, 60)),
    st.tuples(st.just("transfer"), st.integers(0, 2), st.integers(0, 2), st.integers(1, 60)),
    st.tuples(st.just("redeem"), st.integers(0, 2), st.integers(0, 2), st.integers(1, 60)),
    st.tuples(st.just("hold"), st.integers(0, 2), st.integers(0, 2), st.integers(1, 60)),
    st.tuples(st.just("release"), st.integers(0, 2), st.integers(0, 2), st.integers(1, 60)),
    st.tuples(st.just("rollback"), st.integers(0, 2), st.integers(0, 2), st.integers(1, 60)),
)


async def _run(steps: list[tuple[str, int, int, int]]) -> None:
    eth = await make_eth_world("embedded", None)
    try:
        asset = await eth.new_asset()
        ledger = eth.ledger
        model_available = [0, 0, 0]
        holds: list[tuple[str, int, int]] = []  # open holds: (operation id, source, quantity)
        for n, (kind, a, b, quantity) in enumerate(steps):
            op_id = f"p-{n}"
            src, dst = HOLDERS[a], HOLDERS[b]
            try:
                if kind == "issue":
                    await ledger.issue(asset, dst.fin_id, quantity, op_id)
                    model_available[b] += quantity
                elif kind == "transfer":
                    op = Operation(op_id, asset, src.fin_id, dst.fin_id, quantity)
                    await ledger.transfer(
                        asset, src.fin_id, dst.fin_id, quantity, op_id, eth.consent(src, "Transfer", op)
                    )
                    model_available[a] -= quantity
                    model_available[b] += quantity
                elif kind == "redeem":
                    op = Operation(op_id, asset, src.fin_id, "", quantity)
                    await ledger.redeem(asset, src.fin_id, quantity, op_id, eth.consent(src, "Redeem", op))
                    model_available[a] -= quantity
                elif kind == "hold":
                    op = Operation(op_id, asset, src.fin_id, "", quantity, 0)
                    await ledger.hold(asset, src.fin_id, None, quantity, op_id, 0, eth.consent(src, "Hold", op))
                    model_available[a] -= quantity
                    holds.append((op_id, a, quantity))
                elif holds:
                    hold_id, owner, held = holds[quantity % len(holds)]
                    if kind == "release":
                        paid = min(held, quantity)
                        await ledger.release(asset, HOLDERS[owner].fin_id, dst.fin_id, paid, hold_id)
                        model_available[b] += paid
                        model_available[owner] += held - paid
                    else:
                        await ledger.rollback(asset, HOLDERS[owner].fin_id, held, hold_id)
                        model_available[owner] += held
                    holds.remove((hold_id, owner, held))
            except FinP2PError as exc:
                assert exc.code.code == "FP6001", exc  # the only refusal a valid sequence can meet
                continue
        balances = [await ledger.balance(asset, h.fin_id) for h in HOLDERS]
        held_total = sum(q for _, _, q in holds)
        supply = await ledger.supply(asset)
        # Conserved: what exists is what is available plus what is held, as the plugin reports it...
        assert supply == sum(b.available + b.held for b in balances)
        assert [b.available for b in balances] == model_available
        assert sum(b.held for b in balances) == held_total
        # ...and as the contract's own storage says, read directly.
        contract = await ledger._assets()
        on_chain = [await contract.functions.balanceOf(asset, h.fin_id).call() for h in HOLDERS]
        assert await contract.functions.totalSupply(_asset_key(asset)).call() == sum(x + y for x, y in on_chain)
    finally:
        await eth.close()


def _asset_key(asset: str) -> bytes:
    from finp2p.identity.canonical import keccak256

    return keccak256(asset.encode())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_operation, min_size=1, max_size=14))
def test_supply_is_conserved_under_any_sequence(steps: list[tuple[str, int, int, int]]) -> None:
    asyncio.run(_run(steps))


async def test_consent_digest_agrees_with_the_contract_and_eth_account() -> None:
    eth = await make_eth_world("embedded", None)
    try:
        contract = await eth.ledger._assets()
        alice, bob = SigningKey.generate(), SigningKey.generate()
        ops = {
            "Transfer": Operation("d-1", "org:102:ü-asset", alice.fin_id, bob.fin_id, 10**30),
            "Hold": Operation("d-2", "org:102:x", alice.fin_id, "", 7, 1_900_000_000),
            "Redeem": Operation("d-3", "org:102:x", alice.fin_id, "", 3),
        }
        type_hashes = {
            "Transfer": await contract.functions.TRANSFER_TYPEHASH().call(),
            "Hold": await contract.functions.HOLD_TYPEHASH().call(),
            "Redeem": await contract.functions.REDEEM_TYPEHASH().call(),
        }
        assert set(ops) == set(FIELDS)
        for kind, op in ops.items():
            ours = consent_digest(kind, op, eth.chain.chain_id, eth.deployment.assets)
            on_chain = await contract.functions.consentDigest(op.as_abi(), type_hashes[kind]).call()
            theirs = encode_typed_data(full_message=typed_data(kind, op, eth.chain.chain_id, eth.deployment.assets))
            from finp2p.identity.canonical import keccak256

            assert ours == bytes(on_chain) == keccak256(b"\x19" + theirs.version + theirs.header + theirs.body), kind
            template = adapter_template(kind, op, eth.chain.chain_id, eth.deployment.assets)
            assert template["hash"] == ours.hex() and template["primaryType"] == kind
            assert [d["name"] for d in template["types"]["definitions"]] == ["EIP712Domain", kind]
    finally:
        await eth.close()


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40))
def test_every_merkle_proof_leads_to_the_root(leaves: list[bytes]) -> None:
    root = merkle.root(leaves)
    for leaf, proof in zip(leaves, merkle.proofs(leaves), strict=True):
        assert merkle.root_of(leaf, proof) == root
    assert len(leaves) > 1 or root == leaves[0]
