"""The embedded chain served over JSON-RPC on loopback, so that other processes can use it: other organizations'
nodes on a local network (the demo), an auditor verifying a receipt, ``finp2p ethereum deploy``.

Each request goes through web3's own request pipeline into eth-tester, and the answer is written back in JSON-RPC's
hex form. Only the methods a FinP2P node, a deployment and an auditor use are served; a revert is answered as
nodes answer it (code 3, the revert data in ``data``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from finp2p_ethereum.chain import Chain, Reverted

log = logging.getLogger(__name__)

METHODS = frozenset(
    {
        "eth_chainId",
        "eth_blockNumber",
        "eth_accounts",
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
        "eth_sendTransaction",
        "net_version",
        "web3_clientVersion",
    }
)
MAX_BODY = 1 << 20


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


class ChainServer:
    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, host: str, port: int) -> str:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound = self._runner.addresses[0][1] if self._runner.addresses else port
        self.url = f"http://{host}:{bound}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            call = json.loads(await request.read())
        except ValueError:
            return web.json_response(
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
            )
        if isinstance(call, list):
            return web.json_response([await self._one(c) for c in call[:100]])
        return web.json_response(await self._one(call))

    async def _one(self, call: Any) -> dict[str, Any]:
        if not isinstance(call, dict):
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid request"}}
        ident, method, params = call.get("id"), call.get("method"), call.get("params") or []
        if method not in METHODS:
            return {"jsonrpc": "2.0", "id": ident, "error": {"code": -32601, "message": f"{method} is not served"}}
        try:
            result = await self.chain.w3.manager.coro_request(method, params)
        except Reverted as exc:
            error = {"code": 3, "message": "execution reverted", "data": "0x" + exc.data.hex()}
            return {"jsonrpc": "2.0", "id": ident, "error": error}
        except Exception as exc:
            log.info("rpc %s failed: %s", method, exc)
            return {"jsonrpc": "2.0", "id": ident, "error": {"code": -32000, "message": str(exc)[:500]}}
        return {"jsonrpc": "2.0", "id": ident, "result": to_rpc(result)}
