"""Pub/sub delivery from memory and from the outbox: a publisher and two subscribers in this process, over real
mutual TLS on loopback with real stores. Messages published by the node and messages another writer (the CLI)
put in its outbox interleave; every subscriber gets each one once, in order."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from pathlib import Path

from sqlmodel import select

from bench.netkit import mint, node
from finp2p.network.pubsub import _set_acks, append, inbox
from finp2p.store.models import SubscriberRow

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
