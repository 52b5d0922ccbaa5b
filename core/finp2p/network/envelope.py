"""Signed envelopes: every message between nodes travels in one.

An envelope names its network, type, id, sender (FinID and organization), recipients, timestamp and a random nonce,
carries a JSON body, and is signed by the sender's FinID key over the canonical encoding of all of that in the
``envelope`` domain. The sender's credential chain rides along, outside the signature (it is signed by its
issuers), so a receiver can verify a sender it has never seen.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import canonical as canon
from finp2p.identity import keys
from finp2p.identity.credentials import Credential

MAX_TYPE_LEN = 64


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
    def decode(cls, raw: bytes) -> Envelope:
        data = canon.parse_json_object(raw, "the envelope")
        try:
            if data.get("version") != 1:
                raise ValueError("version must be 1")
            type_ = data["type"]
            if not isinstance(type_, str) or not 0 < len(type_) <= MAX_TYPE_LEN:
                raise ValueError(f"type must be a string of 1 to {MAX_TYPE_LEN} characters")
            recipients = data["recipients"]
            if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
                raise ValueError("recipients must be a list of organization ids")
            body = data["body"]
            if not isinstance(body, dict):
                raise ValueError("body must be an object")
            nonce = data["nonce"]
            keys.decode_hex(nonce, "nonce", 16)
            keys.decode_hex(data["signature"], "signature", 64)
            sender_org, reply_to, idem = data["sender_org"], data["in_reply_to"], data.get("idempotency_key")
            if idem is not None and (not isinstance(idem, str) or not 0 < len(idem) <= 128):
                raise ValueError("idempotency_key must be a string of 1 to 128 characters")
            for name, value in (("sender_org", sender_org), ("in_reply_to", reply_to)):
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"{name} must be a string or null")
            ts = data["timestamp_ms"]
            if isinstance(ts, bool) or not isinstance(ts, int):
                raise ValueError("timestamp_ms must be an integer")
            chain = tuple(Credential.from_dict(c) for c in data.get("chain") or [])
            return cls(
                network_id=str(data["network_id"]),
                type=type_,
                id=str(data["id"])[:64],
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
        timestamp_ms=now_ms if now_ms is not None else int(time.time() * 1000),
        nonce=os.urandom(16).hex(),
        body=body,
        in_reply_to=in_reply_to,
        idempotency_key=idempotency_key,
        chain=chain,
    )
    return replace(env, signature=key.sign("envelope", env.signed_part()).hex())
