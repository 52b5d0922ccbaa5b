"""Identifiers, matched whole: every one is ASCII, has no control characters and is bounded in length, at every
edge and again where a credential is issued.

Each kind is one pattern matched with :func:`re.fullmatch` (never ``match`` with ``$``, which accepts a trailing
newline: ``"bank-a\\n"`` is not ``"bank-a"``), so a look-alike of an identifier is never taken for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from finp2p.errors import ErrorCode, FinP2PError


@dataclass(frozen=True)
class IdentifierKind:
    name: str
    pattern: re.Pattern[str]
    #: What a valid one looks like, for the error's sentence.
    form: str
    code: ErrorCode = ErrorCode.MALFORMED

    def matches(self, value: Any) -> bool:
        return isinstance(value, str) and self.pattern.fullmatch(value) is not None

    def check(self, value: Any, what: str | None = None, code: ErrorCode | None = None) -> str:
        """``value`` when it is one of these, else a FinP2PError (this kind's code, or ``code``)."""
        if not self.matches(value):
            raise FinP2PError(code or self.code, f"{what or self.name} {_show(value)} is not {self.form}")
        return str(value)


def _kind(name: str, pattern: str, form: str, code: ErrorCode = ErrorCode.MALFORMED) -> IdentifierKind:
    return IdentifierKind(name, re.compile(pattern, re.ASCII), form, code)


#: An organization id: the routing host of its resources (``bank-a``).
ORG_ID = _kind(
    "org id", r"[a-z0-9][a-z0-9._-]{1,62}", "an org id (2-63 of a-z 0-9 . _ -, starting with a letter or digit)"
)
#: The hex of a compressed secp256k1 public key.
FIN_ID = _kind("FinID", r"0[23][0-9a-f]{64}", "a FinID (66 lowercase hex digits of a compressed key)")
#: A network id in the genesis.
NETWORK_ID = _kind("network id", r"[a-z0-9][a-z0-9-]{1,62}", "a network id (2-63 of a-z 0-9 -)")
#: The local part of a resource id (``alice`` in ``bank-a:101:alice``).
LOCAL_ID = _kind(
    "resource id", r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}", "1-128 of A-Z a-z 0-9 . _ ~ -", ErrorCode.BAD_RESOURCE_ID
)
#: A resource id as a whole: ``<orgId>:<three-digit type>:<id>``.
RESOURCE_ID = _kind(
    "resource id",
    r"[a-z0-9][a-z0-9._-]{1,62}:[0-9]{3}:[A-Za-z0-9][A-Za-z0-9._~-]{0,127}",
    "a resource id (<orgId>:<type>:<id>, e.g. bank-a:101:alice)",
    ErrorCode.BAD_RESOURCE_ID,
)
#: Operation ids, idempotency keys, correlation ids: printable ASCII without spaces.
TOKEN = _kind("id", r"[\x21-\x7e]{1,200}", "1-200 printable ASCII characters without spaces")
#: A pub/sub topic (``news/bonds``, ``data/bank-a:101:alice``); ``*`` only in ACL patterns.
TOPIC = _kind("topic", r"[A-Za-z0-9][A-Za-z0-9._~:/*-]{0,255}", "a topic (1-256 of A-Z a-z 0-9 . _ ~ : / * -)")
#: A ledger id: CAIP-2 (``eip155:31337``) or a ledger kind's own (``fabric:<channel>/<chaincode>``).
LEDGER_ID = _kind("ledger id", r"[a-z0-9-]{3,16}:[A-Za-z0-9._/-]{1,128}", "a ledger id (CAIP-2, e.g. eip155:31337)")
#: A name people read (an organization's legal name, a user's): any script, but no control, format or
#: line-separating character, which could make one name look like another or break the line it is logged on.
DISPLAY_NAME = IdentifierKind(
    "name",
    re.compile(r"[^\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]{1,200}"),
    "a name of 1-200 characters without control characters",
)
#: 16 and 32 bytes in lowercase hex: an envelope's nonce, a digest (an advert's in a discovery page). A signature's
#: 64 bytes are read by ``keys.decode_hex``, which checks their length.
HEX_16 = _kind("16 bytes of hex", r"[0-9a-f]{32}", "32 lowercase hex digits")
HEX_32 = _kind("32 bytes of hex", r"[0-9a-f]{64}", "64 lowercase hex digits")
#: A message type or broadcast query (``asset.operation``).
MESSAGE_TYPE = _kind("message type", r"[a-z][a-z0-9._-]{0,63}", "a message type (1-64 of a-z 0-9 . _ -)")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
