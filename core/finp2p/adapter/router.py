"""What a FinP2P router asks an investor to sign before it sends an operation to a ledger adapter: typed data in
FinP2P's own shape (a nonce, the parties' FinIDs, the asset term and the settlement term), not any ledger's domain.
Used by the demo, the tests and the benchmarks to act as a router; the adapter accepts any template that names the
signer, the asset and the quantity (:func:`finp2p.assets.templates.check_covers`)."""

from __future__ import annotations

import os
import time
from typing import Any

from finp2p.identity import eip712
from finp2p.identity.keys import SigningKey

DOMAIN = {"name": "FinP2P", "version": "1", "chainId": 1, "verifyingContract": "0x" + "00" * 20}
TYPES: dict[str, list[tuple[str, str]]] = {
    "FinId": [("idkey", "string")],
    "Term": [("assetId", "string"), ("assetType", "string"), ("amount", "string")],
    "Selling": [
        ("nonce", "string"),
        ("buyer", "FinId"),
        ("seller", "FinId"),
        ("asset", "Term"),
        ("settlement", "Term"),
    ],
}


def nonce() -> str:
    """The spec's nonce: 24 random bytes and an 8-byte epoch timestamp, in hex."""
    return os.urandom(24).hex() + int(time.time()).to_bytes(8, "big").hex()


def selling_signature(
    key: SigningKey, asset_id: str, quantity: int, counterparty: str, the_nonce: str
) -> dict[str, Any]:
    """The adapter API's ``signature``: ``key``'s signature over a Selling template of ``quantity`` units of
    ``asset_id`` to ``counterparty``."""
    message = {
        "nonce": the_nonce,
        "buyer": {"idkey": counterparty},
        "seller": {"idkey": key.fin_id},
        "asset": {"assetId": asset_id, "assetType": "finp2p", "amount": str(quantity)},
        "settlement": {"assetId": "USD", "assetType": "fiat", "amount": "100"},
    }
    template = eip712.adapter_template(DOMAIN, "Selling", TYPES, message)
    signature = key.sign_digest(bytes.fromhex(template["hash"])).hex()
    return {"signature": signature, "template": template, "hashFunc": "keccak-256"}
