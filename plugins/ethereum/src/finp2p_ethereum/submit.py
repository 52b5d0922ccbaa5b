"""Sending transactions as the operator: gas estimated (which also catches a revert before anything is sent),
nonces handed out locally so that many operations can be in flight at once, confirmations awaited."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.exceptions import TransactionNotFound, Web3Exception

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity.keys import SigningKey
from finp2p_ethereum import reverts
from finp2p_ethereum.chain import Chain

log = logging.getLogger(__name__)

_GAS_MARGIN = 1.25  # state can move between the estimate and the execution (other operations in flight)
_FEE_TTL_S = 2.0


@dataclass(frozen=True)
class SubmitOptions:
    """How transactions are sent and awaited (a profile's settings of the same names)."""

    #: Blocks to wait for, the transaction's own included; 1 on chains that mine on demand (Hardhat, embedded).
    confirmations: int = 1
    #: How long to wait for them before FP6015.
    timeout_s: float = 60.0
    #: How often to ask for the receipt.
    poll_s: float = 0.02
    #: A fixed gas limit instead of estimating each transaction (``None``: estimate).
    gas_limit: int | None = None


#: The defaults.
DEFAULT_OPTIONS = SubmitOptions()


class Submitter:
    """Submits the operator's transactions to one chain. Safe to call concurrently."""

    def __init__(self, chain: Chain, key: SigningKey, options: SubmitOptions = DEFAULT_OPTIONS) -> None:
        self.chain = chain
        self.account: LocalAccount = Account.from_key(key.secret_bytes())
        self.address: str = self.account.address
        self.confirmations = options.confirmations
        self.timeout_s = options.timeout_s
        self.poll_s = options.poll_s
        self.gas_limit = options.gas_limit
        self._nonce: int | None = None
        self._nonce_lock = asyncio.Lock()
        self._fees: tuple[float, int, int] | None = None

    async def submit(
        self,
        to: str | None,
        data: bytes,
        what: str,
        *,
        gas: int | None = None,
        on_sent: Callable[[bytes], None] | None = None,
    ) -> dict[str, Any]:
        """Send ``data`` to ``to`` (``None``: create a contract) and return the receipt of a successful transaction;
        a revert raises its FinP2P error, before sending when the estimate already fails.

        ``gas`` sends with that limit and no check first (a batch, whose operations the contract checks one by one,
        reverts as a whole only when it is not the operator's or runs out of gas); ``on_sent`` is told the hash once
        the chain has the transaction, before it is confirmed."""
        await self._call(self.chain.connect(), what)
        tx: Any = {"from": self.address, "data": data, "value": 0}
        if to is not None:
            tx["to"] = to
        if gas is None and self.gas_limit is None:
            gas = int(await self._call(self.chain.w3.eth.estimate_gas(tx), what) * _GAS_MARGIN) + 10_000
        elif gas is None:
            # One execution to catch a revert before sending, instead of the estimate's binary search: on the
            # embedded chain (py-evm) that is most of an operation's cost.
            probe: Any = {**tx, "gas": self.gas_limit}
            await self._call(self.chain.w3.eth.call(probe), what)
            gas = self.gas_limit
        fees = await self._fees_now()
        tx.update(gas=gas, chainId=self.chain.chain_id, type=2, **fees)
        tx.pop("from")
        tx_hash = await self._send(tx, what)
        if on_sent is not None:
            on_sent(tx_hash)
        receipt = await self._receipt(tx_hash, what)
        if receipt["status"] != 1:
            raise await self._reason(tx, receipt, what)
        return receipt

    async def _send(self, tx: dict[str, Any], what: str) -> bytes:
        """Sign with the next nonce and send, one transaction at a time: nodes that mine on demand (Hardhat) refuse
        a nonce above the next one, so transactions must reach the node in nonce order. Only the sending is
        serialised; their receipts are awaited concurrently."""
        for attempt in range(3):
            async with self._nonce_lock:
                if self._nonce is None:
                    pending = self.chain.w3.eth.get_transaction_count(self.address, "pending")  # type: ignore[arg-type]
                    self._nonce = int(await self._call(pending, what))
                nonce = self._nonce
                signed = self.account.sign_transaction({**tx, "nonce": nonce})
                try:
                    sent = bytes(await self.chain.w3.eth.send_raw_transaction(signed.raw_transaction))
                    self._nonce = nonce + 1
                    return sent
                except (Web3Exception, ValueError) as exc:
                    # Ask the chain next time: the nonce may be unused, or used (a node that mines a reverting
                    # transaction and reports the revert, as Hardhat does).
                    self._nonce = None
                    error = exc
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    self._nonce = None
                    raise _unreachable(self.chain, what, exc) from None
            text = str(error).lower()
            if "nonce" in text and attempt < 2:
                log.info("nonce %d refused (%s); resynchronising", nonce, error)
                continue
            if "insufficient funds" in text:
                detail = f"{what}: {self.address} cannot pay for gas on {self.chain.ledger_id}"
                raise FinP2PError(ErrorCode.LEDGER_NO_FUNDS, detail) from None
            data = reverts.revert_data(error)
            if data is not None:
                raise reverts.to_error(data, what) from None
            raise FinP2PError(ErrorCode.LEDGER_REVERTED, f"{what}: the node refused the transaction: {error}") from None
        raise FinP2PError(ErrorCode.LEDGER_REVERTED, f"{what}: the node kept refusing the nonce")  # pragma: no cover

    async def _receipt(self, tx_hash: bytes, what: str) -> dict[str, Any]:
        eth = self.chain.w3.eth
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                receipt: dict[str, Any] = dict(await eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
                break
            except TransactionNotFound:
                pass
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                log.warning("%s: waiting for 0x%s: %s", what, tx_hash.hex(), exc)
            if time.monotonic() > deadline:
                raise FinP2PError(
                    ErrorCode.LEDGER_TIMEOUT, f"{what}: transaction 0x{tx_hash.hex()} not mined in {self.timeout_s:g} s"
                )
            await asyncio.sleep(self.poll_s)
        mined = int(receipt["blockNumber"])
        while self.confirmations > 1 and await eth.block_number < mined + self.confirmations - 1:
            if time.monotonic() > deadline:
                raise FinP2PError(
                    ErrorCode.LEDGER_TIMEOUT,
                    f"{what}: transaction 0x{tx_hash.hex()} has fewer than {self.confirmations} confirmations",
                )
            await asyncio.sleep(self.poll_s)
        return receipt

    async def _reason(self, tx: dict[str, Any], receipt: dict[str, Any], what: str) -> FinP2PError:
        """Why a mined transaction failed: replay it as a call on the state it met."""
        call = {"from": self.address, "to": tx.get("to"), "data": tx["data"], "gas": tx["gas"]}
        try:
            await self.chain.w3.eth.call(call, receipt["blockNumber"] - 1)  # type: ignore[arg-type]
        except Exception as exc:
            data = reverts.revert_data(exc)
            if data is not None:
                return reverts.to_error(data, what)
        return FinP2PError(
            ErrorCode.LEDGER_REVERTED, f"{what}: transaction 0x{bytes(receipt['transactionHash']).hex()} failed"
        )

    async def _fees_now(self) -> dict[str, int]:
        now = time.monotonic()
        if self._fees is None or now - self._fees[0] > _FEE_TTL_S:
            block = await self.chain.w3.eth.get_block("latest")
            base = int(block.get("baseFeePerGas", 0) or 0)
            tip = 10**9
            self._fees = (now, 2 * base + tip, tip)
        return {"maxFeePerGas": self._fees[1], "maxPriorityFeePerGas": self._fees[2]}

    async def _call(self, awaitable: Any, what: str) -> Any:
        """Await a read from the chain: a revert becomes its FinP2P error, a dead endpoint FP6013."""
        try:
            return await awaitable
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _unreachable(self.chain, what, exc) from None
        except Exception as exc:
            data = reverts.revert_data(exc)
            if data is None:
                raise
            raise reverts.to_error(data, what) from None


def _unreachable(chain: Chain, what: str, exc: BaseException) -> FinP2PError:
    where = chain.url or "the embedded chain"
    return FinP2PError(ErrorCode.LEDGER_UNREACHABLE, f"{what}: cannot reach {where}: {exc or type(exc).__name__}")
