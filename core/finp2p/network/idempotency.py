"""Idempotency keys on the answering side: the first answer to a request is kept and replayed for its retries.

A request is claimed before its handler runs and its answer stored when it ends, both committed before the answer
leaves. A retry while the first attempt runs is told to wait (FP3009); a retry of a request whose node restarted
while running it is told the outcome is unknown (FP3010) rather than run a second time.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete

from finp2p.clock import now_ms
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.canonical import canonical
from finp2p.store import Store
from finp2p.store.models import IdempotentRequestRow

KEEP_MS = 7 * 86_400_000


@dataclass(frozen=True)
class Claim:
    """``reply`` is the stored answer body when the request was answered before; ``None`` when this attempt runs."""

    reply: dict[str, Any] | None


def request_hash(type_: str, body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical({"type": type_, "body": body})).hexdigest()


class IdempotencyStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.boot_id = os.urandom(8).hex()  # tells a request interrupted by a restart from one still running

    async def claim(self, sender: str, key: str, type_: str, body: dict[str, Any]) -> Claim:
        digest = request_hash(type_, body)
        now = now_ms()

        def op(s: Session) -> Claim:
            row = s.get(IdempotentRequestRow, (sender, key))
            if row is None:
                s.add(
                    IdempotentRequestRow(
                        sender=sender,
                        key=key,
                        request_hash=digest,
                        state="running",
                        boot_id=self.boot_id,
                        created_ms=now,
                    )
                )
                return Claim(None)
            if row.request_hash != digest:
                raise FinP2PError(ErrorCode.IDEMPOTENCY_CONFLICT, f"key {key!r} was first used for another request")
            if row.state == "done":
                return Claim(json.loads(row.reply or "{}"))
            if row.boot_id == self.boot_id:
                raise FinP2PError(ErrorCode.IN_PROGRESS, f"request {key!r} is still running")
            raise FinP2PError(ErrorCode.OUTCOME_UNKNOWN, f"request {key!r} was interrupted by a restart of this node")

        try:
            return await self.store.run(op)
        except IntegrityError:  # a concurrent attempt claimed it first
            raise FinP2PError(ErrorCode.IN_PROGRESS, f"request {key!r} is still running") from None

    async def finish(self, sender: str, key: str, reply: dict[str, Any]) -> None:
        text = json.dumps(reply)

        def op(s: Session) -> None:
            row = s.get(IdempotentRequestRow, (sender, key))
            if row is not None:
                row.state, row.reply = "done", text
                s.add(row)

        await self.store.run(op)

    async def prune(self) -> None:
        cutoff = now_ms() - KEEP_MS
        await self.store.run(
            lambda s: s.exec(delete(IdempotentRequestRow).where(col(IdempotentRequestRow.created_ms) < cutoff))
        )
