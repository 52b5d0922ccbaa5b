"""The two ways to reach a chain: an embedded one in this process, or any node by JSON-RPC.

Both give an ``AsyncWeb3``, so everything above this module is the same code for both. The embedded chain is
eth-tester on py-evm: nothing to start, nothing kept after exit. Its EVM runs on one worker thread, so the event
loop never waits for it, and a revert surfaces as :class:`Reverted` with its raw data (eth-tester's own error
path decodes revert data as a string and loses the custom error).
"""

from __future__ import annotations

import ast
import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
from web3 import AsyncWeb3
from web3.providers.eth_tester import AsyncEthereumTesterProvider
from web3.providers.eth_tester.main import _make_request
from web3.providers.rpc import AsyncHTTPProvider

from finp2p.errors import ErrorCode, FinP2PError

#: Wei given to an operator account on a development chain (the embedded one, a Hardhat node) when it has none.
DEV_FUNDING_WEI = 10 * 10**18
#: The chain id eth-tester gives its chain (an embedded chain's unless its profile says another).
EMBEDDED_CHAIN_ID = 131277322940537


class Reverted(Exception):
    """The EVM reverted; ``data`` is the revert data (a custom error's selector and arguments), maybe empty."""

    def __init__(self, data: bytes) -> None:
        super().__init__(f"execution reverted: 0x{data.hex()}")
        self.data = data


def _raw_revert(exc: BaseException) -> bytes:
    """The revert data inside eth-tester's TransactionFailed: an EVM exception, or the repr of its bytes."""
    first = exc.args[0] if exc.args else b""
    if isinstance(first, BaseException):
        first = first.args[0] if first.args else b""
    if isinstance(first, bytes):
        return first
    if isinstance(first, str) and first[:2] in ("b'", 'b"'):
        value = ast.literal_eval(first)
        if isinstance(value, bytes):
            return value
    return b""


class EmbeddedProvider(AsyncEthereumTesterProvider):
    """eth-tester on py-evm, served on one worker thread, with reverts carrying their data."""

    def __init__(self, chain_id: int | None = None) -> None:
        super().__init__()
        from eth_tester.exceptions import TransactionFailed

        tester = self.ethereum_tester
        self.chain_id = chain_id or EMBEDDED_CHAIN_ID
        if chain_id is not None:
            # py-evm reads the id from the chain's class (each VM's context, every transaction's check), and
            # eth-tester answers eth_chainId with a constant: a subclass, and an answer of ours.
            backend_chain = tester.backend.chain
            backend_chain.__class__ = type("EmbeddedChain", (type(backend_chain),), {"chain_id": chain_id})
        # eth-tester only decodes Error(string) reverts; anything else should come through as raw bytes.
        tester.backend.is_eip838_error = lambda error: False
        endpoints = {namespace: dict(calls) for namespace, calls in self.api_endpoints.items()}
        for name in ("call", "estimateGas"):
            inner = endpoints["eth"][name]

            def wrapped(t: Any, params: Any, _inner: Any = inner) -> Any:
                try:
                    return _inner(t, params)
                except TransactionFailed as exc:
                    raise Reverted(_raw_revert(exc)) from None

            endpoints["eth"][name] = wrapped
        endpoints["eth"]["chainId"] = lambda *_: self.chain_id
        self.api_endpoints = endpoints
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="embedded-evm")

    async def make_request(self, method: Any, params: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._request, method, params)

    def _request(self, method: Any, params: Any) -> Any:
        self._current_request_id += 1
        return _make_request(method, params, self.api_endpoints, self.ethereum_tester, repr(self._current_request_id))

    def time_travel(self, timestamp: int) -> None:
        """Development only: mine the next block at ``timestamp`` (to test hold expiry)."""
        self._executor.submit(self.ethereum_tester.time_travel, timestamp).result()


class Chain:
    """A connection to one chain. ``embedded`` chains are development chains: accounts are funded on demand."""

    def __init__(self, w3: AsyncWeb3[Any], *, embedded: bool, url: str | None = None) -> None:
        # web3's validation middleware asks the node for its chain id before every call and estimate; the plugin
        # sets the chain id of its transactions itself.
        w3.middleware_onion.remove("validation")
        self.w3 = w3
        self.embedded = embedded
        self.url = url
        self.chain_id = 0  # known after connect()
        self._session: aiohttp.ClientSession | None = None

    async def connect(self) -> int:
        """Ask the chain its id (once). A JSON-RPC chain gets a pooled keep-alive session first: web3's default
        opens a new connection for every request, which costs more than most requests."""
        if self._session is None and isinstance(self.w3.provider, AsyncHTTPProvider):
            # Below the 5 s idle timeout common to node servers, so a pooled connection is never one they closed.
            connector = aiohttp.TCPConnector(limit=64, keepalive_timeout=4)
            self._session = aiohttp.ClientSession(raise_for_status=True, connector=connector)
            await self.w3.provider.cache_async_session(self._session)
        if self.chain_id == 0:
            self.chain_id = int(await self.w3.eth.chain_id)
        return self.chain_id

    @property
    def ledger_id(self) -> str:
        return f"eip155:{self.chain_id}"

    async def fund_for_development(self, address: str, minimum_wei: int = DEV_FUNDING_WEI // 10) -> bool:
        """Give ``address`` ether from the node's first unlocked account (Hardhat, eth-tester) when it has less
        than ``minimum_wei``. Returns whether it did; a production node has no unlocked account and nothing
        happens."""
        if await self.w3.eth.get_balance(AsyncWeb3.to_checksum_address(address)) >= minimum_wei:
            return False
        try:
            accounts = await self.w3.eth.accounts
        except Exception:  # a node that exposes no accounts (a served embedded chain refuses eth_accounts)
            return False
        if not accounts:
            return False
        payment: Any = {"from": accounts[0], "to": address, "value": DEV_FUNDING_WEI}
        tx = await self.w3.eth.send_transaction(payment)
        await self.w3.eth.wait_for_transaction_receipt(tx, timeout=30, poll_latency=0.05)
        return True

    async def close(self) -> None:
        if not self.embedded:
            await self.w3.provider.disconnect()
        if self._session is not None:
            await self._session.close()
            self._session = None


_embedded: dict[str, Chain] = {}
_embedded_lock = threading.Lock()


def embedded_chain(name: str = "default", chain_id: int | None = None) -> Chain:
    """The embedded chain called ``name`` in this process (made on first use): ledgers naming the same one share it.
    It presents ``chain_id`` (eth-tester's own by default), so a test network can be the chain a router is
    configured for; FP6016 when the chain of that name was made with another id."""
    with _embedded_lock:
        chain = _embedded.get(name)
        if chain is None:
            chain = _embedded[name] = Chain(AsyncWeb3(EmbeddedProvider(chain_id)), embedded=True)
        provider = chain.w3.provider
        if chain_id is not None and isinstance(provider, EmbeddedProvider) and provider.chain_id != chain_id:
            raise FinP2PError(
                ErrorCode.LEDGER_PROFILE,
                f"the embedded chain {name!r} of this process is chain {provider.chain_id}, not {chain_id}: name "
                "another chain (settings.chain) for another id",
            )
        return chain


def rpc_chain(url: str, *, timeout_s: float = 30.0, token: str | None = None) -> Chain:
    """A chain reached by JSON-RPC over HTTP(S) at ``url``, sending ``token`` as a bearer token when given."""
    kwargs: dict[str, Any] = {"timeout": timeout_s}
    if token is not None:
        kwargs["headers"] = {**AsyncHTTPProvider.get_request_headers(), "Authorization": f"Bearer {token}"}
    return Chain(AsyncWeb3(AsyncHTTPProvider(url, request_kwargs=kwargs)), embedded=False, url=url)
