"""The embedded chain served over JSON-RPC on loopback, so that other processes can use it: other organizations'
nodes on a local network (the demo), an auditor verifying a receipt, ``finp2p ethereum deploy``.

Each request goes through web3's own request pipeline into eth-tester, and the answer is written back in JSON-RPC's
hex form. What is served is what a FinP2P node, a deployment and an auditor need, and nothing that spends the
chain's money or time for a caller:

- no account of the chain is exposed or usable: no ``eth_accounts``, no ``eth_sendTransaction`` and no signing
  method; a transaction is sent by ``eth_sendRawTransaction``, signed by its sender (who pays for it: only the
  accounts the chain's operator chose are funded, when it starts serving, ``fund_accounts``), with a gas limit of
  at most :data:`MAX_TRANSACTION_GAS`;
- ``eth_call`` and ``eth_estimateGas``, free for the caller, run with at most :data:`MAX_GAS` and are answered within
  :data:`CALL_TIMEOUT_S` (the EVM runs on the node's one worker thread: a caller must not stall the node's own
  reads), and at most :data:`MAX_IN_FLIGHT` of them wait at once;
- batches hold at most :data:`MAX_BATCH` calls; bodies are read by the edges' JSON reader (bounded in size and
  depth);
- every request needs the chain's bearer token unless the profile opens the chain explicitly (loopback only).

A revert is answered as nodes answer it (code 3, the revert data in ``data``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from finp2p.edge import http
from finp2p.edge.bearer import BearerCheck
from finp2p.edge.json_input import read_json
from finp2p.edge.limits import DEFAULT_LIMITS, ServerLimits
from finp2p.errors import FinP2PError
from finp2p_ethereum.chain import Chain, Reverted

log = logging.getLogger(__name__)

METHODS = frozenset(
    {
        "eth_chainId",
        "eth_blockNumber",
        "eth_getBalance",
        "eth_getCode",
        "eth_getTransactionCount",
        "eth_getBlockByNumber",
        "eth_getBlockByHash",
        "eth_getTransactionByHash",
        "eth_getTransactionReceipt",
        "eth_getLogs",
        "eth_call",
        "eth_estimateGas",
        "eth_gasPrice",
        "eth_maxPriorityFeePerGas",
        "eth_feeHistory",
        "eth_sendRawTransaction",
        "net_version",
        "web3_clientVersion",
    }
)
#: Calls that run the EVM for the caller.
EXECUTING = frozenset({"eth_call", "eth_estimateGas"})
MAX_BODY = 1 << 20
MAX_BATCH = 20
#: Gas a call or an estimate of a caller may use: FinP2P's operations need under a third of it.
MAX_GAS = 1_000_000
#: Gas a transaction may use: a deployment of FinP2P's contracts needs about half of it.
MAX_TRANSACTION_GAS = 5_000_000
CALL_TIMEOUT_S = 5.0
MAX_IN_FLIGHT = 4
PARSE_ERROR, INVALID_REQUEST, NOT_FOUND, INVALID_PARAMS, LIMIT = -32700, -32600, -32601, -32602, -32005


def to_rpc(value: Any) -> Any:
    """A web3 result in JSON-RPC's form: quantities and byte strings as 0x-hex, structures kept."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return {k: to_rpc(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_rpc(v) for v in value]
    return value


def _error(ident: Any, code: int, message: str, data: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": ident, "error": error}


class ChainServer:
    """Serves ``chain``; ``token``: the bearer token every request needs (``None`` only for a chain opened
    explicitly, which the plugin allows on loopback only)."""

    def __init__(self, chain: Chain, *, token: str | None, limits: ServerLimits = DEFAULT_LIMITS) -> None:
        self.chain = chain
        self._bearer = BearerCheck(token) if token is not None else None
        self.limits = limits
        self._runner: web.AppRunner | None = None
        self._executing = asyncio.Semaphore(MAX_IN_FLIGHT)
        self.url = ""

    async def start(self, host: str, port: int) -> str:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/", self._handle)
        self._runner = http.runner(app, self.limits)
        await self._runner.setup()
        bound = await http.serve(self._runner, host, port, limits=self.limits)
        self.url = f"http://{host}:{bound}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self._bearer is not None and not self._bearer.allows(request.headers.get("Authorization")):
            response = web.json_response(_error(None, INVALID_REQUEST, "a bearer token is needed"), status=401)
            return http.closing(response)
        try:
            call = read_json(await http.read_body(request, max_bytes=MAX_BODY), what="the call", max_bytes=MAX_BODY)
        except FinP2PError as exc:
            code = PARSE_ERROR if "not valid JSON" in exc.detail else INVALID_REQUEST
            return http.closing(web.json_response(_error(None, code, exc.detail)))
        if isinstance(call, list):
            if not 0 < len(call) <= MAX_BATCH:
                return web.json_response(_error(None, INVALID_REQUEST, f"a batch holds 1 to {MAX_BATCH} calls"))
            return web.json_response([await self._one(c) for c in call])
        return web.json_response(await self._one(call))

    async def _one(self, call: Any) -> dict[str, Any]:
        if not isinstance(call, dict):
            return _error(None, INVALID_REQUEST, "invalid request")
        ident, method, params = call.get("id"), call.get("method"), call.get("params") or []
        if method not in METHODS:
            return _error(ident, NOT_FOUND, f"{str(method)[:64]} is not served")
        if not isinstance(params, list):
            return _error(ident, INVALID_PARAMS, "params must be a list")
        try:
            if method in EXECUTING:
                params = _capped(params)
                if self._executing.locked():
                    return _error(ident, LIMIT, "too many calls are running: retry shortly")
                async with self._executing:
                    result = await asyncio.wait_for(self.chain.w3.manager.coro_request(method, params), CALL_TIMEOUT_S)
            else:
                if method == "eth_sendRawTransaction":
                    _check_transaction(params)
                result = await self.chain.w3.manager.coro_request(method, params)
        except Reverted as exc:
            return _error(ident, 3, "execution reverted", "0x" + exc.data.hex())
        except TimeoutError:
            return _error(ident, LIMIT, f"the call did not finish within {CALL_TIMEOUT_S:g} s")
        except ValueError as exc:  # a parameter refused here (gas, a transaction that does not decode)
            return _error(ident, INVALID_PARAMS, str(exc)[:500])
        except Exception as exc:
            log.info("rpc %s failed: %s", method, exc)
            return _error(ident, -32000, str(exc)[:500])
        return {"jsonrpc": "2.0", "id": ident, "result": to_rpc(result)}


def _capped(params: list[Any]) -> list[Any]:
    """A call's parameters with its gas at most :data:`MAX_GAS` (the cap when it names none)."""
    if not params or not isinstance(params[0], dict):
        raise ValueError("the first parameter must be the call object")
    given = params[0].get("gas")
    gas = MAX_GAS
    if given is not None:
        gas = min(_quantity(given), MAX_GAS)
    return [{**params[0], "gas": hex(gas)}, *params[1:]]


def _check_transaction(params: list[Any]) -> None:
    """Refuse a raw transaction whose gas limit is above :data:`MAX_TRANSACTION_GAS` before the EVM runs it."""
    from eth.vm.forks.prague import PragueVM

    if len(params) != 1 or not isinstance(params[0], str):
        raise ValueError("eth_sendRawTransaction takes one 0x-hex transaction")
    try:
        raw = bytes.fromhex(params[0].removeprefix("0x"))
        tx = PragueVM.get_transaction_builder().decode(raw)
    except Exception as exc:  # rlp and py-evm raise many kinds: any of them means it does not decode
        raise ValueError(f"the transaction does not decode: {type(exc).__name__}") from None
    if tx.gas > MAX_TRANSACTION_GAS:
        raise ValueError(f"a transaction may use at most {MAX_TRANSACTION_GAS} gas on this chain, not {tx.gas}")


def _quantity(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.startswith("0x") and 2 < len(value) <= 66:
        return int(value, 16)
    raise ValueError(f"gas {str(value)[:40]!r} is not a quantity")
