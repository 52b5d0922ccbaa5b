"""Agreement of the EIP-712 and Merkle encodings between Python, the contracts and eth-account. (Balances conserved
under random sequences of operations is a property of every ledger: the conformance suite checks it, in
tests/test_ethereum_ledger.py.)"""

from __future__ import annotations

from eth_account.messages import encode_typed_data
from hypothesis import given
from hypothesis import strategies as st

from finp2p.identity import merkle
from finp2p.identity.keys import SigningKey
from finp2p_ethereum.consent import FIELDS, Operation, adapter_template, consent_digest, typed_data
from tests.support.ethereum import make_eth_world


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
