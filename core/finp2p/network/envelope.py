"""Signed envelopes: every message between nodes travels in one.

An envelope names its network, type, id, sender (FinID and organization), recipients, timestamp and a random nonce,
carries a JSON body, and is signed by the sender's FinID key over the canonical encoding of all of that in the
``envelope`` domain. The sender's credential chain rides along, outside the signature (it is signed by its
issuers), so a receiver can verify a sender it has never seen.
"""

from __future__ import annotations

import contextlib
import operator
import os
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import orjson

from finp2p import clock
from finp2p.edge.identifiers import FIN_ID, HEX_16, MESSAGE_TYPE, NETWORK_ID, ORG_ID, TOKEN
from finp2p.edge.json_input import MAX_DEPTH, check_depth, check_size, read_json_object
from finp2p.edge.numbers import MAX_UNIX_MS, check_unix_ms
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import keys
from finp2p.identity.canonical import canonical, digest_of_canonical, is_plain
from finp2p.identity.credentials import Credential

#: The most organizations one envelope is addressed to.
MAX_RECIPIENTS = 1000
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
        return _signed_part_of(self.__dict__)

    def canonical_bytes(self) -> bytes:
        """The canonical encoding of :meth:`signed_part`, computed once per envelope (it is signed, checked and
        sent). An envelope is immutable, so the bytes cannot go stale; :func:`dataclasses.replace` makes a new one."""
        cached: bytes | None = self.__dict__.get("_canonical")
        if cached is None:
            cached = _canonical_signed_part(self.__dict__)
            object.__setattr__(self, "_canonical", cached)
        return cached

    def digest(self) -> bytes:
        return digest_of_canonical("envelope", self.canonical_bytes())

    def verify(self, *, known: Collection[str] | Callable[[], Collection[str]] | None = None) -> None:
        """Check the signature by :attr:`sender` over the signed part; raise why it fails (see :func:`keys.verify`)."""
        signature = self.__dict__.get("_signature_bytes")  # decoded once, when it was read or made
        digest = self.digest()
        if signature is None:
            keys.verify_signed_digest(self.sender, "envelope", digest, self.signature, known=known)
        elif not keys.verify_digest(self.sender, digest, signature):
            keys.refuse_signature(self.sender, "envelope", digest, signature, known=known)

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
        if type(raw) is not bytes:
            raw = bytes(raw)
        if len(raw) > max_bytes:
            check_size(raw, what="the envelope", max_bytes=max_bytes)
        # A chain is most of an envelope's bytes, and the same on every envelope from one sender: when the envelope
        # ends with a chain's bytes decoded lately, only what precedes them is parsed. The depth is checked part by
        # part: the body here, a chain when it is first decoded.
        known = _known_chain_at_end(raw)
        try:
            if known is not None:
                cut, chain = known
                data = _parsed(raw[:cut] + b"}", max_bytes)
            else:
                data = _parsed(raw, max_bytes)
                chain = _decode_chain(data.get("chain") or [], raw)
            values = _well_formed_fields_of(data)
            as_parsed = values is not None  # every field of ``data`` of its exact type: ``data`` is the signed part
            if values is None:
                values = _checked_fields_of(data)
            values["chain"] = chain
        except KeyError as exc:
            raise FinP2PError(ErrorCode.MALFORMED, f"the envelope lacks the field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise FinP2PError(ErrorCode.MALFORMED, f"envelope: {exc}") from None
        body = values["body"]
        if is_plain(body, max_depth=MAX_DEPTH - 1):  # as most are: the canonical bytes are orjson's, made now
            part = _signed_part_in(data) if as_parsed else None
            return _made(values, orjson.dumps(part or _signed_part_of(values), option=orjson.OPT_SORT_KEYS))
        check_depth(body, what="the envelope's body", max_depth=MAX_DEPTH - 1)
        return _made(values)  # its canonical bytes, or why it has none, when it is verified


def _parsed(raw: bytes, max_bytes: int) -> dict[str, Any]:
    """The JSON object ``raw`` holds, its size checked already; :func:`read_json_object` says what is wrong with a
    document that is not one."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if type(data) is dict:
        return data
    return read_json_object(raw, what="the envelope", max_bytes=max_bytes, max_depth=None)


#: The headers every envelope has, each of its kind, in one pattern: one match instead of one per field. The kinds'
#: own patterns are joined by a newline, which none of them matches.
_HEADER_KINDS = (NETWORK_ID, MESSAGE_TYPE, TOKEN, FIN_ID, HEX_16)
_HEADERS = re.compile("\n".join(k.pattern.pattern for k in _HEADER_KINDS), re.ASCII)
#: The same with the sender's organization last, as most envelopes name it.
_HEADERS_AND_ORG = re.compile("\n".join(k.pattern.pattern for k in (*_HEADER_KINDS, ORG_ID)), re.ASCII)


#: A list of organization ids joined by newlines, which an org id cannot hold: one match for all the recipients of a
#: delivery shared by many (fifty ``matches`` calls were a tenth of a subscriber's decoding).
_ORG_LINES = re.compile(f"(?:{ORG_ID.pattern.pattern})(?:\n(?:{ORG_ID.pattern.pattern}))*", re.ASCII)


#: The fields every envelope has (``idempotency_key`` is optional), read in one call.
_REQUIRED = operator.itemgetter(
    "network_id",
    "type",
    "id",
    "sender",
    "nonce",
    "signature",
    "recipients",
    "timestamp_ms",
    "body",
    "sender_org",
    "in_reply_to",
    "version",
)


def _well_formed_fields_of(data: dict[str, Any]) -> dict[str, Any] | None:
    """The envelope's fields when every one is of its kind, checked together (as most envelopes are); ``None``
    sends ``data`` to :func:`_checked_fields_of`, which says what is wrong (or accepts what this stricter test
    did not)."""
    try:
        network_id, type_, id_, sender, nonce, signature, recipients, ts, body, sender_org, reply_to, version = (
            _REQUIRED(data)
        )
    except KeyError:
        return None
    idem = data.get("idempotency_key")
    if type(sender_org) is str:  # as most name it: matched with the other headers
        headers, org_line = _HEADERS_AND_ORG, "\n" + sender_org
    elif sender_org is None:
        headers, org_line = _HEADERS, ""
    else:
        return None
    if (
        type(network_id) is str
        and type(type_) is str
        and type(id_) is str
        and type(sender) is str
        and type(nonce) is str
        and type(signature) is str
        and len(signature) == 128
        and headers.fullmatch(f"{network_id}\n{type_}\n{id_}\n{sender}\n{nonce}{org_line}") is not None
        and type(version) is int
        and version == 1
        and type(body) is dict
        and type(ts) is int
        and 0 <= ts <= MAX_UNIX_MS
        and type(recipients) is list
        and len(recipients) <= MAX_RECIPIENTS
        and (not recipients or _all_org_ids(recipients))
        and (reply_to is None or TOKEN.matches(reply_to))
        and (idem is None or TOKEN.matches(idem))
        and (signature_bytes := _hex_or_none(signature)) is not None
    ):
        return {
            "network_id": network_id,
            "type": type_,
            "id": id_,
            "sender": sender,
            "sender_org": sender_org,
            "recipients": tuple(recipients),
            "timestamp_ms": ts,
            "nonce": nonce,
            "body": body,
            "in_reply_to": reply_to,
            "idempotency_key": idem,
            "signature": signature,
            "_signature_bytes": signature_bytes,
        }
    return None


def _all_org_ids(values: list[Any]) -> bool:
    """Every value an org id, matched whole: one holding a newline of its own (``"bank-a\\nbank-b"``) is not two."""
    if not all(type(v) is str for v in values):
        return False
    joined = "\n".join(values)
    return joined.count("\n") == len(values) - 1 and _ORG_LINES.fullmatch(joined) is not None


def _hex_or_none(text: str) -> bytes | None:
    """The 64 bytes of a signature's hex, or ``None`` (``fromhex`` skips white space: the length is checked)."""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return None
    return raw if len(raw) == 64 else None


def _checked_fields_of(data: dict[str, Any]) -> dict[str, Any]:
    """The envelope's fields, each checked on its own: raises what is wrong with the first that is not right."""
    if data.get("version") != 1:
        raise ValueError("version must be 1")
    type_ = MESSAGE_TYPE.check(data["type"], "type")
    recipients = data["recipients"]
    if not isinstance(recipients, list) or len(recipients) > MAX_RECIPIENTS:
        raise ValueError(f"recipients must be a list of at most {MAX_RECIPIENTS:,} organization ids")
    for r in recipients:
        ORG_ID.check(r, "a recipient")
    body = data["body"]
    if not isinstance(body, dict):
        raise ValueError("body must be an object")
    nonce = data["nonce"]
    keys.decode_hex(nonce, "nonce", 16)
    signature_bytes = keys.decode_hex(data["signature"], "signature", 64)
    sender_org, reply_to, idem = data["sender_org"], data["in_reply_to"], data.get("idempotency_key")
    if idem is not None:
        TOKEN.check(idem, "idempotency_key")
    if sender_org is not None:
        ORG_ID.check(sender_org, "sender_org")
    if reply_to is not None:
        TOKEN.check(reply_to, "in_reply_to")
    return {
        "network_id": NETWORK_ID.check(data["network_id"], "network_id"),
        "type": type_,
        "id": TOKEN.check(data["id"], "id"),
        "sender": keys.check_fin_id(data["sender"], "sender"),
        "sender_org": sender_org,
        "recipients": tuple(recipients),
        "timestamp_ms": check_unix_ms(data["timestamp_ms"], "timestamp_ms"),
        "nonce": nonce,
        "body": body,
        "in_reply_to": reply_to,
        "idempotency_key": idem,
        "signature": data["signature"],
        "_signature_bytes": signature_bytes,
    }


def _made(values: dict[str, Any], canonical_bytes: bytes | None = None) -> Envelope:
    """An :class:`Envelope` of ``values`` (every one of its fields, checked), without the frozen dataclass's
    per-field ``__init__``: a third of decoding an envelope went to it. ``canonical_bytes``, when given, are its
    :meth:`Envelope.canonical_bytes`."""
    env = object.__new__(Envelope)
    held = env.__dict__
    held.update(values)
    if canonical_bytes is not None:
        held["_canonical"] = canonical_bytes
    return env


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
    random = os.urandom(32).hex()  # the id and the nonce: 16 bytes each
    fields: dict[str, Any] = {  # the signed part (see _signed_part_of), made here once and then the envelope's fields
        "version": 1,
        "network_id": network_id,
        "type": type,
        "id": random[:32],
        "sender": key.fin_id,
        "sender_org": sender_org,
        "recipients": list(recipients),
        "timestamp_ms": now_ms if now_ms is not None else clock.now_ms(),
        "nonce": random[32:],
        "in_reply_to": in_reply_to,
        "idempotency_key": idempotency_key,
        "body": body,
    }
    encoded = _canonical_of_part(fields)
    del fields["version"]
    fields["recipients"] = tuple(recipients)
    signature = key.sign_digest(digest_of_canonical("envelope", encoded))
    fields["signature"], fields["_signature_bytes"] = signature.hex(), signature
    fields["chain"] = chain
    return _made(fields, encoded)  # the canonical bytes made once, above: the signature is not part of them


def _signed_part_in(data: dict[str, Any]) -> dict[str, Any] | None:
    """The signed part of a well-formed parsed envelope (:func:`_well_formed_fields_of`): ``data`` itself, once its
    signature and chain are taken out, when what is left is exactly the signed part's fields (the optional one added
    when absent); ``None`` when it has others. ``data`` is the decoder's own parse, changed here, not used after."""
    data.pop("signature", None)
    data.pop("chain", None)
    data.setdefault("idempotency_key", None)
    # The well-formed test read every other field of the signed part, so a count is a test of the keys.
    return data if len(data) == _SIGNED_FIELDS else None


#: How many fields the signed part has (:func:`_signed_part_of`).
_SIGNED_FIELDS = 12


def _signed_part_of(fields: dict[str, Any]) -> dict[str, Any]:
    """:meth:`Envelope.signed_part` of these ``fields`` (other keys are not read)."""
    return {
        "version": 1,
        "network_id": fields["network_id"],
        "type": fields["type"],
        "id": fields["id"],
        "sender": fields["sender"],
        "sender_org": fields["sender_org"],
        "recipients": list(fields["recipients"]),
        "timestamp_ms": fields["timestamp_ms"],
        "nonce": fields["nonce"],
        "in_reply_to": fields["in_reply_to"],
        "idempotency_key": fields["idempotency_key"],
        "body": fields["body"],
    }


def _canonical_signed_part(fields: dict[str, Any]) -> bytes:
    """The canonical bytes of the signed part of an envelope with these ``fields`` (see :meth:`Envelope.signed_part`;
    other keys of ``fields`` are not read)."""
    return _canonical_of_part(_signed_part_of(fields))


def _canonical_of_part(part: dict[str, Any]) -> bytes:
    """The canonical bytes of an envelope's signed ``part``. When every header is of its exact type, only the body
    is walked for values without a canonical form before orjson writes the whole; otherwise :func:`canonical`
    checks everything."""
    recipients, sender_org, reply_to, idem, body = (
        part["recipients"],
        part["sender_org"],
        part["in_reply_to"],
        part["idempotency_key"],
        part["body"],
    )
    if (
        type(part["network_id"]) is str
        and type(part["type"]) is str
        and type(part["id"]) is str
        and type(part["sender"]) is str
        and type(part["nonce"]) is str
        and type(part["timestamp_ms"]) is int
        and (sender_org is None or type(sender_org) is str)
        and (reply_to is None or type(reply_to) is str)
        and (idem is None or type(idem) is str)
        and (not recipients or all(type(r) is str for r in recipients))
        and type(body) is dict
        and is_plain(body)
    ):
        try:
            return orjson.dumps(part, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # explained by the checked encoding
    return canonical(part)


# -- credential chains: the same few on every message ------------------------------------------------------------
#: Chains encoded or decoded lately, each kept with the value it was made from; bounded, oldest dropped first.
_CACHE_SIZE = 1024
_encoded: dict[int, tuple[tuple[Credential, ...], bytes]] = {}
_decoded: dict[str, tuple[list[Any], tuple[Credential, ...]]] = {}
#: The ends of envelopes that carried a chain (``,"chain":[...]}``), keyed by those bytes, with the chain decoded
#: from them. (Keyed once by their last 64 bytes, the root credential's signature: the same for every member
#: certified by one governance node, so that a node answered by fifty of them kept only the last one's.)
_chain_ends: dict[bytes, tuple[Credential, ...]] = {}
_CHAIN_MEMBER = b',"chain":'


def _chain_json(chain: tuple[Credential, ...]) -> bytes:
    """A chain's JSON, encoded once per chain object (a node sends its own chain with every envelope)."""
    hit = _encoded.get(id(chain))
    if hit is not None and hit[0] is chain:  # the chain is held by the cache, so its id is not reused meanwhile
        return hit[1]
    raw = orjson.dumps([c.to_dict() for c in chain])
    _remember(_encoded, id(chain), (chain, raw))
    return raw


def _known_chain_at_end(raw: bytes) -> tuple[int, tuple[Credential, ...]] | None:
    """Where the chain begins and the chain itself, when ``raw`` ends with the ``,"chain":...}`` of an envelope
    decoded lately. What precedes it, closed by a brace, then parses as the rest of the same object: the chain is
    the object's last member (orjson keeps the last of repeated keys, and so does this)."""
    cut = raw.rfind(_CHAIN_MEMBER)  # the last member's start, unless the chain holds those bytes (then a miss)
    if cut < 1:
        return None
    chain = _chain_ends.get(raw[cut:])
    return None if chain is None else (cut, chain)


def _decode_chain(data: Any, raw: bytes) -> tuple[Credential, ...]:
    """Credentials from an envelope's chain: a chain equal to one decoded lately is that one's result (decoding is
    a function of the JSON alone; the chain's signatures and validity are verified by the receiver every time).
    When ``raw`` ends with the chain's bytes as orjson writes them, that end is remembered too
    (:func:`_known_chain_at_end`); a canonical re-encoding, as a broadcast's answers come, has the chain inside."""
    if not isinstance(data, list) or len(data) > 8:
        raise ValueError("chain must be a list of at most 8 credentials")
    if not data:
        return ()
    head = data[0].get("signature") if isinstance(data[0], dict) else None
    hit = _decoded.get(head) if isinstance(head, str) else None
    if hit is not None and hit[0] == data:
        chain = hit[1]
    else:
        check_depth(data, what="the envelope's chain", max_depth=MAX_DEPTH - 1)
        chain = tuple(Credential.from_dict(c) for c in data)
        _remember(_decoded, chain[0].signature, (data, chain))
    if raw.endswith(b"]}"):
        end = _CHAIN_MEMBER + orjson.dumps(data) + b"}"
        if raw.endswith(end):
            _remember(_chain_ends, end, chain)
    return chain


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        with contextlib.suppress(StopIteration, KeyError, RuntimeError):  # another thread dropped it first
            del cache[next(iter(cache))]
    cache[key] = value
