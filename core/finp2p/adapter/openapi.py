"""The OpenAPI document of the ledger-adapter server: the spec's paths and operation ids over
:mod:`finp2p.adapter.schemas`, with the HTTP errors this server answers."""

from __future__ import annotations

from typing import Any

from finp2p import __version__
from finp2p.adapter import schemas
from finp2p.adapter.schemas import Schema

IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": True,
    "description": "a fresh key per operation (the spec suggests hex of 24 random bytes and an 8-byte timestamp), "
    "the same key with its retries: the first result is returned and the operation never runs twice",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"^[!-~]+$"},
}


def _json(schema: Schema, description: str = "successful operation") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    meaning = {
        400: "the request does not match its schema, or names an asset of another ledger",
        401: "missing or wrong bearer token (when the server has one)",
        404: "not found",
        409: "the Idempotency-Key was used for another request",
        413: "the body is too large",
        503: "the ledger does not answer",
    }
    return {str(s): _json(schemas.ERROR, meaning[s]) for s in statuses}


def _post(
    operation_id: str, request: str, response: Schema, *statuses: int, idempotent: bool = False, summary: str = ""
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "requestBody": {"required": True, "content": {"application/json": {"schema": schemas.REQUESTS[request]}}},
        "responses": {"200": _json(response), **_errors(400, 401, 413, *statuses)},
    }
    if idempotent:
        out["parameters"] = [IDEMPOTENCY_KEY]
        out["responses"].update(_errors(409))
    return out


def document(base: str) -> dict[str, Any]:
    receipt_op = schemas.RECEIPT_OPERATION

    def asset_op(op_id: str, request: str, summary: str) -> dict[str, Any]:
        return {"post": _post(op_id, request, receipt_op, idempotent=True, summary=summary)}

    text_path = {"type": "string", "minLength": 1, "pattern": r"\S"}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "FinP2P ledger adapter",
            "version": __version__,
            "description": "FinP2P's ledger-adapter API (dlt-adapter-api and mapping-api) over this node's ledger "
            "plugins. Operations that reach the ledger answer with a cid and isCompleted false; their result is "
            "polled at /operations/status/{cid} or sent to the router's callback endpoint.",
        },
        "servers": [{"url": base or "/"}],
        "paths": {
            "/assets/create": {
                "post": _post("createAsset", "createAsset", schemas.CREATE_ASSET_OPERATION, idempotent=True)
            },
            "/assets/issue": asset_op("issueAssets", "issue", "issue units to the destination"),
            "/assets/transfer": asset_op("transferAsset", "transfer", "move the source's units, by its signature"),
            "/assets/redeem": asset_op("redeemAssets", "redeem", "destroy units, or the units of a hold"),
            "/assets/hold": asset_op("holdOperation", "hold", "escrow the source's units under an operation id"),
            "/assets/release": asset_op("releaseOperation", "release", "pay held units to the destination"),
            "/assets/rollback": asset_op("rollbackOperation", "rollback", "return held units to the source"),
            "/payments/payout": asset_op("payout", "payout", "transfer to the destination, or redeem without one"),
            "/payments/depositInstruction": {
                "post": _post("depositInstruction", "deposit", schemas.DEPOSIT_OPERATION, idempotent=True)
            },
            "/assets/receipts/{transactionId}": {
                "get": {
                    "operationId": "getReceipt",
                    "parameters": [{"name": "transactionId", "in": "path", "required": True, "schema": text_path}],
                    "responses": {"200": _json(receipt_op), **_errors(401, 404, 503)},
                }
            },
            "/operations/status/{cid}": {
                "get": {
                    "operationId": "getOperation",
                    "parameters": [
                        {"name": "cid", "in": "path", "required": True, "schema": text_path},
                        {
                            "name": "wait",
                            "in": "query",
                            "required": False,
                            "description": "seconds to wait for the result (at most 30); an extension, 0 by default",
                            "schema": {"type": "number", "minimum": 0, "maximum": 30},
                        },
                    ],
                    "responses": {"200": _json(schemas.OPERATION_STATUS), **_errors(400, 401, 404)},
                }
            },
            "/assets/getBalance": {
                "post": {**_post("getAssetBalance", "getBalance", schemas.BALANCE, 404, 503), "deprecated": True}
            },
            "/asset/balance": {"post": _post("GetAssetBalanceInfo", "balance", schemas.BALANCE_INFO, 404, 503)},
            "/plan/approve": {"post": _post("approveExecutionPlan", "approvePlan", schemas.APPROVAL_OPERATION)},
            "/plan/proposal": {"post": _post("executionPlanProposal", "planProposal", schemas.APPROVAL_OPERATION)},
            "/plan/proposal/status": {
                "post": {
                    **_post("executionPlanProposalStatus", "planProposalStatus", {}),
                    "responses": {"204": {"description": "recorded"}, **_errors(400, 401, 413)},
                }
            },
            "/health": {
                "get": {
                    "operationId": "getHealth",
                    "responses": {
                        "200": _json(schemas.HEALTH, "the ledger answers"),
                        "503": _json(schemas.HEALTH, "the ledger does not answer"),
                    },
                }
            },
            "/mapping/owners": {
                "post": {
                    **_post("createOwnerMapping", "createOwnerMapping", schemas.OWNER_MAPPING),
                    "summary": "associate a FinID with its ledger accounts (fields: /mapping/fields)",
                },
                "get": {
                    "operationId": "getOwnerMappings",
                    "parameters": [
                        {
                            "name": "finIds",
                            "in": "query",
                            "required": False,
                            "description": "comma-separated FinIDs",
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": _json({"type": "array", "items": schemas.OWNER_MAPPING}),
                        **_errors(401),
                    },
                },
            },
            "/mapping/fields": {
                "get": {
                    "operationId": "getMappingFields",
                    "responses": {"200": _json({"type": "array", "items": schemas.MAPPING_FIELD}), **_errors(401)},
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "responses": {"200": _json({"type": "object"}, "this document")},
                }
            },
        },
    }
