"""Publish/subscribe between nodes: durable, in order per topic, at least once on the wire, once in the inbox.

Publisher: every message is written to the topic's outbox with the next sequence number before ``publish``
returns. Each subscriber has a worker that sends the messages after the subscriber's acknowledged sequence, in order
and in batches, and advances the acknowledgement only when the subscriber answers; a subscriber that does not answer
is retried with backoff, so nothing is lost while it is down, and the workers resume from the stored
acknowledgements when the publisher restarts. Workers take the messages this process published from memory (the
outbox is read for the others), and acknowledgements are written together, after the fact: one lost in a crash
only makes its messages delivered again, which the subscriber skips, so a message to many subscribers costs one
durable write at the publisher, whatever their number.

On an open topic (the registrar's directory of adverts, which every member subscribes to and may read all of), the
subscribers that are at the same place share one signed delivery: it is sealed once, addressed to all of them, and
sent to each; on any other topic, who else subscribes is not a subscriber's business, and each delivery is sealed
for its subscriber alone. A delivery sent again after a failure is always sealed anew, for its subscriber alone.

Subscriber: a delivery is stored in the inbox and the subscription's last sequence advanced in one transaction,
before it is acknowledged; a message at or below the last sequence is a repeat and skipped, one beyond a gap waits
for the gap. On start, a subscriber renews its subscriptions from its last sequence, so it catches up after being
offline. Subscribing is checked by the publisher's ACL (action ``subscribe`` on the topic).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from finp2p.clock import now_ms
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.network.adverts import REGISTRAR_TOPIC
from finp2p.network.envelope import MAX_RECIPIENTS, Envelope
from finp2p.network.messaging import Incoming, Messenger
from finp2p.store import Store
from finp2p.store.engine import placeholder
from finp2p.store.models import InboxMessageRow, SubscriberRow, SubscriptionRow, TopicMessageRow, TopicRow

log = logging.getLogger(__name__)

BATCH = 100
_INSERT_INBOX = (
    "INSERT INTO inbox_message (publisher_org, topic, seq, body, received_ms) VALUES ({m}, {m}, {m}, {m}, {m})"
)
#: Messages published by this process kept in memory per topic for the delivery workers.
RECENT = 1024
MAX_TOPIC_LEN = 300
#: Topics whose subscribers every member may know: their deliveries are shared (see the module's docstring).
OPEN_TOPICS = frozenset({REGISTRAR_TOPIC})
#: How long a shared delivery may be sent after it was sealed (a subscriber further behind gets one of its own).
SHARED_FOR_MS = 1000
#: How long acknowledgements gather before they are written, together: an advert change reaching 50 subscribers
#: took up to a dozen commits when each write took the acknowledgements made while the one before ran. A crash
#: loses at most this much of them, and their messages are delivered again (the subscribers skip repeats).
ACKS_EVERY_S = 0.25


@dataclass(frozen=True)
class Delivered:
    publisher_org: str
    topic: str
    seq: int
    body: dict[str, Any]


@dataclass(frozen=True)
class _Shared:
    """A delivery sealed once for the subscribers it names (a set: each of them looks itself up in it)."""

    envelope: Envelope
    payload: bytes
    made_ms: int
    names: frozenset[str]


OnMessage = Callable[[Delivered], Awaitable[None]]
#: Whether an organization may receive a topic: asked when it subscribes and again before every delivery batch.
MaySubscribe = Callable[[str, str], Awaitable[bool]]


def check_topic(topic: Any) -> str:
    if not isinstance(topic, str) or not 0 < len(topic) <= MAX_TOPIC_LEN or any(c.isspace() for c in topic):
        raise FinP2PError(ErrorCode.MALFORMED, f"a topic is 1 to {MAX_TOPIC_LEN} characters without white space")
    return topic


# -- publisher side (also used by the CLI, which writes to the node's store) -------------------------------------
def append(s: Session, topic: str, body: dict[str, Any]) -> int:
    """Add ``body`` to the topic's outbox; return its sequence number (committed with the session).

    Two statements written out for the driver (with the advert's own, a registrar's transaction took 0.43 ms of
    CPU instead of the ORM's 1.5): the counter is raised in place, so concurrent writers on PostgreSQL queue on
    its row and each gets a number of its own."""
    m = placeholder(s)
    conn = s.connection()
    seq = conn.exec_driver_sql(
        f"INSERT INTO topic (topic, last_seq) VALUES ({m}, 1) "  # noqa: S608 - a placeholder
        "ON CONFLICT (topic) DO UPDATE SET last_seq = topic.last_seq + 1 RETURNING last_seq",
        (topic,),
    ).scalar_one()
    conn.exec_driver_sql(
        f"INSERT INTO topic_message (topic, seq, body, created_ms) VALUES ({m}, {m}, {m}, {m})",  # noqa: S608
        (topic, seq, json.dumps(body), now_ms()),
    )
    return int(seq)


class PubSub:
    def __init__(
        self,
        store: Store,
        messenger: Messenger,
        may_subscribe: MaySubscribe | None,
        public_url: str | None,
        on_message: OnMessage | None = None,
        poll_s: float = 0.2,
        open_topics: frozenset[str] = OPEN_TOPICS,
    ) -> None:
        self.store = store
        self.messenger = messenger
        self.may_subscribe = may_subscribe
        self.public_url = public_url
        self.on_message = on_message
        self.poll_s = poll_s
        self.open_topics = open_topics
        self._wake: dict[str, asyncio.Event] = {}
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._seen_seq: dict[str, int] = {}
        #: The latest messages published by this process, per topic: workers send them without reading the outbox.
        self._recent: dict[str, collections.deque[tuple[int, dict[str, Any]]]] = {}
        self._changed: set[tuple[str, str]] = set()  # subscriptions whose worker must read them again
        self._acks: dict[tuple[str, str], int] = {}  # acknowledgements not written yet
        self._ack_writer: asyncio.Task[None] | None = None
        #: Per open topic, where each subscriber's worker stands, and the deliveries sealed for those at one place.
        self._places: dict[str, dict[str, int]] = {}
        self._shared: dict[str, dict[tuple[int, int, int], _Shared]] = {}
        messenger.register("pubsub.subscribe", self._on_subscribe)
        messenger.register("pubsub.unsubscribe", self._on_unsubscribe)
        messenger.register("pubsub.deliver", self._on_deliver)

    # -- lifecycle -----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        for sub in await self.store.run(
            lambda s: list(s.exec(select(SubscriberRow).where(col(SubscriberRow.active).is_(True))))
        ):
            self._ensure_worker(sub.topic, sub.org_id)
        self._tasks.append(asyncio.create_task(self._watch_outbox(), name="pubsub-outbox"))
        self._tasks.append(asyncio.create_task(self._renew_subscriptions(), name="pubsub-renew"))

    async def close(self) -> None:
        tasks = [*self._tasks, *self._workers.values()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self._ack_writer is not None:  # what it has not written yet is written here
            self._ack_writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._ack_writer
        if self._acks:
            with contextlib.suppress(Exception):
                await self.store.run_driver(functools.partial(_set_acks, acks=self._acks))
            self._acks = {}
        self._tasks.clear()
        self._workers.clear()

    # -- publishing ----------------------------------------------------------------------------------------------
    async def publish(self, topic: str, body: dict[str, Any]) -> int:
        seq = await self.store.run(lambda s: append(s, check_topic(topic), body))
        self.published(topic, seq, body)
        return seq

    def published(self, topic: str, seq: int, body: dict[str, Any]) -> None:
        """Tell the workers of a message committed to the outbox: by :meth:`publish`, or by :func:`append` in a
        transaction of the caller's that wrote something else with it (a change and its announcement, atomically)."""
        recent = self._recent.setdefault(topic, collections.deque(maxlen=RECENT))
        if recent and recent[-1][0] != seq - 1:  # another writer's message came between: the run starts again
            recent.clear()
        recent.append((seq, json.loads(json.dumps(body))))  # as a worker would read it back from the outbox
        self._event(topic).set()

    def _recent_after(self, topic: str, after: int) -> list[dict[str, Any]] | None:
        """The messages after ``after`` if this process holds them all (its recent ones are a run of consecutive
        sequence numbers); else ``None``, and the worker reads the outbox."""
        recent = self._recent.get(topic)
        newest = max(self._seen_seq.get(topic, 0), recent[-1][0] if recent else 0)
        if newest <= after:
            return []
        if not recent or not recent[0][0] <= after + 1 <= recent[-1][0]:
            return None
        start = after + 1 - recent[0][0]
        return [{"seq": seq, "body": body} for seq, body in itertools.islice(recent, start, start + BATCH)]

    def _event(self, topic: str) -> asyncio.Event:
        return self._wake.setdefault(topic, asyncio.Event())

    async def _watch_outbox(self) -> None:
        """Wake workers for messages written by other processes (the CLI) into this node's outbox."""
        while True:
            rows = await self.store.run(lambda s: [(r.topic, r.last_seq) for r in s.exec(select(TopicRow))])
            for topic, last in rows:
                if self._seen_seq.get(topic) != last:
                    self._seen_seq[topic] = last
                    self._event(topic).set()
            await asyncio.sleep(self.poll_s)

    def _ensure_worker(self, topic: str, org_id: str) -> None:
        key = (topic, org_id)
        self._changed.add(key)
        task = self._workers.get(key)
        if task is None or task.done():
            self._workers[key] = asyncio.create_task(self._deliver_forever(topic, org_id), name=f"deliver {key}")
        else:
            self._event(topic).set()

    async def _deliver_forever(self, topic: str, org_id: str) -> None:
        try:
            await self._deliver(topic, org_id)
        finally:
            self._places.get(topic, {}).pop(org_id, None)

    async def _deliver(self, topic: str, org_id: str) -> None:
        key = (topic, org_id)
        event = self._event(topic)
        delay, retrying = 0.2, False
        sub: SubscriberRow | None = None
        after = 0
        while True:
            if sub is None or key in self._changed:  # (re)subscribed or unsubscribed since the last read
                self._changed.discard(key)
                sub = await self.store.run(lambda s: s.get(SubscriberRow, key))
                if sub is None or not sub.active:
                    return
                after = sub.acked_seq
            messages = self._recent_after(topic, after)
            from_outbox = messages is None
            if messages is None:
                rows = await self.store.run(functools.partial(_batch, topic=topic, after=after))
                messages = [{"seq": m.seq, "body": json.loads(m.body)} for m in rows]
            if not messages:
                event.clear()
                if from_outbox:  # a wake-up may have come while the outbox was read: look again soon
                    await _until_set(event, self.poll_s)
                else:  # nothing newer known, and nothing awaited since it was asked: the next message sets it
                    await event.wait()
                continue
            if self.may_subscribe is not None and not await self.may_subscribe(org_id, topic):
                log.info("%s may no longer receive %s: its subscription ends", org_id, topic)
                await self._deactivate(topic, org_id)
                return
            try:
                shared = None if retrying else self._shared_delivery(topic, org_id, after, messages)
                if shared is not None:
                    answer, _ = await self.messenger.send(sub.address, shared[0], timeout=10, payload=shared[1])
                else:
                    answer = await self.messenger.request(
                        sub.address,
                        "pubsub.deliver",
                        {"topic": topic, "messages": messages},
                        recipient=org_id,
                        timeout=10,
                    )
                acked = int(answer.get("acked", after))
            except FinP2PError as err:
                if err.code is ErrorCode.NOT_SUBSCRIBED:
                    await self._deactivate(topic, org_id)
                    return
                log.info("delivery of %s to %s failed (%s); retrying in %.1f s", topic, org_id, err.code.code, delay)
                retrying = True
                event.clear()
                await _until_set(event, delay)
                delay = min(delay * 2, 5.0)
                continue
            delay, retrying = 0.2, False
            if acked > after and key not in self._changed:
                after = acked
                self._ack_later(key, acked)
            if topic in self.open_topics:
                self._places.setdefault(topic, {})[org_id] = after

    def _shared_delivery(
        self, topic: str, org_id: str, after: int, messages: list[dict[str, Any]]
    ) -> tuple[Envelope, bytes] | None:
        """On an open topic, the delivery of ``messages`` (those after ``after``) sealed once for every subscriber
        whose worker stands at ``after``, and its encoding; ``None`` elsewhere, or for a subscriber it does not
        name (one that came to this place after it was sealed, or beyond the most recipients an envelope has)."""
        if topic not in self.open_topics:
            return None
        places = self._places.setdefault(topic, {})
        places[org_id] = after
        sealed = self._shared.setdefault(topic, {})
        key = (after, int(messages[-1]["seq"]), len(messages))
        now = now_ms()
        hit = sealed.get(key)
        if hit is None or now - hit.made_ms > SHARED_FOR_MS:
            together = sorted(o for o, at in places.items() if at == after)[:MAX_RECIPIENTS]
            env = self.messenger.seal(
                "pubsub.deliver", {"topic": topic, "messages": messages}, recipients=tuple(together)
            )
            for old in [k for k, shared in sealed.items() if now - shared.made_ms > SHARED_FOR_MS]:
                del sealed[old]
            hit = sealed[key] = _Shared(env, env.encode(), now, frozenset(together))
        return (hit.envelope, hit.payload) if org_id in hit.names else None

    def _ack_later(self, key: tuple[str, str], acked: int) -> None:
        """Write an acknowledgement with the others made within :data:`ACKS_EVERY_S`, in one transaction. Not
        awaited: one lost in a crash only means those messages are delivered again, and the subscriber skips them
        as repeats."""
        self._acks[key] = max(self._acks.get(key, 0), acked)
        if self._ack_writer is None or self._ack_writer.done():
            self._ack_writer = asyncio.create_task(self._write_acks(), name="pubsub-acks")

    async def _write_acks(self) -> None:
        while self._acks:
            await asyncio.sleep(ACKS_EVERY_S)
            acks, self._acks = self._acks, {}
            try:
                await self.store.run_driver(functools.partial(_set_acks, acks=acks))
            except BaseException as exc:  # written again with the next ones, by close(), or redelivered after a restart
                for key, acked in acks.items():
                    self._acks[key] = max(self._acks.get(key, 0), acked)
                if not isinstance(exc, Exception):
                    raise
                log.warning("could not write %d pub/sub acknowledgements: %s", len(acks), exc)
                await asyncio.sleep(1)

    async def _deactivate(self, topic: str, org_id: str) -> None:
        def op(s: Session) -> None:
            row = s.get(SubscriberRow, (topic, org_id))
            if row is not None:
                row.active = False
                s.add(row)

        await self.store.run(op)
        self._changed.add((topic, org_id))  # its worker reads the subscription again, and ends
        self._event(topic).set()

    async def _on_subscribe(self, msg: Incoming) -> dict[str, Any]:
        assert msg.sender is not None
        topic = check_topic(msg.body.get("topic"))
        org_id = str(msg.sender.org_id)
        if self.may_subscribe is None or not await self.may_subscribe(org_id, topic):
            raise FinP2PError(ErrorCode.ACL_DENIED, f"{org_id} may not subscribe to {topic}")
        address = deliver_to(msg.body.get("deliver_to"), msg.sender.attributes)
        from_seq = msg.body.get("from_seq", 0)
        if isinstance(from_seq, bool) or not isinstance(from_seq, int) or from_seq < 0:
            raise FinP2PError(ErrorCode.MALFORMED, "from_seq must be a non-negative integer")

        self._acks.pop((topic, org_id), None)  # the subscriber's own cursor replaces what it acknowledged

        def op(s: Session) -> int:
            row = s.get(SubscriberRow, (topic, org_id))
            if row is None:
                row = SubscriberRow(topic=topic, org_id=org_id, address=address, created_ms=now_ms())
            row.address, row.acked_seq, row.active = address, from_seq, True
            s.add(row)
            topic_row = s.get(TopicRow, topic)
            return topic_row.last_seq if topic_row else 0

        last = await self.store.run(op)
        self._ensure_worker(topic, org_id)
        return {"topic": topic, "last_seq": last}

    async def _on_unsubscribe(self, msg: Incoming) -> dict[str, Any]:
        assert msg.sender is not None
        topic = check_topic(msg.body.get("topic"))
        await self._deactivate(topic, str(msg.sender.org_id))
        return {"topic": topic}

    # -- subscribing ---------------------------------------------------------------------------------------------
    async def subscribe(self, publisher_address: str, publisher_org: str, topic: str) -> int:
        """Subscribe (or renew) from our last sequence; returns the publisher's last sequence."""
        check_topic(topic)

        def mine(s: Session) -> int:
            row = s.get(SubscriptionRow, (publisher_org, topic))
            return row.last_seq if row else 0

        last = await self.store.run(mine)
        answer = await self.messenger.request(
            publisher_address,
            "pubsub.subscribe",
            {"topic": topic, "from_seq": last, **({"deliver_to": self.public_url} if self.public_url else {})},
            recipient=publisher_org,
            attempts=3,
        )

        def save(s: Session) -> None:
            row = s.get(SubscriptionRow, (publisher_org, topic))
            if row is None:
                row = SubscriptionRow(publisher_org=publisher_org, topic=topic, publisher_address=publisher_address)
            row.publisher_address, row.active = publisher_address, True
            s.add(row)

        await self.store.run(save)
        return int(answer.get("last_seq", 0))

    async def unsubscribe(self, publisher_org: str, topic: str) -> None:
        row = await self.store.run(lambda s: s.get(SubscriptionRow, (publisher_org, topic)))
        if row is None:
            raise FinP2PError(ErrorCode.NOT_SUBSCRIBED, f"not subscribed to {topic} of {publisher_org}")
        await self.messenger.request(
            row.publisher_address, "pubsub.unsubscribe", {"topic": topic}, recipient=publisher_org, attempts=3
        )

        def op(s: Session) -> None:
            r = s.get(SubscriptionRow, (publisher_org, topic))
            if r is not None:
                r.active = False
                s.add(r)

        await self.store.run(op)

    async def _renew_subscriptions(self) -> None:
        """After a restart: ask each publisher to resume from our last sequence (publishers also keep retrying)."""
        subs = await self.store.run(
            lambda s: list(s.exec(select(SubscriptionRow).where(col(SubscriptionRow.active).is_(True))))
        )
        for sub in subs:
            for attempt in range(5):
                try:
                    await self.subscribe(sub.publisher_address, sub.publisher_org, sub.topic)
                    break
                except FinP2PError as err:
                    log.info("renewing %s of %s failed (%s)", sub.topic, sub.publisher_org, err.code.code)
                    await asyncio.sleep(0.5 * 2**attempt)

    async def _on_deliver(self, msg: Incoming) -> dict[str, Any]:
        assert msg.sender is not None
        publisher = str(msg.sender.org_id)
        topic = check_topic(msg.body.get("topic"))
        messages = msg.body.get("messages")
        if not isinstance(messages, list):
            raise FinP2PError(ErrorCode.MALFORMED, "messages must be a list")
        fresh: list[Delivered] = []

        def op(cursor: Any, m: str) -> int:
            # Written out for the driver: this runs for every delivery, at every subscriber, and a session's
            # bookkeeping cost twice the commit's own CPU. One transaction: the messages stored and the cursor
            # advanced, or neither.
            row = cursor.execute(
                f"SELECT last_seq, active FROM subscription WHERE publisher_org = {m} AND topic = {m}",  # noqa: S608
                (publisher, topic),
            ).fetchone()
            if row is None or not row[1]:
                raise FinP2PError(ErrorCode.NOT_SUBSCRIBED, f"this node does not subscribe to {topic} of {publisher}")
            last = int(row[0])
            stored: list[tuple[str, str, int, str, int]] = []
            for item in sorted(messages, key=lambda m: int(m.get("seq", 0)) if isinstance(m, dict) else 0):
                seq, body = (item.get("seq"), item.get("body")) if isinstance(item, dict) else (None, None)
                if not isinstance(seq, int) or not isinstance(body, dict):
                    raise FinP2PError(ErrorCode.MALFORMED, "each message has an integer seq and an object body")
                if seq <= last:
                    continue  # a repeat: stored already
                if seq != last + 1:
                    break  # a gap: wait for the publisher to resend from our acknowledgement
                stored.append((publisher, topic, seq, json.dumps(body), now_ms()))
                last = seq
                fresh.append(Delivered(publisher, topic, seq, body))
            if stored:
                cursor.executemany(_INSERT_INBOX.format(m=m), stored)
                cursor.execute(
                    f"UPDATE subscription SET last_seq = {m} WHERE publisher_org = {m} AND topic = {m}",  # noqa: S608
                    (last, publisher, topic),
                )
            return last

        acked = await self.store.run_driver(op)
        if self.on_message is not None:
            for d in fresh:
                try:
                    await self.on_message(d)
                except Exception:
                    log.exception("a listener failed on %s #%d of %s", topic, d.seq, publisher)
        return {"acked": acked}


async def _until_set(event: asyncio.Event, timeout_s: float) -> None:
    """Wait for ``event``, at most ``timeout_s`` (without the task that ``asyncio.wait_for`` makes for each wait:
    every worker waits once for every message published)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await event.wait()


def deliver_to(asked: Any, attributes: dict[str, Any]) -> str:
    """Where to deliver a subscriber's messages: the address it gives (its current one, which may have changed since
    it registered) if its host is one its credential and TLS certificate name; else its registered address."""
    if asked is not None:
        parts = urlsplit(asked) if isinstance(asked, str) else None
        if (
            parts is None
            or parts.scheme != "https"
            or not parts.port
            or parts.hostname not in attributes.get("hosts", [])
        ):
            raise FinP2PError(ErrorCode.MALFORMED, "deliver_to must be https://HOST:PORT on a host of the credential")
        return str(asked).rstrip("/")
    registered = attributes.get("public_url")
    if not isinstance(registered, str):
        raise FinP2PError(ErrorCode.MALFORMED, "the subscriber's credential names no address to deliver to")
    return registered


def _batch(s: Session, topic: str, after: int) -> list[TopicMessageRow]:
    q = select(TopicMessageRow).where(TopicMessageRow.topic == topic, col(TopicMessageRow.seq) > after)
    return list(s.exec(q.order_by(col(TopicMessageRow.seq)).limit(BATCH)))


def _set_acks(cursor: Any, m: str, acks: dict[tuple[str, str], int]) -> None:
    """Raise the subscribers' acknowledgements, never lower them, in one statement: every delivery to every
    subscriber comes here, and an ORM read per subscriber cost the publisher's process a third of its time (py-spy,
    an advert change reaching 50 subscribers), in a worker thread holding the interpreter the loop waited for."""
    cursor.executemany(
        f"UPDATE subscriber SET acked_seq = {m} WHERE topic = {m} AND org_id = {m} AND acked_seq < {m}",  # noqa: S608
        [(acked, topic, org_id, acked) for (topic, org_id), acked in acks.items()],
    )


def inbox(store: Store, topic: str, publisher_org: str | None = None) -> list[InboxMessageRow]:
    def op(s: Session) -> list[InboxMessageRow]:
        q = select(InboxMessageRow).where(InboxMessageRow.topic == topic)
        if publisher_org:
            q = q.where(InboxMessageRow.publisher_org == publisher_org)
        return list(s.exec(q.order_by(col(InboxMessageRow.publisher_org), col(InboxMessageRow.seq))))

    return store.call(op)
