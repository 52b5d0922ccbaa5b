"""Verification of credential chains against the genesis and the revocation lists held."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import canonical, keys
from finp2p.identity.credentials import MAY_CERTIFY, Credential
from finp2p.identity.genesis import Genesis
from finp2p.identity.revocation import RevocationList

#: Tolerated difference between the issuer's clock and ours when checking ``issued_ms``.
CLOCK_TOLERANCE_MS = 5 * 60_000
#: Chains whose signatures and roles are remembered (the members of a network, a few per member).
CHAIN_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Identity:
    """A verified subject: what the leaf credential of a chain says, after every link was checked."""

    fin_id: str
    role: str
    org_id: str | None
    name: str
    attributes: dict[str, Any]
    expires_ms: int
    chain: tuple[Credential, ...] = field(repr=False)


class Trust:
    """What a node or an auditor trusts: one genesis and the newest revocation list of each issuer.

    What does not change is verified once per chain: its signatures and the roles along it. A chain is known again
    when it is made of the very same credential objects (the envelope reader decodes an identical chain to the same
    objects), and a credential's signature when its whole signed content is the same (its digest): never by its id
    and signature alone, which a copy with another subject would share. Expiry and revocation are checked on every
    call, so a revocation takes effect on the very next verification.
    """

    def __init__(self, genesis: Genesis, clock: Callable[[], float] = time.time) -> None:
        self.genesis = genesis
        self.clock = clock
        self.revocation_lists: dict[str, RevocationList] = {}
        self._revoked_subjects: dict[str, set[str]] = {}  # issuer → revoked subject FinIDs
        self._revoked_ids: dict[str, set[str]] = {}  # issuer → revoked credential ids
        self._verified: set[tuple[bytes, str]] = set()  # (digest of the signed content, signature) that checked out
        self._chains: dict[tuple[int, ...], tuple[tuple[Credential, ...], int]] = {}  # object ids → (chain, links)
        #: Counts the revocation lists applied: what was valid at one count and is not expired is valid while the
        #: count stays the same (expiry and revocation are all that change once a chain is verified).
        self.revocations_applied = 0

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- chains --------------------------------------------------------------------------------------------------
    def verify_chain(self, chain: Sequence[Credential], *, role: str | None = None) -> Identity:
        """Check every link of ``chain`` (leaf first) up to a founding node; raise the first failure."""
        if not chain:
            raise FinP2PError(ErrorCode.MALFORMED, "an empty credential chain proves nothing")
        key = tuple(map(id, chain))
        hit = self._chains.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], chain, strict=True)):
            links = hit[1]  # the same objects, held by the cache (so their ids are not reused): checked before
            now = self.now_ms()
            for cred in chain[:links]:
                self._check_valid(cred, now)
        else:
            links = self._verify_links(chain)
            if len(self._chains) >= CHAIN_CACHE_SIZE:
                self._chains.clear()
            self._chains[key] = (tuple(chain), links)
        leaf = chain[0]
        if role is not None and leaf.role != role:
            raise FinP2PError(ErrorCode.WRONG_ROLE, f"expected a {role} credential, got a {leaf.role} one")
        return Identity(leaf.subject, leaf.role, leaf.org_id, leaf.name, leaf.attributes, leaf.expires_ms, tuple(chain))

    def _check_valid(self, cred: Credential, now: int) -> None:
        """What may change from one call to the next: the clock against the validity period, and revocation."""
        if cred.issued_ms > now + CLOCK_TOLERANCE_MS:
            raise FinP2PError(ErrorCode.CREDENTIAL_NOT_YET_VALID, f"{_what(cred)} is issued in the future")
        if now >= cred.expires_ms:
            raise FinP2PError(ErrorCode.CREDENTIAL_EXPIRED, f"{_what(cred)} expired at {_iso(cred.expires_ms)}")
        self._check_not_revoked(cred)

    def _verify_links(self, chain: Sequence[Credential]) -> int:
        """Every check of every link, in order; the number of links up to the founding issuer."""
        now = self.now_ms()
        founding = self.genesis.founding_fin_ids
        known = founding | {c.subject for c in chain}
        for i, cred in enumerate(chain):
            what = _what(cred)
            if cred.network_id != self.genesis.network_id:
                raise FinP2PError(
                    ErrorCode.WRONG_NETWORK,
                    f"{what} is for network {cred.network_id!r}, not {self.genesis.network_id!r}",
                )
            self._check_valid(cred, now)
            digest = canonical.digest("credential", cred.body())
            if (digest, cred.signature) not in self._verified:
                keys.verify_signed_digest(cred.issuer, "credential", digest, cred.signature, known=known)
                self._verified.add((digest, cred.signature))
            if cred.issuer in founding:
                issuer_role, issuer_org = "founding", None
            else:
                parent = chain[i + 1] if i + 1 < len(chain) else None
                if parent is None or parent.subject != cred.issuer:
                    raise FinP2PError(
                        ErrorCode.UNKNOWN_ROOT,
                        f"{what} is issued by {cred.issuer[:12]}…, which is neither a founding node of the genesis "
                        "nor the subject of the next credential in the chain",
                    )
                issuer_role, issuer_org = parent.role, parent.org_id
            if cred.role not in MAY_CERTIFY.get(issuer_role, frozenset()):
                raise FinP2PError(
                    ErrorCode.WRONG_ROLE, f"{what} is issued by a {issuer_role}, which may not certify it"
                )
            if issuer_role == "organization" and cred.org_id != issuer_org:
                raise FinP2PError(
                    ErrorCode.WRONG_ROLE, f"{what} names org {cred.org_id!r}, not its issuer {issuer_org!r}"
                )
            if cred.role == "organization" and not cred.org_id:
                raise FinP2PError(ErrorCode.MALFORMED, f"{what} has no org_id")
            if issuer_role == "founding":
                if i != len(chain) - 1:
                    raise FinP2PError(ErrorCode.MALFORMED, "the chain goes on past a founding issuer")
                return i + 1
        return len(chain)

    def _check_not_revoked(self, cred: Credential) -> None:
        if not self._revoked_subjects and not self._revoked_ids:
            return
        for issuer in (cred.issuer, *self.genesis.founding_fin_ids):
            if cred.subject in self._revoked_subjects.get(issuer, ()) or cred.id in self._revoked_ids.get(issuer, ()):
                reason = self._reason(issuer, cred)
                raise FinP2PError(ErrorCode.CREDENTIAL_REVOKED, f"{_what(cred)} was revoked ({reason})")

    def _reason(self, issuer: str, cred: Credential) -> str:
        rl = self.revocation_lists.get(issuer)
        for e in rl.entries if rl else ():
            if e.fin_id == cred.subject or e.credential_id == cred.id:
                return f"{e.reason}, at {_iso(e.revoked_ms)}"
        return "no reason given"

    # -- revocation ----------------------------------------------------------------------------------------------
    def accept_revocations(self, rl: RevocationList) -> bool:
        """Apply ``rl`` if it is newer than the issuer's list held; ``False`` if it is the one held already."""
        if rl.network_id != self.genesis.network_id:
            raise FinP2PError(ErrorCode.WRONG_NETWORK, f"revocation list for network {rl.network_id!r}")
        held = self.revocation_lists.get(rl.issuer)
        if held is not None and rl.sequence <= held.sequence:
            if rl.sequence == held.sequence and rl.signature == held.signature:
                return False
            raise FinP2PError(
                ErrorCode.REVOCATION_LIST, f"sequence {rl.sequence} is not above the {held.sequence} held (stale)"
            )
        if rl.issuer not in self.genesis.founding_fin_ids:
            if not rl.issuer_chain:
                raise FinP2PError(ErrorCode.REVOCATION_LIST, "the issuer is not a founding node and sent no chain")
            issuer = self.verify_chain(list(rl.issuer_chain), role="governance")
            if issuer.fin_id != rl.issuer:
                raise FinP2PError(ErrorCode.REVOCATION_LIST, "the issuer chain is not the issuer's")
        keys.verify(rl.issuer, "revocation", rl.body(), rl.signature, known=self.genesis.founding_fin_ids)
        self.revocation_lists[rl.issuer] = rl
        self._revoked_subjects[rl.issuer] = {e.fin_id for e in rl.entries}
        self._revoked_ids[rl.issuer] = {e.credential_id for e in rl.entries if e.credential_id}
        self.revocations_applied += 1
        return True


def _what(cred: Credential) -> str:
    return f"the {cred.role} credential of {cred.name!r}"


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
