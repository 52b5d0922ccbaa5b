"""Signed envelopes: every message between nodes travels in one.

An envelope names its network, type, id, sender (FinID and organization), recipients, timestamp and a random nonce,
carries a JSON body, and is signed by the sender's FinID key over the canonical encoding of all of that in the
``envelope`` domain. The sender's credential chain rides along, outside the signature (it is signed by its
issuers), so a receiver can verify a sender it has never seen.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import orjson

from finp2p import clock
from finp2p.edge.identifiers import MESSAGE_TYPE, NETWORK_ID, ORG_ID, TOKEN
from finp2p.edge.json_input import read_json_object
from finp2p.edge.numbers import check_unix_ms
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import keys
from finp2p.identity.canonical import canonical, digest_of_canonical, is_plain
from finp2p.identity.credentials import Credential

#: The fields the signature covers, besides the version (:meth:`Envelope.signed_part`).
_SIGNED_FIELDS = (
    "network_id",
    "type",
    "id",
    "sender",
    "sender_org",
    "recipients",
    "timestamp_ms",
    "nonce",
    "body",
    "in_reply_to",
    "idempotency_key",
)

#: The largest envelope a node reads (the transport's own limit, ``[peer] max_body_bytes``, is usually lower).
MAX_ENVELOPE_BYTES = 64 << 20


@dataclass(frozen=True)
class Envelope:
    network_id: str
    type: str
    id: str
    sender: str
    sender_org: str | None
    recipients: tuple[str, ...]
    timestamp_ms: int
    nonce: str
    body: dict[str, Any]
    in_reply_to: str | None = None
    #: Retries of one request carry the same key (each in a new envelope); the receiver runs it once.
    idempotency_key: str | None = None
    signature: str = ""
    chain: tuple[Credential, ...] = field(default=(), repr=False)

    def signed_part(self) -> dict[str, Any]:
        return {
            "version": 1,
            "network_id": self.network_id,
            "type": self.type,
            "id": self.id,
            "sender": self.sender,
            "sender_org": self.sender_org,
            "recipients": list(self.recipients),
            "timestamp_ms": self.timestamp_ms,
            "nonce": self.nonce,
            "in_reply_to": self.in_reply_to,
            "idempotency_key": self.idempotency_key,
            "body": self.body,
        }

    def canonical_bytes(self) -> bytes:
        """The canonical encoding of :meth:`signed_part`, computed once per envelope (it is signed, checked and
        sent). An envelope is immutable, so the bytes cannot go stale; :func:`dataclasses.replace` makes a new one."""
        cached: bytes | None = self.__dict__.get("_canonical")
        if cached is None:
            cached = _canonical_signed_part({f: getattr(self, f) for f in _SIGNED_FIELDS})
            object.__setattr__(self, "_canonical", cached)
        return cached

    def digest(self) -> bytes:
        return digest_of_canonical("envelope", self.canonical_bytes())

    def verify(self, *, known: Collection[str] | Callable[[], Collection[str]] | None = None) -> None:
        """Check the signature by :attr:`sender` over the signed part; raise why it fails (see :func:`keys.verify`)."""
        keys.verify_signed_digest(self.sender, "envelope", self.digest(), self.signature, known=known)

    def to_dict(self) -> dict[str, Any]:
        out = {**self.signed_part(), "signature": self.signature}
        if self.chain:
            out["chain"] = [c.to_dict() for c in self.chain]
        return out

    def encode(self) -> bytes:
        """The wire form: the canonical signed part with the signature and the chain added to the object (a reader
        parses it as JSON, and recomputes the canonical part from what it parsed)."""
        tail = b',"signature":' + orjson.dumps(self.signature)
        if self.chain:
            tail += b',"chain":' + _chain_json(self.chain)
        return self.canonical_bytes()[:-1] + tail + b"}"

    @classmethod
    def decode(cls, raw: bytes, max_bytes: int = MAX_ENVELOPE_BYTES) -> Envelope:
        data = read_json_object(raw, what="the envelope", max_bytes=max_bytes)
        try:
            if data.get("version") != 1:
                raise ValueError("version must be 1")
            type_ = MESSAGE_TYPE.check(data["type"], "type")
            recipients = data["recipients"]
            if not isinstance(recipients, list) or len(recipients) > 1000:
                raise ValueError("recipients must be a list of at most 1,000 organization ids")
            for r in recipients:
                ORG_ID.check(r, "a recipient")
            body = data["body"]
            if not isinstance(body, dict):
                raise ValueError("body must be an object")
            nonce = data["nonce"]
            keys.decode_hex(nonce, "nonce", 16)
            keys.decode_hex(data["signature"], "signature", 64)
            sender_org, reply_to, idem = data["sender_org"], data["in_reply_to"], data.get("idempotency_key")
            if idem is not None:
                TOKEN.check(idem, "idempotency_key")
            if sender_org is not None:
                ORG_ID.check(sender_org, "sender_org")
            if reply_to is not None:
                TOKEN.check(reply_to, "in_reply_to")
            ts = check_unix_ms(data["timestamp_ms"], "timestamp_ms")
            envelope_id = TOKEN.check(data["id"], "id")
            chain = _decode_chain(data.get("chain") or [])
            return cls(
                network_id=NETWORK_ID.check(data["network_id"], "network_id"),
                type=type_,
                id=envelope_id,
                sender=keys.check_fin_id(data["sender"], "sender"),
                sender_org=sender_org,
                recipients=tuple(recipients),
                timestamp_ms=ts,
                nonce=nonce,
                body=body,
                in_reply_to=reply_to,
                idempotency_key=idem,
                signature=data["signature"],
                chain=chain,
            )
        except KeyError as exc:
            raise FinP2PError(ErrorCode.MALFORMED, f"the envelope lacks the field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise FinP2PError(ErrorCode.MALFORMED, f"envelope: {exc}") from None


def seal(
    key: keys.SigningKey,
    *,
    network_id: str,
    type: str,
    body: dict[str, Any],
    sender_org: str | None,
    recipients: tuple[str, ...] = (),
    chain: tuple[Credential, ...] = (),
    in_reply_to: str | None = None,
    idempotency_key: str | None = None,
    now_ms: int | None = None,
) -> Envelope:
    fields: dict[str, Any] = {
        "network_id": network_id,
        "type": type,
        "id": os.urandom(16).hex(),
        "sender": key.fin_id,
        "sender_org": sender_org,
        "recipients": recipients,
        "timestamp_ms": now_ms if now_ms is not None else clock.now_ms(),
        "nonce": os.urandom(16).hex(),
        "body": body,
        "in_reply_to": in_reply_to,
        "idempotency_key": idempotency_key,
    }
    encoded = _canonical_signed_part(fields)
    signed = Envelope(**fields, signature=key.sign_digest(digest_of_canonical("envelope", encoded)).hex(), chain=chain)
    object.__setattr__(signed, "_canonical", encoded)  # made once, above: the signature is not part of it
    return signed


def _canonical_signed_part(fields: dict[str, Any]) -> bytes:
    """The canonical bytes of the signed part of an envelope with these ``fields`` (see :meth:`Envelope.signed_part`).

    When every header is of its exact type, only the body is walked for values without a canonical form before
    orjson writes the whole; otherwise :func:`canonical` checks everything."""
    part = {"version": 1, **fields, "recipients": list(fields["recipients"])}
    if (
        all(type(part[k]) is str for k in _STR_HEADERS)
        and all(type(part[k]) is str or part[k] is None for k in _OPTIONAL_HEADERS)
        and type(part["timestamp_ms"]) is int
        and all(type(r) is str for r in part["recipients"])
        and type(part["body"]) is dict
        and is_plain(part["body"])
    ):
        try:
            return orjson.dumps(part, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # explained by the checked encoding
    return canonical(part)


_STR_HEADERS = ("network_id", "type", "id", "sender", "nonce")
_OPTIONAL_HEADERS = ("sender_org", "in_reply_to", "idempotency_key")


# -- credential chains: the same few on every message ------------------------------------------------------------
#: Chains encoded or decoded lately, each kept with the value it was made from; bounded, oldest dropped first.
_CACHE_SIZE = 1024
_encoded: dict[int, tuple[tuple[Credential, ...], bytes]] = {}
_decoded: dict[str, tuple[list[Any], tuple[Credential, ...]]] = {}


def _chain_json(chain: tuple[Credential, ...]) -> bytes:
    """A chain's JSON, encoded once per chain object (a node sends its own chain with every envelope)."""
    hit = _encoded.get(id(chain))
    if hit is not None and hit[0] is chain:  # the chain is held by the cache, so its id is not reused meanwhile
        return hit[1]
    raw = orjson.dumps([c.to_dict() for c in chain])
    _remember(_encoded, id(chain), (chain, raw))
    return raw


def _decode_chain(data: Any) -> tuple[Credential, ...]:
    """Credentials from an envelope's chain; a chain equal to one decoded lately is that one's result (decoding
    is a function of the JSON alone; its signatures and validity are verified by the receiver every time)."""
    if not isinstance(data, list) or len(data) > 8:
        raise ValueError("chain must be a list of at most 8 credentials")
    if not data:
        return ()
    head = data[0].get("signature") if isinstance(data[0], dict) else None
    if isinstance(head, str):
        hit = _decoded.get(head)
        if hit is not None and hit[0] == data:
            return hit[1]
    chain = tuple(Credential.from_dict(c) for c in data)
    _remember(_decoded, chain[0].signature, (data, chain))
    return chain


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        with contextlib.suppress(StopIteration, KeyError, RuntimeError):  # another thread dropped it first
            del cache[next(iter(cache))]
    cache[key] = value
