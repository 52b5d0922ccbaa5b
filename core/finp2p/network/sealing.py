"""Payloads encrypted for their final recipients, so that nodes forwarding them cannot read them.

ECIES on the recipients' FinIDs (secp256k1): an ephemeral key agrees a secret with each recipient (ECDH), HKDF
turns it into a key that wraps one random content key (AES-256-GCM), and the content is encrypted once under the
content key with the broadcast id as associated data (so a sealed payload cannot be moved to another broadcast).
"""

from __future__ import annotations

import os
from typing import Any

import coincurve
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from finp2p.edge.json_input import read_json
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.canonical import canonical
from finp2p.identity.keys import SigningKey, check_fin_id


def _kek(shared: bytes, ephemeral: str, recipient: str) -> bytes:
    info = b"finp2p-sealed-v1|" + ephemeral.encode() + b"|" + recipient.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def seal_for(payload: dict[str, Any], recipients: list[str], context: str) -> dict[str, Any]:
    ephemeral = coincurve.PrivateKey()
    eph_pub = ephemeral.public_key.format(compressed=True).hex()
    content_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    wrapped = {}
    for fin_id in sorted(set(recipients)):
        shared = ephemeral.ecdh(bytes.fromhex(check_fin_id(fin_id)))
        wrap_nonce = os.urandom(12)
        wrapped[fin_id] = (
            wrap_nonce + AESGCM(_kek(shared, eph_pub, fin_id)).encrypt(wrap_nonce, content_key, None)
        ).hex()
    ciphertext = AESGCM(content_key).encrypt(nonce, canonical(payload), context.encode())
    return {"ephemeral": eph_pub, "keys": wrapped, "nonce": nonce.hex(), "ciphertext": ciphertext.hex()}


def open_sealed(sealed: Any, key: SigningKey, context: str) -> dict[str, Any]:
    try:
        wrapped = bytes.fromhex(sealed["keys"][key.fin_id])
    except (KeyError, TypeError, ValueError):
        raise FinP2PError(ErrorCode.NOT_FOR_US, "this node is not among the payload's recipients") from None
    try:
        private = coincurve.PrivateKey(key.secret_bytes())
        shared = private.ecdh(bytes.fromhex(sealed["ephemeral"]))
        content_key = AESGCM(_kek(shared, sealed["ephemeral"], key.fin_id)).decrypt(wrapped[:12], wrapped[12:], None)
        plain = AESGCM(content_key).decrypt(
            bytes.fromhex(sealed["nonce"]), bytes.fromhex(sealed["ciphertext"]), context.encode()
        )
        value = read_json(plain, what="the sealed payload", max_bytes=len(plain))
    except (InvalidTag, KeyError, TypeError, ValueError) as exc:
        raise FinP2PError(ErrorCode.NOT_FOR_US, f"the sealed payload does not open: {type(exc).__name__}") from None
    if not isinstance(value, dict):
        raise FinP2PError(ErrorCode.MALFORMED, "a sealed payload holds an object")
    return value
