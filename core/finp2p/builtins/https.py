"""The built-in transport: HTTPS with TLS 1.3 and mutual authentication by governance-issued certificates; aiohttp
serves, :mod:`finp2p.builtins.https_client` asks.

One endpoint, ``POST /finp2p/v1/envelope``, and its batch form ``POST /finp2p/v1/envelopes`` for envelopes that
travel to one peer at the same time (:mod:`finp2p.builtins.https_batch`). The server reads the peer's certificate
from the TLS session and asks the messaging layer to admit the peer before it reads the body; bodies over
``max_body_bytes`` are refused with 413 unread, and the server's timeouts and connections per client are those of
:mod:`finp2p.edge.http`. The client pools connections (keep-alive) per peer and reads at most ``max_reply_bytes`` of
an answer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from finp2p.builtins import https_batch as batch
from finp2p.builtins.https_client import Answer, PeerClient, StaleConnection
from finp2p.edge import http
from finp2p.edge.json_input import read_json
from finp2p.edge.limits import DEFAULT_LIMITS, ServerLimits
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import tls
from finp2p.network.transport import Inbound, Peer, Transport

PATH = "/finp2p/v1/envelope"
CONTENT_TYPE = "application/vnd.finp2p.envelope+json"
_PATH, _CONTENT_TYPE = PATH.encode(), CONTENT_TYPE.encode()
_BATCH_PATH, _BATCH_CONTENT_TYPE = batch.BATCH_PATH.encode(), batch.BATCH_CONTENT_TYPE.encode()


@dataclass(frozen=True)
class HttpsSettings:
    trust_pem: str
    cert_chain_file: Path | None = None
    key_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
    public_url: str | None = None
    open_to_newcomers: bool = False
    max_body_bytes: int = 1 << 20
    max_reply_bytes: int = 16 << 20
    connect_timeout: float = 5.0
    pool_size: int = 100
    limits: ServerLimits = DEFAULT_LIMITS
    #: Serve, and send, several envelopes per HTTP exchange when they travel at the same time (:mod:`.https_batch`).
    batching: bool = True


def error_body(err: FinP2PError) -> bytes:
    return json.dumps({"ok": False, "error": err.to_dict()}).encode()


def error_from_body(raw: bytes) -> FinP2PError | None:
    """The FinP2PError an error answer carries, if it is one."""
    try:
        data = read_json(raw, what="the answer", max_bytes=64 * 1024)
        err = data["error"]
        code = next(c for c in ErrorCode if c.code == err["code"])
        return FinP2PError(code, str(err.get("detail", ""))[:1000])
    except (FinP2PError, KeyError, TypeError, StopIteration):
        return None


class _NoBatches(Exception):
    """The peer took no batch: for good (it has no batch path) or for this one (over its body limit)."""

    def __init__(self, *, for_good: bool) -> None:
        super().__init__()
        self.for_good = for_good


@dataclass
class _Queued:
    payload: bytes
    future: asyncio.Future[bytes]
    deadline: float

    def remaining(self) -> float:
        return max(0.05, self.deadline - time.monotonic())

    def settle(self, answer: bytes) -> None:
        if not self.future.done():
            self.future.set_result(answer)

    def fail(self, err: FinP2PError) -> None:
        if not self.future.done():
            self.future.set_exception(err)


@dataclass
class _Outbox:
    """Requests to one peer: how many exchanges are under way, and what waits to leave at the next flush."""

    under_way: int = 0
    #: Requests queued or sent in a batch, not answered yet.
    waiting: int = 0
    flush_due: bool = False
    queue: collections.deque[_Queued] = field(default_factory=collections.deque)

    def take(self) -> list[_Queued]:
        """The next batch: the oldest waiting requests still wanted, within the batch limits."""
        items: list[_Queued] = []
        size = 0
        while self.queue and len(items) < batch.MAX_ENVELOPES:
            item = self.queue[0]
            if item.future.done():  # its caller gave up waiting
                self.queue.popleft()
                continue
            if items and size + len(item.payload) > batch.MAX_BATCH_BYTES:
                break
            self.queue.popleft()
            items.append(item)
            size += len(item.payload)
        return items


class HttpsTransport(Transport):
    def __init__(self, settings: HttpsSettings) -> None:
        self.settings = settings
        self._runner: web.AppRunner | None = None
        self._peers: PeerClient | None = None
        self.address: str | None = None
        cert = str(settings.cert_chain_file) if settings.cert_chain_file else None
        key = str(settings.key_file) if settings.key_file else None
        self._client_ctx = tls.client_context(settings.trust_pem, cert, key)
        self._outboxes: dict[str, _Outbox] = {}
        self._single_only: set[str] = set()  # peers without the batch path
        self._exchanges: set[asyncio.Task[None]] = set()

    # -- server --------------------------------------------------------------------------------------------------
    async def start(self, inbound: Inbound) -> str:
        s = self.settings
        if s.cert_chain_file is None or s.key_file is None:
            raise FinP2PError(ErrorCode.NOT_A_MEMBER_YET, "the node has no TLS certificate to serve with")
        server_ctx = tls.server_context(
            str(s.cert_chain_file), str(s.key_file), s.trust_pem, require_client_cert=not s.open_to_newcomers
        )

        async def receive(request: web.Request) -> web.StreamResponse:
            peer = _peer_of(request)
            try:
                await inbound.admit(peer)
            except FinP2PError as err:  # a revoked or expired peer: answer once, then close the connection
                return http.closing(web.Response(status=403, body=error_body(err), content_type="application/json"))
            try:
                payload = await http.read_body(request, max_bytes=s.max_body_bytes)
            except FinP2PError as err:  # too large, or too slow: answered unread, and the connection closed
                status = 413 if err.code is ErrorCode.BODY_TOO_LARGE else 408
                return http.closing(web.Response(status=status, body=error_body(err), content_type="application/json"))
            answer = await inbound.handle(peer, payload)
            return web.Response(body=answer, content_type=CONTENT_TYPE)

        async def receive_batch(request: web.Request) -> web.StreamResponse:
            peer = _peer_of(request)
            try:
                await inbound.admit(peer)
            except FinP2PError as err:
                return http.closing(web.Response(status=403, body=error_body(err), content_type="application/json"))
            try:
                payloads = batch.unpack_request(await http.read_body(request, max_bytes=s.max_body_bytes))
            except FinP2PError as err:
                status = {ErrorCode.BODY_TOO_LARGE: 413, ErrorCode.REQUEST_TIMEOUT: 408}.get(err.code, 400)
                return http.closing(web.Response(status=status, body=error_body(err), content_type="application/json"))
            response = web.StreamResponse(headers={"Content-Type": batch.BATCH_CONTENT_TYPE})
            await response.prepare(request)

            running = asyncio.Semaphore(batch.MAX_HANDLING)  # a batch is no licence for more handlers at once

            async def answer(index: int, payload: bytes) -> bytes:
                async with running:
                    return batch.pack_answer(index, await inbound.handle(peer, payload))

            pending = {asyncio.ensure_future(answer(i, p)) for i, p in enumerate(payloads)}
            try:
                while pending:  # the answers ready together leave together, each as soon as it is ready
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    await response.write(b"".join(task.result() for task in done))
                await response.write_eof()
            except (ConnectionError, RuntimeError):  # the client went away: the handlers still end, unanswered
                await asyncio.gather(*pending, return_exceptions=True)
            return response

        app = web.Application(client_max_size=s.max_body_bytes)
        app.router.add_post(PATH, receive)
        if s.batching:
            app.router.add_post(batch.BATCH_PATH, receive_batch)
        self._runner = http.runner(app, s.limits)
        await self._runner.setup()
        port = await http.serve(self._runner, s.host, s.port, limits=s.limits, ssl_context=server_ctx)
        self.address = s.public_url or f"https://{s.host}:{port}"
        return self.address

    # -- client --------------------------------------------------------------------------------------------------
    def _client(self) -> PeerClient:
        if self._peers is None:  # made in the running loop (its pool's semaphore belongs to it)
            s = self.settings
            self._peers = PeerClient(self._client_ctx, pool_size=s.pool_size, connect_timeout=s.connect_timeout)
        return self._peers

    async def request(self, address: str, payload: bytes, *, timeout: float) -> bytes:
        if not self.settings.batching or address in self._single_only or len(payload) > batch.MAX_BATCH_BYTES // 4:
            return await self._single(address, payload, timeout)
        outbox = self._outboxes.setdefault(address, _Outbox())
        if not outbox.under_way:  # nothing is under way to this peer: the request goes now, alone
            outbox.under_way += 1
            try:
                return await self._single(address, payload, timeout)
            finally:
                outbox.under_way -= 1
        # Requests made while others are under way leave together: at the next turn of the event loop, or as soon as
        # half of those waiting on this peer are queued. Waiting for the turn, a burst of answers would come back as
        # one burst of requests: each node would idle while the other works through it.
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        outbox.queue.append(_Queued(payload, future, time.monotonic() + timeout))
        outbox.waiting += 1
        if 2 * len(outbox.queue) >= outbox.waiting:
            self._flush(address, outbox)
        elif not outbox.flush_due:
            outbox.flush_due = True
            asyncio.get_running_loop().call_soon(self._flush, address, outbox)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise FinP2PError(ErrorCode.PEER_TIMEOUT, f"{address} did not answer within {timeout:.1f} s") from None
        finally:
            outbox.waiting -= 1

    async def _single(self, address: str, payload: bytes, timeout: float) -> bytes:
        try:
            return await self._post(address, payload, timeout)
        except StaleConnection:
            # A pooled keep-alive connection the peer had closed (it restarted, or timed it out): send once more on
            # a new connection. Should the first copy have arrived after all, the peer refuses this one as a replay.
            pass
        try:
            return await self._post(address, payload, timeout, fresh=True)
        except StaleConnection as exc:
            raise FinP2PError(ErrorCode.PEER_UNREACHABLE, f"{address}: {exc}") from None

    async def _post(self, address: str, payload: bytes, timeout: float, *, fresh: bool = False) -> bytes:
        max_bytes = self.settings.max_reply_bytes
        async with (
            _in_time(address, timeout),
            self._client().exchange(address, _PATH, payload, _CONTENT_TYPE, max_bytes=max_bytes, fresh=fresh) as answer,
        ):
            body = await answer.read()
        if answer.status == 200:
            return body
        raise _refusal(address, answer.status, body)

    def _flush(self, address: str, outbox: _Outbox) -> None:
        outbox.flush_due = False
        while items := outbox.take():
            task = asyncio.create_task(self._send_queued(address, outbox, items))
            self._exchanges.add(task)
            task.add_done_callback(self._exchanges.discard)

    async def _send_queued(self, address: str, outbox: _Outbox, items: list[_Queued]) -> None:
        outbox.under_way += 1
        try:
            if len(items) == 1:
                await self._answer_one(address, items[0])
            else:
                await self._exchange(address, items)
        except asyncio.CancelledError:  # the transport is closing: the callers hear it now
            closed = FinP2PError(ErrorCode.PEER_UNREACHABLE, f"{address}: the transport was closed")
            for item in items:
                item.fail(closed)
            raise
        finally:
            outbox.under_way -= 1

    async def _answer_one(self, address: str, item: _Queued) -> None:
        try:
            item.settle(await self._single(address, item.payload, item.remaining()))
        except FinP2PError as err:
            item.fail(err)

    async def _exchange(self, address: str, items: list[_Queued]) -> None:
        """One POST of ``items`` to the batch path; each answer settles its request as it arrives."""
        timeout = max(i.remaining() for i in items)
        for attempt in (1, 2):
            try:
                await self._post_batch(address, items, timeout, fresh=attempt == 2)
                break
            except StaleConnection as exc:
                if attempt == 2 or any(i.future.done() for i in items):
                    err = FinP2PError(ErrorCode.PEER_UNREACHABLE, f"{address}: {exc}")
                    for i in items:
                        i.fail(err)
                    return
            except _NoBatches as no:
                if no.for_good:
                    self._single_only.add(address)
                await asyncio.gather(*(self._answer_one(address, i) for i in items))
                return
            except FinP2PError as err:
                for i in items:
                    i.fail(err)
                return
        missing = FinP2PError(ErrorCode.PEER_ERROR, f"{address} left a request of a batch unanswered")
        for i in items:
            i.fail(missing)

    async def _post_batch(self, address: str, items: list[_Queued], timeout: float, *, fresh: bool) -> None:
        body = batch.pack_request([i.payload for i in items])
        max_frame = self.settings.max_reply_bytes
        async with (
            _in_time(address, timeout),
            self._client().exchange(
                address, _BATCH_PATH, body, _BATCH_CONTENT_TYPE, max_bytes=2 * max_frame, fresh=fresh
            ) as answer,
        ):
            if answer.status in (404, 405):
                raise _NoBatches(for_good=True)  # a node without the batch path
            if answer.status == 413:
                raise _NoBatches(for_good=False)  # this batch is over the peer's limit: its requests go alone
            if answer.status != 200:
                raise _refusal(address, answer.status, await answer.read())
            await _settle_answers(address, answer, items, batch.AnswerReader(len(items), max_frame, 2 * max_frame))

    async def close(self) -> None:
        closed = FinP2PError(ErrorCode.PEER_UNREACHABLE, "the transport was closed before the request left")
        for outbox in self._outboxes.values():  # what waits for its exchange is told, not left waiting
            while outbox.queue:
                outbox.queue.popleft().fail(closed)
        for exchange in list(self._exchanges):
            exchange.cancel()
        await asyncio.gather(*self._exchanges, return_exceptions=True)
        if self._peers is not None:
            await self._peers.close()
            self._peers = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def _in_time(address: str, timeout: float) -> AsyncIterator[None]:
    """An exchange bounded by ``timeout``, FP3006 past it."""
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError:
        raise FinP2PError(ErrorCode.PEER_TIMEOUT, f"{address} did not answer within {timeout:.1f} s") from None


def _refusal(address: str, status: int, body: bytes) -> FinP2PError:
    """What an answer other than 200 says: the FinP2P error it carries, or FP3007 with its status."""
    err = error_from_body(body)
    if err is not None:
        return FinP2PError(err.code, f"{address}: {err.detail}")
    return FinP2PError(ErrorCode.PEER_ERROR, f"{address} answered HTTP {status}")


async def _settle_answers(address: str, answer: Answer, items: list[_Queued], reader: batch.AnswerReader) -> None:
    """Each answer of a streamed batch settles its request as it arrives."""
    while True:
        try:
            head = await answer.readexactly(reader.HEADER_BYTES)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise FinP2PError(ErrorCode.MALFORMED, f"{address} cut a batch answer short") from None
            return
        index, size = reader.header(head)
        try:
            one = await answer.readexactly(size)
        except asyncio.IncompleteReadError:
            raise FinP2PError(ErrorCode.MALFORMED, f"{address} cut a batch answer short") from None
        items[index].settle(one)


#: The peer of each open connection: its certificate is fixed once the TLS 1.3 handshake is done, so it is read once
#: per connection rather than once per request. Entries go with their connections.
_peers: weakref.WeakKeyDictionary[asyncio.BaseTransport, Peer] = weakref.WeakKeyDictionary()


def _peer_of(request: web.Request) -> Peer:
    transport = request.transport
    with contextlib.suppress(TypeError):
        if transport is not None and (known := _peers.get(transport)) is not None:
            return known
    address = f"{request.remote}"
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        peer = Peer(None, None, None, address)
    else:
        ident = tls.identity_of_der(der)
        peer = Peer(ident.org_id, ident.fin_id, ident.spki_sha256, address)
    if transport is not None:
        with contextlib.suppress(TypeError):  # a transport that cannot be weakly referenced is read every time
            _peers[transport] = peer
    return peer
