"""The peer transport's client against peers that answer badly: a real TLS 1.3 server with a member certificate,
writing its answers by hand, on loopback. Each bad answer is refused with the FinP2P error that says what the peer
did, its connection is not used again, and the client goes on serving the next request."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.netkit import mint
from finp2p.builtins.https_client import MAX_HEAD_BYTES, Endpoint, PeerClient, StaleConnection
from finp2p.errors import FinP2PError
from finp2p.identity import tls
from finp2p.identity.genesis import Genesis
from finp2p.identity.local import LocalIdentity

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Hostile:
    """A member's TLS server whose answers the test writes; the client of another member to ask it with."""

    server_ctx: ssl.SSLContext
    client_ctx: ssl.SSLContext
    servers: list[asyncio.Server] = field(default_factory=list)
    connections: int = 0
    in_flight: int = 0
    most_in_flight: int = 0

    async def serve(self, handler: Handler) -> str:
        async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(counted, "127.0.0.1", 0, ssl=self.server_ctx)
        self.servers.append(server)
        return f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    def client(self, **settings: float) -> PeerClient:
        return PeerClient(self.client_ctx, **settings)  # type: ignore[arg-type]


@pytest.fixture
async def hostile(tmp_path: Path) -> AsyncIterator[Hostile]:
    manifest = mint(tmp_path, 2)
    trust = Genesis.load(Path(manifest["genesis"])).trust_pem
    me, peer = (LocalIdentity(Path(n["dir"])) for n in manifest["nodes"][:2])
    h = Hostile(
        tls.server_context(str(peer.tls_chain_path), str(peer.tls_key_path), trust, require_client_cert=True),
        tls.client_context(trust, str(me.tls_chain_path), str(me.tls_key_path)),
    )
    yield h
    for server in h.servers:
        server.close()


async def ask(client: PeerClient, address: str, *, max_bytes: int = 1 << 20, timeout: float = 5) -> tuple[int, bytes]:
    async with asyncio.timeout(timeout), client.exchange(address, b"/x", b"{}", b"t/x", max_bytes=max_bytes) as a:
        return a.status, await a.read()


def answering(*answers: bytes, then: Handler | None = None) -> Handler:
    """A peer that reads each request's head and body, then writes the next of ``answers``."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line[15:]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
            await reader.readexactly(length)
            writer.write(answer)
            await writer.drain()
        if then is not None:
            await then(reader, writer)
        else:
            await reader.read()

    return handler


async def test_a_good_peer_is_asked_on_one_kept_alive_connection(hostile: Hostile) -> None:
    address = await hostile.serve(answering(OK, OK, OK))
    client = hostile.client()
    assert [await ask(client, address) for _ in range(3)] == [(200, b"ok")] * 3
    assert hostile.connections == 1
    await client.close()


@pytest.mark.parametrize(
    ("answer", "code", "said"),
    [
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n", "FP3005", "a head over"),
        (b"SMTP ready\r\n\r\n", "FP3007", "not HTTP/1.1"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", "FP3007", "not HTTP/1.1"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nok", "FP3007", "not HTTP/1.1"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", "FP3005", "answered 2000 bytes"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 100 + b"\r\n\r\n", "FP3007", "not HTTP/1.1"),
        (CHUNKED + b"400\r\n" + b"x" * 1024 + b"\r\n", "FP3005", "answered more than 1000 bytes"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "FP3001", "received 3 of 10 bytes"),
        (CHUNKED + b"3\r\nabc\r\n", "FP3001", "received 3 bytes"),
    ],
    ids=["head", "not-http", "two-lengths", "length-and-chunked", "declared", "huge", "chunked", "short", "no-end"],
)
async def test_a_bad_answer_is_refused_and_its_connection_not_used_again(
    hostile: Hostile, answer: bytes, code: str, said: str
) -> None:
    """Each bad answer closes its connection; the same client then asks a good peer on a connection of its own."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    address = await hostile.serve(answering(answer, then=hang_up))
    client = hostile.client()
    with pytest.raises(FinP2PError) as info:
        await ask(client, address, max_bytes=1000)
    assert info.value.code.code == code and said in info.value.detail, info.value
    good = await hostile.serve(answering(OK))
    assert await ask(client, good) == (200, b"ok")
    assert not client._idle.get(address), "a refused answer's connection is never pooled"
    await client.close()


async def test_a_peer_that_never_answers_is_given_up_on_in_time(hostile: Hostile) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    address = await hostile.serve(silent)
    client = hostile.client()
    with pytest.raises(TimeoutError):
        await ask(client, address, timeout=0.5)
    assert await closed_all(client), "the abandoned exchange's connection is closed"
    await client.close()


async def closed_all(client: PeerClient) -> bool:
    """Whether every connection of ``client`` is closed within a second (each end's close takes a turn or two)."""
    for _ in range(50):
        if not client._open:
            return not client._idle_order
        await asyncio.sleep(0.02)
    return False


@pytest.mark.parametrize("together", [True, False], ids=["with-the-answer", "after-it"])
async def test_bytes_sent_but_not_asked_for_close_the_connection(hostile: Hostile, together: bool) -> None:
    """A second answer to one request, with the first or after it: the first is the answer, the connection is not
    used again."""

    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.1)
        writer.write(OK)  # unasked
        await reader.read()

    address = await hostile.serve(answering(OK + OK) if together else answering(OK, then=chatty))
    client = hostile.client()
    assert await ask(client, address) == (200, b"ok")
    assert await closed_all(client)
    await client.close()


async def test_a_kept_alive_connection_the_peer_closed_is_a_stale_one_to_send_again_on(hostile: Hostile) -> None:
    """The peer reads the second request and hangs up without a word: the caller hears the connection was stale (it
    may send again), and the next exchange is on a new connection."""

    async def read_then_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    address = await hostile.serve(answering(OK, then=read_then_hang_up))
    client = hostile.client()
    assert await ask(client, address) == (200, b"ok")
    with pytest.raises(StaleConnection):
        await ask(client, address)
    assert await ask(client, address) == (200, b"ok") and hostile.connections == 2
    await client.close()


async def test_no_more_exchanges_than_the_pool_holds_are_under_way_at_once(hostile: Hostile) -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readuntil(b"\r\n\r\n"):
            await reader.readexactly(2)
            hostile.in_flight += 1
            hostile.most_in_flight = max(hostile.most_in_flight, hostile.in_flight)
            await asyncio.sleep(0.05)
            hostile.in_flight -= 1
            writer.write(OK)
            await writer.drain()

    address = await hostile.serve(slow)
    client = hostile.client(pool_size=2)
    assert await asyncio.gather(*(ask(client, address) for _ in range(6))) == [(200, b"ok")] * 6
    assert hostile.most_in_flight == 2 and hostile.connections == 2
    await client.close()


@pytest.mark.parametrize(
    "address",
    ["http://127.0.0.1:1", "https://user@127.0.0.1:1", "https://127.0.0.1:1/a b", "https://127.0.0.1:x", "https://"],
)
def test_an_address_that_is_not_https_host_port_is_refused(address: str) -> None:
    with pytest.raises(FinP2PError) as info:
        Endpoint.of(address)
    assert info.value.code.code == "FP3001" and "is not an https://host:port address" in info.value.detail


async def test_nothing_listening_and_a_stranger_certificate_are_what_they_are(hostile: Hostile, tmp_path: Path) -> None:
    client = hostile.client()
    with pytest.raises(FinP2PError) as info:
        await ask(client, "https://127.0.0.1:1")
    assert info.value.code.code == "FP3001"
    other = mint(tmp_path / "other", 1)  # another network: its own founders and CA
    stranger = LocalIdentity(Path(other["nodes"][0]["dir"]))
    hostile.server_ctx = tls.server_context(
        str(stranger.tls_chain_path),
        str(stranger.tls_key_path),
        Genesis.load(Path(other["genesis"])).trust_pem,
        require_client_cert=True,
    )
    address = await hostile.serve(answering(OK))
    with pytest.raises(FinP2PError) as info:
        await ask(client, address)
    assert info.value.code.code == "FP3002"
    await client.close()
