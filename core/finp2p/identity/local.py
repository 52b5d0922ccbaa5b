"""A node's own identity material in its data directory (``identity/``), all secrets mode 0600:

- ``finid.key``: the FinID key (secp256k1), optionally encrypted under a passphrase;
- ``tls.key``, ``tls-chain.pem``: the TLS key (P-256) and the certificate chain the governance node issued;
- ``credentials.json``: the node's credential chain, leaf first;
- ``ca.key``, ``ca.pem``: on a governance node, its CA that signs members' TLS certificates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from finp2p.edge.files import private_dir, write_private
from finp2p.edge.json_input import read_json_file
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import tls
from finp2p.identity.credentials import Credential, chain_document, chain_from
from finp2p.identity.keys import SigningKey, load_key, save_key


class LocalIdentity:
    def __init__(self, data_dir: Path, passphrase: bytes | None = None) -> None:
        self.dir = data_dir / "identity"
        private_dir(self.dir)
        self.passphrase = passphrase
        self.key_path = self.dir / "finid.key"
        self.tls_key_path = self.dir / "tls.key"
        self.tls_chain_path = self.dir / "tls-chain.pem"
        self.credentials_path = self.dir / "credentials.json"
        self.ca_key_path = self.dir / "ca.key"
        self.ca_cert_path = self.dir / "ca.pem"
        self.registration_path = self.dir / "registration.json"

    def key(self, *, create: bool = False) -> SigningKey:
        if not self.key_path.exists():
            if not create:
                raise FinP2PError(ErrorCode.KEY_FILE, f"{self.key_path} does not exist")
            key = SigningKey.generate()
            save_key(self.key_path, key, self.passphrase)
            return key
        return load_key(self.key_path, self.passphrase)

    def tls_key(self, *, create: bool = False) -> ec.EllipticCurvePrivateKey:
        return _p256(self.tls_key_path, create)

    def ca_key(self, *, create: bool = False) -> ec.EllipticCurvePrivateKey:
        return _p256(self.ca_key_path, create)

    def chain(self) -> tuple[Credential, ...] | None:
        if not self.credentials_path.exists():
            return None
        return tuple(chain_from(read_json_file(self.credentials_path)))

    def save_membership(self, chain: list[Credential], cert_chain_pem: str) -> None:
        write_private(self.tls_chain_path, cert_chain_pem)
        write_private(self.credentials_path, json.dumps(chain_document(chain), indent=2) + "\n")

    def is_member(self) -> bool:
        return self.credentials_path.exists() and self.tls_chain_path.exists() and self.tls_key_path.exists()

    def registration(self) -> dict[str, Any] | None:
        if not self.registration_path.exists():
            return None
        data: dict[str, Any] = read_json_file(self.registration_path)
        return data

    def save_registration(self, data: dict[str, Any]) -> None:
        write_private(self.registration_path, json.dumps(data, indent=2) + "\n")


def _p256(path: Path, create: bool) -> ec.EllipticCurvePrivateKey:
    if not path.exists():
        if not create:
            raise FinP2PError(ErrorCode.KEY_FILE, f"{path} does not exist")
        key = tls.new_key()
        write_private(path, tls.key_pem(key))
        return key
    if path.stat().st_mode & 0o077:
        raise FinP2PError(ErrorCode.KEY_FILE, f"{path} may be read by others; chmod 600 it")
    return tls.load_key_pem(path.read_bytes())
