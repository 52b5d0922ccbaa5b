"""Resource ids, capabilities, address rules, adverts and the registrar's storage rules (unit tests)."""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finp2p.config import PeerSection, Settings
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.governance.advert_index import AdvertIndex
from finp2p.governance.registrar import store_advert
from finp2p.identity.trust import Trust
from finp2p.network import adverts as adv
from finp2p.network import capabilities
from finp2p.network.addresses import check_host, check_url
from finp2p.network.adverts import Advert, SharedResource
from finp2p.network.discovery import Discovery
from finp2p.resource_id import ResourceId, ResourceType
from finp2p.store import Store
from finp2p.store.models import AdvertRow
from tests.support.world import World, make_world

# -- resource ids ------------------------------------------------------------------------------------------------
org_ids = st.from_regex(r"[a-z0-9][a-z0-9._-]{1,62}", fullmatch=True)
local_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}", fullmatch=True)
types = st.integers(min_value=100, max_value=999)


@given(org_ids, types, local_ids)
def test_resource_ids_round_trip(org: str, type_: int, local: str) -> None:
    rid = ResourceId(org, type_, local)
    assert ResourceId.parse(str(rid)) == rid
    assert str(rid) == f"{org}:{type_}:{local}"


@given(st.text(max_size=60))
def test_parsing_never_crashes(text: str) -> None:
    try:
        rid = ResourceId.parse(text)
    except FinP2PError as err:
        assert err.code is ErrorCode.BAD_RESOURCE_ID
    else:
        assert str(rid) == text


@pytest.mark.parametrize(
    "bad",
    [
        "bank-a:101",
        "bank-a:101:x:y",
        "Bank-A:101:x",
        "bank-a:1o1:x",
        "bank-a:99:x",
        "bank-a:1001:x",
        "bank-a:101:",
        ":101:x",
        "bank-a:101:al ice",
        "bank-a:١٠١:x",
    ],
)
def test_malformed_resource_ids(bad: str) -> None:
    with pytest.raises(FinP2PError) as info:
        ResourceId.parse(bad)
    assert info.value.code is ErrorCode.BAD_RESOURCE_ID


def test_resource_types() -> None:
    assert ResourceId.parse("bank-a:101:alice").type_name == "user"
    assert ResourceId.parse("bank-a:102:bond").type == ResourceType.ASSET
    assert ResourceId.parse("bank-a:105:i1").type_name == "intent"
    assert ResourceId.parse("bank-a:106:p1").type_name == "execution_plan"
    assert ResourceId.parse("bank-a:777:x").type_name == "custom"


# -- capabilities and addresses ----------------------------------------------------------------------------------
def test_missing_mandatory_capabilities_are_listed() -> None:
    caps = dict(capabilities.MANDATORY)
    del caps["finp2p.pubsub"]
    caps["finp2p.broadcast"] = "0.9"
    with pytest.raises(FinP2PError) as info:
        capabilities.check(caps)
    assert info.value.code is ErrorCode.MISSING_CAPABILITIES
    assert "finp2p.pubsub 1.0" in info.value.detail and "finp2p.broadcast 1.0" in info.value.detail
    assert capabilities.check({**capabilities.MANDATORY, "finp2p.request": "1.3"})  # a newer minor is fine
    assert capabilities.supports("1.2", "1.0") and not capabilities.supports("2.0", "1.0")


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.7",
        "172.20.0.1",
        "169.254.1.1",
        "::1",
        "fe80::1",
        "localhost",
        "node.local",
        "intranet",
        "fd00::5",
        "100.64.0.1",
    ],
)
def test_non_public_addresses_are_refused_outside_a_devnet(host: str) -> None:
    with pytest.raises(FinP2PError) as info:
        check_host(host, devnet=False)
    assert info.value.code is ErrorCode.BAD_ADDRESS
    assert check_host(host, devnet=True)


@pytest.mark.parametrize("host", ["8.8.8.8", "node.bank-a.com", "2001:4860:4860::8888", "finp2p.example.org"])
def test_public_addresses(host: str) -> None:
    assert check_host(host, devnet=False)


def test_urls() -> None:
    assert check_url("https://node.bank-a.com:7001/", devnet=False) == "https://node.bank-a.com:7001"
    for bad in ("http://node.bank-a.com:7001", "https://node.bank-a.com", "https://node.bank-a.com:7001/x"):
        with pytest.raises(FinP2PError):
            check_url(bad, devnet=False)


# -- adverts -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("world"))


def advert(world: World, seq: int = 1, **kw: object) -> Advert:
    key, chain = world.org_key, (world.org, world.gov)
    args: dict[str, object] = {
        "network_id": "testnet",
        "sequence": seq,
        "addresses": ["https://127.0.0.1:7001"],
        "software": "finp2p/test",
        "caps": capabilities.ours(),
        "ledgers": ["eip155:31337"],
        "groups": ["pilot"],
        "resources": [],
        "lifetime_s": 60,
    }
    args.update(kw)
    return adv.make(key, chain, **args)  # type: ignore[arg-type]


def test_an_advert_verifies_and_survives_its_json_form(world: World) -> None:
    a = advert(world, resources=[SharedResource("org-a:102:bond", "bonds/updates")])
    back = Advert.from_dict(a.to_dict())
    assert back == a
    assert adv.verify(back, Trust(world.genesis)).org_id == "org-a"


def test_a_forged_advert_is_refused(world: World) -> None:
    a = advert(world)
    for change in ({"addresses": ("https://127.0.0.1:6666",)}, {"ledgers": ("eip155:1",)}, {"sequence": 99}):
        with pytest.raises(FinP2PError) as info:
            adv.verify(replace(a, **change), Trust(world.genesis))
        assert info.value.code is ErrorCode.BAD_SIGNATURE


def test_an_advert_for_someone_else_is_refused(world: World) -> None:
    a = advert(world)
    with pytest.raises(FinP2PError) as info:
        adv.verify(replace(a, org_id="org-b"), Trust(world.genesis))
    assert info.value.code is ErrorCode.BAD_SIGNATURE  # the org id is signed
    _, other_chain = world.new_org("org-b")
    stolen = replace(a, chain=tuple(other_chain))
    with pytest.raises(FinP2PError) as info:
        adv.verify(stolen, Trust(world.genesis))
    assert info.value.code is ErrorCode.FOREIGN_ADVERT
    with pytest.raises(FinP2PError) as info:
        adv.verify(advert(world, resources=[SharedResource("org-z:102:x")]), Trust(world.genesis))
    assert info.value.code is ErrorCode.FOREIGN_ADVERT


def test_expired_and_unsigned(world: World) -> None:
    a = advert(world)
    with pytest.raises(FinP2PError) as info:
        adv.verify(a, Trust(world.genesis), now_ms=a.expires_ms + 1)
    assert info.value.code is ErrorCode.ADVERT_EXPIRED
    doc = a.to_dict()
    del doc["signature"]
    with pytest.raises(FinP2PError) as info:
        Advert.from_dict(doc)
    assert info.value.code is ErrorCode.MALFORMED


def test_hidden_resources_are_left_out_and_the_rest_still_verifies(world: World) -> None:
    a = advert(
        world,
        resources=[
            SharedResource("org-a:102:public-bond"),
            SharedResource("org-a:101:alice", visible_to=("org:org-c",)),
            SharedResource("org-a:102:club-bond", visible_to=("group:club",)),
        ],
    )
    trust = Trust(world.genesis)
    for asker, groups, expected in [
        ("org-b", frozenset(), ["org-a:102:public-bond"]),
        ("org-c", frozenset(), ["org-a:102:public-bond", "org-a:101:alice"]),
        ("org-d", frozenset({"club"}), ["org-a:102:public-bond", "org-a:102:club-bond"]),
    ]:
        seen = Advert.from_dict(a.seen_by(asker, groups).to_dict())
        assert [r.resource_id for r in seen.resources] == expected
        adv.verify(seen, trust)  # the signature covers the hashes, so a partial view verifies
    tampered = replace(a, resources=(replace(a.resources[1], visible_to=("*",)),))
    with pytest.raises(FinP2PError) as info:
        adv.verify(tampered, trust)
    assert info.value.code is ErrorCode.BAD_SIGNATURE


def test_public_addresses_are_required_outside_a_devnet(tmp_path: Path) -> None:
    world = make_world(tmp_path, network_id="prodnet")
    prod = replace(world.genesis, devnet=False)
    a = adv.make(
        world.org_key,
        (world.org, world.gov),
        network_id="prodnet",
        sequence=1,
        addresses=["https://127.0.0.1:7001"],
        software="x",
        caps=capabilities.ours(),
        ledgers=[],
        groups=[],
        resources=[],
        lifetime_s=60,
    )
    with pytest.raises(FinP2PError) as info:
        adv.verify(a, Trust(prod))
    assert info.value.code is ErrorCode.BAD_ADDRESS


def test_the_registrar_keeps_the_newest_and_refuses_stale_and_replayed(world: World, store_url: str) -> None:
    store = Store(store_url)
    store.migrate()
    try:
        first, second = advert(world, 1), advert(world, 2, ledgers=["eip155:1"])
        assert store.call(lambda s: store_advert(s, first, home=False))
        assert not store.call(lambda s: store_advert(s, first, home=True)), "the same advert again: no change"
        assert store.call(lambda s: store_advert(s, second, home=False))
        assert not store.call(lambda s: store_advert(s, second, home=False)), "the same advert again: no change"
        for old in (first, replace(advert(world, 2), sequence=2)):
            with pytest.raises(FinP2PError) as info:
                store.call(functools.partial(store_advert, a=old, home=True))
            assert info.value.code is ErrorCode.STALE_ADVERT
        held = store.call(lambda s: s.get(AdvertRow, "org-a"))
        assert held is not None and held.sequence == 2 and held.fin_id == second.fin_id
        assert held.home, "once published here by its organization, an advert stays home when a newer is replicated"
        assert json.loads(held.document) == second.to_dict()
        index, now = store.call(AdvertIndex.load), second.issued_ms
        assert [a.sequence for a in index.find("ledger", "eip155:1", "", 10, now)] == [2]
        assert index.find("ledger", "eip155:31337", "", 10, now) == []
        assert [a.org_id for a in index.find("capability", "finp2p.pubsub", "", 10, now)] == ["org-a"]
    finally:
        store.close()


async def test_writers_racing_with_adverts_of_one_organization_leave_the_newest(world: World, store_url: str) -> None:
    """Many writers at once, each with one of five sequences: exactly one write per sequence that was newest when
    it landed succeeds, none replaces a newer one, and the advert held at the end is the newest of all."""
    store = Store(store_url, pool_size=8)
    store.migrate()
    try:
        adverts = [advert(world, seq) for seq in (1, 2, 3, 4, 5)] * 4

        async def write(a: Advert) -> bool | None:
            try:
                return await store.run(functools.partial(store_advert, a=a, home=False))
            except FinP2PError as err:
                assert err.code is ErrorCode.STALE_ADVERT
                return None

        outcomes = await asyncio.gather(*(write(a) for a in adverts))
        stored = sorted(a.sequence for a, outcome in zip(adverts, outcomes, strict=True) if outcome)
        assert stored == sorted(set(stored)), "each sequence stored at most once"
        held = store.call(lambda s: s.get(AdvertRow, "org-a"))
        assert held is not None and held.sequence == 5 and 5 in stored
    finally:
        store.close()


def test_the_advert_index_finds_what_the_store_holds_by_each_kind_in_order(world: World) -> None:
    """Built from adverts as the store would hand them over, then kept as newer ones are stored: each found under
    what it advertises now, never under what it no longer does, expired ones left out, paged by organization."""

    def made(org: str, seq: int = 1, lifetime_s: float = 60, **kw: object) -> Advert:
        args: dict[str, object] = {"ledgers": ["eip155:1"], "groups": [], "lifetime_s": lifetime_s, **kw}
        return replace(advert(world, seq, **args), org_id=org)  # the index holds what it is given: verified before

    index = AdvertIndex([made(org) for org in ("org-c", "org-a", "org-e", "org-b", "org-d")])
    now = index.get("org-a").issued_ms  # type: ignore[union-attr]

    def orgs(by: str, value: str | list[str] | None, cursor: str = "", limit: int = 10, at: int = now) -> list[str]:
        return [a.org_id for a in index.find(by, value, cursor, limit, at)]

    assert orgs("ledger", "eip155:1") == ["org-a", "org-b", "org-c", "org-d", "org-e"] == orgs("all", None)
    assert orgs("ledger", "eip155:1", cursor="org-b", limit=2) == ["org-c", "org-d"]
    assert orgs("orgs", ["org-e", "org-a", "org-x", "org-a"]) == ["org-a", "org-e"]
    assert orgs("org", "org-d") == ["org-d"] and orgs("org", "org-x") == [] and orgs("ledger", "eip155:2") == []
    index.put(made("org-b", 2, ledgers=["eip155:2"], groups=["club"]))
    index.put(made("org-b", 1))  # older than the one held: ignored
    assert orgs("ledger", "eip155:1") == ["org-a", "org-c", "org-d", "org-e"]
    assert orgs("ledger", "eip155:2") == ["org-b"] == orgs("group", "club")
    index.put(made("org-c", 2, lifetime_s=1))
    assert orgs("ledger", "eip155:1", at=now + 5_000) == ["org-a", "org-d", "org-e"]
    assert len(index) == 5


def test_registration_without_the_mandatory_capabilities_is_refused() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    from finp2p.governance.authority import check_request
    from finp2p.identity import tls
    from finp2p.identity.keys import SigningKey

    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "bank-x")]))
        .sign(tls.new_key(), hashes.SHA256())
    )
    body = {
        "org_id": "bank-x",
        "name": "Bank X",
        "public_url": "https://node.bank-x.com:443",
        "hosts": ["node.bank-x.com"],
        "csr_pem": csr.public_bytes(serialization.Encoding.PEM).decode(),
        "capabilities": {"finp2p.envelope": "1.0", "finp2p.request": "1.0"},
    }
    fin_id = SigningKey.generate().fin_id
    with pytest.raises(FinP2PError) as info:
        check_request(body, fin_id, devnet=False)
    assert info.value.code is ErrorCode.MISSING_CAPABILITIES
    assert "finp2p.pubsub 1.0, finp2p.broadcast 1.0, finp2p.discovery 1.0" in info.value.detail
    assert check_request({**body, "capabilities": capabilities.ours()}, fin_id, devnet=False)[0] == "bank-x"


async def test_adverts_made_at_once_are_published_one_after_the_other(world: World, tmp_path: Path) -> None:
    """The periodic check and a new asset's forced advert at the same moment: each signs its own sequence number
    (two with one number, and the registrar refused the second as stale: a devnet's asset creation failed so)."""
    store = Store(f"sqlite:///{tmp_path / 'node.db'}")
    store.migrate()
    published: list[int] = []

    class Registrar:  # the messenger's side of discovery: its identity, and the registrar's answer
        key, chain, network_id = world.org_key, (world.org, world.gov), world.genesis.network_id
        trust = SimpleNamespace(genesis=SimpleNamespace(rendezvous=["https://127.0.0.1:1"]))

        async def request(self, url: str, type_: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
            sequence = body["advert"]["sequence"]
            await asyncio.sleep(0.05)  # the other caller runs meanwhile
            if published and sequence <= published[-1]:
                raise FinP2PError(ErrorCode.STALE_ADVERT, f"sequence {sequence}, held {published[-1]}")
            published.append(sequence)
            return {"stored": True}

    settings = Settings(peer=PeerSection(public_url="https://127.0.0.1:7001"))
    discovery = Discovery(settings, store, Registrar(), None)  # type: ignore[arg-type]
    try:
        first, second = await asyncio.gather(discovery.advertise(), discovery.advertise(force=True))
        assert first is not None and second is not None
        assert (first.sequence, second.sequence) == (1, 2) and published == [1, 2]
        assert await discovery.advertise() is None, "nothing changed since: nothing to publish"
    finally:
        store.close()
