"""Request/response between nodes on any transport: every message and every answer in a signed envelope.

Inbound, a message is checked cheapest first: it decodes; it is for this network and addressed to this node; its
timestamp is in the window; its type has a handler (and, from a newcomer without a certificate, is open to
newcomers); its sender matches the TLS peer; its signature verifies; the sender's credential chain verifies (with
revocation, on every message); the TLS key is the one the credential names; and its nonce is new, which is recorded
before the handler runs. Any failure is answered with a signed error and the node goes on serving.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from finp2p.errors import TRANSIENT, ErrorCode, FinP2PError
from finp2p.identity import keys
from finp2p.identity.credentials import Credential
from finp2p.identity.replay import ReplayGuard
from finp2p.identity.trust import Identity, Trust
from finp2p.network.envelope import Envelope, seal
from finp2p.network.idempotency import IdempotencyStore
from finp2p.network.transport import Peer, Transport

log = logging.getLogger(__name__)

#: Failures after which a request may be sent again (it did not reach a handler, or its first attempt still runs).

#: Credential roles whose holders are members that talk to other nodes.
MEMBER_ROLES = ("organization", "governance")


@dataclass(frozen=True)
class Incoming:
    envelope: Envelope
    peer: Peer
    #: The verified sender; ``None`` for a newcomer (only handlers open to newcomers see those).
    sender: Identity | None

    @property
    def body(self) -> dict[str, Any]:
        return self.envelope.body


Handler = Callable[[Incoming], Awaitable[dict[str, Any]]]
#: A cheap check run before any signature is verified, from what TLS already proved (the peer); raises to refuse.
Precheck = Callable[[Peer, Envelope], None]


@dataclass
class _Route:
    handler: Handler
    open_to_newcomers: bool
    precheck: Precheck | None = None


class Messenger:
    def __init__(
        self,
        *,
        key: keys.SigningKey,
        org_id: str | None,
        chain: tuple[Credential, ...],
        trust: Trust,
        replay: ReplayGuard,
        transport: Transport,
        idempotency: IdempotencyStore | None = None,
    ) -> None:
        self.key = key
        self.org_id = org_id
        self.chain = chain
        self.trust = trust
        self.replay = replay
        self.transport = transport
        self.idempotency = idempotency or IdempotencyStore(replay.store)
        self._routes: dict[str, _Route] = {}
        self._chains: dict[str, tuple[Credential, ...]] = {}  # sender FinID → last chain that verified

    @property
    def network_id(self) -> str:
        return self.trust.genesis.network_id

    def register(
        self, type_: str, handler: Handler, *, open_to_newcomers: bool = False, precheck: Precheck | None = None
    ) -> None:
        """Route messages of ``type_`` to ``handler``; one owner per type. ``precheck`` refuses early and cheaply
        (before signatures are verified), from the TLS-authenticated peer: a flood from refused peers costs little."""
        if type_ in self._routes:
            raise ValueError(f"message type {type_!r} has a handler already")
        self._routes[type_] = _Route(handler, open_to_newcomers, precheck)

    # -- inbound -------------------------------------------------------------------------------------------------
    async def admit(self, peer: Peer) -> None:
        """Refuse a peer whose credential is revoked or expired, before its message is read."""
        if peer.fin_id is None:
            return
        chain = self._chains.get(peer.fin_id)
        if chain is not None:
            self.trust.verify_chain(chain)

    async def handle(self, peer: Peer, payload: bytes) -> bytes:
        request_id: str | None = None
        try:
            env = Envelope.decode(payload)
            request_id = env.id
            incoming = await self._verify(peer, env)
            body = await self._run(incoming)
        except FinP2PError as err:
            log.info("refused %s from %s: %s", request_id or "a message", peer.address, err)
            body = {"ok": False, "error": err.to_dict()}
        except Exception:
            log.exception("handler failed for %s from %s", request_id, peer.address)
            failure = FinP2PError(ErrorCode.PEER_ERROR, f"request {request_id} failed inside the node")
            body = {"ok": False, "error": failure.to_dict()}
        return self.seal("reply", body, in_reply_to=request_id).encode()

    def seal(
        self,
        type_: str,
        body: dict[str, Any],
        *,
        recipients: tuple[str, ...] = (),
        in_reply_to: str | None = None,
        idempotency_key: str | None = None,
    ) -> Envelope:
        """An envelope of ``type_`` from this node: signed by its key, with its network, organization and chain."""
        return seal(
            self.key,
            network_id=self.network_id,
            type=type_,
            body=body,
            sender_org=self.org_id,
            recipients=recipients,
            chain=self.chain,
            in_reply_to=in_reply_to,
            idempotency_key=idempotency_key,
        )

    async def _run(self, incoming: Incoming) -> dict[str, Any]:
        """Run the handler; with an idempotency key, at most once per (sender, key), replaying its answer."""
        env = incoming.envelope
        handler = self._routes[env.type].handler
        key = env.idempotency_key
        if key is None:
            return {"ok": True, "result": await handler(incoming)}
        claim = await self.idempotency.claim(env.sender, key, env.type, env.body)
        if claim.reply is not None:
            return claim.reply
        # A refusal or a failure is an answer too, and is replayed as such: the handler may have acted before it
        # failed, so it is never run a second time. A node stopped mid-handler answers retries with FP3010.
        try:
            body: dict[str, Any] = {"ok": True, "result": await handler(incoming)}
        except FinP2PError as err:
            body = {"ok": False, "error": err.to_dict()}
        except Exception:
            log.exception("handler failed for %s (idempotency key %s)", env.id, key)
            failure = FinP2PError(ErrorCode.PEER_ERROR, f"request {env.id} failed inside the node")
            body = {"ok": False, "error": failure.to_dict()}
        await self.idempotency.finish(env.sender, key, body)
        return body

    async def _verify(self, peer: Peer, env: Envelope) -> Incoming:
        if env.network_id != self.network_id:
            raise FinP2PError(ErrorCode.WRONG_NETWORK, f"the envelope is for network {env.network_id!r}")
        if env.recipients and self.org_id not in env.recipients:
            raise FinP2PError(ErrorCode.NOT_RECIPIENT, f"the envelope is addressed to {', '.join(env.recipients)}")
        self.replay.check_time(env.timestamp_ms, self.trust.now_ms())
        route = self._routes.get(env.type)
        if route is None:
            raise FinP2PError(ErrorCode.UNKNOWN_MESSAGE_TYPE, f"this node does not handle {env.type!r}")
        if peer.anonymous:
            if not route.open_to_newcomers:
                raise FinP2PError(ErrorCode.MEMBERS_ONLY, f"{env.type!r} needs a member's TLS certificate")
        elif peer.fin_id != env.sender or peer.org_id != env.sender_org:
            raise FinP2PError(
                ErrorCode.SENDER_MISMATCH,
                f"the envelope is signed by {env.sender_org}/{env.sender[:12]}… but the TLS peer is "
                f"{peer.org_id}/{(peer.fin_id or '')[:12]}…",
            )
        if route.precheck is not None:
            route.precheck(peer, env)
        env.verify(known=self._known)
        sender = None if peer.anonymous else self._verify_sender(peer, env)
        await self.replay.record(env.sender, env.nonce, env.timestamp_ms)
        return Incoming(env, peer, sender)

    def _verify_sender(self, peer: Peer, env: Envelope) -> Identity:
        chain = env.chain or self._chains.get(env.sender)
        if not chain:
            raise FinP2PError(ErrorCode.UNKNOWN_SENDER, f"{env.sender[:12]}… sent no credential chain")
        ident = self.trust.verify_chain(chain)
        if ident.role not in MEMBER_ROLES or ident.fin_id != env.sender or ident.org_id != env.sender_org:
            raise FinP2PError(ErrorCode.UNKNOWN_SENDER, "the credential chain is not the sender's membership")
        if ident.attributes.get("tls_spki_sha256") != peer.spki_sha256:
            raise FinP2PError(
                ErrorCode.TLS_MISMATCH, f"the TLS key of {ident.org_id} is not the one its credential names"
            )
        self._chains[env.sender] = tuple(chain)
        return ident

    def _known(self) -> set[str]:
        return set(self._chains) | set(self.trust.genesis.founding_fin_ids)

    # -- outbound ------------------------------------------------------------------------------------------------
    async def request(
        self,
        address: str,
        type_: str,
        body: dict[str, Any],
        *,
        recipient: str | None = None,
        timeout: float = 10.0,
        idempotency_key: str | None = None,
        attempts: int = 1,
        backoff_s: float = 0.2,
    ) -> dict[str, Any]:
        """Send one request and return the result of its verified answer; raise the error it carries.

        With ``attempts`` > 1, a request that got no answer (unreachable, timed out, in progress) is sent again,
        in a new envelope with the same idempotency key (one is made if none is given), after an exponential
        backoff with jitter. The receiver runs it at most once and answers every attempt with the first answer.
        """
        if attempts > 1 and idempotency_key is None:
            idempotency_key = uuid.uuid4().hex
        delay = backoff_s
        for attempt in range(1, attempts + 1):
            env = self.seal(type_, body, recipients=(recipient,) if recipient else (), idempotency_key=idempotency_key)
            try:
                raw = await self.transport.request(address, env.encode(), timeout=timeout)
                return self.read_reply(env, raw, address)
            except FinP2PError as err:
                if err.code not in TRANSIENT or attempt == attempts:
                    raise
                log.info("attempt %d of %s to %s failed (%s); retrying", attempt, type_, address, err.code.code)
            await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter, not a secret
            delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    async def send(
        self, address: str, env: Envelope, *, timeout: float, payload: bytes | None = None
    ) -> tuple[dict[str, Any], Identity]:
        """Send an envelope sealed already (a broadcast sends the one it signed to every target, ``payload`` its
        encoding made once); the result of its verified answer, and the identity that signed the answer."""
        raw = await self.transport.request(address, payload if payload is not None else env.encode(), timeout=timeout)
        return self.answer_to(env, raw, address)

    def read_reply(self, request: Envelope, raw: bytes, address: str) -> dict[str, Any]:
        return self.answer_to(request, raw, address)[0]

    def answer_to(self, request: Envelope, raw: bytes, address: str) -> tuple[dict[str, Any], Identity]:
        """The result of the verified answer ``raw`` to ``request``, and the identity that signed it; raises the
        error it carries."""
        reply = Envelope.decode(raw)
        if reply.in_reply_to != request.id or reply.type != "reply":
            raise FinP2PError(ErrorCode.MALFORMED, f"{address} answered something other than this request")
        if reply.network_id != self.network_id:
            raise FinP2PError(ErrorCode.WRONG_NETWORK, f"{address} answered for network {reply.network_id!r}")
        self.replay.check_time(reply.timestamp_ms, self.trust.now_ms())
        reply.verify(known=self._known)
        ident = self.trust.verify_chain(reply.chain or self._chains.get(reply.sender, ()))
        if ident.fin_id != reply.sender:
            raise FinP2PError(ErrorCode.UNKNOWN_SENDER, f"{address} answered with another identity's chain")
        self._chains[reply.sender] = ident.chain
        body = reply.body
        if body.get("ok") is True and isinstance(body.get("result"), dict):
            return body["result"], ident
        raise _error_of(body, address)


def _error_of(body: dict[str, Any], address: str) -> FinP2PError:
    err = body.get("error") if isinstance(body.get("error"), dict) else {}
    assert isinstance(err, dict)
    code = next((c for c in ErrorCode if c.code == err.get("code")), ErrorCode.PEER_ERROR)
    return FinP2PError(code, f"{address}: {err.get('detail', 'no detail')}")
