"""Signed envelopes: every message between nodes travels in one.

An envelope names its network, type, id, sender (FinID and organization), recipients, timestamp and a random nonce,
carries a JSON body, and is signed by the sender's FinID key over the canonical encoding of all of that in the
``envelope`` domain. The sender's credential chain rides along, outside the signature (it is signed by its
issuers), so a receiver can verify a sender it has never seen.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from finp2p import clock
from finp2p.edge.identifiers import MESSAGE_TYPE, NETWORK_ID, ORG_ID, TOKEN
from finp2p.edge.json_input import read_json_object
from finp2p.edge.numbers import check_unix_ms
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import keys
from finp2p.identity.credentials import Credential

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

    def to_dict(self) -> dict[str, Any]:
        out = {**self.signed_part(), "signature": self.signature}
        if self.chain:
            out["chain"] = [c.to_dict() for c in self.chain]
        return out

    def encode(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

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
            chain_data = data.get("chain") or []
            if not isinstance(chain_data, list) or len(chain_data) > 8:
                raise ValueError("chain must be a list of at most 8 credentials")
            chain = tuple(Credential.from_dict(c) for c in chain_data)
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
    env = Envelope(
        network_id=network_id,
        type=type,
        id=uuid.uuid4().hex,
        sender=key.fin_id,
        sender_org=sender_org,
        recipients=recipients,
        timestamp_ms=now_ms if now_ms is not None else clock.now_ms(),
        nonce=os.urandom(16).hex(),
        body=body,
        in_reply_to=in_reply_to,
        idempotency_key=idempotency_key,
        chain=chain,
    )
    return replace(env, signature=key.sign("envelope", env.signed_part()).hex())
