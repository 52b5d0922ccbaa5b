"""The protocols a FinP2P node speaks, in one place: which are mandatory, which optional, and their versions.

An organization must advertise every mandatory protocol (registration and adverts without one are refused, with the
list of what is missing). Versions are ``major.minor``: a peer supports a protocol when the majors are equal and its
minor is at least the one asked for.

============================  =======  ==========================================================================
protocol                      version  what it is
============================  =======  ==========================================================================
finp2p.envelope               1.0      signed envelopes over mutual TLS 1.3, replay window (mandatory)
finp2p.request                1.0      request/response with idempotency keys (mandatory)
finp2p.pubsub                 1.0      subscribe, deliver in order, catch up from a sequence (mandatory)
finp2p.broadcast              1.0      broadcast requests and signed answers, sealed payloads (mandatory)
finp2p.discovery              1.0      adverts and registrar queries (mandatory)
finp2p.private-data           1.0      ACL-checked private data requests, push and pull sharing (optional)
finp2p.asset-transaction      1.0      transactions routed to the asset's primary node, signed receipts (optional)
finp2p.ledger-adapter         1.0      the FinP2P ledger-adapter API served over the node's ledgers (optional)
============================  =======  ==========================================================================
"""

from __future__ import annotations

import re
from typing import Any

from finp2p.errors import ErrorCode, FinP2PError

MANDATORY: dict[str, str] = {
    "finp2p.envelope": "1.0",
    "finp2p.request": "1.0",
    "finp2p.pubsub": "1.0",
    "finp2p.broadcast": "1.0",
    "finp2p.discovery": "1.0",
}
OPTIONAL: dict[str, str] = {
    "finp2p.private-data": "1.0",
    "finp2p.asset-transaction": "1.0",
    "finp2p.ledger-adapter": "1.0",
}
_VERSION = re.compile(r"^(\d{1,4})\.(\d{1,4})$")
_PROTOCOL = re.compile(r"^[a-z0-9][a-z0-9.-]{0,63}$")


def supports(have: str, want: str) -> bool:
    h, w = _VERSION.match(have), _VERSION.match(want)
    return bool(h and w and h[1] == w[1] and int(h[2]) >= int(w[2]))


def check(capabilities: Any) -> dict[str, str]:
    """Validate an advertised capability map; FP4002 lists every mandatory protocol missing or too old."""
    if not isinstance(capabilities, dict) or len(capabilities) > 64:
        raise FinP2PError(ErrorCode.MALFORMED, "capabilities must map at most 64 protocols to versions")
    for proto, version in capabilities.items():
        if not _PROTOCOL.match(str(proto)) or not isinstance(version, str) or not _VERSION.match(version):
            raise FinP2PError(ErrorCode.MALFORMED, f"capability {proto!r}: {version!r} is not a major.minor version")
    missing = [f"{p} {v}" for p, v in MANDATORY.items() if not supports(capabilities.get(p, ""), v)]
    if missing:
        raise FinP2PError(ErrorCode.MISSING_CAPABILITIES, "missing mandatory protocol(s): " + ", ".join(missing))
    return dict(capabilities)


def ours(optional: list[str] | None = None) -> dict[str, str]:
    """What this node advertises: every mandatory protocol, and the optional ones it is configured to offer."""
    chosen = {p: OPTIONAL[p] for p in (optional or []) if p in OPTIONAL}
    return {**MANDATORY, **chosen}
