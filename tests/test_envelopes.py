"""The inbound checks of the messaging layer, one module in-process: a real store (the replay window survives a
restart), real keys and credentials; the TLS peer is given as the transport would report it."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from finp2p.identity.credentials import Credential
from finp2p.identity.keys import SigningKey
from finp2p.identity.replay import AHEAD_MS, ReplayGuard
from finp2p.identity.revocation import Revoked, next_list
from finp2p.identity.trust import Trust
from finp2p.network.envelope import Envelope, seal
from finp2p.network.messaging import Incoming, Messenger
from finp2p.network.transport import Peer, Transport
from finp2p.store import Store
from tests.support.world import World, make_world

SPKI_A = "aa" * 32


class NoTransport(Transport):  # the receiving side never sends in these tests
    async def start(self, inbound: Any) -> str:
        raise NotImplementedError

    async def request(self, address: str, payload: bytes, *, timeout: float) -> bytes:
        raise NotImplementedError

    async def close(self) -> None:
        pass


class Receiver:
    def __init__(self, world: World, store: Store) -> None:
        key, chain = world.new_org("org-b", tls_spki_sha256="bb" * 32)
        self.trust = Trust(world.genesis)
        self.messenger = Messenger(
            key=key,
            org_id="org-b",
            chain=tuple(chain),
            trust=self.trust,
            replay=ReplayGuard(store, 60_000),
            transport=NoTransport(),
        )
        self.calls: list[Incoming] = []

        async def echo(msg: Incoming) -> dict[str, Any]:
            self.calls.append(msg)
            return {"echo": msg.body}

        self.messenger.register("echo", echo)
        self.messenger.register("hello", echo, open_to_newcomers=True)

    async def send(self, env: Envelope | bytes, peer: Peer) -> dict[str, Any]:
        raw = env if isinstance(env, bytes) else env.encode()
        reply = Envelope.decode(await self.messenger.handle(peer, raw))
        assert reply.sender == self.messenger.key.fin_id and reply.type == "reply"
        return reply.body


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path / "world")


@pytest.fixture
def store(tmp_path: Path):
    s = Store(f"sqlite:///{tmp_path / 'b.db'}")
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def sender(world: World) -> tuple[SigningKey, tuple[Credential, ...], Peer]:
    key, chain = world.new_org("org-a", tls_spki_sha256=SPKI_A)
    return key, tuple(chain), Peer("org-a", key.fin_id, SPKI_A, "127.0.0.1")


def envelope(sender: Any, **kw: Any) -> Envelope:
    key, chain, _ = sender
    args: dict[str, Any] = {
        "network_id": "testnet",
        "type": "echo",
        "body": {"n": 1},
        "sender_org": "org-a",
        "recipients": ("org-b",),
        "chain": chain,
    }
    args.update(kw)
    return seal(key, **args)


def code(body: dict[str, Any]) -> str:
    assert body["ok"] is False, body
    return str(body["error"]["code"])


async def test_a_good_message_is_handled(world: World, store: Store, sender: Any) -> None:
    rx = Receiver(world, store)
    body = await rx.send(envelope(sender), sender[2])
    assert body == {"ok": True, "result": {"echo": {"n": 1}}}
    assert rx.calls[0].sender is not None and rx.calls[0].sender.org_id == "org-a"


async def test_replay_is_refused_also_after_a_restart(world: World, tmp_path: Path, sender: Any) -> None:
    env = envelope(sender)
    url = f"sqlite:///{tmp_path / 'replay.db'}"
    first = Store(url)
    first.migrate()
    rx = Receiver(world, first)
    assert (await rx.send(env, sender[2]))["ok"]
    assert code(await rx.send(env, sender[2])) == "FP2010"
    first.close()
    second = Store(url)  # the node restarted
    try:
        second.migrate()
        rx2 = Receiver(world, second)
        # Refused by its sender's floor: the restarted node cannot tell it from a late first copy, and says so.
        assert code(await rx2.send(env, sender[2])) == "FP2018"
        assert code(await rx2.send(env, sender[2])) == "FP2018", "however often it comes"
        assert rx2.calls == []
    finally:
        second.close()


async def test_after_a_restart_what_the_earlier_run_could_have_accepted_is_refused(
    world: World, tmp_path: Path, sender: Any
) -> None:
    """Sealed before the restart, or at or below a fast sender's horizon, an envelope may have been accepted before:
    refused, transiently. Sealed after the restart and beyond the horizons, served."""
    url = f"sqlite:///{tmp_path / 'replay.db'}"
    now = int(time.time() * 1000)
    first = Store(url)
    first.migrate()
    rx = Receiver(world, first)
    assert (await rx.send(envelope(sender), sender[2]))["ok"]
    assert (await rx.send(envelope(sender, now_ms=now + 20_000), sender[2]))["ok"], "a sender 20 s fast"
    sealed_before = envelope(sender)
    first.close()
    second = Store(url)  # the node restarted
    try:
        rx = Receiver(world, second)
        for unseen in (sealed_before, envelope(sender, now_ms=now + 20_000 + AHEAD_MS)):
            body = await rx.send(unseen, sender[2])
            assert code(body) == "FP2018" and "restarted" in body["error"]["detail"], unseen.timestamp_ms
        beyond = envelope(sender, now_ms=now + 20_000 + AHEAD_MS + 1)
        assert (await rx.send(beyond, sender[2]))["ok"]
        assert code(await rx.send(beyond, sender[2])) == "FP2010", "and within the run, by its nonce"
        assert len(rx.calls) == 1
    finally:
        second.close()


async def test_only_envelopes_ahead_of_the_clock_cost_a_durable_write(world: World, store: Store, sender: Any) -> None:
    """An envelope timestamped at or behind the node's clock needs no write (the next run's restart floor covers
    it); one from a fast clock raises its sender's horizon, which covers that sender's next ones."""
    rx = Receiver(world, store)
    writes: list[int] = []
    run = store.run

    async def counting(fn: Any) -> Any:
        writes.append(1)
        return await run(fn)

    store.run = counting  # type: ignore[method-assign]
    for _ in range(10):
        assert (await rx.send(envelope(sender), sender[2]))["ok"]
    assert len(writes) == 1, "the run's start noted with the earlier runs' floors read, once; nothing else"
    ahead = int(time.time() * 1000) + 30_000
    for _ in range(10):  # one timestamp (fresh nonces): however slow the machine, all within one horizon
        assert (await rx.send(envelope(sender, now_ms=ahead), sender[2]))["ok"]
    assert len(writes) == 2, "one horizon written for the fast sender"


async def test_clock_skew(world: World, store: Store, sender: Any) -> None:
    rx = Receiver(world, store)
    old = envelope(sender, now_ms=int(time.time() * 1000) - 5 * 60_000)
    future = envelope(sender, now_ms=int(time.time() * 1000) + 5 * 60_000)
    assert code(await rx.send(old, sender[2])) == "FP2011"
    assert code(await rx.send(future, sender[2])) == "FP2011"


async def test_bad_signature_and_tampering(world: World, store: Store, sender: Any) -> None:
    rx = Receiver(world, store)
    env = envelope(sender)
    assert code(await rx.send(replace(env, body={"n": 2}), sender[2])) == "FP2002"
    other = SigningKey.generate()
    forged = replace(env, signature=other.sign("envelope", env.signed_part()).hex())
    assert code(await rx.send(forged, sender[2])) == "FP2002"
    assert rx.calls == []


async def test_signed_by_another_known_member(world: World, store: Store, sender: Any) -> None:
    rx = Receiver(world, store)
    assert (await rx.send(envelope(sender), sender[2]))["ok"]  # org-a is now known to the receiver
    mallory_key, mallory_chain = world.new_org("org-m", tls_spki_sha256="cc" * 32)
    env = envelope(sender)
    # org-a's envelope re-signed by org-a's key but naming org-m as sender: a known other signer.
    fake = replace(env, sender=mallory_key.fin_id, sender_org="org-m", chain=tuple(mallory_chain))
    fake = replace(fake, signature=sender[0].sign("envelope", fake.signed_part()).hex())
    body = await rx.send(fake, Peer("org-m", mallory_key.fin_id, "cc" * 32, "x"))
    assert code(body) == "FP2003"


async def test_sender_must_match_the_tls_peer(world: World, store: Store, sender: Any) -> None:
    rx = Receiver(world, store)
    key_c, _ = world.new_org("org-c")
    assert code(await rx.send(envelope(sender), Peer("org-c", key_c.fin_id, "dd" * 32, "x"))) == "FP3003"
    # The right organization but a TLS key its credential does not name.
    assert code(await rx.send(envelope(sender), Peer("org-a", sender[0].fin_id, "ee" * 32, "x"))) == "FP2017"


async def test_unknown_expired_or_revoked_senders(world: World, store: Store, sender: Any) -> None:
    rx = Receiver(world, store)
    assert code(await rx.send(envelope(sender, chain=()), sender[2])) == "FP2012"
    stranger = make_world(Path(store.url.split("///")[1]).parent / "stranger")
    s_key, s_chain = stranger.new_org("org-a", tls_spki_sha256=SPKI_A)
    env = seal(s_key, network_id="testnet", type="echo", body={}, sender_org="org-a", chain=tuple(s_chain))
    assert code(await rx.send(env, Peer("org-a", s_key.fin_id, SPKI_A, "x"))) == "FP2007"
    rx.trust.accept_revocations(
        next_list(world.gov_key, None, "testnet", [Revoked(sender[0].fin_id, "x", 1)], (world.gov,))
    )
    assert code(await rx.send(envelope(sender), sender[2])) == "FP2006"


async def test_cheap_refusals(world: World, store: Store, sender: Any) -> None:
    rx = Receiver(world, store)
    assert code(await rx.send(envelope(sender, network_id="othernet"), sender[2])) == "FP2009"
    assert code(await rx.send(envelope(sender, recipients=("org-z",)), sender[2])) == "FP2013"
    assert code(await rx.send(envelope(sender, type="nope"), sender[2])) == "FP3004"
    for raw in (b"not json", b"[]", b"{}", json.dumps({"version": 1, "type": "echo"}).encode()):
        assert code(await rx.send(raw, sender[2])) == "FP2001"
    newcomer = Peer(None, None, None, "x")
    assert code(await rx.send(envelope(sender), newcomer)) == "FP3008", "members-only types need a certificate"
    newcomer_key = SigningKey.generate()
    hello = seal(newcomer_key, network_id="testnet", type="hello", body={}, sender_org="new-org")
    assert (await rx.send(hello, newcomer))["ok"], "open types take newcomers, signature still checked"
    assert rx.calls[-1].sender is None
