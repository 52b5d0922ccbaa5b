"""Discovery pages by reference: the registrar names adverts by digest, the asker fetches and verifies only those it
does not hold, and a hostile or stale page never makes it answer with an advert it should not.

The registrar is the real one (its store, its query and its handler); only the wire between it and the asker is
short-circuited, each request and answer still passing through JSON as it would over TLS."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.governance import registrar
from finp2p.governance.registrar import Registrar, store_advert
from finp2p.identity.keys import SigningKey
from finp2p.identity.revocation import Revoked, next_list
from finp2p.identity.trust import Trust
from finp2p.network import adverts as adv
from finp2p.network import capabilities
from finp2p.network.adverts import Advert
from finp2p.network.discovery import VerifiedAdverts
from finp2p.network.envelope import seal
from finp2p.network.messaging import Incoming
from finp2p.network.pubsub import PubSub
from finp2p.store import Store
from tests.support.world import World, make_world

ORGS = [f"org-{i:02d}" for i in range(12)]


class Wire:
    """The asker's messenger, handing each request to the registrar's handlers as the asker ``org-b``; counts what
    it is asked, and lets a test rewrite an answer as a hostile registrar would."""

    def __init__(self, world: World, trust: Trust) -> None:
        self.trust = trust
        self.handlers: dict[str, Any] = {}
        self.asked: list[dict[str, Any]] = []
        self.rewrite: Any = None
        self.key, chain = world.new_org("org-b")
        self.sender = trust.verify_chain(chain)

    def register(self, type_: str, handler: Any, **_: Any) -> None:
        self.handlers[type_] = handler

    async def request(self, url: str, type_: str, body: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        body = orjson.loads(orjson.dumps(body))
        self.asked.append(body)
        env = seal(self.key, network_id="testnet", type=type_, body=body, sender_org="org-b")
        answer = orjson.loads(orjson.dumps(await self.handlers[type_](Incoming(env, None, self.sender))))  # type: ignore[arg-type]
        return self.rewrite(body, answer) if self.rewrite else answer  # type: ignore[no-any-return]


def make_advert(key: SigningKey, chain: Any, seq: int = 1, lifetime_s: float = 60) -> Advert:
    return adv.make(
        key,
        tuple(chain),
        network_id="testnet",
        sequence=seq,
        addresses=["https://127.0.0.1:7001"],
        software="finp2p/test",
        caps=capabilities.ours(),
        ledgers=["eip155:31337"],
        groups=[],
        resources=[],
        lifetime_s=lifetime_s,
    )


@dataclass
class Pages:
    world: World
    store: Store
    wire: Wire
    orgs: dict[str, tuple[SigningKey, Any]]
    #: One clock for the registrar, the adverts it is given and the asker (seconds), moved by the tests.
    now: list[float]
    registrar: Registrar


@pytest.fixture
def net(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pages:
    world = make_world(tmp_path / "world")
    now = [time.time()]
    trust = Trust(world.genesis, clock=lambda: now[0])
    monkeypatch.setattr(registrar, "now_ms", lambda: int(now[0] * 1000))
    monkeypatch.setattr(adv, "now_ms", lambda: int(now[0] * 1000))
    store = Store(f"sqlite:///{tmp_path / 'registrar.db'}")
    store.migrate()
    wire = Wire(world, trust)
    pubsub = PubSub(store, wire, None, "https://registrar")  # type: ignore[arg-type]
    found = Registrar(store, trust, wire, pubsub, [], None)  # type: ignore[arg-type]
    orgs = {org: world.new_org(org) for org in ORGS}
    store.call(lambda s: [store_advert(s, make_advert(*orgs[org]), home=True) for org in ORGS])  # before it loads
    return Pages(world, store, wire, orgs, now, found)


async def publish(net: Pages, *adverts: Advert) -> None:
    """As the organizations publish them: stored, then found by the registrar's queries."""
    for a in adverts:
        assert (await net.registrar.accept(a.to_dict(), a.org_id, home=True))[1]


QUERY = {"by": "ledger", "value": "eip155:31337", "cursor": "", "limit": 50}


async def test_a_page_fetches_only_the_adverts_not_held_and_verified(net: Pages) -> None:
    verified = VerifiedAdverts(net.wire)  # type: ignore[arg-type]
    first, cursor = await verified.page("https://registrar", QUERY)
    assert [a.org_id for a in first] == ORGS and cursor is None
    assert [q["by"] for q in net.wire.asked] == ["ledger", "orgs"] and net.wire.asked[1]["value"] == ORGS
    again, _ = await verified.page("https://registrar", QUERY)
    assert again == first and len(net.wire.asked) == 3  # one request: every advert held
    key, chain = net.orgs["org-05"]
    await publish(net, make_advert(key, chain, seq=2))
    changed, _ = await verified.page("https://registrar", QUERY)
    assert net.wire.asked[-1] == {"by": "orgs", "value": ["org-05"], "limit": 1}
    assert [a.sequence for a in changed] == [2 if a.org_id == "org-05" else 1 for a in changed]


async def test_a_held_advert_that_is_no_longer_current_is_fetched_again(net: Pages) -> None:
    verified = VerifiedAdverts(net.wire)  # type: ignore[arg-type]
    await verified.page("https://registrar", QUERY)
    net.now[0] += 120  # every advert expired: the registrar names none, and nothing held answers
    assert await verified.page("https://registrar", QUERY) == ([], None)
    await publish(net, *(make_advert(*net.orgs[org], seq=2, lifetime_s=600) for org in ORGS))
    fresh, _ = await verified.page("https://registrar", QUERY)
    assert {a.sequence for a in fresh} == {2} and len(fresh) == len(ORGS)
    # A registrar naming an expired advert it once served: the asker holds it, checks it, and fetches instead.
    stale = [(adv.view_digest(a.to_dict()), a) for a in await _first_adverts(verified, net.wire)]
    net.now[0] += 1200
    net.wire.rewrite = lambda body, answer: (
        {"refs": [{"org_id": a.org_id, "digest": d} for d, a in stale], "next_cursor": None}
        if body.get("refs")
        else answer
    )
    assert await verified.page("https://registrar", QUERY) == ([], None)  # nothing current to give
    assert net.wire.asked[-1]["by"] == "orgs" and len(net.wire.asked[-1]["value"]) == len(
        ORGS
    )  # none used: all fetched


async def test_a_held_advert_whose_organization_is_revoked_is_left_out(net: Pages) -> None:
    verified = VerifiedAdverts(net.wire)  # type: ignore[arg-type]
    await verified.page("https://registrar", QUERY)
    fraud = [Revoked(net.orgs["org-03"][0].fin_id, "fraud", 1)]
    assert net.wire.trust.accept_revocations(next_list(net.world.gov_key, None, "testnet", fraud, (net.world.gov,)))
    got, _ = await verified.page("https://registrar", QUERY)
    assert [a.org_id for a in got] == [org for org in ORGS if org != "org-03"]
    assert net.wire.asked[-1]["value"] == ["org-03"]  # fetched again, verified, refused: the others still held


async def _first_adverts(verified: VerifiedAdverts, wire: Wire) -> list[Advert]:
    return (await verified.page("https://registrar", QUERY))[0]


async def test_a_reference_naming_another_organizations_advert_is_not_taken(net: Pages) -> None:
    verified = VerifiedAdverts(net.wire)  # type: ignore[arg-type]
    held = {a.org_id: adv.view_digest(a.to_dict()) for a in (await verified.page("https://registrar", QUERY))[0]}

    def swap(body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        if body.get("refs"):
            return {"refs": [{"org_id": "org-01", "digest": held["org-02"]}], "next_cursor": None}
        return answer

    net.wire.rewrite = swap
    got, _ = await verified.page("https://registrar", QUERY)
    assert [(a.org_id, a.sequence) for a in got] == [("org-01", 1)] and net.wire.asked[-1]["value"] == ["org-01"]


async def test_a_forged_fetched_advert_is_refused(net: Pages) -> None:
    verified = VerifiedAdverts(net.wire)  # type: ignore[arg-type]

    def forge(body: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        if body["by"] == "orgs":
            first = Advert.from_dict(answer["adverts"][0])
            answer["adverts"][0] = replace(first, addresses=("https://127.0.0.1:6666",)).to_dict()
        return answer

    net.wire.rewrite = forge
    with pytest.raises(FinP2PError) as info:
        await verified.page("https://registrar", QUERY)
    assert info.value.code is ErrorCode.BAD_SIGNATURE and len(verified) == 0


@pytest.mark.parametrize(
    "refs",
    [
        [{"org_id": "org-01", "digest": "ab" * 32}, {"org_id": "org-01", "digest": "cd" * 32}],
        [{"org_id": "org-01", "digest": "AB" * 32}],
        [{"org_id": "org-01"}],
        [{"org_id": "Org 1", "digest": "ab" * 32}],
        ["org-01"],
        [{"org_id": f"org-{i:03d}", "digest": "ab" * 32} for i in range(51)],
    ],
)
async def test_a_malformed_page_is_refused(net: Pages, refs: list[Any]) -> None:
    net.wire.rewrite = lambda body, answer: {"refs": refs, "next_cursor": None} if body.get("refs") else answer
    with pytest.raises(FinP2PError) as info:
        await VerifiedAdverts(net.wire).page("https://registrar", QUERY)  # type: ignore[arg-type]
    assert info.value.code is ErrorCode.MALFORMED


async def test_the_registrar_refuses_a_malformed_fetch(net: Pages) -> None:
    for body in (
        {"by": "orgs", "value": "org-01"},
        {"by": "orgs", "value": ["org-01", "Not An Org"]},
        {"by": "orgs", "value": [f"org-{i:03d}" for i in range(201)]},
        {**QUERY, "refs": "yes"},
    ):
        with pytest.raises(FinP2PError) as info:
            await net.wire.request("https://registrar", "discover", body)
        assert info.value.code is ErrorCode.MALFORMED, body


async def test_a_restarted_registrar_answers_from_what_its_store_holds(net: Pages) -> None:
    """The index is the store's, in memory: a registrar started afresh on the same store loads the same answers,
    the adverts stored through its predecessor included."""
    key, chain = net.orgs["org-07"]
    await publish(net, make_advert(key, chain, seq=3))
    before = await net.wire.request("https://registrar", "discover", {**QUERY, "refs": True})
    again = Registrar(net.store, net.wire.trust, net.wire, net.registrar.pubsub, [], None)  # type: ignore[arg-type]
    assert again._index is None
    after = await net.wire.request("https://registrar", "discover", {**QUERY, "refs": True})
    assert after == before and len(after["refs"]) == len(ORGS) and again._index is not None
    assert again._index.get("org-07").sequence == 3
