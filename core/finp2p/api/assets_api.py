"""REST routes for assets, users and asset operations, and their part of the OpenAPI document.

Mutating operations take an ``Idempotency-Key`` header: the same key answers with the same operation (and, once
done, the same receipt) and never runs twice. An operation answers ``202`` with its id at once; poll
``GET /v1/operations/{id}`` until ``state`` is ``recorded`` (its receipt verified and recorded on this
organization's ledger) or ``failed`` (with the error); ``?wait=S`` answers as soon as it ends (long poll).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from finp2p.assets.operations import OperationRequest
from finp2p.assets.service import AssetService
from finp2p.edge import http
from finp2p.edge.identifiers import TOKEN
from finp2p.edge.numbers import parse_count, parse_seconds
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.privacy import sharing
from finp2p.privacy.acl import AclBackend
from finp2p.resource_id import ResourceId
from finp2p.store import Store

#: The longest an operation may ask to be tried for (30 days).
MAX_DEADLINE_S = 30 * 86400
#: The largest body the REST API reads.
MAX_BODY = 256 * 1024


async def _json(request: web.Request) -> dict[str, Any]:
    return await http.json_body(request, max_bytes=MAX_BODY)


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise FinP2PError(ErrorCode.OPERATION_INVALID, f"{name} must be a non-empty string")
    return value


class AssetRoutes:
    def __init__(self, assets: AssetService, store: Store, acl: AclBackend, org_id: str) -> None:
        self.assets = assets
        self.store = store
        self.acl = acl
        self.org_id = org_id

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/v1/assets", self.create_asset)
        app.router.add_get("/v1/assets", self.list_assets)
        app.router.add_post("/v1/users", self.create_user)
        app.router.add_post("/v1/consent", self.consent)
        app.router.add_post("/v1/operations", self.submit)
        app.router.add_get("/v1/operations", self.list_operations)
        app.router.add_get("/v1/operations/{id}", self.status)
        app.router.add_post("/v1/operations/{id}/retry", self.retry)
        app.router.add_post("/v1/operations/{id}/abandon", self.abandon)
        app.router.add_get("/v1/balances", self.balance)
        app.router.add_get("/v1/receipts", self.receipts)
        app.router.add_get("/v1/balances/broadcast", self.balance_broadcast)
        app.router.add_post("/v1/receipts/validate", self.validate_receipt)

    async def create_asset(self, request: web.Request) -> web.Response:
        body = await _json(request)
        name, ledger_id = _text(body, "name"), _text(body, "ledger_id")
        metadata = body.get("metadata", {})
        if not isinstance(metadata, dict):
            raise FinP2PError(ErrorCode.OPERATION_INVALID, "metadata must be an object")
        try:
            ResourceId.parse(f"{self.org_id}:102:{name}")
        except FinP2PError:
            raise FinP2PError(ErrorCode.OPERATION_INVALID, f"{name!r} cannot be an asset's id") from None
        return web.json_response(await self.assets.create_asset(name, ledger_id, metadata), status=201)

    async def list_assets(self, request: web.Request) -> web.Response:
        return web.json_response({"assets": await self.assets.managed()})

    async def create_user(self, request: web.Request) -> web.Response:
        body = await _json(request)
        user_id = _text(body, "user_id")
        info = {k: v for k, v in body.items() if k != "user_id"}
        if "fin_id" not in info:
            raise FinP2PError(ErrorCode.OPERATION_INVALID, "a user needs fin_id, the FinID of the user's key")
        try:
            resource_id = str(ResourceId.parse(f"{self.org_id}:101:{user_id}"))
        except FinP2PError:
            raise FinP2PError(ErrorCode.OPERATION_INVALID, f"{user_id!r} cannot be a user's id") from None
        version = await sharing.update(self.store, self.acl, self.org_id, resource_id, info)
        return web.json_response({"resource_id": resource_id, "version": version}, status=201)

    async def consent(self, request: web.Request) -> web.Response:
        body = await _json(request)
        parsed = OperationRequest.from_body({**body, "consent": None}, consent_required=False)
        kind = body.get("template_type", "EIP712")
        if kind not in ("EIP712", "hashList"):
            raise FinP2PError(ErrorCode.OPERATION_INVALID, "template_type is EIP712 or hashList")
        return web.json_response(await self.assets.queries.consent_template(parsed, str(kind)))

    async def submit(self, request: web.Request) -> web.Response:
        key = TOKEN.check(
            request.headers.get("Idempotency-Key"),
            "the Idempotency-Key header (1-200 printable characters, one per operation)",
            ErrorCode.OPERATION_INVALID,
        )
        body = await _json(request)
        deadline_s = body.get("deadline_s")
        if deadline_s is not None and (
            isinstance(deadline_s, bool)
            or not isinstance(deadline_s, int | float)
            or not 1 <= deadline_s <= MAX_DEADLINE_S
        ):
            raise FinP2PError(
                ErrorCode.OPERATION_INVALID, f"deadline_s is a number of seconds from 1 to {MAX_DEADLINE_S}"
            )
        parsed = OperationRequest.from_body(body)
        return web.json_response(await self.assets.requests.submit(parsed, key, deadline_s), status=202)

    async def list_operations(self, request: web.Request) -> web.Response:
        q = request.query
        state = q.get("state")
        if state is not None and state not in ("pending", "recorded", "failed"):
            raise FinP2PError(ErrorCode.OPERATION_INVALID, "state is pending, recorded or failed")
        stuck = q.get("stuck", "false") in ("1", "true", "yes")
        older = parse_seconds(q.get("older_than_s", "60"), "older_than_s (0 to 2592000)", maximum=30 * 86400)
        limit = parse_count(q.get("limit", "100"), "limit", low=1, high=1000)
        found = await self.assets.requests.list(state=state, stuck=stuck, older_than_s=older, limit=limit)
        return web.json_response({"operations": found})

    async def retry(self, request: web.Request) -> web.Response:
        return web.json_response(await self.assets.requests.retry(request.match_info["id"]))

    async def abandon(self, request: web.Request) -> web.Response:
        return web.json_response(await self.assets.requests.abandon(request.match_info["id"]))

    async def status(self, request: web.Request) -> web.Response:
        op_id = request.match_info["id"]
        wait = parse_seconds(request.query.get("wait", "0"), "wait (seconds to wait for the end, 0 to 60)", maximum=60)
        if wait > 0:
            return web.json_response(await self.assets.requests.wait(op_id, wait))
        return web.json_response(await self.assets.requests.status(op_id))

    async def balance(self, request: web.Request) -> web.Response:
        asset_id, fin_id = request.query.get("asset_id", ""), request.query.get("fin_id", "")
        if not asset_id or not fin_id:
            raise FinP2PError(ErrorCode.OPERATION_INVALID, "give asset_id and fin_id as query parameters")
        try:
            ResourceId.parse(asset_id)
        except FinP2PError:
            raise FinP2PError(ErrorCode.OPERATION_INVALID, f"asset_id {asset_id!r} is not a resource id") from None
        try:
            return web.json_response(await self.assets.queries.balance(asset_id, fin_id))
        except FinP2PError as exc:
            if exc.code is ErrorCode.MALFORMED:
                raise FinP2PError(ErrorCode.OPERATION_INVALID, "fin_id must be a FinID") from None
            raise

    async def balance_broadcast(self, request: web.Request) -> web.Response:
        asset_id, fin_id = request.query.get("asset_id", ""), request.query.get("fin_id", "")
        quorum = _quorum(request.query.get("quorum", "1"))
        try:
            ResourceId.parse(asset_id)
            result = await self.assets.queries.broadcast_balance(asset_id, fin_id, quorum=quorum)
        except FinP2PError as exc:
            if exc.code in (ErrorCode.MALFORMED, ErrorCode.BAD_RESOURCE_ID):
                raise FinP2PError(ErrorCode.OPERATION_INVALID, "give asset_id (a resource id) and fin_id") from None
            raise
        return web.json_response(result.to_dict())

    async def validate_receipt(self, request: web.Request) -> web.Response:
        body = await _json(request)
        bundle = body.get("bundle")
        if not isinstance(bundle, dict):
            raise FinP2PError(ErrorCode.OPERATION_INVALID, "give bundle, a receipt bundle as GET /v1/receipts lists")
        result = await self.assets.queries.validate_receipt(bundle, quorum=_quorum(body.get("quorum", 1)))
        return web.json_response(result.to_dict())

    async def receipts(self, request: web.Request) -> web.Response:
        return web.json_response({"receipts": await self.assets.requests.receipts()})


def _quorum(value: Any) -> int:
    return parse_count(value, "quorum", low=1, high=1000)


# -- OpenAPI -------------------------------------------------------------------------------------------------------
_FIN_ID = {"type": "string", "pattern": "^0[23][0-9a-f]{64}$"}
_OPERATION = {
    "type": "object",
    "required": ["operation", "asset_id", "quantity", "operation_id"],
    "properties": {
        "operation": {"type": "string", "enum": ["issue", "transfer", "redeem", "hold", "release", "rollback"]},
        "asset_id": {"type": "string", "description": "<orgId>:102:<id>"},
        "quantity": {"type": "integer", "minimum": 1},
        "operation_id": {"type": "string", "minLength": 1, "maxLength": 200},
        "deadline_s": {
            "type": "number",
            "minimum": 1,
            "maximum": 2592000,
            "description": "how long to keep trying before the operation ends (default: [operations] deadline_s)",
        },
        "source": _FIN_ID,
        "destination": _FIN_ID,
        "expiry": {"type": "integer", "minimum": 0},
        "source_user": {"type": "string", "description": "<orgId>:101:<id>, for the primary's user query"},
        "template_type": {"type": "string", "enum": ["EIP712", "hashList"], "description": "POST /v1/consent"},
        "destination_user": {"type": "string"},
        "consent": {
            "type": "object",
            "required": ["template", "signer", "signature"],
            "properties": {
                "template": {"type": "string", "enum": ["EIP712", "hashList"]},
                "signer": _FIN_ID,
                "signature": {"type": "string"},
                "payload": {"type": "object"},
                "hashFunc": {"type": "string"},
            },
        },
    },
}
_STATUS = {
    "type": "object",
    "required": ["id", "state", "request"],
    "properties": {
        "id": {"type": "string"},
        "state": {"type": "string", "enum": ["pending", "recorded", "failed"]},
        "request": {"type": "object"},
        "receipt": {"type": "object", "description": "the receipt bundle (finp2p-receipt-bundle/1)"},
        "error": {"type": "object"},
        "created_ms": {"type": "integer"},
        "updated_ms": {"type": "integer"},
        "deadline_ms": {"type": "integer", "description": "when it ends unless it has before"},
        "waiting": {
            "type": "object",
            "description": "while pending: what it waits for, the last transient error, since when, how many "
            "attempts, when the next one is",
        },
    },
}
_OPERATION_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _ok(description: str, schema: dict[str, Any], status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {"application/json": {"schema": schema}}}}


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "a retry with the same key gets the first answer and changes nothing",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}


def paths(errors: Any) -> dict[str, Any]:
    """The OpenAPI paths of these routes; ``errors(*statuses)`` makes the error responses."""
    obj = {"type": "object"}
    return {
        "/v1/assets": {
            "post": {
                "operationId": "createAsset",
                "description": "Create an asset this organization manages on one of its ledgers, and advertise it.",
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": _body(
                    {
                        "type": "object",
                        "required": ["name", "ledger_id"],
                        "properties": {
                            "name": {"type": "string"},
                            "ledger_id": {"type": "string"},
                            "metadata": obj,
                        },
                    }
                ),
                "responses": {**_ok("the asset", obj, "201"), **errors(400, 401, 409, 422, 503)},
            },
            "get": {
                "operationId": "listAssets",
                "responses": {**_ok("the assets this organization manages", obj), **errors(401)},
            },
        },
        "/v1/users": {
            "post": {
                "operationId": "createUser",
                "description": "Record a user (their FinID and information) in this organization's private store.",
                "parameters": [IDEMPOTENCY_KEY],
                "requestBody": _body(
                    {
                        "type": "object",
                        "required": ["user_id", "fin_id", "legal_name"],
                        "properties": {"user_id": {"type": "string"}, "fin_id": _FIN_ID},
                    }
                ),
                "responses": {**_ok("the user's record", obj, "201"), **errors(400, 401, 403, 409)},
            }
        },
        "/v1/consent": {
            "post": {
                "operationId": "consentTemplate",
                "description": "What the source signs for an operation, from the asset's primary node.",
                "requestBody": _body(_OPERATION),
                "responses": {**_ok("ledger id and template", obj), **errors(400, 401, 404, 422, 502, 503, 504)},
            }
        },
        "/v1/operations": {
            "post": {
                "operationId": "submitOperation",
                "parameters": [
                    {"name": "Idempotency-Key", "in": "header", "required": True, "schema": {"type": "string"}}
                ],
                "requestBody": _body(_OPERATION),
                "responses": {**_ok("accepted: poll its status", _STATUS, "202"), **errors(400, 401, 409)},
            },
            "get": {
                "operationId": "listOperations",
                "description": "Operations this node asked for, newest first; stuck=true: pending ones waiting "
                "longer than older_than_s, and those that ended unconfirmed (FP7013, FP7004).",
                "parameters": [
                    {
                        "name": "state",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["pending", "recorded", "failed"]},
                    },
                    {"name": "stuck", "in": "query", "schema": {"type": "boolean"}},
                    {"name": "older_than_s", "in": "query", "schema": {"type": "number", "minimum": 0}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                ],
                "responses": {
                    **_ok(
                        "the operations",
                        {"type": "object", "properties": {"operations": {"type": "array", "items": _STATUS}}},
                    ),
                    **errors(400, 401),
                },
            },
        },
        "/v1/operations/{id}/retry": {
            "post": {
                "operationId": "retryOperation",
                "description": "Ask the primary node again now: a pending operation's next attempt at once, one that "
                "ended unconfirmed (FP7013, FP7004) pending again with a new deadline.",
                "parameters": [_OPERATION_ID],
                "responses": {**_ok("its state now", _STATUS), **errors(401, 404, 409)},
            }
        },
        "/v1/operations/{id}/abandon": {
            "post": {
                "operationId": "abandonOperation",
                "description": "End a pending operation (or one that ended unconfirmed) now, as its deadline would: "
                "the primary node is asked to cancel it, and it ends with what that says.",
                "parameters": [_OPERATION_ID],
                "responses": {**_ok("its state now", _STATUS), **errors(401, 404, 409)},
            }
        },
        "/v1/operations/{id}": {
            "get": {
                "operationId": "operationStatus",
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "wait",
                        "in": "query",
                        "description": "seconds to wait for the operation to end before answering (long poll)",
                        "schema": {"type": "number", "minimum": 0, "maximum": 60},
                    },
                ],
                "responses": {**_ok("its state, and its receipt once done", _STATUS), **errors(400, 401, 404)},
            }
        },
        "/v1/balances": {
            "get": {
                "operationId": "balance",
                "parameters": [
                    {"name": "asset_id", "in": "query", "required": True, "schema": {"type": "string"}},
                    {"name": "fin_id", "in": "query", "required": True, "schema": _FIN_ID},
                ],
                "responses": {**_ok("available and held units", obj), **errors(400, 401, 404, 422, 502, 503, 504)},
            }
        },
        "/v1/balances/broadcast": {
            "get": {
                "operationId": "balanceBroadcast",
                "description": "Ask the nodes serving the asset's ledger for the balance; answers are compared.",
                "parameters": [
                    {"name": "asset_id", "in": "query", "required": True, "schema": {"type": "string"}},
                    {"name": "fin_id", "in": "query", "required": True, "schema": _FIN_ID},
                    {"name": "quorum", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                ],
                "responses": {**_ok("the broadcast's answers and report", obj), **errors(400, 401, 404, 422, 502, 504)},
            }
        },
        "/v1/receipts/validate": {
            "post": {
                "operationId": "validateReceipt",
                "description": "Ask the nodes with access to the receipt's ledger whether its transaction is there.",
                "requestBody": _body(
                    {
                        "type": "object",
                        "required": ["bundle"],
                        "properties": {"bundle": obj, "quorum": {"type": "integer", "minimum": 1}},
                    }
                ),
                "responses": {**_ok("the broadcast's answers and report", obj), **errors(400, 401, 422, 502, 504)},
            }
        },
        "/v1/receipts": {
            "get": {
                "operationId": "receipts",
                "responses": {**_ok("recorded receipt bundles", obj), **errors(401)},
            }
        },
    }
