"""The built-in transport: HTTPS with TLS 1.3 and mutual authentication by governance-issued certificates, on aiohttp.

One endpoint, ``POST /finp2p/v1/envelope``. The server reads the peer's certificate from the TLS session and asks
the messaging layer to admit the peer before it reads the body; bodies over ``max_body_bytes`` are refused with
413 unread, and the server's timeouts and connections per client are those of :mod:`finp2p.edge.http`. Clients
pool connections (keep-alive) per peer and read at most ``max_reply_bytes`` of an answer.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from finp2p.edge import http
from finp2p.edge.json_input import read_json
from finp2p.edge.limits import DEFAULT_LIMITS, ServerLimits
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import tls
from finp2p.network.transport import Inbound, Peer, Transport

PATH = "/finp2p/v1/envelope"
CONTENT_TYPE = "application/vnd.finp2p.envelope+json"


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


class _StaleConnection(Exception):
    """The connection broke before an answer came: the request may be sent once more on a new connection."""


class HttpsTransport(Transport):
    def __init__(self, settings: HttpsSettings) -> None:
        self.settings = settings
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.address: str | None = None
        cert = str(settings.cert_chain_file) if settings.cert_chain_file else None
        key = str(settings.key_file) if settings.key_file else None
        self._client_ctx = tls.client_context(settings.trust_pem, cert, key)

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

        app = web.Application(client_max_size=s.max_body_bytes)
        app.router.add_post(PATH, receive)
        self._runner = http.runner(app, s.limits)
        await self._runner.setup()
        port = await http.serve(self._runner, s.host, s.port, limits=s.limits, ssl_context=server_ctx)
        self.address = s.public_url or f"https://{s.host}:{port}"
        return self.address

    # -- client --------------------------------------------------------------------------------------------------
    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._client_ctx, limit=self.settings.pool_size, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def request(self, address: str, payload: bytes, *, timeout: float) -> bytes:
        try:
            return await self._post(address, payload, timeout)
        except _StaleConnection:
            # A pooled keep-alive connection the peer had closed (it restarted, or timed it out): send once more on
            # a new connection. Should the first copy have arrived after all, the peer refuses this one as a replay.
            pass
        try:
            return await self._post(address, payload, timeout)
        except _StaleConnection as exc:
            raise FinP2PError(ErrorCode.PEER_UNREACHABLE, f"{address}: {exc.__cause__}") from None

    async def _post(self, address: str, payload: bytes, timeout: float) -> bytes:
        url = address.rstrip("/") + PATH
        t = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, self.settings.connect_timeout))
        try:
            async with self._client().post(
                url, data=payload, headers={"Content-Type": CONTENT_TYPE}, timeout=t
            ) as resp:
                body = await _read_limited(resp, self.settings.max_reply_bytes, address)
                if resp.status == 200:
                    return body
                err = error_from_body(body)
                if err is not None:
                    raise FinP2PError(err.code, f"{address}: {err.detail}")
                raise FinP2PError(ErrorCode.PEER_ERROR, f"{address} answered HTTP {resp.status}")
        except FinP2PError:
            raise
        except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
            raise FinP2PError(ErrorCode.PEER_TLS, f"{address}: {exc}") from None
        except TimeoutError:
            raise FinP2PError(ErrorCode.PEER_TIMEOUT, f"{address} did not answer within {timeout:.1f} s") from None
        except aiohttp.ClientConnectorError as exc:  # nothing listens there: no connection was made
            raise FinP2PError(ErrorCode.PEER_UNREACHABLE, f"{address}: {exc}") from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            raise _StaleConnection() from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise FinP2PError(ErrorCode.PEER_UNREACHABLE, f"{address}: {exc}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await asyncio.sleep(0)


async def _read_limited(resp: aiohttp.ClientResponse, max_bytes: int, address: str) -> bytes:
    """An answer's body, read no further than ``max_bytes`` (a peer's answer is as hostile as its requests)."""
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise FinP2PError(ErrorCode.BODY_TOO_LARGE, f"{address} answered {resp.content_length} bytes")
    chunks, size = [], 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise FinP2PError(ErrorCode.BODY_TOO_LARGE, f"{address} answered more than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _peer_of(request: web.Request) -> Peer:
    address = f"{request.remote}"
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return Peer(None, None, None, address)
    ident = tls.identity_of_der(der)
    return Peer(ident.org_id, ident.fin_id, ident.spki_sha256, address)
