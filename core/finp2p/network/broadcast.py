"""Broadcast: one signed question to many nodes, a quorum of signed answers, and a comparison of them.

The origin signs a ``broadcast.request`` envelope once. It reaches its targets either directly or through the
rendezvous cluster. Directly, the origin sends that very envelope (encoded once) to every target at the same time,
and each target answers it like any request: the messaging layer verifies it (the origin's signature, chain and TLS
connection, its nonce), and the signed reply, bound to the request's id, is the answer; one signature by the origin,
one per answer, as a single request costs. Through the rendezvous cluster, the origin hands it to one rendezvous
node, which passes it to the other rendezvous nodes (hop limit, de-duplication by id) and to its members (wrapped in
``broadcast.deliver``: the carrier is not its signer), answers itself as an independent value, and returns the
answers it collected, each a ``broadcast.answer`` envelope signed by the node that answered and bound to the
request's id, so the origin verifies each one end to end, whoever carried it. A node answers a broadcast once.

A payload may be sealed for its final recipients (ECIES on their FinIDs) so that forwarding nodes cannot read it.
Answers carry a value and, where the question is about a ledger, the ledger height they were read at; the result
says whether the answers agree, lists the differing ones, and recognises answers read at an older height as out of
date rather than as disagreement.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from finp2p.clock import now_ms
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.canonical import canonical
from finp2p.identity.trust import Identity
from finp2p.network.directory import Directory, Member, Scope
from finp2p.network.envelope import Envelope
from finp2p.network.messaging import Incoming, Messenger
from finp2p.network.sealing import open_sealed, seal_for

#: Answers a broadcast question: ``(payload, asker) -> (value, ledger height or None)``.
QueryHandler = Callable[[dict[str, Any], Identity], Awaitable[tuple[Any, int | None]]]
SEEN_LIMIT = 10_000


@dataclass(frozen=True)
class Answer:
    org_id: str
    role: str
    value: Any
    height: int | None


@dataclass
class BroadcastResult:
    broadcast_id: str
    kind: str
    quorum: int
    expected: list[str]
    answers: list[Answer]
    reached_quorum: bool
    consistent: bool
    value: Any = None
    differing: list[Answer] = field(default_factory=list)
    out_of_date: list[Answer] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        def ans(a: Answer) -> dict[str, Any]:
            return {"org_id": a.org_id, "role": a.role, "value": a.value, "height": a.height}

        return {
            "broadcast_id": self.broadcast_id,
            "kind": self.kind,
            "quorum": self.quorum,
            "expected": self.expected,
            "reached_quorum": self.reached_quorum,
            "consistent": self.consistent,
            "value": self.value,
            "answers": [ans(a) for a in self.answers],
            "differing": [ans(a) for a in self.differing],
            "out_of_date": [ans(a) for a in self.out_of_date],
            "missing": self.missing,
            "elapsed_s": round(self.elapsed_s, 4),
        }


def compare(answers: list[Answer]) -> tuple[Any, list[Answer], list[Answer]]:
    """The agreed value, the answers that differ from it, and those out of date (read at an older height)."""
    if not answers:
        return None, [], []
    heights = [a.height for a in answers if a.height is not None]
    top = max(heights) if heights else None
    current = [a for a in answers if a.height is None or a.height == top]
    groups: dict[bytes, list[Answer]] = {}
    for a in current:
        groups.setdefault(canonical(a.value), []).append(a)
    agreed = max(groups.values(), key=len)
    value = agreed[0].value
    differing = [a for a in current if canonical(a.value) != canonical(value)]
    stale = [a for a in answers if a.height is not None and top is not None and a.height < top]
    # A stale answer that happens to agree is harmless; one that differs is out of date, not a dispute.
    return value, differing, [a for a in stale if canonical(a.value) != canonical(value)]


class Broadcaster:
    def __init__(self, messenger: Messenger, directory: Directory, *, is_rendezvous: bool) -> None:
        self.messenger = messenger
        self.directory = directory
        self.is_rendezvous = is_rendezvous
        self._queries: dict[str, QueryHandler] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._late: set[asyncio.Task[None]] = set()  # deliveries answered after their broadcast's quorum
        messenger.register("broadcast.request", self._on_request)
        messenger.register("broadcast.deliver", self._on_deliver)
        if is_rendezvous:
            messenger.register("broadcast.forward", self._on_forward)

    def register_query(self, kind: str, handler: QueryHandler) -> None:
        if kind in self._queries:
            raise ValueError(f"broadcast kind {kind!r} has a handler already")
        self._queries[kind] = handler

    # -- asking --------------------------------------------------------------------------------------------------
    async def ask(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        scope: Scope | None = None,
        quorum: int,
        deadline_s: float = 5.0,
        via_rendezvous: bool = False,
        encrypt: bool = False,
        hops: int = 2,
    ) -> BroadcastResult:
        started = time.monotonic()
        scope = scope or Scope()
        members = [m for m in await self.directory.select(scope) if m.org_id != self.messenger.org_id]
        targets = members if not via_rendezvous else [m for m in members if m.role != "governance"]
        rendezvous = [m for m in await self.directory.rendezvous() if m.org_id != self.messenger.org_id]
        if not targets and not (via_rendezvous and rendezvous):
            raise FinP2PError(ErrorCode.BROADCAST_TARGETS, f"no member matches {scope.describe()}")
        body: dict[str, Any] = {
            "kind": kind,
            "scope": scope.to_dict(),
            "deadline_ms": now_ms() + int(deadline_s * 1000),
        }
        if encrypt:
            readers = [m.fin_id for m in targets] + ([m.fin_id for m in rendezvous] if via_rendezvous else [])
            sealed_id = uuid.uuid4().hex  # signed with the request, so the ciphertext cannot be moved to another
            body.update(sealed=seal_for(payload, readers, sealed_id), sealed_id=sealed_id)
        else:
            body["payload"] = payload
        request = self.messenger.seal("broadcast.request", body)
        expected = sorted({m.org_id for m in targets} | ({m.org_id for m in rendezvous} if via_rendezvous else set()))
        collected: dict[str, Answer] = {}
        enough = asyncio.Event()

        def collect(answer: Answer | None) -> None:
            if answer is not None and answer.org_id not in collected:
                collected[answer.org_id] = answer
                if len(collected) >= quorum:
                    enough.set()

        def take(raw: Any) -> None:
            collect(self._verify_answer(raw, request))

        encoded = request.encode()

        async def direct(member: Member) -> None:
            try:
                raw = await self.messenger.transport.request(member.address, encoded, timeout=deadline_s)
                if not enough.is_set():  # an answer after the quorum is read (the connection stays open), and dropped
                    result, ident = self.messenger.answer_to(request, raw, member.address)
                    collect(_answer_of(ident, result))
            except FinP2PError:  # no answer from this member: it is among the missing
                pass

        async def relay() -> None:
            for node in rendezvous:
                try:
                    result = await self.messenger.request(
                        node.address,
                        "broadcast.forward",
                        {"request": request.to_dict(), "hops": hops, "quorum": quorum},
                        timeout=deadline_s,
                    )
                except FinP2PError:
                    continue  # the next rendezvous node
                for raw in result.get("answers", []):
                    take(raw)
                return

        if via_rendezvous:
            await _until([asyncio.create_task(relay())], enough, deadline_s)
        else:
            # Deliveries still under way at the quorum run on to their end (within the deadline) in the background:
            # cancelling one mid-answer would close its connection, and the next broadcast would pay a TLS handshake.
            jobs = [asyncio.create_task(direct(m)) for m in targets]
            await _until(jobs, enough, deadline_s, cancel=False)
            for job in jobs:
                if not job.done():
                    self._late.add(job)
                    job.add_done_callback(self._late.discard)
        answers = sorted(collected.values(), key=lambda a: a.org_id)
        value, differing, stale = compare(answers)
        reached = len(answers) >= quorum
        return BroadcastResult(
            broadcast_id=request.id,
            kind=kind,
            quorum=quorum,
            expected=expected,
            answers=answers,
            reached_quorum=reached,
            consistent=reached and not differing,
            value=value,
            differing=differing,
            out_of_date=stale,
            missing=[o for o in expected if o not in collected],
            elapsed_s=time.monotonic() - started,
        )

    def _verify_answer(self, raw: Any, request: Envelope) -> Answer | None:
        if not isinstance(raw, dict):
            return None
        try:
            env = Envelope.decode(canonical(raw))
            if env.type != "broadcast.answer" or env.in_reply_to != request.id:
                return None
            env.verify()
            ident = self.messenger.trust.verify_chain(env.chain)
            if ident.fin_id != env.sender:
                return None
        except FinP2PError:
            return None
        return _answer_of(ident, env.body)

    # -- answering -----------------------------------------------------------------------------------------------
    def _open_request(self, raw: Any) -> tuple[Envelope, Identity]:
        if not isinstance(raw, dict):
            raise FinP2PError(ErrorCode.MALFORMED, "request must be a signed broadcast.request envelope")
        env = Envelope.decode(canonical(raw))
        if env.type != "broadcast.request" or env.network_id != self.messenger.network_id:
            raise FinP2PError(ErrorCode.MALFORMED, "not a broadcast request of this network")
        env.verify()
        origin = self.messenger.trust.verify_chain(env.chain)
        if origin.fin_id != env.sender:
            raise FinP2PError(ErrorCode.UNKNOWN_SENDER, "the broadcast's chain is not its signer's")
        _check_deadline(env)
        return env, origin

    def _first_time(self, broadcast_id: str) -> bool:
        if broadcast_id in self._seen:
            return False
        self._seen[broadcast_id] = None
        if len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
        return True

    async def _value(self, env: Envelope, origin: Identity) -> tuple[Any, int | None]:
        kind = env.body.get("kind")
        handler = self._queries.get(str(kind))
        if handler is None:
            raise FinP2PError(ErrorCode.UNKNOWN_MESSAGE_TYPE, f"this node answers no broadcast of kind {kind!r}")
        if "sealed" in env.body:
            payload = open_sealed(env.body["sealed"], self.messenger.key, str(env.body.get("sealed_id")))
        else:
            raw = env.body.get("payload")
            payload = raw if isinstance(raw, dict) else {}
        return await handler(payload, origin)

    async def _answer(self, env: Envelope, origin: Identity) -> dict[str, Any]:
        value, height = await self._value(env, origin)
        answer = self.messenger.seal("broadcast.answer", {"value": value, "height": height}, in_reply_to=env.id)
        return answer.to_dict()

    async def _on_request(self, msg: Incoming) -> dict[str, Any]:
        """The origin's request, sent directly: verified by the messaging layer as the origin's own message."""
        env, origin = msg.envelope, msg.sender
        if origin is None:
            raise FinP2PError(ErrorCode.MEMBERS_ONLY, "a broadcast comes from a member")
        _check_deadline(env)
        if not self._first_time(env.id):
            raise FinP2PError(ErrorCode.REPLAYED, f"broadcast {env.id} was answered already")
        value, height = await self._value(env, origin)
        return {"value": value, "height": height}

    async def _on_deliver(self, msg: Incoming) -> dict[str, Any]:
        env, origin = self._open_request(msg.body.get("request"))
        if not self._first_time(env.id):
            raise FinP2PError(ErrorCode.REPLAYED, f"broadcast {env.id} was answered already")
        return {"answer": await self._answer(env, origin)}

    async def _on_forward(self, msg: Incoming) -> dict[str, Any]:
        env, origin = self._open_request(msg.body.get("request"))
        if not self._first_time(env.id):
            return {"answers": []}  # reached this rendezvous node another way already
        hops = msg.body.get("hops", 0)
        quorum = msg.body.get("quorum", 1)
        remaining = max(0.05, (int(env.body["deadline_ms"]) - now_ms()) / 1000 - 0.05)
        scope = Scope.from_dict(env.body.get("scope"))
        answers: list[dict[str, Any]] = []
        enough = asyncio.Event()

        def keep(raw: Any) -> None:
            if isinstance(raw, dict):
                answers.append(raw)
                if isinstance(quorum, int) and len(answers) >= quorum:
                    enough.set()

        async def own() -> None:
            with contextlib.suppress(FinP2PError):  # e.g. a sealed payload not meant for the rendezvous: it carries
                keep(await self._answer(env, origin))

        async def to_member(member: Member) -> None:
            result = await self.messenger.request(
                member.address,
                "broadcast.deliver",
                {"request": env.to_dict()},
                recipient=member.org_id,
                timeout=remaining,
            )
            keep(result.get("answer"))

        async def to_rendezvous(node: Member) -> None:
            result = await self.messenger.request(
                node.address,
                "broadcast.forward",
                {"request": env.to_dict(), "hops": hops - 1, "quorum": quorum},
                timeout=remaining,
            )
            for raw in result.get("answers", []):
                keep(raw)

        members = [m for m in await self.directory.local_members(scope) if m.org_id != origin.org_id]
        jobs = [asyncio.create_task(own())] + [asyncio.create_task(to_member(m)) for m in members]
        if isinstance(hops, int) and hops > 0:
            others = [r for r in await self.directory.rendezvous() if r.org_id != self.messenger.org_id]
            jobs += [asyncio.create_task(to_rendezvous(r)) for r in others]
        await _until(jobs, enough, remaining)
        return {"answers": answers}


def _check_deadline(env: Envelope) -> None:
    deadline = env.body.get("deadline_ms")
    if not isinstance(deadline, int) or deadline < now_ms():
        raise FinP2PError(ErrorCode.CLOCK_SKEW, "the broadcast's deadline has passed")


def _answer_of(ident: Identity, body: dict[str, Any]) -> Answer:
    height = body.get("height")
    return Answer(str(ident.org_id), ident.role, body.get("value"), height if isinstance(height, int) else None)


async def _until(jobs: list[asyncio.Task[None]], enough: asyncio.Event, timeout: float, *, cancel: bool = True) -> None:
    """Wait for all ``jobs``, or until ``enough`` is set, or ``timeout``; then cancel what still runs (with
    ``cancel=False``, the jobs are left to end by themselves)."""

    async def all_done() -> None:
        if jobs:
            await asyncio.wait(jobs)  # not gather: cancelling a gather would cancel the jobs too

    waiters = [asyncio.create_task(all_done()), asyncio.create_task(enough.wait())]
    await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    stop = [*jobs, *waiters] if cancel else waiters
    for task in stop:
        task.cancel()
    await asyncio.gather(*stop, return_exceptions=True)
