"""The REST API server (aiohttp). Every route but ``/openapi.json`` and ``/v1/health`` needs a bearer token; errors
are JSON with the FinP2P code, title, detail and hint, and an HTTP status that fits the code."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from finp2p import __version__
from finp2p.api import assets_api, tokens
from finp2p.api.assets_api import MAX_BODY, AssetRoutes
from finp2p.assets.service import AssetService
from finp2p.edge import http
from finp2p.edge.identifiers import ORG_ID, TOKEN
from finp2p.edge.limits import DEFAULT_LIMITS, ServerLimits
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.network.idempotency import IdempotencyStore
from finp2p.privacy import records, sharing
from finp2p.privacy.acl import AclBackend
from finp2p.resource_id import ResourceId
from finp2p.stack import NetworkStack
from finp2p.store import Store

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "title", "detail", "hint"],
            "properties": {
                "code": {"type": "string", "pattern": "^FP[0-9]{4}$"},
                "title": {"type": "string"},
                "detail": {"type": "string"},
                "hint": {"type": "string"},
            },
        }
    },
}
RECORD_SCHEMA = {
    "type": "object",
    "required": ["resource_id", "owner", "kind", "version", "data", "replica"],
    "properties": {
        "resource_id": {"type": "string"},
        "owner": {"type": "string"},
        "kind": {"type": "string", "enum": ["user", "asset", "other"]},
        "version": {"type": "integer", "minimum": 1},
        "data": {"type": "object"},
        "replica": {"type": "boolean"},
    },
}

ORG_ID_SCHEMA = {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{1,62}$"}
SHARE_SCHEMA = {
    "type": "object",
    "required": ["org_id"],
    "properties": {"org_id": ORG_ID_SCHEMA, "push": {"type": "boolean", "default": False}},
    "additionalProperties": False,
}
UNSHARE_SCHEMA = {
    "type": "object",
    "required": ["org_id"],
    "properties": {"org_id": ORG_ID_SCHEMA},
    "additionalProperties": False,
}
SHARED = {
    "type": "object",
    "required": ["resource_id", "org_id"],
    "properties": {
        "resource_id": {"type": "string"},
        "org_id": {"type": "string"},
        "mode": {"type": "string", "enum": ["pull", "push"]},
        "withdrawn": {"type": "boolean"},
        "push_stopped": {"type": "boolean"},
        "replica_deleted": {"type": "boolean"},
    },
}


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(s): {"description": "a FinP2P error", "content": {"application/json": {"schema": ERROR_SCHEMA}}}
        for s in statuses
    }


def _access_route(
    rid: dict[str, Any], operation_id: str, description: str, body: dict[str, Any], answer: str
) -> dict[str, Any]:
    """A route that grants or withdraws another organization's access to one of this organization's records."""
    return {
        "post": {
            "operationId": operation_id,
            "parameters": [rid, assets_api.IDEMPOTENCY_KEY],
            "description": description,
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {
                "200": {"description": answer, "content": {"application/json": {"schema": SHARED}}},
                **_errors(400, 401, 403, 404, 409, 502, 504),
            },
        }
    }


def openapi() -> dict[str, Any]:
    rid = {
        "name": "resource_id",
        "in": "path",
        "required": True,
        "schema": {
            "type": "string",
            "pattern": "^[a-z0-9][a-z0-9._-]{1,62}:[0-9]{3}:[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$",
        },
        "description": "<orgId>:<type>:<id> (101 user, 102 asset)",
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "FinP2P node API", "version": __version__},
        "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
        "security": [{"token": []}],
        "paths": {
            "/v1/health": {
                "get": {
                    "operationId": "health",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "the node serves",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["status"],
                                        "properties": {"status": {"type": "string"}, "org_id": {"type": "string"}},
                                    }
                                }
                            },
                        }
                    },
                }
            },
            "/v1/data/{resource_id}": {
                "get": {
                    "operationId": "getPrivateData",
                    "parameters": [rid],
                    "description": "This node's own record, a pushed replica, or else a private data request to "
                    "the owner, checked there in full.",
                    "responses": {
                        "200": {
                            "description": "the record",
                            "content": {"application/json": {"schema": RECORD_SCHEMA}},
                        },
                        **_errors(400, 401, 403, 404, 502, 504),
                    },
                },
                "put": {
                    "operationId": "putPrivateData",
                    "parameters": [rid, assets_api.IDEMPOTENCY_KEY],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {
                        "200": {
                            "description": "the new version",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["resource_id", "version"],
                                        "properties": {
                                            "resource_id": {"type": "string"},
                                            "version": {"type": "integer"},
                                        },
                                    }
                                }
                            },
                        },
                        **_errors(400, 401, 403, 409),
                    },
                },
            },
            "/v1/data/{resource_id}/share": _access_route(
                rid,
                "shareData",
                "Let another organization read one of this organization's records: by pull (it is told, then asks, "
                "each request checked) or by push (it keeps a replica that follows updates).",
                SHARE_SCHEMA,
                "access granted",
            ),
            "/v1/data/{resource_id}/unshare": _access_route(
                rid,
                "unshareData",
                "Withdraw an organization's access: effective on its next request; pushes stop; it is asked to "
                "delete its replica.",
                UNSHARE_SCHEMA,
                "access withdrawn",
            ),
            **assets_api.paths(_errors),
        },
    }


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(err: FinP2PError, status: int | None = None) -> web.StreamResponse:
    status = status or err.code.status
    response = web.json_response({"error": err.to_dict()}, status=status)
    return http.closing(response) if http.closes_connection(err) else response


class Api:
    def __init__(self, store: Store, acl: AclBackend, stack: NetworkStack, assets: AssetService | None = None) -> None:
        self.assets = assets
        self.idempotency = IdempotencyStore(store)
        self.store = store
        self.acl = acl
        self.stack = stack
        self._runner: web.AppRunner | None = None
        self.address = ""

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        owner = None
        if request.path not in ("/openapi.json", "/v1/health"):
            header = request.headers.get("Authorization", "")
            token = header[7:] if header.startswith("Bearer ") else ""
            owner = await self.store.run(lambda s: tokens.owner_of(s, token)) if token else None
            if owner is None:
                err = FinP2PError(ErrorCode.API_UNAUTHORIZED, "missing or unknown bearer token")
                response = error_response(err, 401)
                return http.closing(response) if request.can_read_body else response
        try:
            key = request.headers.get("Idempotency-Key")
            # Operations keep their own idempotency (a retry sees the operation as it is now, receipt included).
            if key and request.method in ("POST", "PUT") and request.path != "/v1/operations":
                return await self._once(request, handler, f"api:{owner}", key)
            return await handler(request)
        except FinP2PError as err:
            return error_response(err)

    async def _once(self, request: web.Request, handler: Handler, sender: str, key: str) -> web.StreamResponse:
        """Run a mutating call once per Idempotency-Key: a retry gets the first answer, status and body."""
        TOKEN.check(key, "the Idempotency-Key")
        body = await http.read_body(request, max_bytes=MAX_BODY)
        what = {"method": request.method, "path": request.path_qs, "body": body.decode("utf-8", "replace")}
        claim = await self.idempotency.claim(sender, key, "rest", what)
        if claim.reply is not None:
            return web.json_response(claim.reply["body"], status=int(claim.reply["status"]))
        try:
            response = await handler(request)
        except FinP2PError as err:
            response = error_response(err)
        text = getattr(response, "text", None) or "null"
        await self.idempotency.finish(sender, key, {"status": response.status, "body": json.loads(text)})
        return response

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "org_id": self.stack.identity.org_id})

    async def _openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi())

    async def _get_data(self, request: web.Request) -> web.Response:
        resource_id = request.match_info["resource_id"]
        row = await self.store.run(lambda s: records.get(s, resource_id))
        if row is not None:
            return web.json_response(records.as_answer(row))
        assert self.stack.discovery is not None
        return web.json_response(await sharing.fetch(self.stack.messenger, self.stack.discovery, resource_id))

    async def _put_data(self, request: web.Request) -> web.Response:
        resource_id = request.match_info["resource_id"]
        body = await http.json_body(request, max_bytes=MAX_BODY)
        version = await sharing.update(self.store, self.acl, str(self.stack.identity.org_id), resource_id, body)
        return web.json_response({"resource_id": resource_id, "version": version})

    async def _share(self, request: web.Request) -> web.Response:
        """What ``finp2p data share`` does, for the organization's own applications."""
        resource_id = request.match_info["resource_id"]
        body = _access_body(await http.json_body(request, max_bytes=MAX_BODY), {"org_id", "push"})
        push = body.get("push", False)
        if not isinstance(push, bool):
            raise FinP2PError(ErrorCode.OPERATION_INVALID, "push must be true (a replica) or false (by pull)")
        assert self.stack.discovery is not None
        answer = await sharing.share(
            self.store, self.acl, self.stack.messenger, self.stack.discovery, resource_id, body["org_id"], push=push
        )
        return web.json_response({k: answer[k] for k in ("resource_id", "org_id", "mode")})

    async def _unshare(self, request: web.Request) -> web.Response:
        """What ``finp2p data unshare`` does, for the organization's own applications."""
        resource_id = request.match_info["resource_id"]
        body = _access_body(await http.json_body(request, max_bytes=MAX_BODY), {"org_id"})
        assert self.stack.discovery is not None
        owner = str(self.stack.identity.org_id)
        if ResourceId.parse(resource_id).org_id != owner:
            raise FinP2PError(ErrorCode.ACL_DENIED, f"{resource_id} belongs to another organization")
        return web.json_response(
            await sharing.unshare(
                self.store, self.acl, self.stack.messenger, self.stack.discovery, resource_id, body["org_id"]
            )
        )

    async def start(self, host: str, port: int, limits: ServerLimits = DEFAULT_LIMITS) -> str:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY)
        app.router.add_get("/openapi.json", self._openapi)
        app.router.add_get("/v1/health", self._health)
        app.router.add_get("/v1/data/{resource_id}", self._get_data)
        app.router.add_put("/v1/data/{resource_id}", self._put_data)
        app.router.add_post("/v1/data/{resource_id}/share", self._share)
        app.router.add_post("/v1/data/{resource_id}/unshare", self._unshare)
        if self.assets is not None:
            AssetRoutes(self.assets, self.store, self.acl, str(self.stack.identity.org_id)).add_to(app)
        self._runner = http.runner(app, limits)
        await self._runner.setup()
        bound = await http.serve(self._runner, host, port, limits=limits)
        self.address = f"http://{host}:{bound}"
        return self.address

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _access_body(body: Any, fields: set[str]) -> dict[str, Any]:
    """A share or unshare request: an object with a well-formed ``org_id`` and nothing it does not know."""
    if not isinstance(body, dict):
        raise FinP2PError(ErrorCode.OPERATION_INVALID, 'the body is a JSON object: {"org_id": "bank-b"}')
    unknown = sorted(set(body) - fields)
    if unknown:
        raise FinP2PError(ErrorCode.OPERATION_INVALID, f"unknown fields {', '.join(unknown)[:200]}")
    ORG_ID.check(body.get("org_id"), "org_id")
    return body
