"""Secrets at rest, encrypted under a passphrase: scrypt for the key, AES-256-GCM for the secret."""

from __future__ import annotations

import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from finp2p.errors import ErrorCode, FinP2PError

SCRYPT_N = 2**15  # about 0.1 s per unlock, 32 MiB of memory: slow for a guesser, fine for a node starting up


def _kdf(passphrase: bytes, salt: bytes, n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(passphrase)


def seal_secret(secret: bytes, passphrase: bytes) -> dict[str, Any]:
    salt, nonce = os.urandom(16), os.urandom(12)
    ciphertext = AESGCM(_kdf(passphrase, salt, SCRYPT_N)).encrypt(nonce, secret, b"finp2p-key-v1")
    return {
        "kdf": "scrypt",
        "n": SCRYPT_N,
        "r": 8,
        "p": 1,
        "salt": salt.hex(),
        "nonce": nonce.hex(),
        "ciphertext": ciphertext.hex(),
        "cipher": "aes-256-gcm",
    }


def open_secret(sealed: Any, passphrase: bytes, where: str) -> bytes:
    try:
        n = int(sealed["n"])
        if sealed.get("kdf") != "scrypt" or sealed.get("cipher") != "aes-256-gcm" or not 2**10 <= n <= 2**20:
            raise ValueError("unsupported parameters")
        key = _kdf(passphrase, bytes.fromhex(sealed["salt"]), n)
        return AESGCM(key).decrypt(
            bytes.fromhex(sealed["nonce"]), bytes.fromhex(sealed["ciphertext"]), b"finp2p-key-v1"
        )
    except InvalidTag:
        raise FinP2PError(ErrorCode.KEY_FILE, f"{where}: wrong passphrase") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise FinP2PError(ErrorCode.KEY_FILE, f"{where}: the encrypted key is malformed ({exc})") from None
