"""API tokens: random, shown once when created, stored as their SHA-256 only."""

from __future__ import annotations

import hashlib
import secrets

from sqlmodel import Session, select

from finp2p.clock import now_ms
from finp2p.store.models import ApiTokenRow

PREFIX = "fp2p_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(s: Session, name: str) -> str:
    token = PREFIX + secrets.token_urlsafe(32)
    s.add(ApiTokenRow(token_hash=digest(token), name=name, created_ms=now_ms()))
    return token


def owner_of(s: Session, token: str) -> str | None:
    """The name of the application holding ``token``, or ``None``."""
    row = s.get(ApiTokenRow, digest(token))  # a lookup by hash: the token itself is never compared or stored
    return row.name if row else None


def revoke(s: Session, name: str) -> int:
    rows = list(s.exec(select(ApiTokenRow).where(ApiTokenRow.name == name)))
    for row in rows:
        s.delete(row)
    return len(rows)
