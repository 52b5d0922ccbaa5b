"""Creating a network and certifying governance nodes: the work of the founding nodes."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from finp2p.clock import now_ms
from finp2p.edge.files import write_private
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import credentials, tls
from finp2p.identity.credentials import Credential, chain_document
from finp2p.identity.genesis import FoundingNode, Genesis
from finp2p.identity.keys import SigningKey, load_key, save_key, verify
from finp2p.identity.local import LocalIdentity


@dataclass(frozen=True)
class FoundingMaterial:
    """A founding node's keys, kept offline by its operator: ``finid.key``, ``tls-ca.key``, ``tls-ca.pem``."""

    name: str
    key: SigningKey
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate

    @classmethod
    def load(cls, directory: Path, passphrase: bytes | None = None) -> FoundingMaterial:
        meta = json.loads((directory / "founding.json").read_text())
        return cls(
            meta["name"],
            load_key(directory / "finid.key", passphrase),
            tls.load_key_pem((directory / "tls-ca.key").read_bytes()),
            tls.load_cert((directory / "tls-ca.pem").read_bytes()),
        )


def create_founding(directory: Path, name: str, network_id: str, days: int, passphrase: bytes | None) -> FoundingNode:
    key = SigningKey.generate()
    ca_key = tls.new_key()
    ca_cert = tls.make_root_ca(ca_key, network_id, name, key.fin_id, days)
    directory.mkdir(parents=True, exist_ok=True)
    save_key(directory / "finid.key", key, passphrase)
    write_private(directory / "tls-ca.key", tls.key_pem(ca_key))
    (directory / "tls-ca.pem").write_text(tls.cert_pem(ca_cert))
    (directory / "founding.json").write_text(json.dumps({"name": name, "fin_id": key.fin_id}) + "\n")
    return FoundingNode(name, key.fin_id, tls.cert_pem(ca_cert))


def create_genesis(
    directory: Path,
    *,
    network_id: str,
    founding_names: list[str],
    rendezvous: list[str],
    devnet: bool,
    days: int = 3650,
    passphrase: bytes | None = None,
) -> Genesis:
    """Write ``genesis.json`` and one folder of founding keys per founding node under ``directory``."""
    if (directory / "genesis.json").exists():
        raise FinP2PError(ErrorCode.GENESIS, f"{directory / 'genesis.json'} exists; a network is created once")
    founding = tuple(
        create_founding(directory / "founding" / name, name, network_id, days, passphrase) for name in founding_names
    )
    genesis = Genesis.from_dict(
        {
            "version": 1,
            "network_id": network_id,
            "devnet": devnet,
            "created_ms": now_ms(),
            "founding": [{"name": f.name, "fin_id": f.fin_id, "tls_ca_pem": f.tls_ca_pem} for f in founding],
            "rendezvous": rendezvous,
        }
    )
    genesis.save(directory / "genesis.json")
    return genesis


# -- governance certification ------------------------------------------------------------------------------------
def governance_request(
    ident: LocalIdentity, genesis: Genesis, name: str, hosts: list[str], public_url: str
) -> dict[str, Any]:
    """What a governance node hands its founding operator: its FinID, its CA's public key, signed by its key."""
    key = ident.key(create=True)
    body = {
        "kind": "governance-certification-request",
        "network_id": genesis.network_id,
        "name": name,
        "fin_id": key.fin_id,
        "ca_public_key_pem": tls.public_pem(ident.ca_key(create=True).public_key()),
        "tls_public_key_pem": tls.public_pem(ident.tls_key(create=True).public_key()),
        "hosts": hosts,
        "public_url": public_url,
    }
    return {**body, "signature": key.sign("registration", body).hex()}


def certify_governance(
    founding: FoundingMaterial, genesis: Genesis, request: dict[str, Any], valid_days: int = 365
) -> dict[str, Any]:
    """A founding node's answer: the governance credential and the governance CA certificate it signs."""
    body = {k: v for k, v in request.items() if k != "signature"}
    if body.get("kind") != "governance-certification-request" or body.get("network_id") != genesis.network_id:
        raise FinP2PError(ErrorCode.MALFORMED, "not a governance certification request for this network")
    verify(body["fin_id"], "registration", body, request.get("signature"))
    if founding.key.fin_id not in genesis.founding_fin_ids:
        raise FinP2PError(ErrorCode.UNKNOWN_ROOT, "this founding key is not in the genesis")
    ca_public = tls.load_public_pem(body["ca_public_key_pem"])
    tls_public = tls.load_public_pem(body["tls_public_key_pem"])
    cred = credentials.issue(
        founding.key,
        network_id=genesis.network_id,
        role="governance",
        subject=body["fin_id"],
        name=body["name"],
        org_id=body["name"],
        attributes={
            "hosts": body["hosts"],
            "public_url": body["public_url"],
            "ca_spki_sha256": tls.spki_sha256(ca_public),
            "tls_spki_sha256": tls.spki_sha256(tls_public),
        },
        valid_days=valid_days,
    )
    not_after = dt.datetime.fromtimestamp(cred.expires_ms / 1000, dt.UTC)
    ca_cert = tls.make_intermediate_ca(
        founding.ca_key, founding.ca_cert, ca_public, genesis.network_id, body["name"], body["fin_id"], not_after
    )
    return {"kind": "governance-certification", **chain_document([cred]), "ca_cert_pem": tls.cert_pem(ca_cert)}


def install_governance(ident: LocalIdentity, genesis: Genesis, certified: dict[str, Any]) -> Credential:
    """Store a founding node's answer and issue the governance node its own TLS certificate from its CA."""
    from finp2p.identity.trust import Trust

    chain = credentials.chain_from(certified)
    me = Trust(genesis).verify_chain(chain, role="governance")
    key = ident.key()
    if me.fin_id != key.fin_id:
        raise FinP2PError(ErrorCode.WRONG_SIGNER, "this certification is for another governance node")
    ca_key = ident.ca_key()
    ca_cert = tls.load_cert(certified["ca_cert_pem"])
    if tls.spki_sha256(ca_key.public_key()) != me.attributes.get("ca_spki_sha256"):
        raise FinP2PError(ErrorCode.TLS_MISMATCH, "the CA certificate is not for this node's CA key")
    tls_key = ident.tls_key()
    if tls.spki_sha256(tls_key.public_key()) != me.attributes.get("tls_spki_sha256"):
        raise FinP2PError(ErrorCode.TLS_MISMATCH, "the credential names another TLS key than this node's")
    not_after = dt.datetime.fromtimestamp(me.expires_ms / 1000, dt.UTC)
    leaf = tls.issue_leaf(
        ca_key,
        ca_cert,
        tls_key.public_key(),
        genesis.network_id,
        me.org_id or me.name,
        key.fin_id,
        list(me.attributes.get("hosts", [])),
        not_after,
    )
    ident.ca_cert_path.write_text(tls.cert_pem(ca_cert))
    ident.save_membership(list(chain), tls.cert_pem(leaf) + tls.cert_pem(ca_cert))
    return chain[0]
