"""X.509 P-256 certificates for node-to-node TLS, and the TLS contexts built on them.

The network's TLS trust follows its identity trust: each founding node has a self-signed CA (its certificate is in
the genesis); a founding node signs an intermediate CA for each governance node it certifies; a governance node
signs the TLS certificate of each organization it admits. Certificates name their subject in URI SANs
(``urn:finp2p:org:<orgId>``, ``urn:finp2p:finid:<FinID>``), and the organization's credential records the SHA-256
of the certificate's public key, so a connection's peer is tied to a signed credential before a message is read.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from finp2p.errors import ErrorCode, FinP2PError

ORG_URI = "urn:finp2p:org:"
FINID_URI = "urn:finp2p:finid:"


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_key_pem(data: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise FinP2PError(ErrorCode.KEY_FILE, "a TLS key must be an EC P-256 key")
    return key


def public_pem(public_key: ec.EllipticCurvePublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_pem(pem: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise FinP2PError(ErrorCode.MALFORMED, f"not a PEM public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise FinP2PError(ErrorCode.MALFORMED, "TLS keys must be EC P-256")
    return key


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def load_cert(pem: str | bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
    except ValueError as exc:
        raise FinP2PError(ErrorCode.MALFORMED, f"not a PEM certificate: {exc}") from None


def spki_sha256(public_key: ec.EllipticCurvePublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _name(common_name: str, network_id: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"FinP2P {network_id}"[:64]),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )


def _uris(org_id: str | None, fin_id: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(FINID_URI + fin_id)]
    if org_id:
        names.append(x509.UniformResourceIdentifier(ORG_URI + org_id))
    return names


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_root_ca(
    key: ec.EllipticCurvePrivateKey, network_id: str, name: str, fin_id: str, days: int
) -> x509.Certificate:
    """A founding node's self-signed CA, allowed to sign one level of intermediates (governance CAs)."""
    subject = _name(f"{name} founding CA", network_id)
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.SubjectAlternativeName(_uris(None, fin_id)), critical=False)
        .sign(key, hashes.SHA256())
    )


def make_intermediate_ca(
    issuer_key: ec.EllipticCurvePrivateKey,
    issuer_cert: x509.Certificate,
    public_key: ec.EllipticCurvePublicKey,
    network_id: str,
    name: str,
    fin_id: str,
    not_after: dt.datetime,
) -> x509.Certificate:
    """A governance node's CA, signed by a founding CA; it may sign leaf certificates only."""
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} governance CA", network_id))
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .add_extension(x509.SubjectAlternativeName(_uris(None, fin_id)), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def issue_leaf(
    issuer_key: ec.EllipticCurvePrivateKey,
    issuer_cert: x509.Certificate,
    public_key: ec.EllipticCurvePublicKey,
    network_id: str,
    org_id: str,
    fin_id: str,
    hosts: list[str],
    not_after: dt.datetime,
) -> x509.Certificate:
    """A node's TLS certificate (server and client), naming its organization, FinID and host names."""
    names = _uris(org_id, fin_id)
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(_name(org_id, network_id))
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(not_after, issuer_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


@dataclass(frozen=True)
class CertIdentity:
    org_id: str | None
    fin_id: str | None
    spki_sha256: str


def identity_of(cert: x509.Certificate) -> CertIdentity:
    """What a certificate says of its subject (read from its URI SANs)."""
    org = fin = None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
            if uri.startswith(ORG_URI):
                org = uri[len(ORG_URI) :]
            elif uri.startswith(FINID_URI):
                fin = uri[len(FINID_URI) :]
    except x509.ExtensionNotFound:
        pass
    public_key = cert.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise FinP2PError(ErrorCode.TLS_MISMATCH, "node certificates carry EC P-256 keys")
    return CertIdentity(org, fin, spki_sha256(public_key))


@functools.lru_cache(maxsize=4096)
def identity_of_der(der: bytes) -> CertIdentity:
    """Cached by the certificate's bytes: a peer presents the same certificate on every connection."""
    return identity_of(x509.load_der_x509_certificate(der))


# -- TLS contexts ------------------------------------------------------------------------------------------------
def server_context(cert_chain_file: str, key_file: str, trust_pem: str, *, require_client_cert: bool) -> ssl.SSLContext:
    """TLS 1.3 only. Client certificates are verified against the network's founding CAs when presented;
    ``require_client_cert=False`` lets newcomers connect for registration only (the server checks per request)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert_chain_file, key_file)
    ctx.load_verify_locations(cadata=trust_pem)
    ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return ctx


def client_context(trust_pem: str, cert_chain_file: str | None = None, key_file: str | None = None) -> ssl.SSLContext:
    """TLS 1.3 only; the server must chain to a founding CA. With a certificate, the client authenticates too."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(cadata=trust_pem)
    ctx.check_hostname = True
    if cert_chain_file and key_file:
        ctx.load_cert_chain(cert_chain_file, key_file)
    return ctx
