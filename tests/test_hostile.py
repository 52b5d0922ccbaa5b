"""The node against a hostile client: a ``finp2p devnet up`` network on loopback (a governance node, three banks as
processes; bank-a serves its embedded chain, bank-c the ledger-adapter API), attacked through every surface it
offers. Each attack is answered with a stable code, never a 5xx; the process attacked stays up and answers a
legitimate request; balances and stored state stay as they were."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from finp2p.adapter import router
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.keys import SigningKey, load_key
from finp2p.store import Store
from tests.support.adapter import AdapterClient, AdapterProcess, Investor
from tests.support.cli import FINP2P, cli_env, run_cli
from tests.support.network import client_of
from tests.support.ports import free_port

pytestmark = [pytest.mark.slow]

#: Short timeouts for the devnet under attack, so slow clients are seen to be cut off within a test's patience.
LIMITS = {
    "FINP2P_LIMITS__HEADER_TIMEOUT_S": "2",
    "FINP2P_LIMITS__BODY_TIMEOUT_S": "3",
    "FINP2P_LIMITS__IDLE_TIMEOUT_S": "5",
    "FINP2P_LIMITS__REGISTRATIONS_PER_ADDRESS": "6",
}
DEEP = b"[" * 200_000


@dataclass
class Devnet:
    root: Path
    state: dict[str, Any]

    def node(self, name: str) -> dict[str, Any]:
        return dict(self.state["nodes"][name])

    def pid(self, name: str) -> int:
        return int(self.state["processes"][name])

    def api(self, bank: str) -> tuple[str, dict[str, str]]:
        api = self.state["apis"][bank]
        return api["url"], {"Authorization": f"Bearer {api['token']}"}

    @property
    def adapter(self) -> tuple[str, str]:
        return self.state["adapter"]["url"], Path(self.state["adapter"]["token_file"]).read_text().strip()

    @property
    def chain(self) -> tuple[str, str]:
        profile = Path(self.state["chain"]["auditor_profile"]).read_text()
        token_file = next(line.split("=", 1)[1].strip().strip('"') for line in profile.splitlines() if "token" in line)
        return self.state["chain"]["url"], Path(token_file).read_text().strip()

    def user(self, name: str) -> SigningKey:
        return load_key(Path(self.state["users"][name]["key_file"]))

    def alive(self, name: str) -> bool:
        try:
            os.kill(self.pid(name), 0)
        except ProcessLookupError:
            return False
        return True


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    root = tmp_path_factory.mktemp("hostile") / "devnet"
    env = {**cli_env(), **LIMITS}
    up = subprocess.run(
        [str(FINP2P), "devnet", "up", "--dir", str(root), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert up.returncode == 0, up.stderr[-3000:]
    net = Devnet(root, json.loads(up.stdout))
    try:
        yield net
    finally:
        down = run_cli("devnet", "down", "--dir", str(root))
        assert down.returncode == 0, down.stderr
        for name in net.state["processes"]:
            assert not net.alive(name), f"{name} survived devnet down"


async def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as r:
        return r.status, (await r.json()) if r.content_type == "application/json" else await r.text()


async def _post(url: str, data: bytes | Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=body, headers={"Content-Type": "application/json", **(headers or {})}) as r,
    ):
        return r.status, (await r.json()) if r.content_type == "application/json" else await r.text()


async def _balance(net: Devnet, fin_id: str) -> dict[str, Any]:
    url, auth = net.api("bank-b")
    status, body = await _get(f"{url}/v1/balances?asset_id={net.state['asset_id']}&fin_id={fin_id}", auth)
    assert status == 200, body
    return dict(body)


async def _still_serving(net: Devnet, *names: str) -> None:
    """Every process named is alive, and each surface answers a legitimate request."""
    for name in names:
        assert net.alive(name), f"{name} died"
    for bank in ("bank-a", "bank-b", "bank-c"):
        url, auth = net.api(bank)
        assert (await _get(f"{url}/v1/health", auth))[0] == 200
    adapter_url, _ = net.adapter
    assert (await _get(f"{adapter_url}/health"))[0] == 200
    chain_url, chain_token = net.chain
    status, answer = await _post(
        chain_url, {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}, {"Authorization": f"Bearer {chain_token}"}
    )
    assert status == 200 and int(answer["result"], 16) > 0


def _peer_request(address: str, body: bytes, *, timeout: float = 10) -> tuple[int, bytes]:
    """POST ``body`` to a node's peer port as a stranger: TLS without a client certificate."""
    host, port = address.removeprefix("https://").split(":")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, int(port)), timeout=timeout) as raw, context.wrap_socket(raw) as tls:
        head = (
            f"POST /finp2p/v1/envelope HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        tls.sendall(head.encode() + body)
        chunks = []
        while chunk := tls.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    status = int(answer.split(b" ", 2)[1])
    return status, answer.split(b"\r\n\r\n", 1)[1]


# -- 1. deep nesting on every surface ---------------------------------------------------------------------------------
async def test_a_deeply_nested_body_is_refused_by_every_surface_and_kills_nothing(devnet: Devnet) -> None:
    gov = devnet.node("gov-1")["address"]
    status, answer = await asyncio.to_thread(_peer_request, gov, DEEP)
    assert status == 200 and b"FP2001" in answer and b"deeper" in answer  # a signed FP2001 error

    rest, auth = devnet.api("bank-a")
    assert (await _post(f"{rest}/v1/consent", DEEP))[0] == 401  # no token: refused before the body is read
    status, error = await _post(f"{rest}/v1/consent", DEEP, auth)
    assert status == 400 and error["error"]["code"] == "FP2001"

    adapter, token = devnet.adapter
    headers = {"Idempotency-Key": "deep", "Authorization": f"Bearer {token}"}
    assert (await _post(f"{adapter}/assets/create", DEEP, {"Idempotency-Key": "deep"}))[0] == 401
    status, error = await _post(f"{adapter}/assets/create", DEEP, headers)
    assert status == 400 and error["code"] == "FP7010" and "deeper" in error["error"]
    # Deep but within the reader's limit and past the schema checker's: refused by the same limit.
    status, error = await _post(f"{adapter}/assets/create", b'{"asset":' + b"[" * 5000 + b"]" * 5000 + b"}", headers)
    assert status == 400 and error["code"] == "FP7010"

    chain, chain_token = devnet.chain
    assert (await _post(chain, DEEP))[0] == 401
    status, answer = await _post(chain, DEEP, {"Authorization": f"Bearer {chain_token}"})
    assert status == 200 and answer["error"]["code"] == -32600
    await _still_serving(devnet, "gov-1", "bank-a", "bank-b", "bank-c")


# -- 2. the adapter never runs without a token ------------------------------------------------------------------------
async def test_the_adapter_refuses_to_mint_without_a_token_and_refuses_to_start_without_one(
    devnet: Devnet, tmp_path: Path
) -> None:
    adapter, token = devnet.adapter
    mint = {"asset": {"resourceId": f"bank-c:102:{uuid.uuid4()}"}}
    for headers in ({}, {"Authorization": ""}, {"Authorization": "Bearer "}, {"Authorization": token}):
        status, error = await _post(f"{adapter}/assets/create", mint, {"Idempotency-Key": uuid.uuid4().hex, **headers})
        assert status == 401 and error["code"] == "FP8001", headers
    status, _ = await _post(
        f"{adapter}/assets/create", mint, {"Idempotency-Key": "ok", "Authorization": f"Bearer {token}"}
    )
    assert status == 200

    empty = tmp_path / "empty.token"
    empty.write_text("  \n")
    empty.chmod(0o600)
    for args, why in (
        ([], "needs a bearer token"),
        (["--token-file", str(empty)], "is empty"),
        (["--insecure-no-auth", "--host", "0.0.0.0"], "loopback only"),  # noqa: S104 - the refusal under test
    ):
        r = run_cli("adapter", "serve", "--port", "0", "--data", str(tmp_path / "a"), *args)
        assert r.returncode == 3 and why in r.stderr, (args, r.stderr)
    insecure = AdapterProcess(tmp_path / "insecure", "--insecure-no-auth", with_token=False)
    try:
        insecure.start()  # on loopback, explicitly: it serves, and says so
        assert "serves WITHOUT authentication at http://127.0.0.1:" in " ".join(insecure.log.read_text().split())
    finally:
        insecure.stop()


# -- 3. a signature fixes who receives --------------------------------------------------------------------------------
async def test_a_selling_signature_for_frank_cannot_pay_mallory(devnet: Devnet) -> None:
    adapter, token = devnet.adapter
    ledger_id = devnet.state["ledger_id"]
    async with aiohttp.ClientSession() as session:
        api = AdapterClient(adapter, session, ledger_id, token)
        asset = await api.create_asset()
        erin, frank, mallory = Investor.new(), Investor.new(), Investor.new()
        await api.issue(asset, erin, 100)
        body = api.transfer_body(asset, erin, frank.fin_id, 40)  # erin signs "40 units to frank"
        body["destination"] = api.account(mallory.fin_id, asset)
        result = await api.run("/assets/transfer", body)
        assert result["error"]["code"] == 4 and "the party who receives" in result["error"]["message"]
        assert (await api.balance(asset, mallory.fin_id))["available"] == 0
        assert (await api.balance(asset, erin.fin_id))["available"] == 100
        hold = api.hold_body(asset, erin, frank.fin_id, 40, uuid.uuid4().hex)
        assert "response" in await api.run("/assets/hold", hold)
        release = {
            "operationId": hold["operationId"],
            "source": api.account(erin.fin_id, asset),
            "destination": api.account(mallory.fin_id, asset),
            "quantity": "40",
        }
        refused = await api.run("/assets/release", release)  # held for frank, released to mallory: no
        assert refused["error"]["code"] == 6007
        redeemed = await api.run("/assets/redeem", {**release, "nonce": hold["nonce"], "settlementRef": "x"})
        assert redeemed["error"]["code"] == 6007  # a Selling authorises paying frank, not destroying the units
        assert (await api.balance(asset, mallory.fin_id))["available"] == 0
        unknown = router.sign(
            erin.key,
            "Selling",
            router.message("Selling", "n", giver=erin.fin_id, receiver=frank.fin_id, asset_id=asset, quantity=1),
        )
        unknown["template"]["primaryType"] = "Gift"
        body = {**api.transfer_body(asset, erin, frank.fin_id, 1), "signature": unknown}
        assert (await api.run("/assets/transfer", body))["error"]["code"] == 4


# -- 4. the served chain hands out nothing ----------------------------------------------------------------------------
async def test_the_served_chain_exposes_no_account_and_bounds_calls(devnet: Devnet) -> None:
    chain, token = devnet.chain
    auth = {"Authorization": f"Bearer {token}"}
    for method in ("eth_accounts", "eth_sendTransaction", "eth_sign", "personal_sign", "eth_signTransaction"):
        status, answer = await _post(chain, {"jsonrpc": "2.0", "id": 1, "method": method, "params": []}, auth)
        assert status == 200 and answer["error"]["code"] == -32601, method
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_blockNumber"} for i in range(100)]
    status, answer = await _post(chain, batch, auth)
    assert status == 200 and answer["error"]["code"] == -32600
    # A call that would loop on 30 M gas runs on at most 1 M, and the owner's reads go on meanwhile.
    loop_code = "0x5b600056"  # JUMPDEST PUSH1 0 JUMP: an endless loop
    call = {"data": loop_code, "gas": hex(30_000_000)}  # no "to": the code runs as a contract's creation
    started = time.monotonic()
    status, answer = await _post(
        chain, {"jsonrpc": "2.0", "id": 2, "method": "eth_call", "params": [call, "latest"]}, auth
    )
    assert status == 200 and "error" in answer
    assert time.monotonic() - started < 30  # a bound on the test's patience, not a performance claim
    url, headers = devnet.api("bank-a")
    assert (await _get(f"{url}/v1/assets", headers))[0] == 200
    await _still_serving(devnet, "bank-a")


# -- 5. a peer chooses no URL -----------------------------------------------------------------------------------------
async def test_a_balance_broadcast_naming_a_foreign_url_or_chain_reaches_nowhere(
    devnet: Devnet, tmp_path: Path
) -> None:
    from finp2p.network.envelope import seal

    trapped: list[bytes] = []
    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen()
    trap.setblocking(False)
    trap_url = f"http://127.0.0.1:{trap.getsockname()[1]}"
    store = Store(f"sqlite:///{tmp_path / 'client.db'}")
    await asyncio.to_thread(store.migrate)
    bank_b = Path(devnet.node("bank-b")["config"]).parent / "data"
    messenger = await client_of(bank_b, Path(devnet.state["genesis"]), store)
    bank_c = devnet.node("bank-c")["address"]
    threads = _threads(devnet.pid("bank-c"))
    try:
        for settings in (
            {
                "backend": "rpc",
                "rpc": trap_url,
                "assets_contract": "0x" + "11" * 20,
                "registry_contract": "0x" + "22" * 20,
            },
            *({"backend": "embedded", "chain": f"fresh-{n}"} for n in range(5)),
        ):
            payload = {
                "asset_id": devnet.state["asset_id"],
                "fin_id": devnet.user("carol").fin_id,
                "asset_ledger": {"kind": "ethereum", "ledger_id": devnet.state["ledger_id"], "settings": settings},
            }
            body = {
                "kind": "asset.balance",
                "scope": {},
                "deadline_ms": int(time.time() * 1000) + 5000,
                "payload": payload,
            }
            request = seal(
                messenger.key,
                network_id=messenger.network_id,
                type="broadcast.request",
                body=body,
                sender_org=messenger.org_id,
                chain=messenger.chain,
            )
            with pytest.raises(FinP2PError) as exc:  # a refusal with its reason, read from nowhere the peer named
                await messenger.request(bank_c, "broadcast.deliver", {"request": request.to_dict()}, recipient="bank-c")
            assert exc.value.code is ErrorCode.LEDGER_PROFILE, exc.value
        with pytest.raises(BlockingIOError):
            trapped.append(trap.accept()[0].recv(10))  # nobody ever connected to the address the peer named
        assert _threads(devnet.pid("bank-c")) <= threads + 2  # no in-process chain made for the names given
    finally:
        trap.close()
        await messenger.transport.close()
        await asyncio.to_thread(store.close)
    await _still_serving(devnet, "bank-c")


def _threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def _register(net: Devnet, folder: Path, org_id: str) -> subprocess.CompletedProcess[str]:
    """``finp2p org register`` as a newcomer with a config of its own in ``folder``."""
    config = folder / "node.toml"
    if not config.exists():
        assert run_cli("config", "init", str(config), "--name", "x", "--genesis", net.state["genesis"]).returncode == 0
    url = f"https://127.0.0.1:{free_port()}"
    return run_cli("-c", str(config), "org", "register", "--org-id", org_id, "--name", "X", "--public-url", url)


# -- 6. look-alike identifiers ----------------------------------------------------------------------------------------
async def test_look_alike_identifiers_are_refused_at_every_edge(devnet: Devnet, tmp_path: Path) -> None:
    from finp2p.edge.identifiers import ORG_ID

    for org_id in ("bank-a\n", "bank-\u0430", "bank a", "bank-a\t"):
        r = _register(devnet, tmp_path / "newcomer", org_id)
        assert r.returncode != 0 and "FP2001" in (r.stdout + r.stderr), (org_id, r.stderr)
        assert not ORG_ID.matches(org_id)
    url, auth = devnet.api("bank-b")
    fin_id = SigningKey.generate().fin_id
    for bad in (fin_id + "\n", fin_id.upper(), fin_id + " ", "\u0660" + fin_id[1:]):
        status, error = await _post(f"{url}/v1/users", {"user_id": "eve", "fin_id": bad, "legal_name": "Eve"}, auth)
        assert status == 400, (bad, status, error)
    status, error = await _post(f"{url}/v1/users", {"user_id": "eve\n", "fin_id": fin_id, "legal_name": "Eve"}, auth)
    assert status == 400
    await _still_serving(devnet, "bank-b")


# -- 7. quantities and times ------------------------------------------------------------------------------------------
async def test_odd_quantities_and_times_are_refused_before_anything_is_written(devnet: Devnet) -> None:
    url, auth = devnet.api("bank-b")
    carol, dave = devnet.user("carol"), devnet.user("dave")
    base = {
        "operation": "transfer",
        "asset_id": devnet.state["asset_id"],
        "source": carol.fin_id,
        "destination": dave.fin_id,
        "operation_id": "odd",
    }
    for quantity in ("²", "١٢٣", "9" * 5000, "1e3", " 5", "5\n", -1, 0, 2**256, "0x10", True):
        status, error = await _post(f"{url}/v1/consent", {**base, "quantity": quantity}, auth)
        assert status == 400 and error["error"]["code"] in ("FP7010", "FP6012"), (quantity, status, error)
    hold = {**base, "operation": "hold", "quantity": 1}
    for expiry in (2**300, -1, "10", 10**13):
        status, error = await _post(f"{url}/v1/consent", {**hold, "expiry": expiry}, auth)
        assert status == 400, (expiry, status, error)
    for wait in ("nan", "inf", "1e9", "-1", "١"):
        status, _ = await _get(f"{url}/v1/operations/none?wait={wait}", auth)
        assert status == 400, wait

    adapter, token = devnet.adapter
    async with aiohttp.ClientSession() as session:
        api = AdapterClient(adapter, session, devnet.state["ledger_id"], token)
        asset = await api.create_asset()
        alice, bob = Investor.new(), Investor.new()
        await api.issue(asset, alice, 10)
        for quantity in ("²", "١٢٣", "9" * 5000):
            status, error = await api.post(
                "/assets/transfer", {**api.transfer_body(asset, alice, bob.fin_id, 1), "quantity": quantity}
            )
            assert status == 400 and error["code"] == "FP7010", (quantity, error)
        hold_body = api.hold_body(asset, alice, bob.fin_id, 1, uuid.uuid4().hex, expiry=2**300)
        status, error = await api.post("/assets/hold", hold_body)
        assert status == 400, error  # never accepted, so never left pending
        assert await api.balance(asset, alice.fin_id) == {"current": 10, "available": 10, "held": 0}
    await _still_serving(devnet, "bank-b", "bank-c")


# -- 8. concurrent repeats --------------------------------------------------------------------------------------------
async def test_twenty_concurrent_repeats_of_one_operation_get_the_same_receipt(devnet: Devnet) -> None:
    url, auth = devnet.api("bank-b")
    carol, dave = devnet.user("carol"), devnet.user("dave")
    before = (await _balance(devnet, dave.fin_id))["available"]
    body = {
        "operation": "transfer",
        "asset_id": devnet.state["asset_id"],
        "quantity": 3,
        "operation_id": f"repeat-{uuid.uuid4().hex[:8]}",
        "source": carol.fin_id,
        "destination": dave.fin_id,
        "source_user": "bank-b:101:carol",
        "destination_user": "bank-b:101:dave",
    }
    status, consent = await _post(f"{url}/v1/consent", body, auth)
    assert status == 200, consent
    template = consent["template"]
    body["consent"] = {
        "template": "EIP712",
        "signer": carol.fin_id,
        "payload": template,
        "signature": carol.sign_digest(bytes.fromhex(template["hash"])).hex(),
    }
    accepted = await asyncio.gather(
        *(_post(f"{url}/v1/operations", body, {**auth, "Idempotency-Key": uuid.uuid4().hex}) for _ in range(20))
    )
    assert {status for status, _ in accepted} == {202}
    ends = await asyncio.gather(*(_get(f"{url}/v1/operations/{a['id']}?wait=60", auth) for _, a in accepted))
    states = {(end["state"], (end.get("receipt") or {}).get("receipt", {}).get("id")) for _, end in ends}
    assert len(states) == 1, states  # one truthful answer for every request
    state, receipt_id = states.pop()
    assert state == "recorded" and receipt_id
    assert (await _balance(devnet, dave.fin_id))["available"] == str(int(before) + 3)  # moved once


# -- 9. slow clients, declared sizes, floods --------------------------------------------------------------------------
async def test_slow_clients_are_cut_off_and_declared_sizes_refused_at_once(devnet: Devnet) -> None:
    rest, auth = devnet.api("bank-a")
    adapter, token = devnet.adapter
    for base in (rest, adapter):
        host, port = base.removeprefix("http://").split("/")[0].split(":")
        with socket.create_connection((host, int(port)), timeout=20) as slow:
            slow.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")  # and never the end of the headers
            slow.settimeout(20)
            assert slow.recv(100) == b"", f"{base} kept a stalled request open"  # closed by the server
    gov = devnet.node("gov-1")["address"].removeprefix("https://").split(":")
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((gov[0], int(gov[1])), timeout=20) as raw, context.wrap_socket(raw) as tls:
        tls.sendall(b"POST /finp2p/v1/envelope HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        tls.settimeout(20)
        answer = tls.recv(4096)  # the body never comes: answered 408 (or closed), not held for ever
        assert answer == b"" or b" 408 " in answer.split(b"\r\n")[0]
    for url, headers in (
        (f"{rest}/v1/consent", auth),
        (f"{adapter}/assets/create", {"Authorization": f"Bearer {token}", "Idempotency-Key": "big"}),
    ):
        host, port = url.removeprefix("http://").split("/")[0].split(":")
        path = "/" + url.removeprefix("http://").split("/", 1)[1]
        with socket.create_connection((host, int(port)), timeout=10) as s:
            head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {10 * 1024**3}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            s.sendall(head.encode())
            s.settimeout(10)
            assert s.recv(100).startswith(b"HTTP/1.1 413"), url  # at once: nothing of the body was sent
    await _still_serving(devnet, "gov-1", "bank-a", "bank-c")


async def test_registrations_from_one_address_are_limited(devnet: Devnet, tmp_path: Path) -> None:
    codes = []
    for n in range(10):
        r = _register(devnet, tmp_path / f"n{n}", f"flood-{n}")
        codes.append("FP2107" if "FP2107" in (r.stdout + r.stderr) else str(r.returncode))
    assert codes[0] != "FP2107" and "FP2107" in codes, codes  # a few are taken, the flood is not
    await _still_serving(devnet, "gov-1")


async def test_connections_per_client_are_bounded(tmp_path: Path) -> None:
    adapter = AdapterProcess(tmp_path / "a", env={"FINP2P_LIMITS__CONNECTIONS_PER_CLIENT": "4"}).start()
    try:
        host, port = adapter.url.removeprefix("http://").split("/")[0].split(":")
        held = [socket.create_connection((host, int(port)), timeout=5) for _ in range(4)]
        extra = socket.create_connection((host, int(port)), timeout=5)
        extra.settimeout(5)
        assert extra.recv(10) == b""  # closed as it opened: four are open from this address already
        extra.close()
        for s in held:
            s.close()
        await asyncio.sleep(0.2)
        assert (await _get(f"{adapter.url}/health"))[0] == 200
    finally:
        adapter.stop()


# -- 10. files --------------------------------------------------------------------------------------------------------
def _open_to_others(root: Path) -> list[str]:
    return [
        f"{p} {stat.filemode(p.stat().st_mode)}"
        for p in [root, *root.rglob("*")]
        if not p.is_symlink() and p.stat().st_mode & 0o077
    ]


def test_data_directories_and_their_files_are_private_from_the_start(devnet: Devnet, tmp_path: Path) -> None:
    net = tmp_path / "net"
    assert (
        run_cli(
            "network",
            "init",
            str(net),
            "--network-id",
            "modes",
            "--devnet",
            "--governance",
            f"gov-1=127.0.0.1:{free_port()}",
        ).returncode
        == 0
    )
    assert _open_to_others(net / "governance" / "gov-1" / "data") == []
    assert _open_to_others(net / "founding") == []
    config = tmp_path / "bank" / "node.toml"
    assert run_cli("config", "init", str(config), "--name", "bank").returncode == 0
    assert stat.S_IMODE(config.stat().st_mode) & 0o077 == 0
    for name in ("gov-1", "bank-a", "bank-b", "bank-c"):  # started nodes, as devnet up left them
        data = Path(devnet.node(name)["config"]).parent / "data"
        assert _open_to_others(data) == [], name
    assert stat.S_IMODE((devnet.root / "devnet.json").stat().st_mode) == 0o600  # it holds API tokens
    assert _open_to_others(devnet.root / "users") == []
    assert stat.S_IMODE(Path(devnet.state["commands"]["bank-b"]["env_file"]).stat().st_mode) == 0o600


# -- 10. restarts (last: they replace bank-b's process) -------------------------------------------------------------
async def test_a_killed_node_is_restarted_with_its_recorded_command_and_keeps_its_state(devnet: Devnet) -> None:
    """`finp2p devnet kill` SIGKILLs a node by the PID devnet.json keeps; `restart` starts it again with the same
    command line, directory and environment, and it serves what it served before: its users, its operations."""
    url, auth = devnet.api("bank-b")
    old_pid = devnet.pid("bank-b")
    status, before = await _get(f"{url}/v1/data/bank-b:101:carol", auth)
    assert status == 200, before
    killed = run_cli("devnet", "kill", "bank-b", "--dir", str(devnet.root), "--json")
    assert killed.returncode == 0, killed.stderr
    assert json.loads(killed.stdout) == {"name": "bank-b", "pid": old_pid, "was_running": True}
    assert not devnet.alive("bank-b")
    with pytest.raises(aiohttp.ClientConnectionError):
        await _get(f"{url}/v1/data/bank-b:101:carol", auth)
    restarted = run_cli("devnet", "restart", "bank-b", "--dir", str(devnet.root), "--json", timeout=120)
    assert restarted.returncode == 0, restarted.stderr
    done = json.loads(restarted.stdout)
    devnet.state = {**devnet.state, **json.loads((devnet.root / "devnet.json").read_text())}
    assert done["pid"] == devnet.pid("bank-b") != old_pid and devnet.alive("bank-b")
    status, after = await _get(f"{url}/v1/data/bank-b:101:carol", auth)
    assert status == 200 and after == before
    carol = devnet.user("carol").fin_id  # asked of bank-a: the restarted node is back on the network
    status, balance = await _get(f"{url}/v1/balances?asset_id={devnet.state['asset_id']}&fin_id={carol}", auth)
    assert status == 200 and int(balance["available"]) >= 0, balance
    for name, why in (("bank-z", "has no process 'bank-z'"),):
        refused = run_cli("devnet", "restart", name, "--dir", str(devnet.root))
        assert refused.returncode == 1 and why in refused.stderr, refused.stderr
    nowhere = run_cli("devnet", "kill", "bank-b", "--dir", str(devnet.root / "none"))
    assert nowhere.returncode == 1 and "devnet up" in nowhere.stderr, nowhere.stderr
