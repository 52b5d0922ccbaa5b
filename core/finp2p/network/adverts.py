"""Adverts: an organization's signed, sequenced statement of who it is, where it is, what it speaks and shares.

An advert names the organization and its FinID, its public addresses, its software version, its capabilities
(protocols and versions, see :mod:`finp2p.network.capabilities`), the ledgers it serves, the groups it belongs to,
and the resources it shares (resource id, pub/sub topic, and who may see the entry). It is signed by the
organization's FinID key in the ``advert`` domain and carries the credential chain, so anyone holding the genesis
can check it: adverts are self-authenticating, and registrars replicate them without trusting each other.

A newer sequence replaces an older one. An advert has a lifetime and is refreshed before it ends.

Who may see a resource is enforced by the registrar, without breaking the signature: the signed part holds a salted
hash of each resource entry, the entries travel beside it, and a registrar leaves out the entries the asker may not
see. The asker verifies the signature over the hashes and checks every entry it got against them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from typing import Any

from finp2p.clock import now_ms
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import keys
from finp2p.identity.canonical import canonical
from finp2p.identity.credentials import Credential
from finp2p.identity.trust import Identity, Trust
from finp2p.network import capabilities
from finp2p.network.addresses import check_url
from finp2p.resource_id import ResourceId

MAX_LIST = 256
#: The pub/sub topic on which registrars announce every advert they store: ``{"org_id", "sequence"}``.
REGISTRAR_TOPIC = "registrar/adverts"
#: The most adverts one page of a registrar's answer holds.
MAX_PAGE = 200


@dataclass(frozen=True)
class SharedResource:
    resource_id: str
    topic: str | None = None
    #: ACL-style subjects that may see this entry: ``*``, ``org:<id>``, ``group:<name>``.
    visible_to: tuple[str, ...] = ("*",)
    salt: str = ""

    def entry(self) -> dict[str, Any]:
        return {
            "resource_id": self.resource_id,
            "topic": self.topic,
            "visible_to": list(self.visible_to),
            "salt": self.salt,
        }

    @property
    def digest(self) -> str:
        return hashlib.sha256(canonical(self.entry())).hexdigest()

    def visible(self, org_id: str, groups: frozenset[str]) -> bool:
        return any(
            s == "*" or s == f"org:{org_id}" or (s.startswith("group:") and s[6:] in groups) for s in self.visible_to
        )

    @classmethod
    def from_dict(cls, d: Any) -> SharedResource:
        if not isinstance(d, dict):
            raise FinP2PError(ErrorCode.MALFORMED, "a shared resource is an object")
        ResourceId.parse(d.get("resource_id"))
        topic = d.get("topic")
        visible = d.get("visible_to", ["*"])
        if topic is not None and not isinstance(topic, str):
            raise FinP2PError(ErrorCode.MALFORMED, "a resource's topic is a string or null")
        if not isinstance(visible, list) or not all(isinstance(v, str) for v in visible):
            raise FinP2PError(ErrorCode.MALFORMED, "visible_to lists subjects")
        return cls(str(d["resource_id"]), topic, tuple(visible), str(d.get("salt", "")))


@dataclass(frozen=True)
class Advert:
    network_id: str
    org_id: str
    fin_id: str
    role: str
    sequence: int
    issued_ms: int
    expires_ms: int
    addresses: tuple[str, ...]
    software: str
    capabilities: dict[str, str]
    ledgers: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    resource_digests: tuple[str, ...] = ()
    resources: tuple[SharedResource, ...] = ()
    signature: str = ""
    chain: tuple[Credential, ...] = field(default=(), repr=False)

    def signed_part(self) -> dict[str, Any]:
        return {
            "version": 1,
            "network_id": self.network_id,
            "org_id": self.org_id,
            "fin_id": self.fin_id,
            "role": self.role,
            "sequence": self.sequence,
            "issued_ms": self.issued_ms,
            "expires_ms": self.expires_ms,
            "addresses": list(self.addresses),
            "software": self.software,
            "capabilities": self.capabilities,
            "ledgers": list(self.ledgers),
            "groups": list(self.groups),
            "resource_digests": list(self.resource_digests),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.signed_part(),
            "signature": self.signature,
            "resources": [r.entry() for r in self.resources],
            "chain": [c.to_dict() for c in self.chain],
        }

    def content(self) -> dict[str, Any]:
        """What changes warrant a new advert (no sequence, times, salts or signature)."""
        return content(
            list(self.addresses),
            self.software,
            self.capabilities,
            list(self.ledgers),
            list(self.groups),
            list(self.resources),
        )

    def seen_by(self, org_id: str, groups: frozenset[str], *, everything: bool = False) -> Advert:
        """This advert as ``org_id`` may see it: resource entries it may not see are left out (still signed)."""
        if everything or not self.resources:
            return self
        return replace(self, resources=tuple(r for r in self.resources if r.visible(org_id, groups)))

    @classmethod
    def from_dict(cls, d: Any) -> Advert:
        if not isinstance(d, dict):
            raise FinP2PError(ErrorCode.MALFORMED, "an advert is an object")
        try:
            if d.get("version") != 1:
                raise ValueError("version must be 1")
            lists = {k: d.get(k, []) for k in ("addresses", "ledgers", "groups", "resource_digests")}
            for name, value in lists.items():
                if not isinstance(value, list) or len(value) > MAX_LIST or not all(isinstance(v, str) for v in value):
                    raise ValueError(f"{name} must be a list of at most {MAX_LIST} strings")
            seq, issued, expires = d["sequence"], d["issued_ms"], d["expires_ms"]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (seq, issued, expires)):
                raise ValueError("sequence, issued_ms and expires_ms are integers")
            keys.decode_hex(d["signature"], "advert signature", 64)
            return cls(
                network_id=str(d["network_id"]),
                org_id=str(d["org_id"]),
                fin_id=keys.check_fin_id(d["fin_id"], "advert fin_id"),
                role=str(d["role"]),
                sequence=seq,
                issued_ms=issued,
                expires_ms=expires,
                addresses=tuple(lists["addresses"]),
                software=str(d["software"])[:100],
                capabilities=dict(d["capabilities"]) if isinstance(d["capabilities"], dict) else {},
                ledgers=tuple(lists["ledgers"]),
                groups=tuple(lists["groups"]),
                resource_digests=tuple(lists["resource_digests"]),
                resources=tuple(SharedResource.from_dict(r) for r in d.get("resources", [])),
                signature=d["signature"],
                chain=tuple(Credential.from_dict(c) for c in d.get("chain", [])),
            )
        except FinP2PError:
            raise
        except KeyError as exc:
            raise FinP2PError(ErrorCode.MALFORMED, f"the advert lacks the field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise FinP2PError(ErrorCode.MALFORMED, f"advert: {exc}") from None


def content(
    addresses: list[str],
    software: str,
    caps: dict[str, str],
    ledgers: list[str],
    groups: list[str],
    resources: list[SharedResource],
    **_: Any,
) -> dict[str, Any]:
    """What an advert states, compared to decide whether to publish a new one (no sequence, times or salts)."""
    return {
        "addresses": list(addresses),
        "software": software,
        "capabilities": caps,
        "ledgers": sorted(ledgers),
        "groups": sorted(groups),
        "resources": sorted((r.resource_id, r.topic or "", tuple(sorted(r.visible_to))) for r in resources),
    }


def make(
    key: keys.SigningKey,
    chain: tuple[Credential, ...],
    *,
    network_id: str,
    sequence: int,
    addresses: list[str],
    software: str,
    caps: dict[str, str],
    ledgers: list[str],
    groups: list[str],
    resources: list[SharedResource],
    lifetime_s: float,
) -> Advert:
    me = chain[0]
    salted = tuple(r if r.salt else replace(r, salt=os.urandom(12).hex()) for r in resources)
    now = now_ms()
    advert = Advert(
        network_id=network_id,
        org_id=str(me.org_id),
        fin_id=key.fin_id,
        role=me.role,
        sequence=sequence,
        issued_ms=now,
        expires_ms=now + int(lifetime_s * 1000),
        addresses=tuple(addresses),
        software=software,
        capabilities=caps,
        ledgers=tuple(ledgers),
        groups=tuple(groups),
        resource_digests=tuple(r.digest for r in salted),
        resources=salted,
        chain=chain,
    )
    return replace(advert, signature=key.sign("advert", advert.signed_part()).hex())


def verify(advert: Advert, trust: Trust, *, now_ms: int | None = None) -> Identity:
    """Check an advert end to end: network, lifetime, signature, the signer's chain, content rules."""
    if advert.network_id != trust.genesis.network_id:
        raise FinP2PError(ErrorCode.WRONG_NETWORK, f"the advert of {advert.org_id} is for another network")
    keys.verify(advert.fin_id, "advert", advert.signed_part(), advert.signature)
    ident = check_current(advert, trust, now_ms=now_ms)
    capabilities.check(advert.capabilities)
    if not advert.addresses:
        raise FinP2PError(ErrorCode.BAD_ADDRESS, "an advert names at least one address")
    for url in advert.addresses:
        check_url(url, devnet=trust.genesis.devnet)
    digests = set(advert.resource_digests)
    for r in advert.resources:
        if r.digest not in digests:
            raise FinP2PError(ErrorCode.BAD_SIGNATURE, f"resource entry {r.resource_id} is not the one signed")
        if ResourceId.parse(r.resource_id).org_id != advert.org_id:
            raise FinP2PError(ErrorCode.FOREIGN_ADVERT, f"{advert.org_id} cannot share {r.resource_id}: not its own")
    return ident


def check_current(advert: Advert, trust: Trust, *, now_ms: int | None = None) -> Identity:
    """What can change after an advert was verified (:func:`verify`): its lifetime, and its signer's chain, which
    may expire or be revoked since. Checked again whenever a verified advert is used from a cache."""
    now = now_ms if now_ms is not None else trust.now_ms()
    if advert.expires_ms <= now:
        raise FinP2PError(ErrorCode.ADVERT_EXPIRED, f"the advert of {advert.org_id} expired")
    ident = trust.verify_chain(advert.chain)
    if ident.fin_id != advert.fin_id or ident.org_id != advert.org_id or ident.role != advert.role:
        raise FinP2PError(ErrorCode.FOREIGN_ADVERT, f"the advert of {advert.org_id} is not signed by that organization")
    if ident.role not in ("organization", "governance"):
        raise FinP2PError(ErrorCode.FOREIGN_ADVERT, f"a {ident.role} does not advertise")
    return ident


def view_digest(raw: dict[str, Any]) -> str:
    """The digest naming an advert as one asker sees it (its JSON form, ``raw``) in a registrar's page of
    references: SHA-256 of its canonical bytes, in hex."""
    return hashlib.sha256(canonical(raw)).hexdigest()
