"""Credentials: a subject's FinID and attributes, with its role, signed by its issuer.

Roles are data and checked at every link of a chain, leaf first, up to a founding node of the genesis:

    founding ─certifies→ governance ─certifies→ organization ─certifies→ user, asset

An organization cannot certify a governance node; a user or an asset cannot certify anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from finp2p import clock
from finp2p.edge.identifiers import DISPLAY_NAME, NETWORK_ID, ORG_ID, TOKEN
from finp2p.edge.numbers import check_unix_ms
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.keys import SigningKey, check_fin_id, decode_hex

ROLES = ("founding", "governance", "organization", "user", "asset")
MAY_CERTIFY: dict[str, frozenset[str]] = {
    "founding": frozenset({"governance"}),
    "governance": frozenset({"organization"}),
    "organization": frozenset({"user", "asset"}),
}
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Credential:
    id: str
    network_id: str
    role: str
    subject: str
    name: str
    org_id: str | None
    issuer: str
    issued_ms: int
    expires_ms: int
    attributes: dict[str, Any] = field(default_factory=dict)
    signature: str = ""

    def body(self) -> dict[str, Any]:
        """The signed content: every field but the signature."""
        return {
            "version": 1,
            "id": self.id,
            "network_id": self.network_id,
            "role": self.role,
            "subject": self.subject,
            "name": self.name,
            "org_id": self.org_id,
            "issuer": self.issuer,
            "issued_ms": self.issued_ms,
            "expires_ms": self.expires_ms,
            "attributes": self.attributes,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature}

    @classmethod
    def from_dict(cls, data: Any) -> Credential:
        if not isinstance(data, dict):
            raise FinP2PError(ErrorCode.MALFORMED, "a credential must be a JSON object")
        try:
            if data.get("version") != 1:
                raise ValueError("version must be 1")
            role = data["role"]
            if role not in ROLES or role == "founding":
                raise ValueError(f"role must be one of governance, organization, user, asset; got {role!r}")
            org_id = data["org_id"]
            if org_id is not None:
                ORG_ID.check(org_id, "the credential's org_id")
            attributes = data["attributes"]
            if not isinstance(attributes, dict):
                raise ValueError("attributes must be an object")
            decode_hex(data["signature"], "credential signature", 64)
            cred = cls(
                id=TOKEN.check(data["id"], "the credential's id"),
                network_id=NETWORK_ID.check(data["network_id"], "the credential's network_id"),
                role=role,
                subject=check_fin_id(data["subject"], "credential subject"),
                name=DISPLAY_NAME.check(data["name"], "the credential's name"),
                org_id=org_id,
                issuer=check_fin_id(data["issuer"], "credential issuer"),
                issued_ms=check_unix_ms(data["issued_ms"], "issued_ms"),
                expires_ms=check_unix_ms(data["expires_ms"], "expires_ms"),
                attributes=attributes,
                signature=data["signature"],
            )
        except KeyError as exc:
            raise FinP2PError(ErrorCode.MALFORMED, f"the credential lacks the field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise FinP2PError(ErrorCode.MALFORMED, f"credential: {exc}") from None
        return cred


def issue(
    issuer: SigningKey,
    *,
    network_id: str,
    role: str,
    subject: str,
    name: str,
    org_id: str | None,
    attributes: dict[str, Any] | None = None,
    valid_days: float = 365,
    now_ms: int | None = None,
) -> Credential:
    """A new credential for ``subject``, signed by ``issuer``. Roles are checked when the chain is verified."""
    now = now_ms if now_ms is not None else clock.now_ms()
    cred = Credential(
        id=os.urandom(16).hex(),
        network_id=NETWORK_ID.check(network_id, "network_id"),
        role=role,
        subject=check_fin_id(subject, "subject"),
        name=DISPLAY_NAME.check(name, "name"),
        org_id=None if org_id is None else ORG_ID.check(org_id, "org_id"),
        issuer=issuer.fin_id,
        issued_ms=now,
        expires_ms=now + int(valid_days * DAY_MS),
        attributes=dict(attributes or {}),
    )
    return replace(cred, signature=issuer.sign("credential", cred.body()).hex())


def chain_from(data: Any) -> list[Credential]:
    """Credentials from a chain document: ``{"chain": [leaf, issuer's, ...]}``, a list, or one credential."""
    if isinstance(data, dict) and "chain" in data:
        data = data["chain"]
    items = data if isinstance(data, list) else [data]
    if not items or len(items) > 8:
        raise FinP2PError(ErrorCode.MALFORMED, "a credential chain holds 1 to 8 credentials")
    return [Credential.from_dict(item) for item in items]


def chain_document(chain: list[Credential]) -> dict[str, Any]:
    return {"chain": [c.to_dict() for c in chain]}
