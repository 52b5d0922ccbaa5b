"""What every HTTP server of the node enforces (the peer transport, the REST API, the ledger-adapter API, the
served chain's JSON-RPC), whoever connects:

- a request's headers must arrive within ``header_timeout_s`` of the connection opening, and a connection with no
  request in progress is closed after ``idle_timeout_s`` (aiohttp's keep-alive timer, which also bounds headers
  that stall on a kept-alive connection);
- a body must arrive within ``body_timeout_s``; a declared ``Content-Length`` over the limit is answered 413 before
  a byte of the body is read, and the connection closed;
- one client address holds at most ``max_connections_per_client`` connections at once; more are closed as they
  open, so a flood from one address cannot take every socket.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from typing import Any

from aiohttp import web

from finp2p.edge.json_input import read_json_object
from finp2p.edge.limits import DEFAULT_LIMITS, ServerLimits
from finp2p.errors import ErrorCode, FinP2PError

log = logging.getLogger(__name__)


#: The limits an application's handlers read bodies under (set by :func:`runner`).
LIMITS = web.AppKey("finp2p_limits", ServerLimits)


def runner(app: web.Application, limits: ServerLimits = DEFAULT_LIMITS) -> web.AppRunner:
    """The app's runner with the idle timeout set (aiohttp's default keeps an idle connection for an hour)."""
    app[LIMITS] = limits
    return web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=limits.idle_timeout_s)


async def serve(
    app_runner: web.AppRunner,
    host: str,
    port: int,
    *,
    limits: ServerLimits = DEFAULT_LIMITS,
    ssl_context: ssl.SSLContext | None = None,
    backlog: int = 512,
) -> int:
    """Listen at ``host:port`` with ``limits`` (``app_runner`` set up already); the port bound."""
    site = GuardedSite(app_runner, host, port, limits=limits, ssl_context=ssl_context, backlog=backlog)
    await site.start()
    return site.port


async def read_body(request: web.Request, *, max_bytes: int) -> bytes:
    """The request's body: FP3005 when it is (or is declared) over ``max_bytes``, before reading what is declared
    too large; FP8002 when it does not arrive within ``body_timeout_s``. Answer both with :func:`closing`."""
    limits = request.config_dict.get(LIMITS, DEFAULT_LIMITS)
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise FinP2PError(ErrorCode.BODY_TOO_LARGE, f"the body is declared as {declared} bytes, over {max_bytes}")
    if request.content.is_eof():  # arrived whole with its headers (as most do): nothing to wait for, or time
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise FinP2PError(ErrorCode.BODY_TOO_LARGE, f"the body is over the limit of {max_bytes} bytes") from None
    try:
        async with asyncio.timeout(limits.body_timeout_s):
            return await request.read()
    except TimeoutError:
        raise FinP2PError(
            ErrorCode.REQUEST_TIMEOUT, f"the body did not arrive within {limits.body_timeout_s:g} s"
        ) from None
    except web.HTTPRequestEntityTooLarge:
        raise FinP2PError(ErrorCode.BODY_TOO_LARGE, f"the body is over the limit of {max_bytes} bytes") from None


async def json_body(request: web.Request, *, max_bytes: int, what: str = "the body") -> dict[str, Any]:
    """:func:`read_body`, then the one JSON reader of the edges: an object, or FP2001."""
    return read_json_object(await read_body(request, max_bytes=max_bytes), what=what, max_bytes=max_bytes)


def closing(response: web.StreamResponse) -> web.StreamResponse:
    """An answer after which the connection is closed: the rest of a refused body is never read."""
    response.force_close()
    return response


def closes_connection(err: FinP2PError) -> bool:
    """Refusals after which the server closes the connection (the body may still be arriving)."""
    return err.code in (ErrorCode.BODY_TOO_LARGE, ErrorCode.REQUEST_TIMEOUT)


class GuardedSite(web.BaseSite):
    """A TCP site whose connections pass :class:`_Guard` first."""

    __slots__ = ("_bound", "_counts", "_host", "_limits", "_port")

    def __init__(
        self,
        app_runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        limits: ServerLimits,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 512,
    ) -> None:
        super().__init__(app_runner, ssl_context=ssl_context, backlog=backlog)
        self._host, self._port, self._limits = host, port, limits
        self._bound = port
        self._counts: Counter[str] = Counter()

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._bound}"

    @property
    def port(self) -> int:
        return self._bound

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Guard(server(), self._limits, self._counts, loop),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
        )
        if self._server.sockets:
            self._bound = int(self._server.sockets[0].getsockname()[1])


class _Guard(asyncio.Protocol):
    """Stands before aiohttp's request handler on one connection: counts it against its client address, and closes
    it if the first request's headers do not arrive in time."""

    def __init__(self, inner: Any, limits: ServerLimits, counts: Counter[str], loop: asyncio.AbstractEventLoop) -> None:
        self.inner = inner
        self.limits = limits
        self.counts = counts
        self.loop = loop
        self.client: str | None = None
        self.refused = False
        self.transport: asyncio.BaseTransport | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        if self.counts[client] >= self.limits.max_connections_per_client:
            self.refused = True
            log.info("refused a connection from %s: %d open already", client, self.counts[client])
            transport.close()
            return
        self.counts[client] += 1
        self.client = client
        self.transport = transport
        self.inner.connection_made(transport)
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_late)

    def _head_late(self) -> None:
        self._head_timer = None
        log.info(
            "closed a connection from %s: no request headers within %g s", self.client, self.limits.header_timeout_s
        )
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if self._head_timer is not None:
            if b"\r\n\r\n" in data or b"\r\n\r\n" in self._tail + data[:3]:
                self._head_timer.cancel()
                self._head_timer = None
            else:
                self._tail = (self._tail + data)[-3:]
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self.refused:
            return None
        result: bool | None = self.inner.eof_received()
        return result

    def connection_lost(self, exc: Exception | None) -> None:
        if self.refused:
            return
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self.client is not None:
            self.counts[self.client] -= 1
            if self.counts[self.client] <= 0:
                del self.counts[self.client]
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if not self.refused:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if not self.refused:
            self.inner.resume_writing()
