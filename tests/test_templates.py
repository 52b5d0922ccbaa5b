"""The adapter API's signature templates (EIP712 and hashList) verified against a FinID, including typed data
signed by eth-account (a wallet), nested structs as FinP2P's own templates use them, and every way to cheat."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from finp2p.adapter import router
from finp2p.assets import router_templates
from finp2p.assets.router_templates import PUBLISHED_TYPES, authorising_leg, issue_leg
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import eip712
from finp2p.identity.canonical import keccak256
from finp2p.identity.keys import SigningKey
from finp2p.identity.templates import template_digest, verify_signature
from tests.support.adapter import ROUTER_DOMAIN

# FinP2P's own typed data: a sale with nested FinId and Term structs.
TYPES, DOMAIN = PUBLISHED_TYPES["Selling"], ROUTER_DOMAIN


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
    # A string field's bytes are its UTF-8, a bytes field's the hex it holds (as FinP2P's routers write them).
    groups = [
        [("nonce", "bytes", "a1b2c3"), ("operation", "string", "transfer")],
        [("asset", "string", "bank-a:102:bond"), ("amount", "string", "25")],
    ]

    def raw(kind: str, value: str) -> bytes:
        return bytes.fromhex(value) if kind == "bytes" else value.encode()

    group_hashes = [hasher(b"".join(raw(t, v) for _, t, v in g)) for g in groups]
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
    cheat["template"]["hashGroups"][1]["fields"][1]["value"] = "2500"
    with pytest.raises(FinP2PError) as exc:
        verify_signature(cheat, key.fin_id)
    assert "hash group 1" in exc.value.detail
    with pytest.raises(FinP2PError) as exc:
        verify_signature({**signature, "hashFunc": "md5"}, key.fin_id)
    assert "unsupported hash function" in exc.value.detail


def _terms(signature: dict[str, Any]) -> router_templates.Terms:
    return router_templates.read(signature["template"])


def test_a_template_authorises_only_the_movement_it_names_each_party_in_its_role() -> None:
    seller, buyer, mallory = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    asset = "bank-a:102:bond"
    for signed in (
        router.selling_signature(seller, asset, 40, buyer.fin_id, router.nonce()),
        router.hash_list_signature(seller, "transfer", asset, 40, buyer.fin_id, router.nonce()),
    ):
        terms = _terms(signed)
        leg = authorising_leg(
            terms, signer=seller.fin_id, source=seller.fin_id, destination=buyer.fin_id, asset_id=asset, quantity=40
        )
        assert (leg.giver, leg.receiver, int(leg.amount)) == (seller.fin_id, buyer.fin_id, 40)
        for wrong, names in (
            ({"destination": mallory.fin_id}, "the party who receives"),  # signed "40 to the buyer", sent elsewhere
            ({"asset_id": "bank-a:102:other"}, "the asset"),
            ({"quantity": 41}, "the quantity"),
            ({"source": buyer.fin_id, "signer": buyer.fin_id}, "the party who gives"),
        ):
            args = {"signer": seller.fin_id, "source": seller.fin_id, "destination": buyer.fin_id, "asset_id": asset}
            with pytest.raises(FinP2PError) as exc:
                authorising_leg(terms, **{**args, "quantity": 40, **wrong})  # type: ignore[arg-type]
            assert exc.value.code is ErrorCode.CONSENT_INVALID and names in exc.value.detail, (wrong, exc.value)
        with pytest.raises(FinP2PError) as exc:  # signed by the seller, presented as the buyer's consent
            authorising_leg(
                terms, signer=buyer.fin_id, source=seller.fin_id, destination=buyer.fin_id, asset_id=asset, quantity=40
            )
        assert exc.value.code is ErrorCode.CONSENT_INVALID


def test_each_published_template_names_its_parties_in_their_roles() -> None:
    giver, receiver = SigningKey.generate(), SigningKey.generate()
    asset = "bank-a:102:bond"
    for kind in PUBLISHED_TYPES:
        signed = giver_signed = router.sign(
            giver,
            kind,
            router.message(
                kind, router.nonce(), giver=giver.fin_id, receiver=receiver.fin_id, asset_id=asset, quantity=5
            ),
        )
        terms = _terms(giver_signed)
        asset_leg = terms.legs[0]
        assert (asset_leg.giver, asset_leg.receiver) == (giver.fin_id, receiver.fin_id), kind
        assert terms.redemption == (kind == "Redemption")
        if kind != "Transfer":  # the settlement goes the other way, paid by the receiver of the asset
            settlement = terms.legs[1]
            assert (settlement.giver, settlement.receiver, settlement.asset_id) == (
                receiver.fin_id,
                giver.fin_id,
                "USD",
            )
        assert verify_signature(signed, giver.fin_id)
    sale = router.primary_sale_signature(receiver, giver.fin_id, asset, 5, router.nonce())
    leg = issue_leg(_terms(sale), signer=receiver.fin_id, destination=receiver.fin_id, asset_id=asset, quantity=5)
    assert leg.giver == giver.fin_id  # the issuer sells, the buyer receives


def test_templates_of_unknown_types_or_with_other_definitions_are_refused_as_such() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    body = router.message("Selling", "n", giver=key.fin_id, receiver=other.fin_id, asset_id="a:102:b", quantity=1)
    unknown = eip712.adapter_template(DOMAIN, "Gift", {"Gift": [("to", "string")]}, {"to": other.fin_id})
    swapped_types = {
        **TYPES,
        "Selling": [TYPES["Selling"][0], TYPES["Selling"][2], TYPES["Selling"][1], *TYPES["Selling"][3:]],
    }
    swapped = eip712.adapter_template(DOMAIN, "Selling", swapped_types, body)
    for template, what in ((unknown, "Gift"), (swapped, "differ"), ({"type": "JWT"}, "JWT")):
        with pytest.raises(FinP2PError) as exc:
            router_templates.read(template)
        assert exc.value.code is ErrorCode.TEMPLATE_UNSUPPORTED and what in exc.value.detail
    foreign = eip712.adapter_template({**DOMAIN, "name": "Other"}, "Selling", TYPES, body)
    with pytest.raises(FinP2PError) as exc:
        router_templates.read(foreign)
    assert exc.value.code is ErrorCode.CONSENT_INVALID


def test_published_template_digests_match_ownera_platform_vectors_and_eth_account() -> None:
    """Digests captured from FinP2P's platform (kept in Ownera's finp2p-contracts tests): a Transfer signed by its
    seller, and a Loan in another domain; eth-account agrees on every published type."""
    seller = "0376339d3cd3c44d704d27cfba39e13234732f47f2d10927c4f3a7b5032daa3649"
    buyer = "0341bf2178bc4e047f5782f3a25ed4ffd742edf4604ba22ae2f771036d3e4a6710"
    asset = {"assetId": "org-a:102:bb4dfc13-fa75-4387-82eb-2efaeabad499", "assetType": "finp2p", "amount": "1"}
    transfer = {"nonce": "866c6baf0e2a1856bc25ba00436de5e0", "buyer": {"idkey": buyer}, "seller": {"idkey": seller}}
    transfer["asset"] = asset
    template = eip712.adapter_template(DOMAIN, "Transfer", PUBLISHED_TYPES["Transfer"], transfer)
    assert template["hash"] == "f86f07b52453bb32d98f8aa392bde5deb71c8e60176454883bc2c8a80cd59a49"
    signature = {
        "signature": "2add321a53b6bdb70c337040bf065f3dd0b549239afe7f33fcf955bca07d0efd"
        "2c6e254ff6936db1113075ea64993e6374d32c98959194e2305a591eeb6af32d1c",
        "template": template,
        "hashFunc": "keccak_256",
    }
    verify_signature(signature, seller)  # a wallet's 65-byte signature, by the party who gives
    leg = authorising_leg(
        _terms(signature), signer=seller, source=seller, destination=buyer, asset_id=asset["assetId"], quantity=1
    )
    assert (leg.giver, leg.receiver) == (seller, buyer)
    loan = {
        "nonce": "e78c3a7f564c19667a7d90285e7fe443eca8403d45a2eea80000000067d1907d",
        "borrower": {"idkey": "03da4a23d6385d7f591350f55d98176902580b8ed0412fe54de28a59d5fd5d1af7"},
        "lender": {"idkey": "02d34fde92bcd3baef081118e1e5fe9154ff47176a4118cc27b10f5347a56bec23"},
        "asset": {"assetId": "bank-us:102:66fe5a05-ffc6-4754-8d46-68e8abd0e083", "assetType": "finp2p", "amount": "1"},
        "settlement": {"assetId": "USD", "assetType": "fiat", "amount": "900"},
        "loanTerms": {
            "openTime": "1741787256",
            "closeTime": "1741787271",
            "borrowedMoneyAmount": "900",
            "returnedMoneyAmount": "900.25",
        },
    }
    loan_domain = {**DOMAIN, "chainId": 1337, "verifyingContract": "0x5FbDB2315678afecb367f032d93F642f64180aa3"}
    digest = eip712.digest(loan_domain, "Loan", PUBLISHED_TYPES["Loan"], loan)
    assert digest.hex() == "28fc646eb6470c62252c9d4c2092bf34d86e590983429580b04578a8ff37e171"
    for kind, types in PUBLISHED_TYPES.items():
        key = SigningKey.generate()
        body = router.message(kind, "n", giver=key.fin_id, receiver=buyer, asset_id="a:102:b", quantity=3)
        typed = eip712.wallet_json(DOMAIN, kind, types, body)
        signed = Account.from_key(key.secret_bytes()).sign_message(encode_typed_data(full_message=typed))
        assert eip712.digest(DOMAIN, kind, types, body) == bytes(signed.message_hash), kind
