"""Who may call the ledger-adapter API: whoever holds its bearer token, and nobody else.

The API moves units (it creates assets and issues them), so it never serves without a token unless told so by an
option whose name says it is insecure, and then on a loopback address only, with a warning at every start. The
token comes from a file that must hold one; it is compared in constant time, and only as
``Authorization: Bearer <token>`` (:mod:`finp2p.edge.bearer`).
"""

from __future__ import annotations

from finp2p.edge.bearer import is_loopback
from finp2p.errors import ErrorCode, FinP2PError

INSECURE_WARNING = (
    "the ledger-adapter API serves WITHOUT authentication at %s: anyone who reaches it creates assets and issues "
    "units. Use it for local development only, and give a token file otherwise."
)


def require_token(token: str | None, insecure_no_auth: bool, host: str) -> None:
    """Refuse to serve without a token, unless explicitly allowed on a loopback address."""
    if token is not None:
        return
    if not insecure_no_auth:
        raise FinP2PError(
            ErrorCode.CONFIG_VALUE,
            "the ledger-adapter API needs a bearer token: give a token file (--token-file, or [adapter] token_file)",
        )
    if not is_loopback(host):
        raise FinP2PError(
            ErrorCode.CONFIG_VALUE,
            f"serving the ledger-adapter API without a token is allowed on loopback only, not on {host}",
        )
