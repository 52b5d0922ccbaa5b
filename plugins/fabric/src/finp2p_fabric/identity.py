"""An MSP identity: an X.509 certificate and its P-256 key, as Fabric's ``cryptogen`` or a CA issues them.

Fabric identifies a client by ``SerializedIdentity(mspid, certificate PEM)`` and checks ECDSA signatures over
SHA-256 that are in low-S form (a signature with ``s > n/2`` is refused as malleable), DER-encoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from fabric_protos.msp import identities_pb2
from google.protobuf.message import DecodeError

from finp2p.errors import ErrorCode, FinP2PError

#: The order of the P-256 group.
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@dataclass(frozen=True)
class Identity:
    """A signing identity of one MSP."""

    msp_id: str
    certificate: bytes  # PEM
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def from_files(cls, msp_id: str, cert: Path, key: Path) -> Identity:
        try:
            certificate = cert.read_bytes()
            private = serialization.load_pem_private_key(key.read_bytes(), password=None)
            x509.load_pem_x509_certificate(certificate)
        except OSError as exc:
            raise FinP2PError(ErrorCode.LEDGER_PROFILE, f"cannot read {exc.filename}: {exc.strerror}") from None
        except ValueError as exc:
            raise FinP2PError(
                ErrorCode.LEDGER_PROFILE, f"{cert} / {key}: not a PEM certificate and key ({exc})"
            ) from None
        if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(private.curve, ec.SECP256R1):
            raise FinP2PError(ErrorCode.LEDGER_PROFILE, f"{key} is not a P-256 key, as Fabric's identities are")
        return cls(msp_id, certificate, private)

    @cached_property
    def creator(self) -> bytes:
        """The serialized identity that goes in every signature header."""
        return bytes(
            identities_pb2.SerializedIdentity(mspid=self.msp_id, id_bytes=self.certificate).SerializeToString()
        )

    @cached_property
    def subject(self) -> str:
        return x509.load_pem_x509_certificate(self.certificate).subject.rfc4514_string()

    @cached_property
    def name(self) -> str:
        """This identity as a transaction names its submitter (:func:`name_of`)."""
        found = name_of(self.creator)
        assert found is not None
        return found

    def sign(self, message: bytes) -> bytes:
        """ECDSA P-256 over SHA-256, DER, with low S."""
        r, s = decode_dss_signature(self.key.sign(message, ec.ECDSA(hashes.SHA256())))
        if s > _N // 2:
            s = _N - s
        return encode_dss_signature(r, s)


@lru_cache(maxsize=256)
def name_of(creator: bytes) -> str | None:
    """The MSP identity of a serialized creator as the chaincode knows its operator: ``<MSP id>::x509::<subject>::
    <issuer>`` (the chaincode's ``operatorMsp``, then its ``operatorId``, the client identity library's form);
    ``None`` for a creator that is not an X.509 identity."""
    try:
        identity = identities_pb2.SerializedIdentity.FromString(creator)
        certificate = x509.load_pem_x509_certificate(identity.id_bytes)
    except (DecodeError, ValueError):
        return None
    subject, issuer = certificate.subject.rfc4514_string(), certificate.issuer.rfc4514_string()
    return f"{identity.mspid}::x509::{subject}::{issuer}"
