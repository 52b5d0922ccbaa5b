"""The adapter API's signature templates (EIP712 and hashList) verified against a FinID, including typed data
signed by eth-account (a wallet), nested structs as FinP2P's own templates use them, and every way to cheat."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from finp2p.assets.templates import check_covers, template_digest, verify_signature
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import eip712
from finp2p.identity.canonical import keccak256
from finp2p.identity.keys import SigningKey
from tests.support.adapter import ROUTER_DOMAIN, ROUTER_TYPES

# FinP2P-style typed data: a sale with nested FinId and Term structs.
TYPES, DOMAIN = ROUTER_TYPES, ROUTER_DOMAIN


def _message(seller: SigningKey, buyer: SigningKey) -> dict[str, Any]:
    return {
        "nonce": "a1" * 16,
        "buyer": {"idkey": buyer.fin_id},
        "seller": {"idkey": seller.fin_id},
        "asset": {"assetId": "bank-a:102:bond", "assetType": "finp2p", "amount": "10"},
        "settlement": {"assetId": "USD", "assetType": "fiat", "amount": "1000"},
    }


def _signed(key: SigningKey, template: dict[str, Any], hash_func: str = "keccak-256") -> dict[str, Any]:
    digest = template_digest(template, hash_func)
    return {"signature": key.sign_digest(digest).hex(), "template": template, "hashFunc": hash_func}


def test_eip712_signed_by_a_wallet_is_verified() -> None:
    seller, buyer = SigningKey.generate(), SigningKey.generate()
    template = eip712.adapter_template(DOMAIN, "Selling", TYPES, _message(seller, buyer))
    wallet = Account.from_key(seller.secret_bytes())
    signed = wallet.sign_message(
        encode_typed_data(full_message=eip712.wallet_json(DOMAIN, "Selling", TYPES, _message(seller, buyer)))
    )
    signature = {"signature": signed.signature.hex(), "template": template, "hashFunc": "keccak-256"}
    assert verify_signature(signature, seller.fin_id) == bytes(signed.message_hash)


def test_eip712_cheats_are_refused() -> None:
    seller, buyer = SigningKey.generate(), SigningKey.generate()
    good = _signed(seller, eip712.adapter_template(DOMAIN, "Selling", TYPES, _message(seller, buyer)))
    assert verify_signature(good, seller.fin_id)
    altered = copy.deepcopy(good)
    altered["template"]["message"]["asset"]["amount"] = "1000000"
    cases = {
        "content changed under the stated hash": altered,
        "signed by someone else": _signed(buyer, good["template"]),
        "no signature": {**good, "signature": ""},
        "not hex": {**good, "signature": "zz"},
        "unknown template": {**good, "template": {**good["template"], "type": "other"}},
    }
    for what, signature in cases.items():
        with pytest.raises(FinP2PError) as exc:
            verify_signature(signature, seller.fin_id)
        assert exc.value.code is ErrorCode.CONSENT_INVALID, what
    with pytest.raises(FinP2PError):
        verify_signature(None, seller.fin_id)


@pytest.mark.parametrize(
    ("hash_func", "hasher"),
    [
        ("keccak-256", keccak256),
        ("sha3-256", lambda b: hashlib.sha3_256(b).digest()),
        ("blake2b", lambda b: hashlib.blake2b(b, digest_size=32).digest()),
    ],
)
def test_hash_list(hash_func: str, hasher: Any) -> None:
    key = SigningKey.generate()
    groups = [
        [("scheme", "string", b"finp2p".hex()), ("operation", "string", b"transfer".hex())],
        [("asset", "string", b"bank-a:102:bond".hex()), ("amount", "int", (25).to_bytes(8, "big").hex())],
    ]
    group_hashes = [hasher(b"".join(bytes.fromhex(v) for _, _, v in g)) for g in groups]
    template = {
        "type": "hashList",
        "hashGroups": [
            {"hash": h.hex(), "fields": [{"name": n, "type": t, "value": v} for n, t, v in g]}
            for g, h in zip(groups, group_hashes, strict=True)
        ],
        "hash": hasher(b"".join(group_hashes)).hex(),
    }
    signature = _signed(key, template, hash_func)
    assert verify_signature(signature, key.fin_id) == hasher(b"".join(group_hashes))
    cheat = copy.deepcopy(signature)
    cheat["template"]["hashGroups"][1]["fields"][1]["value"] = (2500).to_bytes(8, "big").hex()
    with pytest.raises(FinP2PError) as exc:
        verify_signature(cheat, key.fin_id)
    assert "hash group 1" in exc.value.detail
    with pytest.raises(FinP2PError) as exc:
        verify_signature({**signature, "hashFunc": "md5"}, key.fin_id)
    assert "unsupported hash function" in exc.value.detail


def test_a_template_covers_an_operation_only_when_it_names_its_signer_asset_and_quantity() -> None:
    from tests.support.adapter import Investor

    alice, bob = Investor.new(), Investor.new()
    asset = "bank-a:102:bond"
    for signed in (alice.eip712(asset, 25, bob.fin_id, "n1"), alice.hash_list(asset, 25, bob.fin_id, "6e31")):
        template = signed["template"]
        check_covers(template, signer=alice.fin_id, asset_id=asset, quantity=25)
        for wrong in (
            {"signer": bob.fin_id.replace(bob.fin_id[-4:], "0000"), "asset_id": asset, "quantity": 25},
            {"signer": alice.fin_id, "asset_id": "bank-a:102:other", "quantity": 25},
            {"signer": alice.fin_id, "asset_id": asset, "quantity": 26},
        ):
            with pytest.raises(FinP2PError) as exc:
                check_covers(template, **wrong)  # type: ignore[arg-type]
            assert exc.value.code is ErrorCode.CONSENT_INVALID and "another operation" in exc.value.detail
