"""The ledger-adapter API's request and response schemas, as this server serves and checks them.

The names, fields and shapes are those of FinP2P's ``dlt-adapter-api.yaml`` and ``mapping-api.yaml``, written here
as plain JSON Schema (no ``$ref``, no discriminators) so one definition both documents the API (``openapi.json``)
and validates every request body (a body that does not match is HTTP 400 naming the field). Where the spec leaves a
value free and this server needs it exact, the schema is stricter and says so: a FinID is 33 compressed bytes, a
quantity a decimal number. Where routers send what the spec's letter does not allow and no one's units are at
stake, it is looser and says so: an asset id may be a payment asset's code.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs

from finp2p.errors import ErrorCode, FinP2PError

Schema = dict[str, Any]

TEXT: Schema = {"type": "string", "minLength": 1, "pattern": r"\S"}
FIN_ID: Schema = {
    "type": "string",
    "pattern": "^0[23][0-9a-f]{64}$",
    "description": "hex of a compressed secp256k1 public key (33 bytes)",
}
QUANTITY: Schema = {
    "type": "string",
    "pattern": r"^[0-9]{1,60}(\.[0-9]{1,30})?$",
    "description": "how many units, in the asset's smallest unit (a whole number on this server's ledgers)",
}
NONCE: Schema = {
    "type": "string",
    "maxLength": 1024,
    "description": "hex: 24 random bytes and an 8-byte epoch timestamp",
}
#: An asset id is opaque here: a FinP2P id (``<org>:102:<id>``) or a payment asset's code (``USD``, ``USDC``), as
#: routers name them (the spec's pattern allows the first only); printable ASCII without spaces.
ASSET_ID: Schema = {
    "type": "string",
    "pattern": "^[!-~]+$",
    "maxLength": 1024,
    "description": "a FinP2P asset id (<org>:102:<id>), or a currency or token code (USD, USDC)",
}
LEDGER_ASSET_IDENTIFIER: Schema = {
    "type": "object",
    "required": ["assetIdentifierType", "network", "tokenId", "standard"],
    "properties": {
        "assetIdentifierType": {"type": "string", "enum": ["CAIP-19"]},
        "network": TEXT,
        "tokenId": TEXT,
        "standard": TEXT,
    },
}
ASSET: Schema = {
    "type": "object",
    "required": ["resourceId", "ledgerIdentifier"],
    "properties": {"resourceId": ASSET_ID, "ledgerIdentifier": LEDGER_ASSET_IDENTIFIER},
}
ACCOUNT: Schema = {
    "type": "object",
    "required": ["asset", "finId"],
    "properties": {
        "asset": ASSET,
        "finId": FIN_ID,
        "ledgerAccount": {
            "type": "object",
            "required": ["type", "address"],
            "properties": {"type": TEXT, "address": TEXT},
        },
    },
}
FIN_ID_ACCOUNT: Schema = {
    "type": "object",
    "required": ["type", "finId"],
    "properties": {"type": {"type": "string", "enum": ["finId"]}, "finId": FIN_ID},
}
DEPOSIT_PAYOUT_ACCOUNT: Schema = {
    "type": "object",
    "required": ["finId", "account"],
    "properties": {"finId": FIN_ID, "account": FIN_ID_ACCOUNT},
}
HASH_FUNCTION: Schema = {
    "type": "string",
    "enum": ["unspecified", "sha3_256", "sha3-256", "blake2b", "keccak_256", "keccak-256"],
}
HASH_LIST_TEMPLATE: Schema = {
    "type": "object",
    "required": ["type", "hashGroups", "hash"],
    "properties": {
        "type": {"type": "string", "enum": ["hashList"]},
        "hashGroups": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["hash", "fields"],
                "properties": {
                    "hash": {"type": "string"},
                    "fields": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "type", "value"],
                            "properties": {
                                "name": TEXT,
                                "type": {"type": "string", "enum": ["string", "int", "bytes"]},
                                "value": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
        "hash": {"type": "string"},
    },
}
EIP712_TEMPLATE: Schema = {
    "type": "object",
    "required": ["type", "domain", "message", "primaryType", "types", "hash"],
    "properties": {
        "type": {"type": "string", "enum": ["EIP712"]},
        "domain": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "chainId": {"type": "integer", "minimum": 0},
                "verifyingContract": {"type": "string"},
            },
        },
        "message": {"type": "object"},
        "types": {
            "type": "object",
            "properties": {
                "definitions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "fields": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {"name": {"type": "string"}, "type": {"type": "string"}},
                                },
                            },
                        },
                    },
                }
            },
        },
        "primaryType": {"type": "string"},
        "hash": {"type": "string"},
    },
}
SIGNATURE: Schema = {
    "type": "object",
    "description": "the investor's signature; the spec requires it where an investor's units move, and this server "
    "answers its absence as it answers a bad one: an operation result with error code 4",
    "required": ["signature", "template", "hashFunc"],
    "properties": {
        "signature": TEXT,
        "template": {"oneOf": [HASH_LIST_TEMPLATE, EIP712_TEMPLATE]},
        "hashFunc": HASH_FUNCTION,
    },
}
#: The buyer's signature on an issue, or ``{}``: routers send an empty one for the asset manager's own issue (it
#: moves no one's existing units), and a buyer-signed PrimarySale otherwise.
ISSUE_SIGNATURE: Schema = {"anyOf": [{"type": "object", "maxProperties": 0}, SIGNATURE]}
#: What routers send empty when they have none (``settlementRef: ""``, an execution plan id): taken as absent.
MAYBE_TEXT: Schema = {"type": "string", "maxLength": 1024}
EXECUTION_CONTEXT: Schema = {
    "type": "object",
    "required": ["executionPlanId", "instructionSequenceNumber"],
    "properties": {
        "executionPlanId": MAYBE_TEXT,
        "instructionSequenceNumber": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
    },
}
OPERATION_ID: Schema = {**TEXT, "maxLength": 300}  # as long as the store keeps it


def _request(required: list[str], **properties: Schema) -> Schema:
    return {"type": "object", "required": required, "properties": properties}


REQUESTS: dict[str, Schema] = {
    "createAsset": _request(
        ["asset"],
        metadata={"type": "object"},
        asset={"type": "object", "required": ["resourceId"], "properties": {"resourceId": ASSET_ID}},
        ledgerAssetBinding=LEDGER_ASSET_IDENTIFIER,
        name={"type": "string", "pattern": "^[a-zA-Z0-9\\-_. /]*$", "minLength": 1, "maxLength": 150},
        issuerId={"type": "string", "pattern": "^[^:].*:101:.+", "maxLength": 150},
        denomination={
            "type": "object",
            "required": ["type", "code"],
            "properties": {
                "type": {"type": "string", "enum": ["finp2p", "fiat", "cryptocurrency"]},
                "code": {"type": "string", "pattern": "^[a-zA-Z0-9][a-zA-Z0-9.\\-]*$", "maxLength": 150},
            },
        },
    ),
    "issue": _request(
        ["nonce", "destination", "quantity", "settlementRef"],
        nonce=NONCE,
        destination=ACCOUNT,
        quantity=QUANTITY,
        settlementRef=MAYBE_TEXT,
        signature=ISSUE_SIGNATURE,
        executionContext=EXECUTION_CONTEXT,
    ),
    "transfer": _request(
        ["nonce", "source", "destination", "quantity", "settlementRef"],
        nonce=NONCE,
        source=ACCOUNT,
        destination=ACCOUNT,
        quantity=QUANTITY,
        settlementRef=MAYBE_TEXT,
        signature=SIGNATURE,
        executionContext=EXECUTION_CONTEXT,
    ),
    "redeem": _request(
        ["nonce", "source", "quantity", "settlementRef"],
        nonce=NONCE,
        operationId=OPERATION_ID,
        source=ACCOUNT,
        quantity=QUANTITY,
        settlementRef=MAYBE_TEXT,
        signature=SIGNATURE,
        executionContext=EXECUTION_CONTEXT,
    ),
    "hold": _request(
        ["nonce", "operationId", "source", "quantity", "expiry"],
        nonce=NONCE,
        operationId=OPERATION_ID,
        source=ACCOUNT,
        destination=ACCOUNT,
        quantity=QUANTITY,
        expiry={"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
        signature=SIGNATURE,
        executionContext=EXECUTION_CONTEXT,
    ),
    "release": _request(
        ["operationId", "source", "destination", "quantity"],
        operationId=OPERATION_ID,
        source=ACCOUNT,
        destination=ACCOUNT,
        quantity=QUANTITY,
        executionContext=EXECUTION_CONTEXT,
    ),
    "rollback": _request(
        ["operationId", "source", "quantity"],
        operationId=OPERATION_ID,
        source=ACCOUNT,
        quantity=QUANTITY,
        executionContext=EXECUTION_CONTEXT,
    ),
    "payout": _request(
        ["source", "quantity", "asset"],
        source=DEPOSIT_PAYOUT_ACCOUNT,
        destination=DEPOSIT_PAYOUT_ACCOUNT,
        quantity=QUANTITY,
        payoutInstruction={"type": "object", "required": ["description"], "properties": {"description": TEXT}},
        asset={
            "type": "object",
            "required": ["id", "ledgerIdentifier"],
            "properties": {"id": ASSET_ID, "ledgerIdentifier": LEDGER_ASSET_IDENTIFIER},
        },
        nonce=NONCE,
        signature=SIGNATURE,
    ),
    "deposit": _request(
        ["destination", "owner", "asset"],
        destination=DEPOSIT_PAYOUT_ACCOUNT,
        owner=DEPOSIT_PAYOUT_ACCOUNT,
        asset={
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"type": "string", "enum": ["finp2p", "custom"]}, "resourceId": ASSET_ID},
        },
        amount=QUANTITY,
        details={"type": "object"},
        nonce=NONCE,
        signature=SIGNATURE,
    ),
    "getBalance": _request(["owner"], owner=ACCOUNT),
    "balance": _request(
        ["account", "asset"],
        account=FIN_ID_ACCOUNT,
        asset=ASSET,
        marker={
            "oneOf": [
                {
                    "type": "object",
                    "required": ["type", "timestamp"],
                    "properties": {
                        "type": {"type": "string", "enum": ["timestamp"]},
                        "timestamp": {"type": "integer", "minimum": 0, "maximum": 2**62},
                    },
                },
                {
                    "type": "object",
                    "required": ["type", "blockNumber", "transaction"],
                    "properties": {
                        "type": {"type": "string", "enum": ["transactionBlock"]},
                        "blockNumber": {"type": "integer", "minimum": 0, "maximum": 2**62},
                        "transaction": TEXT,
                    },
                },
            ]
        },
    ),
    "approvePlan": _request(
        ["executionPlan"],
        executionPlan={"type": "object", "required": ["id"], "properties": {"id": OPERATION_ID}},
    ),
}
PROPOSAL: Schema = {
    "oneOf": [
        {
            "type": "object",
            "required": ["proposalType"],
            "properties": {"proposalType": {"type": "string", "enum": ["cancel"]}},
        },
        {
            "type": "object",
            "required": ["proposalType", "proposedSequence"],
            "properties": {
                "proposalType": {"type": "string", "enum": ["reset"]},
                "proposedSequence": {"type": "integer", "minimum": 1, "maximum": 2**32 - 1},
            },
        },
        {
            "type": "object",
            "required": ["proposalType", "instructionSequence"],
            "properties": {
                "proposalType": {"type": "string", "enum": ["instruction"]},
                "instructionSequence": {"type": "integer", "minimum": 1, "maximum": 2**32 - 1},
            },
        },
    ]
}
REQUESTS["planProposal"] = _request(
    ["executionPlan"],
    executionPlan={
        "type": "object",
        "required": ["id", "proposal"],
        "properties": {"id": OPERATION_ID, "proposal": PROPOSAL},
    },
)
REQUESTS["planProposalStatus"] = _request(
    ["status", "request"],
    status={"type": "string", "enum": ["approved", "rejected"]},
    request=REQUESTS["planProposal"],
)
REQUESTS["createOwnerMapping"] = _request(
    ["finId", "accountMappings"],
    # Any hexadecimal string (routers' test owners have short ones), checked by the server with that message.
    finId={"type": "string", "minLength": 1, "maxLength": 256},
    status={"type": "string", "enum": ["active", "inactive"]},
    accountMappings={"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}},
)

# -- responses -----------------------------------------------------------------------------------------------------
OPERATION_METADATA: Schema = {
    "type": "object",
    "properties": {"operationResponseStrategy": {"type": "object", "required": ["type"]}},
}
ERROR_INFO: Schema = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {
            "type": "integer",
            "minimum": 0,
            "description": "1: regulation, 4: signature, otherwise the number of the FinP2P error code (6001 for "
            "FP6001)",
        },
        "message": TEXT,
        "regulationErrorDetails": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["regulationType", "details"],
                "properties": {"regulationType": TEXT, "details": TEXT},
            },
        },
    },
}
RECEIPT: Schema = {
    "type": "object",
    "required": ["id", "quantity", "timestamp", "tradeDetails"],
    "properties": {
        "id": TEXT,
        "quantity": TEXT,
        "timestamp": {"type": "integer"},
        "source": ACCOUNT,
        "destination": ACCOUNT,
        "transactionDetails": {
            "type": "object",
            "required": ["transactionId"],
            "properties": {"transactionId": TEXT, "operationId": TEXT},
        },
        "operationType": {"type": "string", "enum": ["issue", "transfer", "hold", "release", "redeem"]},
        "tradeDetails": {"type": "object", "properties": {"executionContext": EXECUTION_CONTEXT}},
        "proof": {
            "type": "object",
            "required": ["type"],
            "properties": {
                "type": {"type": "string", "enum": ["signatureProofPolicy", "noProofPolicy"]},
                "signature": SIGNATURE,
            },
        },
    },
}


def _operation(response: Schema, error: Schema = ERROR_INFO) -> Schema:
    return {
        "type": "object",
        "required": ["cid", "isCompleted"],
        "properties": {
            "cid": {"type": "string"},
            "isCompleted": {"type": "boolean"},
            "operationMetadata": OPERATION_METADATA,
            "error": error,
            "response": response,
        },
    }


RECEIPT_OPERATION = _operation(RECEIPT)
CREATE_ASSET_OPERATION = _operation(
    {
        "type": "object",
        "required": ["ledgerAssetInfo"],
        "properties": {
            "ledgerAssetInfo": {
                "type": "object",
                "required": ["ledgerIdentifier"],
                "properties": {
                    "ledgerIdentifier": LEDGER_ASSET_IDENTIFIER,
                    "ledgerReference": {
                        "type": "object",
                        "required": ["type", "address"],
                        "properties": {"type": {"type": "string", "enum": ["contractDetails"]}, "address": TEXT},
                    },
                },
            }
        },
    }
)
DEPOSIT_OPERATION = _operation(
    {
        "type": "object",
        "required": ["account"],
        "properties": {
            "account": DEPOSIT_PAYOUT_ACCOUNT,
            "asset": {"type": "object"},
            "description": TEXT,
            "paymentOptions": {"type": "array", "items": {"type": "object"}},
            "operationId": TEXT,
        },
    }
)
APPROVAL_OPERATION: Schema = {
    "type": "object",
    "required": ["cid", "isCompleted"],
    "properties": {
        "cid": {"type": "string"},
        "isCompleted": {"type": "boolean"},
        "approval": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"type": "string", "enum": ["approved", "rejected"]},
                "failure": {"type": "object", "required": ["failureType"]},
            },
        },
    },
}
OPERATION_STATUS: Schema = {
    "type": "object",
    "required": ["type", "operation"],
    "properties": {
        "type": {"type": "string", "enum": ["createAsset", "deposit", "receipt", "approval"]},
        "operation": {"type": "object", "required": ["cid", "isCompleted"]},
    },
}
BALANCE: Schema = {
    "type": "object",
    "required": ["asset", "balance"],
    "properties": {"asset": ASSET, "balance": {"type": "string", "pattern": "^[0-9]+$"}},
}
AMOUNT: Schema = {"type": "string", "pattern": "^[0-9]+$"}
BALANCE_INFO: Schema = {
    "type": "object",
    "required": ["account", "asset"],
    "properties": {
        "account": FIN_ID_ACCOUNT,
        "asset": ASSET,
        "balanceInfo": {
            "type": "object",
            "required": ["asset", "current", "available", "held"],
            "properties": {"asset": ASSET, "current": AMOUNT, "available": AMOUNT, "held": AMOUNT},
        },
    },
}
OWNER_MAPPING: Schema = {
    "type": "object",
    "required": ["finId", "status", "accountMappings"],
    "properties": {
        "finId": {"type": "string"},
        "status": {"type": "string", "enum": ["active", "inactive"]},
        "accountMappings": {"type": "object", "additionalProperties": {"type": "string"}},
        "credentialCid": {"type": "string"},
        "credentialStatus": {"type": "string"},
    },
}
MAPPING_FIELD: Schema = {
    "type": "object",
    "required": ["field", "description", "exampleValue"],
    "properties": {"field": {"type": "string"}, "description": {"type": "string"}, "exampleValue": {"type": "string"}},
}
ERROR: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "what is wrong and what to do"},
        "code": {"type": "string", "pattern": "^FP[0-9]{4}$"},
    },
}
HEALTH: Schema = {"type": "object", "required": ["status"], "properties": {"status": TEXT}}

_VALIDATORS = {name: jsonschema_rs.Draft7Validator(schema) for name, schema in REQUESTS.items()}


def check(name: str, body: Any) -> dict[str, Any]:
    """``body`` when it matches request schema ``name``; FP7010 naming the first field that does not."""
    for error in _VALIDATORS[name].iter_errors(body):
        where = "/".join(str(p) for p in error.instance_path) or "the body"
        raise FinP2PError(ErrorCode.OPERATION_INVALID, f"{where}: {error.message}")
    assert isinstance(body, dict)
    return body
