"""secp256k1 keys, FinIDs and signatures.

A FinID is the lowercase hex of a compressed secp256k1 public key (33 bytes, 66 hex digits). Signatures are 64 bytes,
``r || s`` with low S (libsecp256k1 only makes and only accepts those), so they are verifiable by anyone holding the
FinID and on-chain with ``ecrecover`` against the address derived from it (trying v = 27 and 28).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import coincurve
from coincurve._libsecp256k1 import ffi as _ffi  # type: ignore[import-not-found]
from coincurve._libsecp256k1 import lib as _lib
from coincurve.context import GLOBAL_CONTEXT

from finp2p.edge.files import write_private
from finp2p.edge.identifiers import FIN_ID
from finp2p.edge.json_input import read_json_object
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import canonical as canon

_CTX = GLOBAL_CONTEXT.ctx
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def check_fin_id(fin_id: Any, what: str = "FinID") -> str:
    """Return ``fin_id`` if it is a well-formed FinID, else raise FP2001."""
    if not FIN_ID.matches(fin_id):
        raise FinP2PError(ErrorCode.MALFORMED, f"{what} must be 66 lowercase hex digits of a compressed key")
    return str(fin_id)


@functools.lru_cache(maxsize=65536)
def _public_key(fin_id: str) -> coincurve.PublicKey:
    try:
        return coincurve.PublicKey(bytes.fromhex(check_fin_id(fin_id)))
    except ValueError:
        raise FinP2PError(ErrorCode.MALFORMED, f"FinID {fin_id[:12]}… is not a point on secp256k1") from None


def check_point(fin_id: Any, what: str = "FinID") -> str:
    """Return ``fin_id`` if it is a well-formed FinID and a point on secp256k1 (a key someone can sign with), else
    raise FP2001."""
    _public_key(check_fin_id(fin_id, what))
    return str(fin_id)


def eth_address(fin_id: str) -> str:
    """The Ethereum address of a FinID, EIP-55 checksummed."""
    raw = _public_key(fin_id).format(compressed=False)[1:]
    hex_addr = canon.keccak256(raw)[-20:].hex()
    check = canon.keccak256(hex_addr.encode()).hex()
    return "0x" + "".join(c.upper() if int(check[i], 16) >= 8 else c for i, c in enumerate(hex_addr))


def _check_signature(signature: bytes) -> None:
    if len(signature) != 64:
        raise FinP2PError(ErrorCode.MALFORMED, f"a signature is 64 bytes (r || s), got {len(signature)}")
    s = int.from_bytes(signature[32:], "big")
    if not 0 < s <= _SECP256K1_N // 2:
        raise FinP2PError(ErrorCode.MALFORMED, "signature S is not in the low half of the curve order")


def verify_digest(fin_id: str, digest: bytes, signature: bytes) -> bool:
    """Whether ``signature`` over ``digest`` was made by the key of ``fin_id``.

    libsecp256k1 is called as coincurve calls it, on the compact form: no DER round trip per signature. It accepts
    low-S signatures only, so a high S fails verification, and is then refused as malformed, as before it."""
    if len(signature) != 64 or len(digest) != 32:
        _check_signature(signature)
        raise ValueError("verify a 32-byte digest")
    parsed = _SCRATCH.signature
    if _lib.secp256k1_ecdsa_signature_parse_compact(_CTX, parsed, signature) and _lib.secp256k1_ecdsa_verify(
        _CTX, parsed, digest, _public_key(fin_id).public_key
    ):
        return True
    _check_signature(signature)  # says why, when it is the signature's form
    return False


class _Scratch(threading.local):
    """libsecp256k1's in and out structures, made once per thread instead of for every signature."""

    def __init__(self) -> None:
        self.signature = _ffi.new("secp256k1_ecdsa_signature *")
        self.compact = _ffi.new("unsigned char[64]")


_SCRATCH = _Scratch()


def recover_fin_ids(digest: bytes, signature: bytes) -> set[str]:
    """The FinIDs that could have made ``signature`` over ``digest`` (used only to explain a failure)."""
    _check_signature(signature)
    found = set()
    for recid in (0, 1):
        try:
            key = coincurve.PublicKey.from_signature_and_message(signature + bytes([recid]), digest, hasher=None)
        except Exception:  # noqa: S112 - an unrecoverable candidate is simply not a candidate
            continue
        found.add(key.format(compressed=True).hex())
    return found


class SigningKey:
    """A secp256k1 private key. Never printed, never logged: ``repr`` shows only the FinID."""

    __slots__ = ("_key", "fin_id")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise FinP2PError(ErrorCode.KEY_FILE, "a secp256k1 private key is 32 bytes")
        try:
            self._key = coincurve.PrivateKey(secret)
        except ValueError:
            raise FinP2PError(ErrorCode.KEY_FILE, "the private key is not a valid secp256k1 scalar") from None
        self.fin_id = self._key.public_key.format(compressed=True).hex()

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(os.urandom(32))

    def __repr__(self) -> str:
        return f"SigningKey(fin_id={self.fin_id})"

    @property
    def address(self) -> str:
        return eth_address(self.fin_id)

    def secret_bytes(self) -> bytes:
        return bytes(self._key.secret)

    def sign_digest(self, digest: bytes) -> bytes:
        """``r || s``, low S, RFC 6979 nonces: libsecp256k1's compact signature, as coincurve makes it."""
        if len(digest) != 32:
            raise ValueError("sign a 32-byte digest")
        sig, out = _SCRATCH.signature, _SCRATCH.compact
        if not _lib.secp256k1_ecdsa_sign(_CTX, sig, digest, self._key.secret, _ffi.NULL, _ffi.NULL):
            raise FinP2PError(ErrorCode.KEY_FILE, "libsecp256k1 could not sign with this key")
        _lib.secp256k1_ecdsa_signature_serialize_compact(_CTX, out, sig)
        return bytes(_ffi.buffer(out, 64))

    def sign_digest_recoverable(self, digest: bytes) -> bytes:
        """``r || s || v`` with v 27 or 28, as Ethereum wallets write signatures (ecrecover takes it as it is)."""
        if len(digest) != 32:
            raise ValueError("sign a 32-byte digest")
        raw = bytes(self._key.sign_recoverable(digest, hasher=None))
        return raw[:64] + bytes([27 + raw[64]])

    def sign(self, domain: str, value: Any) -> bytes:
        return self.sign_digest(canon.digest(domain, value))


def verify(
    fin_id: str,
    domain: str,
    value: Any,
    signature_hex: Any,
    *,
    known: Collection[str] | Callable[[], Collection[str]] | None = None,
) -> None:
    """Check a hex signature over ``value`` in ``domain`` by ``fin_id``; raise why it fails.

    FP2003 when the signature is valid for another identity among ``known``; FP2002 for anything else that does not
    verify (changed content, unknown key); FP2001 for a signature that is not 64 bytes of hex with low S. ``known``
    may be a function giving the collection: it is called only when the signature fails, off the hot path.
    """
    verify_signed_digest(fin_id, domain, canon.digest(domain, value), signature_hex, known=known)


def verify_signed_digest(
    fin_id: str,
    domain: str,
    digest: bytes,
    signature_hex: Any,
    *,
    known: Collection[str] | Callable[[], Collection[str]] | None = None,
) -> None:
    """:func:`verify` of a value whose ``domain`` digest is at hand (:func:`canonical.digest`). The signature is
    hex, or the 64 bytes it decodes to (decoded once by a reader that checked it)."""
    signature = signature_hex if type(signature_hex) is bytes else decode_hex(signature_hex, "signature", 64)
    if not verify_digest(fin_id, digest, signature):
        refuse_signature(fin_id, domain, digest, signature, known=known)


def refuse_signature(
    fin_id: str,
    domain: str,
    digest: bytes,
    signature: bytes,
    *,
    known: Collection[str] | Callable[[], Collection[str]] | None = None,
) -> None:
    """Raise why ``signature`` (64 bytes) over ``digest``, which did not verify for ``fin_id``, is refused: FP2003
    when another identity among ``known`` made it, FP2002 otherwise (see :func:`verify`)."""
    candidates = known() if callable(known) else known
    others = recover_fin_ids(digest, signature) & set(candidates or ())
    if others:
        raise FinP2PError(
            ErrorCode.WRONG_SIGNER, f"the {domain} names {fin_id[:12]}… but was signed by {sorted(others)[0][:12]}…"
        )
    raise FinP2PError(ErrorCode.BAD_SIGNATURE, f"the {domain}'s signature does not verify for {fin_id[:12]}…")


def decode_signature(value: str) -> bytes:
    """A signature as wallets and routers write it: hex with or without 0x, 64 bytes (r || s) or 65 (with v);
    the 64 bytes ``r || s``. FP2001 otherwise."""
    raw = decode_hex(value.removeprefix("0x"), "signature")
    if len(raw) == 65:
        raw = raw[:64]
    if len(raw) != 64:
        raise FinP2PError(ErrorCode.MALFORMED, f"a signature is 64 or 65 bytes, got {len(raw)}")
    return raw


def decode_hex(value: Any, what: str, length: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise FinP2PError(ErrorCode.MALFORMED, f"{what} must be a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise FinP2PError(ErrorCode.MALFORMED, f"{what} is not hex") from None
    if length is not None and len(raw) != length:
        raise FinP2PError(ErrorCode.MALFORMED, f"{what} must be {length} bytes, got {len(raw)}")
    return raw


# -- key files ---------------------------------------------------------------------------------------------------
PASSPHRASE_ENV = "FINP2P_KEY_PASSPHRASE"  # noqa: S105 - the name of a variable, not a secret


def passphrase_from(file: Path | None = None, env: dict[str, str] | None = None) -> bytes | None:
    """The passphrase from ``file`` if given, else from FINP2P_KEY_PASSPHRASE, else none."""
    if file is not None:
        try:
            return file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise FinP2PError(ErrorCode.KEY_FILE, f"cannot read the passphrase file {file}: {exc.strerror}") from None
    value = (env if env is not None else os.environ).get(PASSPHRASE_ENV)
    return value.encode() if value else None


def save_key(path: Path, key: SigningKey, passphrase: bytes | None = None) -> None:
    """Write ``key`` to ``path`` (mode 0600, never group- or world-readable, not even for an instant)."""
    from finp2p.identity.sealed import seal_secret

    body: dict[str, Any] = {"version": 1, "kind": "secp256k1", "fin_id": key.fin_id}
    if passphrase:
        body["encrypted"] = seal_secret(key.secret_bytes(), passphrase)
    else:
        body["secret"] = key.secret_bytes().hex()
    write_private(path, canon.canonical(body) + b"\n")


def load_key(path: Path, passphrase: bytes | None = None) -> SigningKey:
    from finp2p.identity.sealed import open_secret

    try:
        mode = path.stat().st_mode
        raw = path.read_bytes()
    except OSError as exc:
        raise FinP2PError(ErrorCode.KEY_FILE, f"cannot read {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise FinP2PError(ErrorCode.KEY_FILE, f"{path} may be read by others (mode {mode & 0o777:o}); chmod 600 it")
    body = read_json_object(raw, what=f"key file {path}", max_bytes=64 * 1024)
    if "encrypted" in body:
        if not passphrase:
            raise FinP2PError(ErrorCode.KEY_FILE, f"{path} is encrypted and no passphrase was given")
        secret = open_secret(body["encrypted"], passphrase, str(path))
    else:
        secret = decode_hex(body.get("secret"), f"{path}: secret", 32)
    key = SigningKey(secret)
    if body.get("fin_id") != key.fin_id:
        raise FinP2PError(ErrorCode.KEY_FILE, f"{path}: the FinID recorded does not match the key")
    return key
