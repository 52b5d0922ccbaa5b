"""An organization's REST API as its application calls it: operations submitted with an Idempotency-Key, followed
to their end, and consents signed by the owner's own key over the template the node makes."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from finp2p.identity.keys import SigningKey


@dataclass
class Org:
    name: str
    api: str
    token: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        out = {"Authorization": f"Bearer {self.token}"}
        if key is not None:
            out["Idempotency-Key"] = key
        return out


async def call(org: Org, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, org.api + path, json=body, headers=org.headers(key)) as resp,
    ):
        return resp.status, await resp.json()


async def until_done(org: Org, op_id: str, timeout: float = 90) -> dict[str, Any]:
    """The operation once it is recorded or failed (an AssertionError after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = await call(org, "GET", f"/v1/operations/{op_id}")
        assert status == 200, body
        if body["state"] in ("recorded", "failed"):
            return dict(body)
        await asyncio.sleep(0.1)
    raise AssertionError(f"operation {op_id} still {body['state']} after {timeout} s")


async def run_operation(org: Org, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    status, accepted = await call(org, "POST", "/v1/operations", body, key or uuid.uuid4().hex)
    assert status == 202, accepted
    return await until_done(org, accepted["id"])


async def consented(
    org: Org, body: dict[str, Any], owner: SigningKey, signer: SigningKey | None = None
) -> dict[str, Any]:
    """``body`` with the owner's consent: the template asked of ``org`` (which asks the primary), its hash signed
    by ``signer`` (the owner unless a test forges it)."""
    status, answer = await call(org, "POST", "/v1/consent", body)
    assert status == 200, answer
    template = answer["template"]
    signature = (signer or owner).sign_digest(bytes.fromhex(template["hash"])).hex()
    consent = {"template": "EIP712", "signer": owner.fin_id, "signature": signature, "payload": template}
    return {**body, "consent": consent}
