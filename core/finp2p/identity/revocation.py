"""Revocation lists: signed, sequenced and cumulative, one per issuer (a founding or a governance node).

A list names revoked subjects (FinIDs) and credential ids. A governance node's list applies to the credentials it
issued; a founding node's list applies to every credential in the network. A newer sequence replaces an older one;
a list with a sequence not above the one held is refused as stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from finp2p.clock import now_ms
from finp2p.edge.identifiers import NETWORK_ID, TOKEN
from finp2p.edge.numbers import check_unix_ms
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.credentials import Credential
from finp2p.identity.keys import SigningKey, check_fin_id, decode_hex


@dataclass(frozen=True)
class Revoked:
    fin_id: str
    reason: str
    revoked_ms: int
    credential_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "fin_id": self.fin_id,
            "reason": self.reason,
            "revoked_ms": self.revoked_ms,
            "credential_id": self.credential_id,
        }


@dataclass(frozen=True)
class RevocationList:
    network_id: str
    issuer: str
    sequence: int
    issued_ms: int
    entries: tuple[Revoked, ...]
    signature: str = ""
    #: The issuer's own credential chain (empty for a founding node), so that anyone can check who signed.
    issuer_chain: tuple[Credential, ...] = field(default=())

    def body(self) -> dict[str, Any]:
        return {
            "version": 1,
            "network_id": self.network_id,
            "issuer": self.issuer,
            "sequence": self.sequence,
            "issued_ms": self.issued_ms,
            "entries": [e.to_dict() for e in self.entries],
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature, "issuer_chain": [c.to_dict() for c in self.issuer_chain]}

    @classmethod
    def from_dict(cls, data: Any) -> RevocationList:
        try:
            if not isinstance(data, dict) or data.get("version") != 1:
                raise ValueError("a revocation list is an object with version 1")
            if not isinstance(data["entries"], list) or len(data["entries"]) > 100_000:
                raise ValueError("entries must be a list")
            entries = tuple(
                Revoked(
                    check_fin_id(e["fin_id"], "revoked fin_id"),
                    str(e["reason"])[:500],
                    check_unix_ms(e["revoked_ms"], "revoked_ms"),
                    None if e.get("credential_id") is None else TOKEN.check(e["credential_id"], "credential_id"),
                )
                for e in data["entries"]
            )
            decode_hex(data["signature"], "revocation list signature", 64)
            sequence = data["sequence"]
            if isinstance(sequence, bool) or not isinstance(sequence, int) or not 0 < sequence < 2**63:
                raise ValueError("sequence must be a positive integer")
            return cls(
                network_id=NETWORK_ID.check(data["network_id"], "network_id"),
                issuer=check_fin_id(data["issuer"], "revocation list issuer"),
                sequence=sequence,
                issued_ms=check_unix_ms(data["issued_ms"], "issued_ms"),
                entries=entries,
                signature=data["signature"],
                issuer_chain=tuple(Credential.from_dict(c) for c in data.get("issuer_chain", [])),
            )
        except FinP2PError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise FinP2PError(ErrorCode.MALFORMED, f"revocation list: {exc}") from None


def next_list(
    key: SigningKey,
    previous: RevocationList | None,
    network_id: str,
    add: list[Revoked],
    issuer_chain: tuple[Credential, ...] = (),
) -> RevocationList:
    """The issuer's next list: the previous entries plus ``add``, with the next sequence number, signed."""
    entries = tuple(previous.entries if previous else ()) + tuple(add)
    rl = RevocationList(
        network_id=network_id,
        issuer=key.fin_id,
        sequence=(previous.sequence + 1) if previous else 1,
        issued_ms=now_ms(),
        entries=entries,
        issuer_chain=issuer_chain,
    )
    return replace(rl, signature=key.sign("revocation", rl.body()).hex())
