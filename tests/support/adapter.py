"""The ledger-adapter server as a process (``finp2p adapter serve``), an HTTP client for it, and investors who sign
FinP2P-style templates (a router's EIP712 typed data, or hash groups) as a FinP2P router would ask them to."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from finp2p.adapter import router
from finp2p.edge.files import write_private
from finp2p.identity.keys import SigningKey
from finp2p.ledger import LedgerProfile
from finp2p.ledger_profiles import save_profile
from tests.support.cli import FINP2P, cli_env
from tests.support.nodes import stop_process

#: A router's typed data: FinP2P's own templates in the router's domain (not this ledger's), so the adapter reads
#: their terms and the contract takes their digest.
ROUTER_DOMAIN = router.DOMAIN
nonce = router.nonce


@dataclass
class Investor:
    key: SigningKey

    @property
    def fin_id(self) -> str:
        return self.key.fin_id

    @classmethod
    def new(cls) -> Investor:
        return cls(SigningKey.generate())

    def eip712(
        self, asset_id: str, quantity: int, counterparty: str, the_nonce: str, kind: str = "Selling"
    ) -> dict[str, Any]:
        """This investor gives ``quantity`` of ``asset_id`` to ``counterparty``, in a ``kind`` template."""
        body = router.message(
            kind, the_nonce, giver=self.fin_id, receiver=counterparty, asset_id=asset_id, quantity=quantity
        )
        return router.sign(self.key, kind, body)

    def buys(self, issuer: str, asset_id: str, quantity: int, the_nonce: str) -> dict[str, Any]:
        """This investor buys new units from ``issuer``: a PrimarySale it signs."""
        return router.primary_sale_signature(self.key, issuer, asset_id, quantity, the_nonce)

    def hash_list(
        self,
        asset_id: str,
        quantity: int,
        counterparty: str | None,
        the_nonce: str,
        hash_func: str = "keccak-256",
        operation: str = "transfer",
    ) -> dict[str, Any]:
        return router.hash_list_signature(self.key, operation, asset_id, quantity, counterparty, the_nonce, hash_func)


def deploy_profile(rpc_url: str, operator: SigningKey, path: Path, **settings: Any) -> LedgerProfile:
    """Fresh FinP2P contracts on the chain at ``rpc_url``, operated by ``operator``; their profile, with
    ``settings`` added (``batch_max=1``, say), written to ``path`` (synchronous: for fixtures and benchmark set-up)."""
    from finp2p_ethereum.chain import rpc_chain
    from finp2p_ethereum.deploy import deploy_contracts, profile_for

    async def deploy() -> LedgerProfile:
        chain = rpc_chain(rpc_url)
        try:
            await chain.connect()
            return profile_for(chain, await deploy_contracts(chain, operator))
        finally:
            await chain.close()

    profile = asyncio.run(deploy())
    if settings:
        profile = LedgerProfile(profile.kind, profile.ledger_id, {**profile.settings, **settings})
    save_profile(path, profile)
    return profile


class AdapterProcess:
    """``finp2p adapter serve`` on a free port, with a bearer token (``token``, in ``<work>/adapter.token``),
    stopped by its PID."""

    def __init__(
        self,
        work: Path,
        *args: str,
        site: Path | None = None,
        env: dict[str, str] | None = None,
        with_token: bool = True,
    ) -> None:
        self.work = work
        self.args = args
        self.site = site
        self.env = env or {}
        self.log = work / "adapter.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.token_file = work / "adapter.token"
        self.with_token = with_token
        self.token = ""

    def start(self, timeout: float = 60) -> AdapterProcess:
        self.work.mkdir(parents=True, exist_ok=True)
        token_args: list[str] = []
        if self.with_token:
            if not self.token_file.exists():
                write_private(self.token_file, uuid.uuid4().hex + "\n")
            self.token = self.token_file.read_text().strip()
            token_args = ["--token-file", str(self.token_file)]
        out_file = self.work / "adapter.out"
        out_file.write_bytes(b"")
        with out_file.open("ab") as out, self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(FINP2P),
                    "--log-level",
                    "INFO",
                    "adapter",
                    "serve",
                    "--port",
                    "0",
                    "--data",
                    str(self.work),
                    *token_args,
                    *list(self.args),
                ],
                stdout=out,
                stderr=log,
                env={**cli_env(self.site), **self.env},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = out_file.read_text().split()
            if lines:
                self.url = lines[0]
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"the adapter exited with {self.proc.returncode}:\n{self.log.read_text()}")
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"the adapter did not serve in {timeout} s:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        return stop_process(self.proc, sig, timeout)


class AdapterClient:
    """The router's side: the adapter's routes over HTTP, a fresh Idempotency-Key per call unless one is given."""

    def __init__(self, url: str, session: aiohttp.ClientSession, ledger_id: str, token: str) -> None:
        self.url = url
        self.session = session
        self.ledger_id = ledger_id
        self.auth = {"Authorization": f"Bearer {token}"}

    def asset(self, asset_id: str) -> dict[str, Any]:
        identifier = {"assetIdentifierType": "CAIP-19", "network": self.ledger_id, "tokenId": asset_id}
        return {"resourceId": asset_id, "ledgerIdentifier": {**identifier, "standard": "finp2p"}}

    def account(self, fin_id: str, asset_id: str) -> dict[str, Any]:
        return {"finId": fin_id, "asset": self.asset(asset_id)}

    async def post(self, path: str, body: Any, key: str | None = "new") -> tuple[int, Any]:
        headers = dict(self.auth)
        if key is not None:
            headers["Idempotency-Key"] = uuid.uuid4().hex if key == "new" else key
        async with self.session.post(self.url + path, json=body, headers=headers) as r:
            return r.status, (await r.json() if r.content_type == "application/json" else await r.text())

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.session.get(self.url + path, headers=self.auth) as r:
            return r.status, (await r.json() if r.content_type == "application/json" else await r.text())

    async def result(self, operation: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        """The operation's completed result, polled at /operations/status/{cid} as a router does."""
        deadline = time.monotonic() + timeout
        while not operation["isCompleted"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"operation {operation['cid']} did not complete in {timeout} s")
            status, answer = await self.get(f"/operations/status/{operation['cid']}?wait=5")
            assert status == 200, answer
            operation = answer["operation"]
        return operation

    async def run(self, path: str, body: Any, key: str | None = "new") -> dict[str, Any]:
        """POST an operation and poll it to completion."""
        status, answer = await self.post(path, body, key)
        assert status == 200, (status, answer)
        return await self.result(answer)

    async def create_asset(self) -> str:
        asset_id = f"bank-{uuid.uuid4().hex[:6]}:102:{uuid.uuid4()}"
        done = await self.run("/assets/create", {"asset": {"resourceId": asset_id}})
        assert "response" in done, done
        return asset_id

    async def issue(self, asset_id: str, investor: Investor, quantity: int, **extra: Any) -> dict[str, Any]:
        n = nonce()
        body = {
            "nonce": n,
            "destination": self.account(investor.fin_id, asset_id),
            "quantity": str(quantity),
            "settlementRef": uuid.uuid4().hex,
            "signature": investor.buys(ISSUER, asset_id, quantity, n),
            **extra,
        }
        return await self.run("/assets/issue", body)

    def transfer_body(
        self, asset_id: str, source: Investor, destination: str, quantity: int, template: str = "EIP712"
    ) -> dict[str, Any]:
        n = nonce()
        sign = source.eip712 if template == "EIP712" else source.hash_list
        return {
            "nonce": n,
            "source": self.account(source.fin_id, asset_id),
            "destination": self.account(destination, asset_id),
            "quantity": str(quantity),
            "settlementRef": uuid.uuid4().hex,
            "signature": sign(asset_id, quantity, destination, n),
        }

    def hold_body(
        self, asset_id: str, source: Investor, destination: str, quantity: int, operation_id: str, expiry: int = 0
    ) -> dict[str, Any]:
        n = nonce()
        return {
            "nonce": n,
            "operationId": operation_id,
            "source": self.account(source.fin_id, asset_id),
            "destination": self.account(destination, asset_id),
            "quantity": str(quantity),
            "expiry": expiry,
            "signature": source.eip712(asset_id, quantity, destination, n),
        }

    def redemption_body(self, asset_id: str, source: Investor, quantity: int, **fields: Any) -> dict[str, Any]:
        """A redeem (or, with ``operationId`` and ``expiry``, the hold before one) of ``source``'s units, signed as a
        Redemption to the asset's issuer."""
        n = nonce()
        return {
            "nonce": n,
            "source": self.account(source.fin_id, asset_id),
            "quantity": str(quantity),
            "signature": source.eip712(asset_id, quantity, ISSUER, n, kind="Redemption"),
            **fields,
        }

    async def balance(self, asset_id: str, fin_id: str) -> dict[str, int]:
        body = {"account": {"type": "finId", "finId": fin_id}, "asset": self.asset(asset_id)}
        status, answer = await self.post("/asset/balance", body, key=None)
        assert status == 200, answer
        info = answer["balanceInfo"]
        return {k: int(info[k]) for k in ("current", "available", "held")}


#: The issuer FinP2P templates name in the tests (the organization that sells and takes back units).
ISSUER = SigningKey.generate().fin_id


async def wait_for(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition did not hold in time")
        await asyncio.sleep(0.05)
