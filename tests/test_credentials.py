"""Credential chains founding → governance → organization → user, and every way one is refused."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import credentials
from finp2p.identity.credentials import Credential, chain_from
from finp2p.identity.keys import SigningKey
from finp2p.identity.revocation import Revoked, next_list
from finp2p.identity.trust import Trust
from tests.support.world import World, make_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("world"))


def refused(trust: Trust, chain: list[Credential]) -> ErrorCode:
    with pytest.raises(FinP2PError) as info:
        trust.verify_chain(chain)
    return info.value.code


def test_the_full_chain_verifies(world: World) -> None:
    trust = Trust(world.genesis)
    ident = trust.verify_chain(world.user_chain())
    assert (ident.role, ident.org_id, ident.fin_id) == ("user", "org-a", world.user_key.fin_id)
    assert ident.attributes == {"kyc_status": "verified"}
    assert trust.verify_chain(world.org_chain(), role="organization").org_id == "org-a"
    assert trust.verify_chain([world.gov]).role == "governance"


def test_chains_survive_their_json_form(world: World) -> None:
    doc = credentials.chain_document(world.user_chain())
    assert Trust(world.genesis).verify_chain(chain_from(doc)).name == "alice"


def _issue(issuer: SigningKey, role: str, world: World, org_id: str | None = "org-a", **kw: object) -> Credential:
    return credentials.issue(
        issuer,
        network_id=world.genesis.network_id,
        role=role,
        subject=SigningKey.generate().fin_id,
        name=f"a {role}",
        org_id=org_id,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("issuer", "role"),
    [
        ("org", "governance"),
        ("org", "organization"),
        ("gov", "user"),
        ("user", "user"),
        ("user", "asset"),
        ("founding", "organization"),
    ],
)
def test_wrong_role_at_a_link(world: World, issuer: str, role: str) -> None:
    keys = {"org": world.org_key, "gov": world.gov_key, "user": world.user_key, "founding": world.founding.key}
    parents = {"org": world.org_chain(), "gov": [world.gov], "user": world.user_chain(), "founding": []}
    cred = _issue(keys[issuer], role, world)
    assert refused(Trust(world.genesis), [cred, *parents[issuer]]) is ErrorCode.WRONG_ROLE


def test_an_organization_cannot_certify_users_of_another_org(world: World) -> None:
    cred = _issue(world.org_key, "user", world, org_id="org-b")
    assert refused(Trust(world.genesis), [cred, *world.org_chain()]) is ErrorCode.WRONG_ROLE


def test_expired(world: World) -> None:
    past = int((time.time() - 10 * 86400) * 1000)
    cred = credentials.issue(
        world.org_key,
        network_id="testnet",
        role="user",
        subject=world.user_key.fin_id,
        name="old",
        org_id="org-a",
        valid_days=1,
        now_ms=past,
    )
    assert refused(Trust(world.genesis), [cred, *world.org_chain()]) is ErrorCode.CREDENTIAL_EXPIRED


def test_expiry_is_checked_with_the_clock_of_the_moment(world: World) -> None:
    later = time.time() + 400 * 86400
    assert refused(Trust(world.genesis, clock=lambda: later), world.user_chain()) is ErrorCode.CREDENTIAL_EXPIRED


def test_issued_in_the_future(world: World) -> None:
    future = int((time.time() + 3600) * 1000)
    cred = credentials.issue(
        world.org_key,
        network_id="testnet",
        role="user",
        subject=world.user_key.fin_id,
        name="early",
        org_id="org-a",
        now_ms=future,
    )
    assert refused(Trust(world.genesis), [cred, *world.org_chain()]) is ErrorCode.CREDENTIAL_NOT_YET_VALID


def test_revoked_by_its_issuer_and_everything_below(world: World) -> None:
    trust = Trust(world.genesis)
    trust.accept_revocations(
        next_list(world.gov_key, None, "testnet", [Revoked(world.org_key.fin_id, "fraud", 1)], (world.gov,))
    )
    assert refused(trust, world.org_chain()) is ErrorCode.CREDENTIAL_REVOKED
    assert refused(trust, world.user_chain()) is ErrorCode.CREDENTIAL_REVOKED, "the org's users fall with it"
    assert trust.verify_chain([world.gov]).role == "governance"


def test_a_founding_node_can_revoke_a_governance_node(world: World) -> None:
    trust = Trust(world.genesis)
    trust.accept_revocations(next_list(world.founding.key, None, "testnet", [Revoked(world.gov_key.fin_id, "x", 1)]))
    for chain in ([world.gov], world.org_chain(), world.user_chain()):
        assert refused(trust, chain) is ErrorCode.CREDENTIAL_REVOKED


def test_a_governance_list_only_covers_what_that_node_issued(world: World) -> None:
    other_gov_key = SigningKey.generate()
    other_gov = credentials.issue(
        world.founding.key,
        network_id="testnet",
        role="governance",
        subject=other_gov_key.fin_id,
        name="gov-2",
        org_id="gov-2",
    )
    trust = Trust(world.genesis)
    trust.accept_revocations(
        next_list(other_gov_key, None, "testnet", [Revoked(world.org_key.fin_id, "x", 1)], (other_gov,))
    )
    assert trust.verify_chain(world.org_chain()).org_id == "org-a"


def test_revocation_lists_are_sequenced(world: World) -> None:
    trust = Trust(world.genesis)
    first = next_list(world.gov_key, None, "testnet", [], (world.gov,))
    second = next_list(world.gov_key, first, "testnet", [Revoked(world.org_key.fin_id, "x", 1)], (world.gov,))
    assert trust.accept_revocations(second)
    assert not trust.accept_revocations(second), "the same list again is a no-op"
    with pytest.raises(FinP2PError) as info:
        trust.accept_revocations(first)
    assert info.value.code is ErrorCode.REVOCATION_LIST


def test_an_organization_cannot_publish_revocations(world: World) -> None:
    rl = next_list(world.org_key, None, "testnet", [Revoked(world.gov_key.fin_id, "coup", 1)], (world.org, world.gov))
    with pytest.raises(FinP2PError) as info:
        Trust(world.genesis).accept_revocations(rl)
    assert info.value.code is ErrorCode.WRONG_ROLE


def test_a_forged_revocation_list_is_refused(world: World) -> None:
    rl = next_list(world.gov_key, None, "testnet", [Revoked(world.org_key.fin_id, "x", 1)], (world.gov,))
    forged = replace(rl, entries=(*rl.entries, Revoked(world.founding.key.fin_id, "x", 1)))
    with pytest.raises(FinP2PError) as info:
        Trust(world.genesis).accept_revocations(forged)
    assert info.value.code is ErrorCode.BAD_SIGNATURE


def test_unknown_root(world: World, tmp_path: Path) -> None:
    stranger = make_world(tmp_path, network_id="testnet")  # same network id, other founders
    assert refused(Trust(world.genesis), stranger.org_chain()) is ErrorCode.UNKNOWN_ROOT
    assert refused(Trust(world.genesis), [world.org]) is ErrorCode.UNKNOWN_ROOT, "the issuer's link is missing"


def test_tampered_field(world: World) -> None:
    for change in (
        {"name": "Bank B"},
        {"org_id": "org-b"},
        {"expires_ms": world.org.expires_ms + 1},
        {"attributes": {"tls_spki_sha256": "00"}},
        {"role": "governance"},
    ):
        tampered = replace(world.org, **change)
        code = refused(Trust(world.genesis), [tampered, world.gov])
        assert code is ErrorCode.BAD_SIGNATURE, change


def test_a_tampered_copy_of_a_credential_verified_before_is_refused(world: World) -> None:
    """A verifier that has checked a credential once caches the result: a copy with the same id and signature but
    another subject, organization or key binding is a different credential and is checked afresh (and fails)."""
    trust = Trust(world.genesis)
    trust.verify_chain([world.org, world.gov])
    intruder = SigningKey.generate()
    for change in (
        {"subject": intruder.fin_id},
        {"org_id": "org-b"},
        {"attributes": {"tls_spki_sha256": "00" * 32}},
        {"expires_ms": world.org.expires_ms + 86_400_000},
    ):
        assert refused(trust, [replace(world.org, **change), world.gov]) is ErrorCode.BAD_SIGNATURE, change
    assert trust.verify_chain([world.org, world.gov]).org_id == "org-a", "the genuine one still verifies"


def test_signature_by_another_key(world: World) -> None:
    cred = credentials.issue(
        world.org_key,
        network_id="testnet",
        role="organization",
        subject=world.org_key.fin_id,
        name="self-made",
        org_id="org-x",
    )
    impostor = replace(cred, issuer=world.gov_key.fin_id)  # claims gov-1 issued it; org-a's key signed it
    resigned = replace(impostor, signature=world.org_key.sign("credential", impostor.body()).hex())
    assert refused(Trust(world.genesis), [resigned, world.org, world.gov]) is ErrorCode.WRONG_SIGNER


def test_wrong_network(world: World, tmp_path: Path) -> None:
    other = make_world(tmp_path, network_id="othernet")
    assert refused(Trust(world.genesis), other.org_chain()) is ErrorCode.WRONG_NETWORK


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d.pop("signature"),
        lambda d: d.update(subject="02" + "zz" * 32),
        lambda d: d.update(signature="abcd"),
        lambda d: d.update(expires_ms="tomorrow"),
        lambda d: d.update(role="king"),
        lambda d: d.update(version=2),
    ],
)
def test_malformed_encoding(world: World, mangle: object) -> None:
    doc = world.org.to_dict()
    mangle(doc)  # type: ignore[operator]
    with pytest.raises(FinP2PError) as info:
        Credential.from_dict(doc)
    assert info.value.code is ErrorCode.MALFORMED
