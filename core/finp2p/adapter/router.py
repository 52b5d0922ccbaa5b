"""What a FinP2P router asks an investor to sign before it sends an operation to a ledger adapter: FinP2P's own
templates (:mod:`finp2p.assets.router_templates`), in the router's EIP-712 domain (chain id 1, verifying contract
0x0, as FinP2P's routers sign), or their hashList form. Used by the demo, the tests and the benchmarks to act as a
router."""

from __future__ import annotations

import os
import time
from typing import Any

from finp2p.assets.router_templates import ASSET_PARTIES, PUBLISHED_TYPES
from finp2p.identity import eip712
from finp2p.identity.keys import SigningKey
from finp2p.identity.templates import hash_list_template

DOMAIN = {"name": "FinP2P", "version": "1", "chainId": 1, "verifyingContract": "0x" + "00" * 20}
#: A settlement term for the templates that have one (a price in a currency).
DEFAULT_SETTLEMENT = {"assetId": "USD", "assetType": "fiat", "amount": "100"}


def nonce() -> str:
    """The spec's nonce: 24 random bytes and an 8-byte epoch timestamp, in hex."""
    return os.urandom(24).hex() + int(time.time()).to_bytes(8, "big").hex()


def message(
    primary_type: str,
    the_nonce: str,
    *,
    giver: str,
    receiver: str,
    asset_id: str,
    quantity: int | str,
    asset_type: str = "finp2p",
    settlement: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A template's message: ``quantity`` of ``asset_id`` from ``giver`` to ``receiver``, each in the role the
    template gives the party that gives or receives the asset (the seller and the buyer of a Selling, the issuer
    and the buyer of a PrimarySale, the investor and the issuer of a Redemption, ...)."""
    giver_role, receiver_role = ASSET_PARTIES[primary_type]
    out: dict[str, Any] = {
        "nonce": the_nonce,
        giver_role: {"idkey": giver},
        receiver_role: {"idkey": receiver},
        "asset": {"assetId": asset_id, "assetType": asset_type, "amount": str(quantity)},
    }
    fields = dict(PUBLISHED_TYPES[primary_type][primary_type])
    if "settlement" in fields:
        out["settlement"] = dict(settlement or DEFAULT_SETTLEMENT)
    if "loanTerms" in fields:
        out["loanTerms"] = {
            "openTime": str(int(time.time())),
            "closeTime": str(int(time.time()) + 86_400),
            "borrowedMoneyAmount": out["settlement"]["amount"],
            "returnedMoneyAmount": out["settlement"]["amount"],
        }
    return {name: out[name] for name in fields}


def sign(key: SigningKey, primary_type: str, body: dict[str, Any]) -> dict[str, Any]:
    """The adapter API's ``signature``: ``key``'s signature over the ``primary_type`` template of ``body``."""
    template = eip712.adapter_template(DOMAIN, primary_type, PUBLISHED_TYPES[primary_type], body)
    return _signed(key, template, "keccak-256")


def selling_signature(
    key: SigningKey, asset_id: str, quantity: int, counterparty: str, the_nonce: str
) -> dict[str, Any]:
    """``key`` sells ``quantity`` of ``asset_id`` to ``counterparty``: a Selling template, signed by the seller."""
    body = message("Selling", the_nonce, giver=key.fin_id, receiver=counterparty, asset_id=asset_id, quantity=quantity)
    return sign(key, "Selling", body)


def primary_sale_signature(
    buyer: SigningKey, issuer: str, asset_id: str, quantity: int, the_nonce: str
) -> dict[str, Any]:
    """``buyer`` buys ``quantity`` new units of ``asset_id`` from ``issuer``: a PrimarySale, signed by the buyer."""
    body = message("PrimarySale", the_nonce, giver=issuer, receiver=buyer.fin_id, asset_id=asset_id, quantity=quantity)
    return sign(buyer, "PrimarySale", body)


def hash_list_signature(
    key: SigningKey,
    operation: str,
    asset_id: str,
    quantity: int,
    destination: str | None,
    the_nonce: str,
    hash_func: str = "keccak-256",
) -> dict[str, Any]:
    """A hashList template's asset group (FinP2P's field names), signed by ``key``, the source."""
    fields = [
        ("nonce", the_nonce),
        ("operation", operation),
        ("assetType", "finp2p"),
        ("assetId", asset_id),
        ("srcAccountType", "finId"),
        ("srcAccount", key.fin_id),
    ]
    if destination is not None:
        fields += [("dstAccountType", "finId"), ("dstAccount", destination)]
    fields.append(("amount", str(quantity)))
    return _signed(key, hash_list_template([fields], hash_func, bytes_fields=frozenset({"nonce"})), hash_func)


def _signed(key: SigningKey, template: dict[str, Any], hash_func: str) -> dict[str, Any]:
    signature = key.sign_digest(bytes.fromhex(template["hash"].removeprefix("0x"))).hex()
    return {"signature": signature, "template": template, "hashFunc": hash_func}
