"""Envelopes that travel to one peer at the same time share an HTTPS exchange: two nodes in this process over real
mutual TLS 1.3 on loopback, with real keys, certificates and stores."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.netkit import BenchNode, mint, node
from finp2p.builtins import https_batch as batch
from finp2p.errors import FinP2PError
from finp2p.identity import tls
from finp2p.identity.genesis import Genesis
from finp2p.identity.local import LocalIdentity
from finp2p.network.envelope import Envelope, seal
from finp2p.network.messaging import Incoming


async def _pair(root: Path, *, batching: bool = True) -> tuple[BenchNode, BenchNode, dict[str, Any]]:
    manifest = mint(root, 2)
    a = await node(manifest, manifest["nodes"][0], serve=False)
    b = await node(manifest, manifest["nodes"][1], batching=batching)
    return a, b, manifest


async def _close(*nodes: BenchNode) -> None:
    for n in nodes:
        await n.messenger.transport.close()
        n.store.close()


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[BenchNode, BenchNode, dict[str, Any]]]:
    a, b, manifest = await _pair(tmp_path)
    yield a, b, manifest
    await _close(a, b)


@pytest.fixture
async def held(pair: tuple[BenchNode, BenchNode, dict[str, Any]]) -> AsyncIterator[asyncio.Event]:
    """``t.held`` on the serving node: answered ``{"held": True}`` once the event is set (at the latest, at the end)."""
    release = asyncio.Event()

    async def wait(msg: Incoming) -> dict[str, Any]:
        await release.wait()
        return {"held": True}

    pair[1].messenger.register("t.held", wait)
    yield release
    release.set()


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch the serving side unpacks."""
    seen: list[int] = []
    unpack = batch.unpack_request

    def counting(body: bytes) -> list[bytes]:
        out = unpack(body)
        seen.append(len(out))
        return out

    monkeypatch.setattr(batch, "unpack_request", counting)
    return seen


async def test_requests_sent_together_share_exchanges_and_each_gets_its_own_answer(
    pair: tuple[BenchNode, BenchNode, dict[str, Any]], batches: list[int]
) -> None:
    a, _, manifest = pair
    target = manifest["nodes"][1]["address"]
    answers = await asyncio.gather(*(a.messenger.request(target, "bench.echo", {"i": i}) for i in range(300)))
    assert answers == [{"i": i} for i in range(300)]
    assert batches and max(batches) > 1, "requests made at the same time travelled together"
    assert all(size <= batch.MAX_ENVELOPES for size in batches)


async def test_a_burst_of_requests_leaves_in_a_few_exchanges(
    pair: tuple[BenchNode, BenchNode, dict[str, Any]], batches: list[int]
) -> None:
    """Requests made at once leave in exchanges that double in size (each once half of those waiting are queued), so
    that the peer starts on the first while the rest are still being made: never one exchange per request."""
    a, _, manifest = pair
    target = manifest["nodes"][1]["address"]
    answers = await asyncio.gather(*(a.messenger.request(target, "bench.echo", {"i": i}) for i in range(64)))
    assert answers == [{"i": i} for i in range(64)]
    assert 3 <= len(batches) <= 8 and sum(batches) >= 60 and max(batches) >= 16, batches


def _member_tls(manifest: dict[str, Any]) -> ssl.SSLContext:
    """The TLS client context of the manifest's first node, as its transport makes it."""
    ident = LocalIdentity(Path(manifest["nodes"][0]["dir"]))
    trust = Genesis.load(Path(manifest["genesis"])).trust_pem
    return tls.client_context(trust, str(ident.tls_chain_path), str(ident.tls_key_path))


@asynccontextmanager
async def _batch_poster(
    pair: tuple[BenchNode, BenchNode, dict[str, Any]],
) -> AsyncIterator[Callable[[list[bytes]], AsyncIterator[tuple[int, Envelope]]]]:
    """Post one batch by hand, as a member's node would, and read its answers one by one as they arrive."""
    manifest = pair[2]
    url = manifest["nodes"][1]["address"] + batch.BATCH_PATH
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=_member_tls(manifest))) as http:

        async def post(envelopes: list[bytes]) -> AsyncIterator[tuple[int, Envelope]]:
            headers = {"Content-Type": batch.BATCH_CONTENT_TYPE}
            async with http.post(url, data=batch.pack_request(envelopes), headers=headers) as r:
                assert r.status == 200
                while True:
                    try:
                        head = await r.content.readexactly(8)
                    except asyncio.IncompleteReadError as end:
                        assert not end.partial, "an answer's frame cut short"
                        return
                    index, size = int.from_bytes(head[:4], "big"), int.from_bytes(head[4:], "big")
                    yield index, Envelope.decode(await r.content.readexactly(size))

        yield post


def _sealed(node: BenchNode, type_: str, body: dict[str, Any]) -> bytes:
    m = node.messenger
    return seal(m.key, network_id=m.network_id, type=type_, body=body, sender_org=m.org_id, chain=m.chain).encode()


async def test_a_slow_answer_holds_back_no_other_answer_of_its_batch(
    pair: tuple[BenchNode, BenchNode, dict[str, Any]], held: asyncio.Event
) -> None:
    a = pair[0]
    envelopes = [_sealed(a, "t.held", {}), *(_sealed(a, "bench.echo", {"i": i}) for i in range(10))]
    got: dict[int, dict[str, Any]] = {}
    async with _batch_poster(pair) as post:
        async for index, reply in post(envelopes):
            got[index] = reply.body
            if len(got) == 10:
                assert 0 not in got, "the slow one is still being handled"
                assert [got[i + 1] for i in range(10)] == [{"ok": True, "result": {"i": i}} for i in range(10)]
                held.set()  # only now may the slow one end
    assert got[0] == {"ok": True, "result": {"held": True}} and len(got) == 11


async def test_a_batch_is_handled_a_few_envelopes_at_a_time(pair: tuple[BenchNode, BenchNode, dict[str, Any]]) -> None:
    """A member's batch does not multiply the handlers it keeps busy: at most MAX_HANDLING of one batch at once."""
    a, b, _ = pair
    running, peak = 0, 0

    async def counted(msg: Incoming) -> dict[str, Any]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return {}

    b.messenger.register("t.counted", counted)
    async with _batch_poster(pair) as post:
        answers = [i async for i, _ in post([_sealed(a, "t.counted", {"i": i}) for i in range(batch.MAX_ENVELOPES)])]
    assert sorted(answers) == list(range(batch.MAX_ENVELOPES))
    assert peak == batch.MAX_HANDLING, f"{peak} handlers at once for one batch"


async def test_closing_the_transport_answers_every_request_still_waiting(
    pair: tuple[BenchNode, BenchNode, dict[str, Any]], held: asyncio.Event
) -> None:
    a, _, manifest = pair
    target = manifest["nodes"][1]["address"]
    calls = [asyncio.create_task(a.messenger.request(target, "t.held", {"i": i}, timeout=60)) for i in range(5)]
    await asyncio.sleep(0.2)  # the first under way alone, the others in a batch
    await a.messenger.transport.close()
    done, _ = await asyncio.wait(calls, timeout=10)
    assert len(done) == 5, "no caller is left waiting for its timeout"
    assert all(isinstance(c.exception(), FinP2PError) for c in calls)


async def test_a_peer_without_the_batch_path_is_sent_single_requests(tmp_path: Path) -> None:
    a, b, manifest = await _pair(tmp_path, batching=False)
    try:
        target = manifest["nodes"][1]["address"]
        answers = await asyncio.gather(*(a.messenger.request(target, "bench.echo", {"i": i}) for i in range(60)))
        assert answers == [{"i": i} for i in range(60)]
        assert target in a.messenger.transport._single_only  # type: ignore[attr-defined]
    finally:
        await _close(a, b)


async def test_malformed_batches_are_refused_and_each_envelope_is_checked_on_its_own(
    pair: tuple[BenchNode, BenchNode, dict[str, Any]],
) -> None:
    a, _, manifest = pair
    target = manifest["nodes"][1]["address"]
    ctx = _member_tls(manifest)
    url = target + batch.BATCH_PATH
    m = a.messenger

    def envelope(body: dict[str, Any]) -> bytes:
        return seal(
            m.key, network_id=m.network_id, type="bench.echo", body=body, sender_org=m.org_id, chain=m.chain
        ).encode()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as http:

        async def post(body: bytes) -> tuple[int, bytes]:
            async with http.post(url, data=body, headers={"Content-Type": batch.BATCH_CONTENT_TYPE}) as r:
                return r.status, await r.read()

        for bad in (
            b"\x00\x00",  # a length cut short
            b"\x00\x00\x10\x00{}",  # a frame running past the body
            b"\x00\x00\x00\x00",  # an empty frame
            batch.pack_request([envelope({"i": i}) for i in range(batch.MAX_ENVELOPES + 1)]),
        ):
            status, answer = await post(bad)
            assert status == 400 and b"FP2001" in answer, (bad[:16], status, answer[:200])

        replayed = envelope({"i": 1})
        status, raw = await post(batch.pack_request([replayed, b"not json", replayed, envelope({"i": 2})]))
        assert status == 200
        answers: dict[int, dict[str, Any]] = {}
        at = 0
        while at < len(raw):
            index, size = int.from_bytes(raw[at : at + 4], "big"), int.from_bytes(raw[at + 4 : at + 8], "big")
            reply = Envelope.decode(raw[at + 8 : at + 8 + size])
            reply.verify()
            answers[index] = reply.body
            at += 8 + size
        assert sorted(answers) == [0, 1, 2, 3], "every envelope answered, each on its own"
        codes = {i: a.get("error", {}).get("code") for i, a in answers.items()}
        assert codes[1] == "FP2001" and {codes[0], codes[2]} == {None, "FP2010"}, codes
        assert answers[3] == {"ok": True, "result": {"i": 2}}

    assert await m.request(target, "bench.echo", {"still": "serving"}) == {"still": "serving"}


async def test_a_request_whose_caller_gives_up_is_refused_in_time(
    pair: tuple[BenchNode, BenchNode, dict[str, Any]], held: asyncio.Event
) -> None:
    """A queued request keeps its own deadline: its caller hears FP3006 then, whatever its batch does."""
    a, _, manifest = pair
    target = manifest["nodes"][1]["address"]
    first = asyncio.create_task(a.messenger.request(target, "t.held", {}, timeout=30))
    queued = asyncio.create_task(a.messenger.request(target, "t.held", {"n": uuid.uuid4().hex}, timeout=0.5))
    with pytest.raises(FinP2PError) as info:
        await queued
    assert info.value.code.code == "FP3006"
    first.cancel()


@pytest.mark.parametrize(
    ("declared", "sent", "refused"),
    [(17 << 20, b"x" * 64, "answered 17825792 bytes"), (1000, b"x" * 10, "received 10 of 1000 bytes")],
)
async def test_an_answer_over_the_limit_or_cut_short_is_refused(
    tmp_path: Path, declared: int, sent: bytes, refused: str
) -> None:
    """A peer is as hostile in its answers as in its requests: one declaring more than the node reads, or fewer
    bytes than it declares before it hangs up, is refused with what it did (a real TLS 1.3 peer with a member
    certificate, writing its answer by hand)."""
    manifest = mint(tmp_path, 2)
    a = await node(manifest, manifest["nodes"][0], serve=False)
    ident = LocalIdentity(Path(manifest["nodes"][1]["dir"]))
    trust = Genesis.load(Path(manifest["genesis"])).trust_pem
    ctx = tls.server_context(str(ident.tls_chain_path), str(ident.tls_key_path), trust, require_client_cert=True)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\n\r\n".encode() + sent)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(FinP2PError) as info:
            await a.messenger.transport.request(f"https://127.0.0.1:{port}", b"{}", timeout=5)
        assert refused in info.value.detail
    finally:
        server.close()
        await _close(a)
