"""An auditor who never read the project's code: verifies a receipt bundle from ``docs/receipts.md`` alone, with
eth-account, eth-abi, coincurve and plain JSON-RPC calls, importing nothing from the project.

    python tests/independent_auditor.py BUNDLE GENESIS RPC_URL ARTIFACTS_DIR [TOKEN]

Prints one JSON object: each check with ``held`` or why it failed, and whether the project was imported.
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import coincurve
from coincurve.ecdsa import cdata_to_der, deserialize_compact
from eth_abi.abi import decode, encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

# -- docs/receipts.md, "The proof" ---------------------------------------------------------------------------------
RECEIPT_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Source": [{"name": "accountType", "type": "string"}, {"name": "finId", "type": "string"}],
    "Destination": [{"name": "accountType", "type": "string"}, {"name": "finId", "type": "string"}],
    "Asset": [{"name": "assetId", "type": "string"}, {"name": "assetType", "type": "string"}],
    "ExecutionContext": [
        {"name": "executionPlanId", "type": "string"},
        {"name": "instructionSequenceNumber", "type": "string"},
    ],
    "TradeDetails": [{"name": "executionContext", "type": "ExecutionContext"}],
    "TransactionDetails": [{"name": "operationId", "type": "string"}, {"name": "transactionId", "type": "string"}],
    "Receipt": [
        {"name": "id", "type": "string"},
        {"name": "operationType", "type": "string"},
        {"name": "source", "type": "Source"},
        {"name": "destination", "type": "Destination"},
        {"name": "asset", "type": "Asset"},
        {"name": "tradeDetails", "type": "TradeDetails"},
        {"name": "transactionDetails", "type": "TransactionDetails"},
        {"name": "quantity", "type": "string"},
    ],
}


def party(account: dict[str, Any] | None) -> dict[str, str]:
    return {"accountType": "finId", "finId": account["finId"]} if account else {"accountType": "", "finId": ""}


#: The currency codes typed fiat, as docs/receipts.md lists them (the text block after "typed `fiat`").
_DOC = (Path(__file__).resolve().parent.parent / "docs" / "receipts.md").read_text()
CURRENCY_CODES = frozenset(_DOC.split("typed `fiat`", 1)[1].split("```text", 1)[1].split("```", 1)[0].split())


def asset_type(asset_id: str) -> str:
    """docs/receipts.md: finp2p for <org>:102:<id>, fiat for the listed currency codes, cryptocurrency otherwise."""
    if re.fullmatch(r"[^:]+:102:.+", asset_id, re.DOTALL):
        return "finp2p"
    return "fiat" if asset_id in CURRENCY_CODES else "cryptocurrency"


def message_of(receipt: dict[str, Any]) -> dict[str, Any]:
    context = (receipt.get("tradeDetails") or {}).get("executionContext")
    account: dict[str, Any] = receipt.get("source") or receipt["destination"]
    return {
        "id": receipt["id"],
        "operationType": receipt["operationType"],
        "source": party(receipt.get("source")),
        "destination": party(receipt.get("destination")),
        "asset": {"assetId": account["asset"]["resourceId"], "assetType": asset_type(account["asset"]["resourceId"])},
        "tradeDetails": {
            "executionContext": {
                "executionPlanId": context["executionPlanId"] if context else "",
                "instructionSequenceNumber": str(context["instructionSequenceNumber"]) if context else "",
            }
        },
        "transactionDetails": {
            "operationId": receipt["transactionDetails"].get("operationId", ""),
            "transactionId": receipt["id"],
        },
        "quantity": receipt["quantity"],
    }


def address_of(fin_id: str) -> str:
    point = coincurve.PublicKey(bytes.fromhex(fin_id)).format(compressed=False)[1:]
    return to_checksum_address(keccak(point)[-20:])


# -- docs/receipts.md, "Canonical JSON and signatures" --------------------------------------------------------------
def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def verify_signed(fin_id: str, domain: str, value: Any, signature_hex: str) -> bool:
    digest = keccak(b"\x19FinP2P:" + domain.encode() + b"\n" + canonical(value))
    signature = bytes.fromhex(signature_hex.removeprefix("0x"))[:64]
    der = cdata_to_der(deserialize_compact(signature))
    return bool(coincurve.PublicKey(bytes.fromhex(fin_id)).verify(der, digest, hasher=None))


MAY_CERTIFY = {"founding": {"governance"}, "governance": {"organization"}, "organization": {"user", "asset"}}


def verify_chain(chain: list[dict[str, Any]], genesis: dict[str, Any], at_ms: int) -> dict[str, Any]:
    founding = {f["fin_id"] for f in genesis["founding"]}
    for i, credential in enumerate(chain):
        body = {k: v for k, v in credential.items() if k != "signature"}
        assert credential["network_id"] == genesis["network_id"], "another network's credential"
        # Valid at the time checked; issued at most 5 minutes after it (clocks differ).
        assert credential["issued_ms"] <= at_ms + 300_000 and at_ms < credential["expires_ms"], "not valid then"
        assert verify_signed(credential["issuer"], "credential", body, credential["signature"]), "bad signature"
        if credential["issuer"] in founding:
            issuer_role = "founding"
            assert i == len(chain) - 1, "the chain goes on past a founding node"
        else:
            parent = chain[i + 1]
            assert parent["subject"] == credential["issuer"], "the next credential is not the issuer's"
            issuer_role = parent["role"]
        assert credential["role"] in MAY_CERTIFY.get(issuer_role, set()), "a role that may not certify this"
    return chain[0]


# -- docs/receipts.md, "The ledger" -----------------------------------------------------------------------------------
class Rpc:
    def __init__(self, url: str, token: str | None) -> None:
        self.url, self.token = url, token

    def __call__(self, method: str, *params: Any) -> Any:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
        request = urllib.request.Request(self.url, data=body, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        assert "error" not in answer, answer
        return answer["result"]


OPERATION = "(string,string,string,string,uint256,uint256)"
EVENTS = {
    keccak(f"{name}(bytes32,{OPERATION})".encode()): op
    for name, op in (
        ("Issued", "issue"),
        ("Transferred", "transfer"),
        ("Redeemed", "redeem"),
        ("Held", "hold"),
        ("Released", "release"),
        ("RolledBack", "rollback"),
    )
}


def genuine(rpc: Rpc, address: str, artifact: Path) -> bool:
    code = bytes.fromhex(rpc("eth_getCode", address, "latest")[2:])
    return code == bytes.fromhex(json.loads(artifact.read_text())["deployedBytecode"][2:])


def merkle_root(leaf: bytes, proof: list[bytes]) -> bytes:
    node = leaf
    for sibling in proof:
        node = keccak(node + sibling) if node < sibling else keccak(sibling + node)
    return node


def audit(bundle: dict[str, Any], genesis: dict[str, Any], rpc: Rpc, artifacts: Path) -> dict[str, str]:
    verdicts: dict[str, str] = {}
    receipt = bundle["receipt"]
    signature = receipt["proof"]["signature"]
    template = signature["template"]
    issuer = bundle["issuer"]

    # 1. The proof: the template is the receipt's message, and the issuer signed its digest.
    try:
        assert template["primaryType"] == "Receipt" and template["message"] == message_of(receipt)
        typed = {
            "types": RECEIPT_TYPES,
            "primaryType": "Receipt",
            "domain": template["domain"],
            "message": template["message"],
        }
        signable = encode_typed_data(full_message=typed)
        digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
        assert digest.hex() == template["hash"].removeprefix("0x")
        assert Account.recover_message(signable, signature=bytes.fromhex(signature["signature"][2:])) == address_of(
            issuer["fin_id"]
        )
        verdicts["receipt proof"] = "held"
    except AssertionError as exc:
        verdicts["receipt proof"] = f"failed: {exc}"
        return verdicts

    # 2. The issuer: certified up to the genesis, the asset's manager, and its statement of where the transaction is.
    try:
        leaf = verify_chain(issuer["chain"], genesis, receipt["timestamp"] * 1000)
        asset = (receipt.get("source") or receipt.get("destination"))["asset"]["resourceId"]
        assert leaf["subject"] == issuer["fin_id"] and leaf["org_id"] == issuer["org_id"] == asset.split(":")[0]
        statement = {"role": "asset ledger", "receipt": "0x" + digest.hex(), "place": bundle["asset_ledger"]}
        assert verify_signed(issuer["fin_id"], "receipt", statement, bundle["signature"])
        verdicts["issuer"] = "held"
    except AssertionError as exc:
        verdicts["issuer"] = f"failed: {exc}"

    # 3. The transaction: in a genuine FinP2PAssets, submitted by the operator the issuer names, saying the same.
    try:
        place = bundle["asset_ledger"]
        assets = to_checksum_address(place["settings"]["assets_contract"])
        assert genuine(rpc, assets, artifacts / "FinP2PAssets.json"), "not FinP2P's contract"
        tx = rpc("eth_getTransactionReceipt", receipt["id"])
        assert tx is not None and int(tx["status"], 16) == 1, "no such successful transaction"
        assert to_checksum_address(tx["from"]) == to_checksum_address(place["operator"]), "another submitter"
        entry = next(
            e
            for e in tx["logs"]
            if to_checksum_address(e["address"]) == assets and bytes.fromhex(e["topics"][0][2:]) in EVENTS
        )
        operation = EVENTS[bytes.fromhex(entry["topics"][0][2:])]
        op_id, asset_id, source, destination, quantity, _ = decode([OPERATION], bytes.fromhex(entry["data"][2:]))[0]
        block = rpc("eth_getBlockByNumber", tx["blockNumber"], False)
        expected = {"issue": "issue", "rollback": "release"}.get(operation, operation)
        assert receipt["operationType"] == expected and asset_id == asset and str(quantity) == receipt["quantity"]
        assert int(block["timestamp"], 16) == receipt["timestamp"]
        assert (receipt.get("source") or {}).get("finId", "") == source
        if operation not in ("hold", "redeem", "rollback"):
            assert (receipt.get("destination") or {}).get("finId", "") == destination
        assert receipt["transactionDetails"].get("operationId", "") == op_id
        verdicts["asset ledger transaction"] = "held"
    except (AssertionError, StopIteration, KeyError) as exc:
        verdicts["asset ledger transaction"] = f"failed: {exc!r}"

    # 4. The record: the requester's, certified, in a genuine registry it operates, holding the digest.
    try:
        record = bundle["record"]
        requester = record["requester"]
        leaf = verify_chain(requester["chain"], genesis, int(time.time() * 1000))
        assert leaf["subject"] == requester["fin_id"] and leaf["role"] == "organization"
        statement = {
            "role": "record",
            "receipt": "0x" + digest.hex(),
            "place": record["ledger"],
            "transaction_id": record["transaction_id"],
            "proof": record["proof"],
        }
        assert verify_signed(requester["fin_id"], "receipt", statement, record["signature"])
        registry = to_checksum_address(record["ledger"]["settings"]["registry_contract"])
        assert genuine(rpc, registry, artifacts / "ReceiptRegistry.json"), "not FinP2P's registry"
        proof = [bytes.fromhex(p[2:]) for p in record["proof"]]
        call = keccak(b"isRecorded(bytes32,bytes32[])")[:4] + encode(["bytes32", "bytes32[]"], [digest, proof])
        answer = rpc("eth_call", {"to": registry, "data": "0x" + call.hex()}, "latest")
        assert decode(["bool"], bytes.fromhex(answer[2:]))[0], "the registry does not hold it"
        tx = rpc("eth_getTransactionReceipt", record["transaction_id"])
        assert to_checksum_address(tx["from"]) == to_checksum_address(record["ledger"]["operator"])
        topic = keccak(b"ReceiptsRecorded(bytes32,uint256)")
        roots = [e["topics"][1] for e in tx["logs"] if bytes.fromhex(e["topics"][0][2:]) == topic]
        assert "0x" + merkle_root(digest, proof).hex() in roots, "another root"
        verdicts["recorded by the requester"] = "held"
    except (AssertionError, KeyError, TypeError) as exc:
        verdicts["recorded by the requester"] = f"failed: {exc!r}"
    return verdicts


if __name__ == "__main__":
    bundle_file, genesis_file, url, artifacts_dir = sys.argv[1:5]
    token = sys.argv[5] if len(sys.argv) > 5 else None
    result = audit(
        json.loads(Path(bundle_file).read_text()),
        json.loads(Path(genesis_file).read_text()),
        Rpc(url, token),
        Path(artifacts_dir),
    )
    imported = sorted(m for m in sys.modules if m.split(".")[0] in ("finp2p", "finp2p_ethereum", "tests", "devnet"))
    print(json.dumps({"checks": result, "project_modules": imported}))
