"""Which addresses a node may advertise: public DNS names or public IP addresses (as the spec requires, since a
private address prevents others from reaching the node). A devnet genesis lifts the rule for local networks."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from finp2p.errors import ErrorCode, FinP2PError

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NOT_PUBLIC_SUFFIXES = (
    ".local",
    ".localhost",
    ".internal",
    ".lan",
    ".home",
    ".corp",
    ".test",
    ".invalid",
    ".example",
    ".intranet",
    ".private",
)


def check_host(host: str, *, devnet: bool) -> str:
    """Return ``host`` if it is publicly routable (or the network is a devnet), else raise FP4003."""
    h = host.strip("[]").lower()
    ip = _ip(h)
    if ip is None:
        labels = h.rstrip(".").split(".")
        if not all(_LABEL.match(label) for label in labels):
            raise FinP2PError(ErrorCode.BAD_ADDRESS, f"{host!r} is not a valid DNS name")
        if not devnet and (len(labels) < 2 or h == "localhost" or h.endswith(_NOT_PUBLIC_SUFFIXES)):
            raise FinP2PError(ErrorCode.BAD_ADDRESS, f"{host!r} is not a public DNS name")
        return h
    if not devnet and not ip.is_global:
        kind = "loopback" if ip.is_loopback else "link-local" if ip.is_link_local else "private or reserved"
        raise FinP2PError(ErrorCode.BAD_ADDRESS, f"{host} is a {kind} address, not a public one")
    return h


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_url(url: str, *, devnet: bool) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or not parts.port or parts.path not in ("", "/"):
        raise FinP2PError(ErrorCode.BAD_ADDRESS, f"{url!r} must be https://HOST:PORT")
    check_host(parts.hostname, devnet=devnet)
    return url.rstrip("/")
