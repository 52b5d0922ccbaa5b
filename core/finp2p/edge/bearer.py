"""Bearer tokens: read from a file that must hold one, compared in constant time, only as
``Authorization: Bearer <token>``. Used by every server of the node that takes a token (the ledger-adapter API,
a served embedded chain) and by the clients that send one."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
from pathlib import Path

from finp2p.edge.files import write_private
from finp2p.errors import ErrorCode, FinP2PError

log = logging.getLogger(__name__)


def token_from_file(path: Path, what: str = "token") -> str:
    """The token in ``path``; FP1003 when the file is unreadable, holds nothing but white space, or a token with
    spaces or control characters in it."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise FinP2PError(ErrorCode.CONFIG_VALUE, f"the {what} file {path} cannot be read: {exc}") from None
    if not token:
        raise FinP2PError(ErrorCode.CONFIG_VALUE, f"the {what} file {path} is empty: write a long random token into it")
    if any(not 0x21 <= ord(c) <= 0x7E for c in token):
        raise FinP2PError(ErrorCode.CONFIG_VALUE, f"the {what} in {path} must be printable ASCII without spaces")
    if path.stat().st_mode & 0o077:
        log.warning("the %s file %s is readable by other users: chmod 600 it", what, path)
    return token


def new_token_file(path: Path) -> str:
    """A fresh random token (256 bits), written to ``path`` as a 0600 file; returned once."""
    token = secrets.token_urlsafe(32)
    write_private(path, token + "\n")
    return token


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (where serving without a token may be allowed)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BearerCheck:
    """Compares ``Authorization`` headers with one token in constant time (over their digests: equal lengths)."""

    def __init__(self, token: str) -> None:
        self._digest = hashlib.sha256(token.encode()).digest()

    def allows(self, header: str | None) -> bool:
        if header is None or not header.startswith("Bearer "):
            return False
        given = hashlib.sha256(header[len("Bearer ") :].encode("utf-8", "surrogatepass")).digest()
        return hmac.compare_digest(given, self._digest)
