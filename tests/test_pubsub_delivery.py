"""Pub/sub delivery from memory and from the outbox: a publisher and its subscribers in this process, over real
mutual TLS on loopback with real stores. Messages published by the node and messages another writer (the CLI)
put in its outbox interleave; every subscriber gets each one once, in order. On the open topic, subscribers in
step share one signed delivery."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlmodel import select

from bench.netkit import BenchNode, mint, node
from finp2p.network.adverts import REGISTRAR_TOPIC
from finp2p.network.envelope import Envelope
from finp2p.network.pubsub import _set_acks, append, inbox
from finp2p.store.models import SubscriberRow, SubscriptionRow

TOPIC = "news/bonds"


async def test_published_and_outbox_messages_reach_every_subscriber_once_in_order(tmp_path: Path) -> None:
    manifest = mint(tmp_path, 3)
    publisher_spec, *subscriber_specs = manifest["nodes"]
    publisher = await node(manifest, publisher_spec, serve=False)
    subscribers = [await node(manifest, s, subscribe_to=(publisher_spec["org_id"], TOPIC)) for s in subscriber_specs]
    rows = [
        SubscriberRow(topic=TOPIC, org_id=s["org_id"], address=s["address"], created_ms=0) for s in subscriber_specs
    ]
    publisher.store.call(lambda s: [s.merge(r) for r in rows])
    await publisher.pubsub.start()
    try:
        expected = []
        for i in range(120):
            body = {"i": i, "by": "node" if i % 7 else "cli"}
            if i % 7:
                await publisher.pubsub.publish(TOPIC, body)
            else:  # another process writing to the node's outbox, as `finp2p pubsub publish` does
                publisher.store.call(functools.partial(append, topic=TOPIC, body=body))
            expected.append(body)
            if i % 10 == 0:
                await asyncio.sleep(0)  # let deliveries interleave with publishing
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(len(inbox(s.store, TOPIC)) >= len(expected) for s in subscribers):
                break
            await asyncio.sleep(0.05)
        for s in subscribers:
            got = inbox(s.store, TOPIC)
            assert [m.seq for m in got] == list(range(1, len(expected) + 1))
            assert [json.loads(m.body) for m in got] == expected
        await publisher.pubsub.close()  # writes the acknowledgements still waiting
        acked = publisher.store.call(lambda s: {r.org_id: r.acked_seq for r in s.exec(select(SubscriberRow))})
        assert acked == {s["org_id"]: len(expected) for s in subscriber_specs}
        # An acknowledgement written late (behind a newer one) never lowers what is stored.
        first = subscriber_specs[0]["org_id"]
        publisher.store.call_driver(functools.partial(_set_acks, acks={(TOPIC, first): 3}))
        row = publisher.store.call(lambda s: s.get(SubscriberRow, (TOPIC, first)))
        assert row is not None and row.acked_seq == len(expected)
    finally:
        await publisher.pubsub.close()
        for n in (publisher, *subscribers):
            await n.messenger.transport.close()
            n.store.close()


async def test_subscribers_at_one_place_of_an_open_topic_share_one_signed_delivery(tmp_path: Path) -> None:
    """On the registrar's topic (every member reads it) the subscribers in step get one envelope naming them all;
    on another topic, and for a subscriber sent a delivery again after a failure, each gets one naming it alone."""
    manifest = mint(tmp_path, 4)
    publisher_spec, *subscriber_specs = manifest["nodes"]
    publisher = await node(manifest, publisher_spec, serve=False)
    late_spec = subscriber_specs[-1]  # not serving at first: its deliveries fail, then are sent again
    subscribers = [
        await node(manifest, s, subscribe_to=(publisher_spec["org_id"], REGISTRAR_TOPIC), serve=s is not late_spec)
        for s in subscriber_specs
    ]
    for s in subscribers:
        s.store.call(
            lambda db: db.merge(
                SubscriptionRow(publisher_org=publisher_spec["org_id"], topic=TOPIC, publisher_address="https://unused")
            )
        )
    rows = [
        SubscriberRow(topic=topic, org_id=s["org_id"], address=s["address"], created_ms=0)
        for s in subscriber_specs
        for topic in (REGISTRAR_TOPIC, TOPIC)
    ]
    publisher.store.call(lambda s: [s.merge(r) for r in rows])
    by_address = {s["address"]: s["org_id"] for s in subscriber_specs}
    sent: list[tuple[str, str, str, tuple[str, ...]]] = []  # (to, topic, envelope id, recipients)
    messenger = publisher.messenger
    real_send = messenger.send

    async def send(address: str, env: Envelope, **kw: Any) -> Any:
        sent.append((by_address[address], env.body["topic"], env.id, env.recipients))
        return await real_send(address, env, **kw)

    messenger.send = send  # type: ignore[method-assign]
    real_request = messenger.request

    async def request(address: str, type_: str, body: dict[str, Any], **kw: Any) -> Any:
        if type_ == "pubsub.deliver":
            sent.append((by_address[address], body["topic"], "", (kw["recipient"],)))
        return await real_request(address, type_, body, **kw)

    messenger.request = request  # type: ignore[method-assign]
    await publisher.pubsub.start()
    everyone = tuple(sorted(by_address.values()))
    on_time = tuple(sorted(s["org_id"] for s in subscriber_specs if s is not late_spec))
    try:
        for i in range(1, 6):
            for topic in (REGISTRAR_TOPIC, TOPIC):
                await publisher.pubsub.publish(topic, {"i": i})
            await _until(functools.partial(_hold, subscribers[:-1], i))
        await subscribers[-1].messenger.transport.start(subscribers[-1].messenger)  # the late one comes up
        await _until(functools.partial(_hold, subscribers, 5))
        for s in subscribers:
            for topic in (REGISTRAR_TOPIC, TOPIC):
                assert [json.loads(m.body)["i"] for m in inbox(s.store, topic)] == [1, 2, 3, 4, 5]
    finally:
        await publisher.pubsub.close()
        for n in (publisher, *subscribers):
            await n.messenger.transport.close()
            n.store.close()
    # The other topic: always one subscriber named, never a shared envelope.
    assert all(len(r) == 1 and r[0] == to for to, topic, _, r in sent if topic == TOPIC)
    # The open topic, once the workers stand together: one envelope for the subscribers in step...
    shared = [(to, env_id, r) for to, topic, env_id, r in sent if topic == REGISTRAR_TOPIC and len(r) > 1]
    assert shared, sent
    for env_id in {e for _, e, _ in shared}:
        named = {r for _, e, r in shared if e == env_id}
        assert len(named) == 1 and next(iter(named)) in (everyone, on_time)
    assert {r for _, _, r in shared} >= {on_time}
    # ...and the late subscriber, after its failures, sent deliveries naming it alone.
    late = late_spec["org_id"]
    assert any(to == late and r == (late,) for to, topic, _, r in sent if topic == REGISTRAR_TOPIC)


def _hold(subscribers: list[BenchNode], n: int) -> bool:
    """Whether every one of ``subscribers`` holds ``n`` messages of each topic."""
    return all(len(inbox(s.store, t)) >= n for s in subscribers for t in (REGISTRAR_TOPIC, TOPIC))


async def _until(done: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "not delivered in time"
        await asyncio.sleep(0.02)
