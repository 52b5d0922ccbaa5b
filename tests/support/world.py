"""A small network's trust material, made in-process for unit tests of identity and messaging."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from finp2p.governance.founding import FoundingMaterial, create_genesis
from finp2p.identity import credentials
from finp2p.identity.credentials import Credential
from finp2p.identity.genesis import Genesis
from finp2p.identity.keys import SigningKey


@dataclass
class World:
    genesis: Genesis
    founding: FoundingMaterial
    gov_key: SigningKey
    gov: Credential
    org_key: SigningKey
    org: Credential
    user_key: SigningKey
    user: Credential

    def org_chain(self) -> list[Credential]:
        return [self.org, self.gov]

    def user_chain(self) -> list[Credential]:
        return [self.user, self.org, self.gov]

    def new_org(self, org_id: str, **attributes: object) -> tuple[SigningKey, list[Credential]]:
        key = SigningKey.generate()
        cred = credentials.issue(
            self.gov_key,
            network_id=self.genesis.network_id,
            role="organization",
            subject=key.fin_id,
            name=org_id,
            org_id=org_id,
            attributes=dict(attributes),
        )
        return key, [cred, self.gov]


def make_world(directory: Path, network_id: str = "testnet") -> World:
    genesis = create_genesis(
        directory, network_id=network_id, founding_names=["founder"], rendezvous=["https://127.0.0.1:1"], devnet=True
    )
    founding = FoundingMaterial.load(directory / "founding" / "founder")
    gov_key, org_key, user_key = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    nid = genesis.network_id
    gov = credentials.issue(
        founding.key, network_id=nid, role="governance", subject=gov_key.fin_id, name="gov-1", org_id="gov-1"
    )
    org = credentials.issue(
        gov_key, network_id=nid, role="organization", subject=org_key.fin_id, name="Bank A", org_id="org-a"
    )
    user = credentials.issue(
        org_key,
        network_id=nid,
        role="user",
        subject=user_key.fin_id,
        name="alice",
        org_id="org-a",
        attributes={"kyc_status": "verified"},
    )
    return World(genesis, founding, gov_key, gov, org_key, org, user_key, user)
