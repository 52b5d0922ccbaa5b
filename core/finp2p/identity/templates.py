"""The investor signature templates of FinP2P's ledger-adapter API, verified against the signer's FinID.

A template says what was signed; its ``hash`` is the digest the signature is over. Verifying means recomputing the
digest from the template (a template whose hash does not follow from its content is refused, so nothing unsigned
can ride along), then checking the signature over it with the FinID's key.

- ``EIP712``: typed data: domain, type definitions, primary type, message. Digest:
  ``keccak256(0x1901 || domainSeparator || hashStruct(message))``.
- ``hashList``: ordered hash groups of fields. A field's bytes are its value's UTF-8, or for a ``bytes`` field the
  hex it holds (as FinP2P's routers write them); a group's hash is the hash of its fields' bytes concatenated; the
  template's hash is the hash of the groups' hashes concatenated, with the ``hashFunc`` given (keccak-256,
  sha3-256 or blake2b-256).

What a template authorises, read from its terms, is :mod:`finp2p.assets.router_templates`'s business.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import eip712, keys
from finp2p.identity.canonical import keccak256

#: The adapter API's error code for a signature that fails verification (``receiptOperationErrorInformation``).
SIGNATURE_ERROR_CODE = 4

_HASHES: dict[str, Callable[[bytes], bytes]] = {
    "unspecified": keccak256,
    "keccak_256": keccak256,
    "keccak-256": keccak256,
    "sha3_256": lambda data: hashlib.sha3_256(data).digest(),
    "sha3-256": lambda data: hashlib.sha3_256(data).digest(),
    "blake2b": lambda data: hashlib.blake2b(data, digest_size=32).digest(),
}


def _invalid(detail: str) -> FinP2PError:
    return FinP2PError(ErrorCode.CONSENT_INVALID, detail)


def _hex(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise _invalid(f"{what} must be a hex string")
    try:
        return bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise _invalid(f"{what} is not hex") from None


def template_digest(template: Any, hash_func: str = "keccak-256") -> bytes:
    """The digest a template stands for, recomputed from its content; FP7009 when its ``hash`` says otherwise."""
    if not isinstance(template, dict):
        raise _invalid("the signature template must be an object")
    kind = template.get("type")
    if kind == "EIP712":
        try:
            domain, primary, types, message = eip712.from_adapter_template(template)
            digest = eip712.digest(domain, primary, types, message)
        except (KeyError, TypeError, ValueError) as exc:
            raise _invalid(f"the EIP712 template is malformed ({exc!r})") from None
    elif kind == "hashList":
        digest = _hash_list(template, hash_func)
    else:
        raise _invalid(f"unknown signature template type {kind!r}: EIP712 or hashList")
    stated = template.get("hash")
    if stated not in (None, "") and _hex(stated, "the template's hash") != digest:
        raise _invalid("the template's hash does not follow from its content")
    return digest


def _hash_list(template: dict[str, Any], hash_func: str) -> bytes:
    hasher = _HASHES.get(hash_func)
    if hasher is None:
        raise _invalid(f"unsupported hash function {hash_func!r}: {', '.join(sorted(_HASHES))}")
    groups = template.get("hashGroups")
    if not isinstance(groups, list) or not groups:
        raise _invalid("a hashList template needs hashGroups")
    group_hashes = []
    for n, group in enumerate(groups):
        fields = group.get("fields") if isinstance(group, dict) else None
        if not isinstance(fields, list):
            raise _invalid(f"hash group {n} has no fields")
        value = b"".join(_field_bytes(f, f"field {n}.{i}") for i, f in enumerate(fields))
        computed = hasher(value)
        stated = group.get("hash")
        if stated not in (None, "") and _hex(stated, f"hash group {n}'s hash") != computed:
            raise _invalid(f"hash group {n}'s hash does not follow from its fields")
        group_hashes.append(computed)
    return hasher(b"".join(group_hashes))


def _field_bytes(field: Any, what: str) -> bytes:
    if not isinstance(field, dict) or not isinstance(field.get("value"), str):
        raise _invalid(f"hashList {what} has no string value")
    if field.get("type") == "bytes":
        return _hex(field["value"], f"hashList {what}")
    return str(field["value"]).encode("utf-8")


def verify_signature(signature: Any, signer: str) -> bytes:
    """Check an adapter ``signature`` object (``signature``, ``template``, ``hashFunc``) against ``signer``'s FinID.
    Returns the digest signed; FP7009 names what is wrong."""
    if not isinstance(signature, dict):
        raise _invalid("the signature is missing")
    digest = template_digest(signature.get("template"), str(signature.get("hashFunc") or "keccak-256"))
    raw = _hex(signature.get("signature"), "the signature")
    if len(raw) == 65:  # r || s || v, as wallets write it: v adds nothing once the signer is known
        raw = raw[:64]
    try:
        good = len(raw) == 64 and keys.verify_digest(keys.check_fin_id(signer), digest, raw)
    except FinP2PError:
        good = False
    if not good:
        raise _invalid(f"the signature is not {signer[:16]}…'s over the template")
    return digest


def hash_list_template(
    groups: list[list[tuple[str, str]]], hash_func: str = "keccak-256", *, bytes_fields: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """A hashList template of text fields (``bytes_fields`` hold hex), with its groups' hashes and its own."""
    hasher = _HASHES[hash_func]
    out_groups = []
    for fields in groups:
        typed = [{"name": n, "type": "bytes" if n in bytes_fields else "string", "value": v} for n, v in fields]
        values = [_field_bytes(f, str(f["name"])) for f in typed]
        out_groups.append({"hash": hasher(b"".join(values)).hex(), "fields": typed})
    digest = hasher(b"".join(bytes.fromhex(g["hash"]) for g in out_groups))  # type: ignore[arg-type]
    return {"type": "hashList", "hashGroups": out_groups, "hash": digest.hex()}
