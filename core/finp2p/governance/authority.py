"""A governance node's authority: admitting organizations (credential + TLS certificate) and revoking them.

These functions work on the governance node's store, so the operator's CLI (``finp2p governance approve|reject|
revoke``) and the running node share one state: an approval is seen by the organization's next status request, a
revocation is picked up by the running node within a second and pushed to every member.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import Session, col, select

from finp2p.clock import now_ms
from finp2p.edge.identifiers import DISPLAY_NAME, ORG_ID
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import credentials, tls
from finp2p.identity.credentials import Credential, chain_document
from finp2p.identity.genesis import Genesis
from finp2p.identity.keys import SigningKey, check_fin_id
from finp2p.identity.local import LocalIdentity
from finp2p.identity.revocation import RevocationList, Revoked, next_list
from finp2p.network import capabilities
from finp2p.network.addresses import check_host
from finp2p.store import Store
from finp2p.store.models import RegistrationRow, RevocationListRow

MAX_HOSTS = 16


@dataclass(frozen=True)
class Authority:
    genesis: Genesis
    key: SigningKey
    chain: tuple[Credential, ...]
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate
    credential_days: int = 365

    @classmethod
    def load(cls, ident: LocalIdentity, genesis: Genesis, credential_days: int = 365) -> Authority:
        chain = ident.chain()
        if not chain or chain[0].role != "governance":
            raise FinP2PError(
                ErrorCode.NOT_A_MEMBER_YET,
                f"{ident.dir} holds no governance credential: certify it with `finp2p governance certify-governance`",
            )
        return cls(
            genesis, ident.key(), chain, ident.ca_key(), tls.load_cert(ident.ca_cert_path.read_bytes()), credential_days
        )


# -- requests ----------------------------------------------------------------------------------------------------
def check_request(
    body: dict[str, Any], fin_id: str, *, devnet: bool
) -> tuple[str, str, x509.CertificateSigningRequest, list[str], str]:
    """Validate a registration request; return (org_id, name, csr, hosts, public_url).

    The node must speak every mandatory protocol (FP4002 lists what is missing) and name public addresses only,
    unless the network is a devnet (FP4003).
    """
    org_id, name, hosts, public_url = body.get("org_id"), body.get("name"), body.get("hosts"), body.get("public_url")
    if not isinstance(org_id, str) or not ORG_ID.matches(org_id):
        raise FinP2PError(ErrorCode.MALFORMED, "org_id must be 2-63 lowercase letters, digits, '.', '_' or '-'")
    name = DISPLAY_NAME.check(name, "name")
    if not isinstance(hosts, list) or not 0 < len(hosts) <= MAX_HOSTS or not all(isinstance(h, str) for h in hosts):
        raise FinP2PError(ErrorCode.MALFORMED, f"hosts must list 1 to {MAX_HOSTS} host names or IP addresses")
    parts = urlsplit(public_url) if isinstance(public_url, str) else None
    if parts is None or parts.scheme != "https" or parts.hostname not in hosts or not parts.port:
        raise FinP2PError(ErrorCode.MALFORMED, "public_url must be https://HOST:PORT with HOST among hosts")
    try:
        csr = x509.load_pem_x509_csr(str(body.get("csr_pem", "")).encode())
    except ValueError as exc:
        raise FinP2PError(ErrorCode.MALFORMED, f"csr_pem is not a PEM certificate request: {exc}") from None
    capabilities.check(body.get("capabilities", {}))
    for host in hosts:
        check_host(host, devnet=devnet)
    if not csr.is_signature_valid:
        raise FinP2PError(ErrorCode.BAD_SIGNATURE, "the certificate request is not signed by its own key")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise FinP2PError(ErrorCode.MALFORMED, "the TLS key must be EC P-256")
    check_fin_id(fin_id)
    return org_id, name, csr, list(map(str, hosts)), str(public_url)


def submit(
    store: Store, authority: Authority, fin_id: str, body: dict[str, Any], auto_approve: list[str]
) -> RegistrationRow:
    org_id, name, _csr, _hosts, _url = check_request(body, fin_id, devnet=authority.genesis.devnet)

    def op(s: Session) -> RegistrationRow:
        rows = s.exec(select(RegistrationRow).where(RegistrationRow.org_id == org_id)).all()
        for row in rows:
            if row.status in ("pending", "approved") and row.fin_id != fin_id:
                raise FinP2PError(ErrorCode.REGISTRATION_CONFLICT, f"{org_id!r} is registered to another FinID")
            if row.fin_id == fin_id and row.status in ("pending", "approved"):
                return row  # a repeated request: the same registration
        row = RegistrationRow(
            id=secrets.token_hex(8),
            org_id=org_id,
            fin_id=fin_id,
            name=name,
            status="pending",
            request=json.dumps(body),
            created_ms=now_ms(),
        )
        s.add(row)
        return row

    row = store.call(op)
    if row.status == "pending" and authority.genesis.devnet and ("*" in auto_approve or org_id in auto_approve):
        row = approve(store, authority, row.id)
    return row


def approve(store: Store, authority: Authority, registration_id: str) -> RegistrationRow:
    """Issue the organization's credential and TLS certificate. Only a pending registration can be approved."""

    def op(s: Session) -> RegistrationRow:
        row = _get(s, registration_id)
        if row.status != "pending":
            raise FinP2PError(ErrorCode.UNKNOWN_REGISTRATION, f"{registration_id} is {row.status}, not pending")
        body = json.loads(row.request)
        org_id, name, csr, hosts, public_url = check_request(body, row.fin_id, devnet=authority.genesis.devnet)
        tls_public = csr.public_key()
        assert isinstance(tls_public, ec.EllipticCurvePublicKey)
        chain, cert_chain = certify_organization(authority, row.fin_id, org_id, name, tls_public, hosts, public_url)
        row.status = "approved"
        row.credential = json.dumps(chain_document(chain))
        row.cert_chain = cert_chain
        row.decided_ms = now_ms()
        s.add(row)
        return row

    return store.call(op)


def certify_organization(
    authority: Authority,
    fin_id: str,
    org_id: str,
    name: str,
    tls_public: ec.EllipticCurvePublicKey,
    hosts: list[str],
    public_url: str,
) -> tuple[list[Credential], str]:
    """The organization's credential chain and TLS certificate chain (PEM), bound to each other."""
    cred = credentials.issue(
        authority.key,
        network_id=authority.genesis.network_id,
        role="organization",
        subject=fin_id,
        name=name,
        org_id=org_id,
        attributes={"tls_spki_sha256": tls.spki_sha256(tls_public), "hosts": hosts, "public_url": public_url},
        valid_days=authority.credential_days,
    )
    leaf = tls.issue_leaf(
        authority.ca_key,
        authority.ca_cert,
        tls_public,
        authority.genesis.network_id,
        org_id,
        fin_id,
        hosts,
        dt.datetime.fromtimestamp(cred.expires_ms / 1000, dt.UTC),
    )
    return [cred, *authority.chain], tls.cert_pem(leaf) + tls.cert_pem(authority.ca_cert)


def reject(store: Store, registration_id: str, reason: str) -> RegistrationRow:
    def op(s: Session) -> RegistrationRow:
        row = _get(s, registration_id)
        if row.status != "pending":
            raise FinP2PError(ErrorCode.UNKNOWN_REGISTRATION, f"{registration_id} is {row.status}, not pending")
        row.status, row.reason, row.decided_ms = "rejected", reason, now_ms()
        s.add(row)
        return row

    return store.call(op)


def registrations(store: Store, status: str | None = None) -> list[RegistrationRow]:
    def op(s: Session) -> list[RegistrationRow]:
        q = select(RegistrationRow).order_by(col(RegistrationRow.created_ms))
        if status:
            q = q.where(RegistrationRow.status == status)
        return list(s.exec(q).all())

    return store.call(op)


def _get(s: Session, registration_id: str) -> RegistrationRow:
    row = s.get(RegistrationRow, registration_id)
    if row is None:
        raise FinP2PError(ErrorCode.UNKNOWN_REGISTRATION, f"no registration {registration_id!r}")
    return row


# -- revocation --------------------------------------------------------------------------------------------------
def revoke(store: Store, authority: Authority, org_id: str, reason: str) -> RevocationList:
    """Revoke every credential this governance node issued to ``org_id``, in a new signed list."""

    def op(s: Session) -> RevocationList:
        rows = s.exec(
            select(RegistrationRow).where(RegistrationRow.org_id == org_id, RegistrationRow.status == "approved")
        ).all()
        if not rows:
            raise FinP2PError(ErrorCode.UNKNOWN_REGISTRATION, f"no approved registration of {org_id!r} to revoke")
        held = s.get(RevocationListRow, authority.key.fin_id)
        previous = RevocationList.from_dict(json.loads(held.document)) if held else None
        entries = [Revoked(r.fin_id, reason, now_ms()) for r in rows]
        rl = next_list(authority.key, previous, authority.genesis.network_id, entries, authority.chain)
        for r in rows:
            r.status, r.reason, r.decided_ms = "revoked", reason, now_ms()
            s.add(r)
        save_list(s, rl)
        return rl

    return store.call(op)


def save_list(s: Session, rl: RevocationList) -> None:
    row = s.get(RevocationListRow, rl.issuer)
    doc = json.dumps(rl.to_dict())
    if row is None:
        s.add(RevocationListRow(issuer=rl.issuer, sequence=rl.sequence, document=doc))
    elif rl.sequence > row.sequence:
        row.sequence, row.document = rl.sequence, doc
        s.add(row)


def load_lists(store: Store) -> list[RevocationList]:
    def op(s: Session) -> list[RevocationList]:
        return [RevocationList.from_dict(json.loads(r.document)) for r in s.exec(select(RevocationListRow)).all()]

    return store.call(op)


def member_urls(store: Store) -> list[str]:
    return [json.loads(r.request)["public_url"] for r in registrations(store, "approved")]
