"""The ledger-adapter HTTP server (aiohttp): the routes of FinP2P's ``dlt-adapter-api.yaml`` and ``mapping-api.yaml``
under one base path (``/api`` by default), with the OpenAPI document at ``<base>/openapi.json``.

HTTP errors are for requests this server cannot take (a body that does not match its schema, a missing
``Idempotency-Key``, a key reused for another body, an unknown cid or transaction); they are JSON
``{"error": sentence, "code": "FPxxxx"}``. Business failures (a bad signature, an insufficient balance, a ledger's
refusal) are operation results with ``isCompleted`` and an ``error``, as the spec defines.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from finp2p.adapter import auth, openapi, schemas
from finp2p.adapter.service import AdapterService
from finp2p.adapter.translate import RECEIPT_OPERATIONS
from finp2p.edge import http
from finp2p.edge.bearer import BearerCheck
from finp2p.edge.limits import DEFAULT_LIMITS, ServerLimits
from finp2p.edge.numbers import parse_seconds
from finp2p.errors import ErrorCode, FinP2PError

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024
#: How long ``GET /operations/status/{cid}?wait=S`` may hold a request (an extension: the spec polls).
MAX_WAIT_S = 30.0
#: Route (after the base path) -> the operation it submits, for the routes that take an Idempotency-Key.
OPERATION_ROUTES = {
    "/assets/create": "createAsset",
    **{f"/assets/{name}": name for name in RECEIPT_OPERATIONS if name != "payout"},
    "/payments/payout": "payout",
    "/payments/depositInstruction": "deposit",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(exc: FinP2PError) -> web.StreamResponse:
    status = exc.code.status
    body = {"error": f"{exc.code.title}: {exc.detail}. {exc.code.hint}", "code": exc.code.code}
    response = web.json_response(body, status=status)
    return http.closing(response) if http.closes_connection(exc) else response


class AdapterApp:
    """The routes over one :class:`AdapterService`. Every route but health and the OpenAPI document needs
    ``Authorization: Bearer <token>``; without a token it serves only when ``insecure_no_auth`` says so, and only
    on a loopback address (:mod:`finp2p.adapter.auth`)."""

    def __init__(
        self,
        service: AdapterService,
        *,
        token: str | None,
        base_path: str = "/api",
        insecure_no_auth: bool = False,
        limits: ServerLimits = DEFAULT_LIMITS,
    ) -> None:
        if token is None and not insecure_no_auth:
            raise FinP2PError(ErrorCode.CONFIG_VALUE, "the ledger-adapter API needs a bearer token")
        self.service = service
        self.base = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self._bearer = BearerCheck(token) if token is not None else None
        self.limits = limits
        self._runner: web.AppRunner | None = None
        self.url = ""

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._guard])
        b = self.base
        for path, operation in OPERATION_ROUTES.items():
            app.router.add_post(b + path, self._operation_handler(operation))
        app.router.add_get(b + "/assets/receipts/{transactionId}", self.get_receipt)
        app.router.add_get(b + "/operations/status/{cid}", self.get_status)
        app.router.add_post(b + "/assets/getBalance", self.get_balance)
        app.router.add_post(b + "/asset/balance", self.balance_info)
        app.router.add_post(b + "/plan/approve", self.approve_plan)
        app.router.add_post(b + "/plan/proposal", self.plan_proposal)
        app.router.add_post(b + "/plan/proposal/status", self.plan_proposal_status)
        app.router.add_get(b + "/health", self.health)
        app.router.add_post(b + "/mapping/owners", self.create_owner_mapping)
        app.router.add_get(b + "/mapping/owners", self.get_owner_mappings)
        app.router.add_get(b + "/mapping/fields", self.mapping_fields)
        app.router.add_get(b + "/openapi.json", self.document)
        return app

    async def start(self, host: str, port: int) -> str:
        if self._bearer is None:
            auth.require_token(None, insecure_no_auth=True, host=host)  # loopback only
        self._runner = http.runner(self.application(), self.limits)
        await self._runner.setup()
        bound = await http.serve(self._runner, host, port, limits=self.limits)
        self.url = f"http://{host}:{bound}{self.base}"
        if self._bearer is None:
            log.warning(auth.INSECURE_WARNING, self.url)
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- the edge ------------------------------------------------------------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        open_routes = (self.base + "/health", self.base + "/openapi.json")
        guarded = self._bearer is not None and request.path not in open_routes
        if guarded and not self._bearer.allows(request.headers.get("Authorization")):  # type: ignore[union-attr]
            err = FinP2PError(ErrorCode.API_UNAUTHORIZED, "missing or wrong bearer token")
            return http.closing(error_response(err)) if request.can_read_body else error_response(err)
        try:
            return await handler(request)
        except FinP2PError as exc:
            return error_response(exc)

    async def _body(self, request: web.Request, schema: str) -> dict[str, Any]:
        try:
            body = await http.json_body(request, max_bytes=MAX_BODY)
        except FinP2PError as exc:
            if exc.code is not ErrorCode.MALFORMED:
                raise
            raise FinP2PError(ErrorCode.OPERATION_INVALID, exc.detail) from None
        return schemas.check(schema, body)

    # -- operations ----------------------------------------------------------------------------------------------
    def _operation_handler(self, operation: str) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            key = request.headers.get("Idempotency-Key", "").strip()
            if not key or len(key) > 200:
                raise FinP2PError(
                    ErrorCode.OPERATION_INVALID,
                    "the Idempotency-Key header is missing or over 200 characters: send a fresh key with each new "
                    "operation and the same key with its retries",
                )
            body = await self._body(request, operation)
            return web.json_response(await self.service.submit(operation, body, key))

        return handle

    async def get_status(self, request: web.Request) -> web.StreamResponse:
        wait = parse_seconds(request.query.get("wait", "0"), "wait", maximum=MAX_WAIT_S)
        status = await self.service.status(request.match_info["cid"], wait)
        if status is None:
            raise FinP2PError(ErrorCode.NOT_FOUND, f"no operation has cid {request.match_info['cid']!r}")
        return web.json_response(status)

    async def get_receipt(self, request: web.Request) -> web.StreamResponse:
        tx_id = request.match_info["transactionId"]
        found = await self.service.receipt(tx_id)
        if found is None:
            raise FinP2PError(ErrorCode.NOT_FOUND, f"the ledger has no transaction {tx_id!r}")
        return web.json_response(found)

    async def get_balance(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, "getBalance")
        owner = body["owner"]
        balance = await self.service.balance(owner["asset"], owner["finId"])
        # The units the owner can spend: what a router asks before it moves them (held units are not).
        return web.json_response({"asset": owner["asset"], "balance": str(balance.available)})

    async def balance_info(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, "balance")
        balance = await self.service.balance(body["asset"], body["account"]["finId"], body.get("marker"))
        info = {
            "asset": body["asset"],
            "current": str(balance.available + balance.held),
            "available": str(balance.available),
            "held": str(balance.held),
        }
        return web.json_response({"account": body["account"], "asset": body["asset"], "balanceInfo": info})

    # -- execution plans -----------------------------------------------------------------------------------------
    async def approve_plan(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, "approvePlan")
        return web.json_response(await self.service.approve_plan(body["executionPlan"]["id"]))

    async def plan_proposal(self, request: web.Request) -> web.StreamResponse:
        plan = (await self._body(request, "planProposal"))["executionPlan"]
        return web.json_response(await self.service.plan_proposal(plan["id"], plan["proposal"]))

    async def plan_proposal_status(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, "planProposalStatus")
        plan = body["request"]["executionPlan"]
        await self.service.plan_proposal_status(plan["id"], plan["proposal"], body["status"])
        return web.Response(status=204)

    async def health(self, request: web.Request) -> web.StreamResponse:
        if await self.service.healthy():
            return web.json_response({"status": "ok"})
        return web.json_response({"status": "unavailable"}, status=503)

    # -- account mapping -----------------------------------------------------------------------------------------
    async def create_owner_mapping(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, "createOwnerMapping")
        mapped = await self.service.map_owner(body["finId"], body["accountMappings"], body.get("status", "active"))
        return web.json_response(mapped)

    async def get_owner_mappings(self, request: web.Request) -> web.StreamResponse:
        given = request.query.get("finIds")
        fin_ids = [f.strip() for f in given.split(",") if f.strip()] if given is not None else None
        return web.json_response(await self.service.owners(fin_ids))

    async def mapping_fields(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.service.ledger.account_fields())

    async def document(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(openapi.document(self.base))
