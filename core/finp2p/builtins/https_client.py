"""The peer transport's client: HTTP/1.1 with keep-alive over the node's mutual TLS 1.3, on asyncio's protocol, the
answers parsed by llhttp (``httptools``, Node.js's HTTP parser).

Why not aiohttp's client, as before: for a signed request/response with one request in flight, aiohttp's client
was most of the HTTP time of the exchange (against the same aiohttp server, a request and its answer took half the
time with this client; ``bench.messaging``). What a peer's answer is given is no less than under aiohttp:

- its status line and headers at most :data:`MAX_HEAD_BYTES`; its body at most what the caller reads (a declared
  ``Content-Length`` over it is refused before a byte of the body is read, a chunked body as soon as it passes it);
- anything that is not HTTP/1.1 (llhttp's strict mode), an answer that is not the one asked for (bytes while no
  request is under way, a second answer), and a body cut short are errors, and the connection is closed;
- a connection is reused only after a whole 200 answer the peer did not mark ``Connection: close``;
- a request whose connection breaks before a byte of its answer arrived may be sent once more, on a new connection
  (a pooled connection the peer had closed: it restarted, or timed it out); should the first copy have arrived after
  all, the peer refuses the second as a replay;
- at most ``pool_size`` exchanges are under way at once, and at most that many connections kept idle (the oldest
  closed first; one idle longer than :data:`IDLE_S` is not reused).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from finp2p.errors import ErrorCode, FinP2PError

#: An answer's status line and headers together, at most.
MAX_HEAD_BYTES = 64 << 10
#: A connection idle longer than this is closed rather than reused (the peer's own idle timeout may have passed).
IDLE_S = 30.0


class StaleConnection(Exception):
    """The connection broke before a byte of the answer came: the request may be sent once more on a new one."""


@dataclass(frozen=True)
class Endpoint:
    """Where a peer's address points: what to connect to, and what to name in the request."""

    host: str
    port: int
    host_header: bytes
    prefix: bytes

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def of(address: str) -> Endpoint:
        """The endpoint of an ``https://host[:port][/prefix]`` address; FP3001 for anything else."""
        try:
            parts = urlsplit(address)
            port = parts.port or 443
        except ValueError:
            parts, port = None, 0
        if (
            parts is None
            or parts.scheme != "https"
            or not parts.hostname
            or parts.username is not None
            or parts.query
            or parts.fragment
            or not address.isascii()
            or any(c.isspace() or not c.isprintable() for c in address)
        ):
            raise FinP2PError(ErrorCode.PEER_UNREACHABLE, f"{address[:200]!r} is not an https://host:port address")
        netloc = parts.netloc
        return Endpoint(parts.hostname, port, netloc.encode(), parts.path.rstrip("/").encode())


class Answer:
    """One answer as it arrives: its status and headers first, then its body, bounded by ``max_bytes``."""

    def __init__(self, address: str, max_bytes: int) -> None:
        self.address = address
        self.max_bytes = max_bytes
        self.status = 0
        self.declared: int | None = None
        self.keep_alive = False
        self.started = False  # a byte of it has arrived: it is no stale connection's
        self.complete = False
        self.error: BaseException | None = None
        self.received = 0
        self._head_bytes = 0  # received before the head ended
        self._head_length = 0  # of the status line and headers parsed
        self._head_done = False
        self._buffer = bytearray()
        self._waiter: asyncio.Future[None] | None = None

    # -- fed by the connection ------------------------------------------------------------------------------
    def fail(self, error: BaseException) -> None:
        if self.error is None and not self.complete:
            self.error = error
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- read by the caller ---------------------------------------------------------------------------------
    async def _wait(self) -> None:
        if self.error is not None:
            raise self.error
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        if self.error is not None:
            raise self.error

    async def head(self) -> None:
        while not self._head_done:
            await self._wait()

    async def read(self) -> bytes:
        """The whole body."""
        while not self.complete:
            await self._wait()
        body = bytes(self._buffer)
        self._buffer.clear()
        return body

    async def readexactly(self, n: int) -> bytes:
        """The next ``n`` bytes of the body; :class:`asyncio.IncompleteReadError` if it ends first."""
        while len(self._buffer) < n:
            if self.complete:
                partial = bytes(self._buffer)
                self._buffer.clear()
                raise asyncio.IncompleteReadError(partial, n)
            await self._wait()
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out


class _Connection(asyncio.Protocol):
    """One kept-alive connection to a peer, one exchange at a time; llhttp calls the ``on_*`` methods."""

    def __init__(self, key: str, on_lost: collections.abc.Callable[[_Connection], None]) -> None:
        self.key = key
        self.on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: Answer | None = None
        self.closed = False
        self.idle_since = 0.0

    # -- the exchange -----------------------------------------------------------------------------------------
    def send(self, request: bytes, answer: Answer) -> None:
        assert self.transport is not None and self.answer is None
        self.answer = answer
        self.transport.write(request)

    def reusable(self) -> bool:
        answer = self.answer
        return (
            not self.closed
            and answer is not None
            and answer.complete
            and answer.error is None
            and answer.status == 200
            and answer.keep_alive
        )

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True

    # -- asyncio ----------------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        answer = self.answer
        if answer is None or answer.complete or answer.error is not None:  # nothing asked, or answered already
            self._refuse(answer, "sent bytes it was not asked for")
            return
        answer.started = True
        if not answer._head_done:
            if answer._head_bytes > MAX_HEAD_BYTES:  # llhttp would keep an endless header: it holds one read more
                answer.fail(_head_too_long(answer))
                self.close()
                return
            answer._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:  # a callback refused: its reason is the answer's error
            reason = exc.__context__
            if not isinstance(reason, FinP2PError):
                reason = FinP2PError(ErrorCode.PEER_ERROR, f"{answer.address} answered what cannot be read ({reason})")
            answer.fail(reason)
            self.close()  # the parser stopped where it was: nothing more can be read on this connection
        except httptools.HttpParserError as exc:
            self._refuse(answer, f"answered what is not HTTP/1.1 ({exc})")
        if answer.error is not None or (answer.complete and not self.reusable()):
            self.close()

    def _refuse(self, answer: Answer | None, what: str) -> None:
        if answer is not None:
            answer.fail(FinP2PError(ErrorCode.PEER_ERROR, f"{answer.address} {what}"))
        self.close()

    def eof_received(self) -> bool | None:
        return None  # close: a peer that stops sending has nothing more to say on this connection

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        answer = self.answer
        if answer is not None and not answer.complete:
            answer.fail(_lost(answer, exc))
        self.on_lost(self)

    # -- llhttp -----------------------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        answer = self.answer
        assert answer is not None
        if answer._head_done:
            raise FinP2PError(ErrorCode.PEER_ERROR, f"{answer.address} sent a second answer to one request")

    def on_status(self, status: bytes) -> None:
        answer = self.answer
        assert answer is not None
        answer._head_length += len(status)

    def on_header(self, name: bytes, value: bytes) -> None:
        answer = self.answer
        assert answer is not None
        answer._head_length += len(name) + len(value) + 4
        if answer._head_length > MAX_HEAD_BYTES:
            raise _head_too_long(answer)
        if name.lower() == b"content-length":
            declared = int(value)  # llhttp has checked it is digits, and that there is one
            if declared > answer.max_bytes:
                raise FinP2PError(ErrorCode.BODY_TOO_LARGE, f"{answer.address} answered {declared} bytes")
            answer.declared = declared

    def on_headers_complete(self) -> None:
        answer = self.answer
        assert answer is not None
        answer.status = self.parser.get_status_code()
        answer.keep_alive = self.parser.should_keep_alive()
        answer._head_done = True
        answer._wake()

    def on_body(self, body: bytes) -> None:
        answer = self.answer
        assert answer is not None
        answer.received += len(body)
        if answer.received > answer.max_bytes:
            raise FinP2PError(ErrorCode.BODY_TOO_LARGE, f"{answer.address} answered more than {answer.max_bytes} bytes")
        answer._buffer += body
        answer._wake()

    def on_message_complete(self) -> None:
        answer = self.answer
        assert answer is not None
        answer.complete = True
        answer._wake()


def _head_too_long(answer: Answer) -> FinP2PError:
    return FinP2PError(ErrorCode.BODY_TOO_LARGE, f"{answer.address} answered a head over {MAX_HEAD_BYTES} bytes")


def _lost(answer: Answer, exc: BaseException | None) -> BaseException:
    """What a connection lost in the middle of ``answer`` means."""
    if isinstance(exc, ssl.SSLError):  # e.g. the peer refused this node's certificate after the handshake
        return FinP2PError(ErrorCode.PEER_TLS, f"{answer.address}: {exc}")
    if not answer.started:
        return StaleConnection(f"the connection closed before an answer came ({exc or 'closed by the peer'})")
    if answer.declared is not None:
        said = f"received {answer.received} of {answer.declared} bytes"
    else:
        said = f"received {answer.received} bytes of a body with no end"
    return FinP2PError(ErrorCode.PEER_UNREACHABLE, f"{answer.address} hung up in the middle of its answer: {said}")


class PeerClient:
    """Pooled keep-alive connections to peers, over ``ssl_context``."""

    def __init__(self, ssl_context: ssl.SSLContext, *, pool_size: int = 100, connect_timeout: float = 5.0) -> None:
        self.ssl_context = ssl_context
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self._idle: dict[str, list[_Connection]] = {}
        self._idle_order: collections.OrderedDict[_Connection, None] = collections.OrderedDict()
        self._slots = asyncio.Semaphore(pool_size)
        self._open: set[_Connection] = set()

    @contextlib.asynccontextmanager
    async def exchange(
        self,
        address: str,
        path: bytes,
        body: bytes,
        content_type: bytes,
        *,
        max_bytes: int,
        fresh: bool = False,
    ) -> collections.abc.AsyncIterator[Answer]:
        """POST ``body`` to ``path`` at ``address``; the answer once its head arrived, its body read in the block.
        Raises :class:`StaleConnection` when the connection broke before the answer began; ``fresh`` for a new
        connection. Time is the caller's to bound."""
        endpoint = Endpoint.of(address)
        async with self._slots:
            connection = (None if fresh else self._take_idle(address)) or await self._connect(address, endpoint)
            answer = Answer(address, max_bytes)
            request = b"".join(
                (
                    b"POST ",
                    endpoint.prefix,
                    path,
                    b" HTTP/1.1\r\nHost: ",
                    endpoint.host_header,
                    b"\r\nContent-Type: ",
                    content_type,
                    b"\r\nContent-Length: %d\r\n\r\n" % len(body),
                    body,
                )
            )
            try:
                connection.send(request, answer)
                await answer.head()
                yield answer
            finally:
                if connection.reusable():
                    connection.answer = None
                    self._put_idle(connection)
                else:
                    connection.close()

    def _take_idle(self, key: str) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            self._idle_order.pop(connection, None)
            transport = connection.transport
            fresh_enough = now - connection.idle_since < IDLE_S
            if not connection.closed and transport is not None and not transport.is_closing() and fresh_enough:
                return connection
            connection.close()
        return None

    def _put_idle(self, connection: _Connection) -> None:
        connection.idle_since = time.monotonic()
        self._idle.setdefault(connection.key, []).append(connection)
        self._idle_order[connection] = None
        while len(self._idle_order) > self.pool_size:  # the oldest idle goes first
            oldest, _ = self._idle_order.popitem(last=False)
            self._idle[oldest.key].remove(oldest)
            oldest.close()

    def _forget(self, connection: _Connection) -> None:
        """A connection closed, by either end: it is neither open nor idle any more."""
        self._open.discard(connection)
        if connection in self._idle_order:
            del self._idle_order[connection]
            self._idle[connection.key].remove(connection)

    async def _connect(self, key: str, endpoint: Endpoint) -> _Connection:
        loop = asyncio.get_running_loop()
        with _connect_errors(key):
            async with asyncio.timeout(self.connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(key, self._forget),
                    endpoint.host,
                    endpoint.port,
                    ssl=self.ssl_context,
                    server_hostname=endpoint.host,
                    ssl_handshake_timeout=self.connect_timeout,
                )
        self._open.add(connection)
        return connection

    async def close(self) -> None:
        for connection in list(self._open):
            connection.close()
        self._idle.clear()
        self._idle_order.clear()


@contextlib.contextmanager
def _connect_errors(address: str) -> Iterator[None]:
    try:
        yield
    except ssl.SSLError as exc:  # the peer's certificate is not the network's, or the handshake failed
        raise FinP2PError(ErrorCode.PEER_TLS, f"{address}: {exc}") from None
    except TimeoutError:
        raise FinP2PError(ErrorCode.PEER_TIMEOUT, f"{address} did not accept a connection in time") from None
    except OSError as exc:  # nothing listens there, or no route
        raise FinP2PError(ErrorCode.PEER_UNREACHABLE, f"{address}: {exc}") from None
