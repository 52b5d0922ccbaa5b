"""The ledger conformance suite: what every :class:`finp2p.ledger.Ledger` must do for a node to rely on it.

A plugin's test module subclasses :class:`LedgerConformance` and gives it one fixture, ``ledger_world``, yielding
a :class:`LedgerWorld`; see :mod:`finp2p.testing`. Every test reaches the ledger through the interface only, and
says in its docstring which error codes it expects, by their :class:`~finp2p.errors.ErrorCode` name, and what the
node does when it meets them: the codes are the contract between a ledger and its caller.

The codes a ledger raises, and what its callers (the primary node, the ledger-adapter server, the auditor) do
with them:

- ``LEDGER_INSUFFICIENT_BALANCE`` (FP6001): the operation is refused for good and changed nothing.
- ``LEDGER_BAD_SIGNATURE`` (FP6002), ``LEDGER_UNSUPPORTED_CONSENT`` (FP6019), ``CONSENT_INVALID`` (FP7009),
  ``LEDGER_CONSENT_USED`` (FP6021): the owner's consent does not authorise this operation; the requester must have
  the owner sign a template for exactly this one. Nothing changed and the operation id is still free.
- ``LEDGER_OPERATION_ID_USED`` (FP6003): the node looks the operation up with ``find_operation`` and answers with
  the transaction that spent the id (the same operation, executed before a crash), or fails with FP7005 when that
  transaction is another operation. So ``find_operation`` must find every operation that spent an id.
- ``LEDGER_UNKNOWN_HOLD`` (FP6004), ``LEDGER_HOLD_EXPIRED`` (FP6005), ``LEDGER_HOLD_QUANTITY`` (FP6006),
  ``LEDGER_HOLD_MISMATCH`` (FP6007): a release, rollback or redeem that does not fit its hold; refused for good.
- ``LEDGER_UNKNOWN_ASSET`` (FP6008), ``LEDGER_ASSET_EXISTS`` (FP6009), ``LEDGER_INVALID_ACCOUNT`` (FP6011),
  ``LEDGER_INVALID_QUANTITY`` (FP6012), ``LEDGER_INVALID_FIELD`` (FP6020): bad input, refused before anything
  reaches the ledger.
- ``LEDGER_NOT_OPERATOR`` (FP6010): the submitter is not the deployment's operator: the operation fails; the
  node is misconfigured (its operator key).
- ``LEDGER_ALREADY_RECORDED`` (FP6017): the node asks ``find_receipts_record`` for the record made before (a
  restart between recording and writing it down) and answers with it.
- ``LEDGER_NO_HISTORY`` (FP6022): the ledger cannot answer as of that height; passed on to whoever asked, who
  asks for the current balance instead.
- ``LEDGER_UNREACHABLE`` (FP6013), ``LEDGER_TIMEOUT`` (FP6015): retry later; the operation stays pending and is
  looked up with ``find_operation`` before it is submitted again. ``LEDGER_NO_FUNDS`` (FP6018): the operator
  account must be funded, then retried. The suite cannot provoke these through the interface alone: a plugin tests
  them with its own means (a stopped node, a closed port).
- ``LEDGER_PROFILE`` (FP6016): ``verify_deployment`` found a deployment that is not FinP2P's genuine code.

Operation ids, asset ids and receipt hashes are fresh in every test (operation ids carry their asset's id), so a
world may share one deployment between tests and between examples of the property test.
"""

from __future__ import annotations

import inspect
import secrets
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import replace
from typing import Any, ClassVar, Protocol, runtime_checkable

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from finp2p.errors import ErrorCode, FinP2PError
from finp2p.identity import eip712, merkle
from finp2p.identity.keys import SigningKey
from finp2p.ledger import Ledger, LedgerTransaction, OperationType, OwnerConsent

__all__ = ["LedgerConformance", "LedgerWorld", "ReportsSupply", "consent", "refused", "signed"]


class LedgerWorld(Protocol):
    """What the suite needs around the ledger under test: the plugin's ``ledger_world`` fixture yields one.

    ``ledger`` submits as the deployment's operator (the primary node's identity). ``max_expiry_step_s`` is how far
    :meth:`advance_time` may move the ledger's clock in one test (a world is used by one test; the property test
    never moves it): the expiry test holds with an expiry half of it ahead, then advances all of it. A chain that
    mines blocks at will can take hours; Fabric takes its transactions' time from the client and accepts at most
    15 minutes of difference from the peer's clock.
    """

    @property
    def ledger(self) -> Ledger: ...

    @property
    def max_expiry_step_s(self) -> int: ...

    async def new_asset(self) -> str:
        """Create a fresh asset on the ledger (through ``ledger.create_asset``) and return its id."""
        ...

    async def now(self) -> int:
        """The ledger's time (unix seconds) as a hold's expiry is compared with it."""
        ...

    async def advance_time(self, seconds: int) -> None:
        """Make the ledger's next operations ``seconds`` later (at most ``max_expiry_step_s``)."""
        ...

    def other_ledger(self, key: SigningKey) -> Ledger | Awaitable[Ledger]:
        """A ledger on the same deployment that submits as an identity other than the operator: as ``key`` where
        identities are FinID keys (Ethereum accounts), or as another identity of the world's own (a second
        Fabric client identity), ignoring ``key``, where they are not. It may be a coroutine (``async def``), for a
        world that must first give the new identity what it needs to be heard at all (ether for gas: without it
        a chain refuses the call before the contract can). The world closes it in :meth:`close`."""
        ...

    async def close(self) -> None:
        """Close the ledger and every ledger :meth:`other_ledger` made."""
        ...


@runtime_checkable
class ReportsSupply(Protocol):
    """A world that can also say how many units of an asset exist (available plus held, of every owner), read from
    the ledger's own record of it. Optional: where the world has it, the suite checks conservation against it too."""

    async def supply(self, asset_id: str) -> int: ...


# -- helpers plugin tests may use too ------------------------------------------------------------------------------
def signed(key: SigningKey, template: dict[str, Any], *, signer: str | None = None) -> OwnerConsent:
    """``template`` (a ledger's :meth:`~finp2p.ledger.Ledger.consent_template`, or a router's) signed by ``key`` as
    an owner's wallet does: its ``hash`` signed with the key. ``signer`` is the FinID the consent names (``key``'s
    own by default; another one makes a forgery)."""
    signature = key.sign_digest(bytes.fromhex(str(template["hash"]).removeprefix("0x"))).hex()
    return OwnerConsent(str(template.get("type", "EIP712")), signer or key.fin_id, signature, template)


async def consent(
    ledger: Ledger,
    key: SigningKey,
    operation: OperationType,
    asset_id: str,
    source: str,
    destination: str | None,
    quantity: int,
    operation_id: str,
    expiry: int = 0,
) -> OwnerConsent:
    """The owner's consent to one operation, made the way a node asks for it: ``ledger``'s own template for the
    operation, signed by ``key``."""
    template = await ledger.consent_template(operation, asset_id, source, destination, quantity, operation_id, expiry)
    return signed(key, template)


async def refused(call: Awaitable[object], *codes: ErrorCode) -> FinP2PError:
    """Await ``call`` and check that it raises a :class:`~finp2p.errors.FinP2PError` with one of ``codes``."""
    expected = " or ".join(f"{c.name} ({c.code})" for c in codes)
    try:
        result = await call
    except FinP2PError as exc:
        assert exc.code in codes, f"{exc.code.name} ({exc}) where {expected} was due"
        return exc
    raise AssertionError(f"accepted ({result!r}) where {expected} was due")


async def _balances(ledger: Ledger, asset: str, *keys: SigningKey) -> list[tuple[int, int]]:
    found = [await ledger.balance(asset, k.fin_id) for k in keys]
    return [(b.available, b.held) for b in found]


async def _funded(world: LedgerWorld, quantity: int = 100) -> tuple[str, SigningKey, SigningKey]:
    """A fresh asset with ``quantity`` issued to a fresh alice, and a fresh bob with nothing."""
    asset = await world.new_asset()
    alice, bob = SigningKey.generate(), SigningKey.generate()
    await world.ledger.issue(asset, alice.fin_id, quantity, f"issue-{asset}")
    return asset, alice, bob


#: The holders of the property test: fixed keys, so that hypothesis can replay an example (each example has a
#: fresh asset, so they start with nothing).
_HOLDERS = [SigningKey(bytes([i + 1]) * 32) for i in range(3)]
_KINDS = ("issue", "transfer", "redeem", "hold", "release", "rollback")
#: One step: (kind, holder a, holder b, quantity). A transfer, redeem or hold moves from a (to b); a release or
#: rollback settles an open hold (chosen by the quantity) paying b.
_STEP = st.tuples(st.sampled_from(_KINDS), st.integers(0, 2), st.integers(0, 2), st.integers(1, 60))
_Step = tuple[str, int, int, int]


class LedgerConformance:
    """The conformance suite. Subclass it in a test module and define the ``ledger_world`` fixture.

    pytest collects the tests of subclasses only: this class says ``__test__ = False`` and every subclass is made
    ``__test__ = True`` (unless it says otherwise itself, as an intermediate base of several suites may).
    """

    __test__: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__test__" not in cls.__dict__:
            cls.__test__ = True

    @pytest.fixture
    def ledger_world(self) -> LedgerWorld:
        """Replaced by the plugin's own fixture of this name."""
        pytest.fail(f"{type(self).__name__} must define a `ledger_world` fixture yielding a finp2p.testing.LedgerWorld")

    # -- lifecycle -----------------------------------------------------------------------------------------------
    async def test_lifecycle_issue_transfer_and_lookup(self, ledger_world: LedgerWorld) -> None:
        """An asset is created once, units are issued and transferred with the owner's consent, and every
        transaction is found again on the ledger itself (``transaction``) exactly as the operation returned it:
        the receipt the node signs and the auditor's check are built from it. Creating the asset again is
        ``LEDGER_ASSET_EXISTS``; an id the ledger does not know, or that is not one of its ids, is ``None``."""
        ledger = ledger_world.ledger
        await ledger.verify_deployment()  # the world's own deployment is the genuine one
        start = await ledger.height()
        asset = await ledger_world.new_asset()
        await refused(ledger.create_asset(asset, {}), ErrorCode.LEDGER_ASSET_EXISTS)
        alice, bob = SigningKey.generate(), SigningKey.generate()
        issued = await ledger.issue(asset, alice.fin_id, 100, f"issue-{asset}")
        assert issued.succeeded and issued.operation == OperationType.ISSUE
        assert (issued.asset_id, issued.destination, issued.quantity) == (asset, alice.fin_id, 100)
        assert issued.operation_id == f"issue-{asset}"
        op_id = f"t-1-{asset}"
        owner = await consent(ledger, alice, OperationType.TRANSFER, asset, alice.fin_id, bob.fin_id, 30, op_id)
        tx = await ledger.transfer(asset, alice.fin_id, bob.fin_id, 30, op_id, owner)
        assert tx.succeeded and tx.operation == OperationType.TRANSFER
        assert (tx.asset_id, tx.source, tx.destination, tx.quantity) == (asset, alice.fin_id, bob.fin_id, 30)
        assert tx.operation_id == op_id
        assert await _balances(ledger, asset, alice, bob) == [(70, 0), (30, 0)]
        if isinstance(ledger_world, ReportsSupply):
            assert await ledger_world.supply(asset) == 100
        for done in (issued, tx):
            assert done.ledger_id == ledger.ledger_id
            assert start <= done.height <= await ledger.height() and done.timestamp > 0
            assert done.submitter, "the auditor compares a transaction's submitter with the operator named"
            assert await ledger.transaction(done.transaction_id) == done
        assert tx.submitter == issued.submitter, "one operator, one submitter"
        assert issued.transaction_id != tx.transaction_id
        assert await ledger.transaction("00" * 32) is None
        assert await ledger.transaction("not a transaction id") is None

    async def test_balances_available_and_held(self, ledger_world: LedgerWorld) -> None:
        """A hold moves units from available to held; the balance of an owner the asset never saw is zero, a
        ``fin_id`` that is not a FinID is ``LEDGER_INVALID_ACCOUNT``, and a balance names its height: the ledger's
        height at the time it was read."""
        ledger = ledger_world.ledger
        asset, alice, bob = await _funded(ledger_world)
        op_id = f"h-{asset}"
        owner = await consent(ledger, alice, OperationType.HOLD, asset, alice.fin_id, bob.fin_id, 40, op_id)
        before = await ledger.height()
        await ledger.hold(asset, alice.fin_id, bob.fin_id, 40, op_id, 0, owner)
        found = await ledger.balance(asset, alice.fin_id)
        assert (found.asset_id, found.fin_id, found.available, found.held) == (asset, alice.fin_id, 60, 40)
        assert before <= found.height <= await ledger.height()
        assert await _balances(ledger, asset, bob, SigningKey.generate()) == [(0, 0), (0, 0)]
        await refused(ledger.balance(asset, "02" + "zz" * 32), ErrorCode.LEDGER_INVALID_ACCOUNT)

    async def test_balance_at_a_height(self, ledger_world: LedgerWorld) -> None:
        """``balance(height=h)``: at the height a balance named, the same balance; at a height since passed, what
        the balance was then or ``LEDGER_NO_HISTORY`` (a ledger that keeps no history of its state); at a height
        not reached yet, ``LEDGER_NO_HISTORY``."""
        ledger = ledger_world.ledger
        asset, alice, bob = await _funded(ledger_world)
        then = await ledger.balance(asset, alice.fin_id)
        assert (await ledger.balance(asset, alice.fin_id, then.height)) == then
        op_id = f"t-{asset}"
        owner = await consent(ledger, alice, OperationType.TRANSFER, asset, alice.fin_id, bob.fin_id, 30, op_id)
        await ledger.transfer(asset, alice.fin_id, bob.fin_id, 30, op_id, owner)
        now = await ledger.balance(asset, alice.fin_id)
        assert (now.available, now.held) == (70, 0) and now.height > then.height
        assert await ledger.balance(asset, alice.fin_id, now.height) == now
        try:
            past = await ledger.balance(asset, alice.fin_id, then.height)
        except FinP2PError as exc:
            assert exc.code is ErrorCode.LEDGER_NO_HISTORY, exc
        else:
            assert past == then, "a balance at a past height is what it was then"
        await refused(ledger.balance(asset, alice.fin_id, now.height + 1000), ErrorCode.LEDGER_NO_HISTORY)

    async def test_insufficient_balance_changes_nothing(self, ledger_world: LedgerWorld) -> None:
        """A transfer, hold or redeem of more than the source has available is ``LEDGER_INSUFFICIENT_BALANCE``:
        refused for good, nothing changed, and its operation id is still unused."""
        ledger = ledger_world.ledger
        asset, alice, bob = await _funded(ledger_world, 10)
        ids = {kind: f"x-{kind}-{asset}" for kind in (OperationType.TRANSFER, OperationType.HOLD, OperationType.REDEEM)}

        async def owner(kind: OperationType, destination: str | None) -> OwnerConsent:
            return await consent(ledger, alice, kind, asset, alice.fin_id, destination, 11, ids[kind])

        transfer = await owner(OperationType.TRANSFER, bob.fin_id)
        await refused(
            ledger.transfer(asset, alice.fin_id, bob.fin_id, 11, ids[OperationType.TRANSFER], transfer),
            ErrorCode.LEDGER_INSUFFICIENT_BALANCE,
        )
        hold = await owner(OperationType.HOLD, bob.fin_id)
        await refused(
            ledger.hold(asset, alice.fin_id, bob.fin_id, 11, ids[OperationType.HOLD], 0, hold),
            ErrorCode.LEDGER_INSUFFICIENT_BALANCE,
        )
        redeem = await owner(OperationType.REDEEM, None)
        await refused(
            ledger.redeem(asset, alice.fin_id, 11, ids[OperationType.REDEEM], redeem),
            ErrorCode.LEDGER_INSUFFICIENT_BALANCE,
        )
        assert await _balances(ledger, asset, alice, bob) == [(10, 0), (0, 0)]
        if isinstance(ledger_world, ReportsSupply):
            assert await ledger_world.supply(asset) == 10
        for kind, op_id in ids.items():
            assert await ledger.find_operation(op_id, kind) is None, f"a refused {kind} leaves its id unused"

    # -- operation ids -------------------------------------------------------------------------------------------
    async def test_operation_id_is_used_once(self, ledger_world: LedgerWorld) -> None:
        """An operation id is spent by the operation that used it, whatever comes next: issuing again under it, or
        replaying the very same signed transfer, is ``LEDGER_OPERATION_ID_USED``; the node then asks
        ``find_operation`` and gets the transaction that spent the id, as it was returned."""
        ledger = ledger_world.ledger
        asset, alice, bob = await _funded(ledger_world)
        await refused(ledger.issue(asset, bob.fin_id, 5, f"issue-{asset}"), ErrorCode.LEDGER_OPERATION_ID_USED)
        op_id = f"once-{asset}"
        owner = await consent(ledger, alice, OperationType.TRANSFER, asset, alice.fin_id, bob.fin_id, 1, op_id)
        first = await ledger.transfer(asset, alice.fin_id, bob.fin_id, 1, op_id, owner)
        await refused(
            ledger.transfer(asset, alice.fin_id, bob.fin_id, 1, op_id, owner), ErrorCode.LEDGER_OPERATION_ID_USED
        )
        assert await ledger.find_operation(op_id, OperationType.TRANSFER) == first
        assert await _balances(ledger, asset, alice, bob) == [(99, 0), (1, 0)]
        # An id spent by one kind of operation is spent for every other kind.
        hold = await consent(ledger, alice, OperationType.HOLD, asset, alice.fin_id, None, 1, op_id)
        await refused(ledger.hold(asset, alice.fin_id, None, 1, op_id, 0, hold), ErrorCode.LEDGER_OPERATION_ID_USED)

    async def test_find_operation_for_every_kind(self, ledger_world: LedgerWorld) -> None:
        """``find_operation(id, kind)`` is how a node that crashed after submitting learns whether its operation
        took effect: it returns the very transaction each operation returned, for every kind. A release, rollback
        or redeem from a hold carries the hold's operation id; an operation that never happened is ``None``, also
        an id found under another kind."""
        ledger = ledger_world.ledger
        asset, alice, bob = await _funded(ledger_world)
        issued = await ledger.find_operation(f"issue-{asset}", OperationType.ISSUE)
        assert issued is not None and (issued.quantity, issued.destination) == (100, alice.fin_id)
        done: dict[tuple[str, OperationType], LedgerTransaction] = {}

        t_id = f"t-{asset}"
        owner = await consent(ledger, alice, OperationType.TRANSFER, asset, alice.fin_id, bob.fin_id, 5, t_id)
        done[t_id, OperationType.TRANSFER] = await ledger.transfer(asset, alice.fin_id, bob.fin_id, 5, t_id, owner)
        r_id = f"r-{asset}"
        owner = await consent(ledger, alice, OperationType.REDEEM, asset, alice.fin_id, None, 5, r_id)
        done[r_id, OperationType.REDEEM] = await ledger.redeem(asset, alice.fin_id, 5, r_id, owner)
        holds = {kind: f"h-{kind}-{asset}" for kind in (OperationType.RELEASE, OperationType.ROLLBACK, "redeem")}
        for h_id in holds.values():
            owner = await consent(ledger, alice, OperationType.HOLD, asset, alice.fin_id, None, 10, h_id)
            done[h_id, OperationType.HOLD] = await ledger.hold(asset, alice.fin_id, None, 10, h_id, 0, owner)
        h_id = holds[OperationType.RELEASE]
        done[h_id, OperationType.RELEASE] = await ledger.release(asset, alice.fin_id, bob.fin_id, 10, h_id)
        h_id = holds[OperationType.ROLLBACK]
        done[h_id, OperationType.ROLLBACK] = await ledger.rollback(asset, alice.fin_id, 10, h_id)
        h_id = holds["redeem"]
        done[h_id, OperationType.REDEEM] = await ledger.redeem(asset, alice.fin_id, 10, h_id, None)

        for (op_id, kind), tx in done.items():
            assert tx.operation == kind and tx.operation_id == op_id, (kind, tx)
            assert await ledger.find_operation(op_id, kind) == tx, f"{kind} {op_id}"
        assert done[holds[OperationType.RELEASE], OperationType.RELEASE].destination == bob.fin_id
        assert await ledger.find_operation(holds[OperationType.ROLLBACK], OperationType.RELEASE) is None
        assert await ledger.find_operation(holds[OperationType.RELEASE], OperationType.ROLLBACK) is None
        assert await ledger.find_operation(t_id, OperationType.ISSUE) is None
        assert await ledger.find_operation(f"never-{asset}", OperationType.TRANSFER) is None
        assert await _balances(ledger, asset, alice, bob) == [(70, 0), (15, 0)]

    # -- the owner's consent -------------------------------------------------------------------------------------
    async def test_owner_consent_is_checked(self, ledger_world: LedgerWorld) -> None:
        """Transfer, hold and redeem need the source's consent over exactly this operation. A consent that is not
        one is ``LEDGER_BAD_SIGNATURE`` (another key's signature claimed as the owner's, another key's consent, the
        owner's consent to another amount or to another kind of operation, a redeem without any), a template of a
        kind the ledger cannot check ``LEDGER_UNSUPPORTED_CONSENT``, and a template that is not a well-formed one
        ``CONSENT_INVALID`` (or ``LEDGER_UNSUPPORTED_CONSENT`` from a ledger that takes its own template only).
        Nothing changes and the operation id stays free: the owner's genuine consent goes through after all."""
        ledger = ledger_world.ledger
        asset, alice, bob = await _funded(ledger_world)
        mallory = SigningKey.generate()
        op_id = f"s-1-{asset}"
        template = await ledger.consent_template(OperationType.TRANSFER, asset, alice.fin_id, bob.fin_id, 5, op_id)
        assert isinstance(template.get("hash"), str) and len(template["hash"].removeprefix("0x")) == 64
        claimed = signed(mallory, template, signer=alice.fin_id)
        mallorys = signed(mallory, template)
        wrong_amount = await consent(ledger, alice, OperationType.TRANSFER, asset, alice.fin_id, bob.fin_id, 50, op_id)
        wrong_kind = await consent(ledger, alice, OperationType.HOLD, asset, alice.fin_id, bob.fin_id, 5, op_id)
        for bad in (claimed, mallorys, wrong_amount, wrong_kind):
            await refused(
                ledger.transfer(asset, alice.fin_id, bob.fin_id, 5, op_id, bad), ErrorCode.LEDGER_BAD_SIGNATURE
            )
        await refused(ledger.redeem(asset, alice.fin_id, 5, f"s-2-{asset}", None), ErrorCode.LEDGER_BAD_SIGNATURE)
        not_a_template = OwnerConsent("hashList", alice.fin_id, "00" * 64, {})
        await refused(
            ledger.transfer(asset, alice.fin_id, bob.fin_id, 5, op_id, not_a_template),
            ErrorCode.CONSENT_INVALID,
            ErrorCode.LEDGER_UNSUPPORTED_CONSENT,
        )
        await refused(
            ledger.transfer(asset, alice.fin_id, bob.fin_id, 5, op_id, replace(not_a_template, template="PGP")),
            ErrorCode.LEDGER_UNSUPPORTED_CONSENT,
        )
        assert await _balances(ledger, asset, alice, bob) == [(100, 0), (0, 0)]
        assert await ledger.find_operation(op_id, OperationType.TRANSFER) is None, "a refused operation is unused"
        tx = await ledger.transfer(asset, alice.fin_id, bob.fin_id, 5, op_id, signed(alice, template))
        assert tx.succeeded and tx.quantity == 5
        assert await _balances(ledger, asset, alice, bob) == [(95, 0), (5, 0)]

    async def test_consent_template_only_for_consented_operations(self, ledger_world: LedgerWorld) -> None:
        """Only transfer, hold and redeem take the owner's consent: the template of any other operation is
        ``LEDGER_INVALID_FIELD``. A template is the same for the same operation and differs for another."""
        ledger = ledger_world.ledger
        asset, alice, bob = await _funded(ledger_world)
        for kind in (OperationType.ISSUE, OperationType.RELEASE, OperationType.ROLLBACK):
            await refused(
                ledger.consent_template(kind, asset, alice.fin_id, bob.fin_id, 1, f"c-{asset}"),
                ErrorCode.LEDGER_INVALID_FIELD,
            )
        hashes = set()
        for kind, expiry in ((OperationType.TRANSFER, 0), (OperationType.HOLD, 0), (OperationType.HOLD, 10**10)):
            first = await ledger.consent_template(kind, asset, alice.fin_id, bob.fin_id, 1, f"c-{asset}", expiry)
            again = await ledger.consent_template(kind, asset, alice.fin_id, bob.fin_id, 1, f"c-{asset}", expiry)
            assert first == again
            hashes.add(first["hash"])
        redeem = await ledger.consent_template(OperationType.REDEEM, asset, alice.fin_id, None, 1, f"c-{asset}")
        hashes.add(redeem["hash"])
        assert len(hashes) == 4, "each operation has its own template"

    async def test_a_routers_signed_template_authorises_one_operation(self, ledger_world: LedgerWorld) -> None:
        """A consent over another template than the ledger's own (a FinP2P router's typed data, which the caller
        has checked against the operation) is checked by the ledger for the owner's signature and authorises one
        operation: used again it is ``LEDGER_CONSENT_USED``, and a signature by another key said to be the
        owner's is ``LEDGER_BAD_SIGNATURE``."""
        ledger = ledger_world.ledger
        asset, alice, bob = await _funded(ledger_world)
        types = {
            "FinId": [("idkey", "string")],
            "Selling": [("nonce", "string"), ("seller", "FinId"), ("amount", "string")],
        }
        domain = {"name": "FinP2P", "version": "1", "chainId": 1, "verifyingContract": "0x" + "00" * 20}
        message = {"nonce": f"n-1-{asset}", "seller": {"idkey": alice.fin_id}, "amount": "7"}
        owner = signed(alice, eip712.adapter_template(domain, "Selling", types, message))
        tx = await ledger.transfer(asset, alice.fin_id, bob.fin_id, 7, f"r-1-{asset}", owner)
        assert tx.succeeded
        assert await _balances(ledger, asset, alice, bob) == [(93, 0), (7, 0)]
        await refused(
            ledger.transfer(asset, alice.fin_id, bob.fin_id, 7, f"r-2-{asset}", owner), ErrorCode.LEDGER_CONSENT_USED
        )
        other = eip712.adapter_template(domain, "Selling", types, {**message, "nonce": f"n-2-{asset}"})
        await refused(
            ledger.transfer(
                asset, alice.fin_id, bob.fin_id, 7, f"r-3-{asset}", signed(bob, other, signer=alice.fin_id)
            ),
            ErrorCode.LEDGER_BAD_SIGNATURE,
        )
        assert await _balances(ledger, asset, alice, bob) == [(93, 0), (7, 0)]

    async def test_only_the_operator_submits(self, ledger_world: LedgerWorld) -> None:
        """Another identity on the same deployment can submit nothing, not even with the owner's genuine consent,
        nor record receipts: ``LEDGER_NOT_OPERATOR``. It may read."""
        ledger = ledger_world.ledger
        asset, alice, _ = await _funded(ledger_world)
        intruder = SigningKey.generate()
        made = ledger_world.other_ledger(intruder)
        other = await made if inspect.isawaitable(made) else made
        await refused(other.issue(asset, intruder.fin_id, 1000, f"steal-{asset}"), ErrorCode.LEDGER_NOT_OPERATOR)
        op_id = f"steal-2-{asset}"
        owner = await consent(ledger, alice, OperationType.TRANSFER, asset, alice.fin_id, intruder.fin_id, 5, op_id)
        await refused(
            other.transfer(asset, alice.fin_id, intruder.fin_id, 5, op_id, owner), ErrorCode.LEDGER_NOT_OPERATOR
        )
        await refused(other.record_receipts([secrets.token_bytes(32)]), ErrorCode.LEDGER_NOT_OPERATOR)
        assert await _balances(ledger, asset, alice, intruder) == [(100, 0), (0, 0)]
        assert await ledger.find_operation(op_id, OperationType.TRANSFER) is None
        assert await _balances(other, asset, alice) == [(100, 0)], "reading is open to the other identity"

    # -- holds ---------------------------------------------------------------------------------------------------
    async def test_hold_release_rollback_and_redeem(self, ledger_world: LedgerWorld) -> None:
        """A hold escrows units until it is released (to its payee, or to anyone when it names none; any remainder
        returns to the source), rolled back (exactly the held quantity) or redeemed (no new consent: the owner gave
        it for the hold), once. Releasing more than held, or rolling back another quantity, is
        ``LEDGER_HOLD_QUANTITY``; another payee or source than the hold's ``LEDGER_HOLD_MISMATCH``; a hold settled
        already, or never made, ``LEDGER_UNKNOWN_HOLD``."""
        ledger = ledger_world.ledger
        asset, alice, bob = await _funded(ledger_world)
        h = {n: f"h-{n}-{asset}" for n in (1, 2, 3, 4)}

        async def hold(op_id: str, quantity: int, destination: str | None = None) -> LedgerTransaction:
            owner = await consent(ledger, alice, OperationType.HOLD, asset, alice.fin_id, destination, quantity, op_id)
            return await ledger.hold(asset, alice.fin_id, destination, quantity, op_id, 0, owner)

        held = await hold(h[1], 40, bob.fin_id)
        assert held.operation == OperationType.HOLD and held.quantity == 40 and held.source == alice.fin_id
        assert await _balances(ledger, asset, alice, bob) == [(60, 40), (0, 0)]
        await refused(ledger.release(asset, alice.fin_id, bob.fin_id, 41, h[1]), ErrorCode.LEDGER_HOLD_QUANTITY)
        await refused(ledger.release(asset, alice.fin_id, alice.fin_id, 10, h[1]), ErrorCode.LEDGER_HOLD_MISMATCH)
        await refused(ledger.release(asset, bob.fin_id, bob.fin_id, 10, h[1]), ErrorCode.LEDGER_HOLD_MISMATCH)
        assert await _balances(ledger, asset, alice, bob) == [(60, 40), (0, 0)], "refusals change nothing"
        tx = await ledger.release(asset, alice.fin_id, bob.fin_id, 30, h[1])
        assert tx.operation == OperationType.RELEASE and tx.quantity == 30 and tx.operation_id == h[1]
        assert await _balances(ledger, asset, alice, bob) == [(70, 0), (30, 0)], "the remainder returns to the source"
        await refused(ledger.release(asset, alice.fin_id, bob.fin_id, 10, h[1]), ErrorCode.LEDGER_UNKNOWN_HOLD)
        await refused(ledger.rollback(asset, alice.fin_id, 10, h[1]), ErrorCode.LEDGER_UNKNOWN_HOLD)
        await refused(ledger.rollback(asset, alice.fin_id, 10, f"never-held-{asset}"), ErrorCode.LEDGER_UNKNOWN_HOLD)
        await refused(
            ledger.release(asset, alice.fin_id, bob.fin_id, 10, f"never-held-{asset}"), ErrorCode.LEDGER_UNKNOWN_HOLD
        )

        await hold(h[2], 20)  # no payee named
        await refused(ledger.rollback(asset, alice.fin_id, 19, h[2]), ErrorCode.LEDGER_HOLD_QUANTITY)
        tx = await ledger.rollback(asset, alice.fin_id, 20, h[2])
        assert tx.operation == OperationType.ROLLBACK and tx.operation_id == h[2]
        assert await _balances(ledger, asset, alice) == [(70, 0)]
        await refused(ledger.release(asset, alice.fin_id, bob.fin_id, 20, h[2]), ErrorCode.LEDGER_UNKNOWN_HOLD)

        await hold(h[3], 25)
        await refused(ledger.redeem(asset, alice.fin_id, 26, h[3], None), ErrorCode.LEDGER_HOLD_QUANTITY)
        tx = await ledger.redeem(asset, alice.fin_id, 25, h[3], None)
        assert tx.operation == OperationType.REDEEM and tx.quantity == 25 and tx.operation_id == h[3]
        assert await _balances(ledger, asset, alice) == [(45, 0)]
        if isinstance(ledger_world, ReportsSupply):
            assert await ledger_world.supply(asset) == 75

        carol = SigningKey.generate()
        await hold(h[4], 5)  # no payee named: released to anyone
        await ledger.release(asset, alice.fin_id, carol.fin_id, 5, h[4])
        assert await _balances(ledger, asset, alice, bob, carol) == [(40, 0), (30, 0), (5, 0)]

    async def test_hold_expiry(self, ledger_world: LedgerWorld) -> None:
        """Before its expiry a hold is released as any other; after it, releasing or redeeming it is
        ``LEDGER_HOLD_EXPIRED`` and it can only be rolled back, which returns everything to the source."""
        ledger = ledger_world.ledger
        asset, alice, bob = await _funded(ledger_world)
        step = ledger_world.max_expiry_step_s
        expiry = await ledger_world.now() + step // 2
        ids = [f"e-{n}-{asset}" for n in (1, 2)]
        for op_id in ids:
            owner = await consent(ledger, alice, OperationType.HOLD, asset, alice.fin_id, bob.fin_id, 10, op_id, expiry)
            await ledger.hold(asset, alice.fin_id, bob.fin_id, 10, op_id, expiry, owner)
        await ledger.release(asset, alice.fin_id, bob.fin_id, 10, ids[1])  # not expired yet
        await ledger_world.advance_time(step)
        await refused(ledger.release(asset, alice.fin_id, bob.fin_id, 10, ids[0]), ErrorCode.LEDGER_HOLD_EXPIRED)
        await refused(ledger.redeem(asset, alice.fin_id, 10, ids[0], None), ErrorCode.LEDGER_HOLD_EXPIRED)
        assert await _balances(ledger, asset, alice, bob) == [(80, 10), (10, 0)]
        tx = await ledger.rollback(asset, alice.fin_id, 10, ids[0])
        assert tx.operation == OperationType.ROLLBACK
        assert await _balances(ledger, asset, alice, bob) == [(90, 0), (10, 0)]

    # -- bad input -----------------------------------------------------------------------------------------------
    async def test_bad_fields_are_refused_before_the_ledger(self, ledger_world: LedgerWorld) -> None:
        """Malformed input is refused before anything reaches the ledger (its height does not move): an account
        that is not a FinID ``LEDGER_INVALID_ACCOUNT``, a quantity that is not positive ``LEDGER_INVALID_QUANTITY``,
        an empty operation or asset id ``LEDGER_INVALID_FIELD``, an asset never created ``LEDGER_UNKNOWN_ASSET``,
        an empty batch of receipts ``LEDGER_INVALID_QUANTITY``."""
        ledger = ledger_world.ledger
        asset, alice, bob = await _funded(ledger_world)
        height = await ledger.height()
        unknown = f"bank-{uuid.uuid4().hex[:8]}:102:never-created"
        cases: list[tuple[Awaitable[object], ErrorCode]] = [
            (ledger.issue(asset, "02" + "zz" * 32, 1, f"b-1-{asset}"), ErrorCode.LEDGER_INVALID_ACCOUNT),
            (ledger.issue(asset, "not a FinID", 1, f"b-1-{asset}"), ErrorCode.LEDGER_INVALID_ACCOUNT),
            (ledger.issue(asset, alice.fin_id, 0, f"b-2-{asset}"), ErrorCode.LEDGER_INVALID_QUANTITY),
            (ledger.issue(asset, alice.fin_id, -5, f"b-3-{asset}"), ErrorCode.LEDGER_INVALID_QUANTITY),
            (ledger.issue(asset, alice.fin_id, 1, ""), ErrorCode.LEDGER_INVALID_FIELD),
            (ledger.issue(unknown, alice.fin_id, 1, f"b-4-{asset}"), ErrorCode.LEDGER_UNKNOWN_ASSET),
            (ledger.create_asset("", {}), ErrorCode.LEDGER_INVALID_FIELD),
            (
                ledger.release(asset, alice.fin_id, "02" + "zz" * 32, 1, f"b-5-{asset}"),
                ErrorCode.LEDGER_INVALID_ACCOUNT,
            ),
            (ledger.rollback(asset, alice.fin_id, 0, f"b-6-{asset}"), ErrorCode.LEDGER_INVALID_QUANTITY),
            (ledger.record_receipts([]), ErrorCode.LEDGER_INVALID_QUANTITY),
        ]
        for call, code in cases:
            await refused(call, code)
        owner = await consent(ledger, alice, OperationType.TRANSFER, asset, alice.fin_id, bob.fin_id, 0, f"b-7-{asset}")
        await refused(
            ledger.transfer(asset, alice.fin_id, bob.fin_id, 0, f"b-7-{asset}", owner),
            ErrorCode.LEDGER_INVALID_QUANTITY,
        )
        assert await ledger.height() == height, "nothing reached the ledger"
        assert await _balances(ledger, asset, alice) == [(100, 0)]

    # -- receipts ------------------------------------------------------------------------------------------------
    async def test_receipt_registry(self, ledger_world: LedgerWorld) -> None:
        """Receipt hashes are recorded one at a time or as a batch's Merkle root (:mod:`finp2p.identity.merkle`):
        the transaction's ``quantity`` is the batch's size and its ``event`` holds ``root`` (0x-hex, as the auditor
        compares it) and ``count``. ``receipt_recorded`` holds a batch member with its proof, not alone, and nothing
        that was not recorded. Recording a root again is ``LEDGER_ALREADY_RECORDED``, after which the node asks
        ``find_receipts_record`` for the transaction that recorded it; ``None`` for a root never recorded."""
        ledger = ledger_world.ledger
        hashes = [secrets.token_bytes(32) for _ in range(5)]
        root = merkle.root(hashes)
        tx = await ledger.record_receipts(hashes)
        assert tx.succeeded and tx.quantity == 5 and tx.ledger_id == ledger.ledger_id
        assert tx.event["root"] == "0x" + root.hex() and tx.event["count"] == 5
        assert await ledger.transaction(tx.transaction_id) == tx
        for leaf, proof in zip(hashes, merkle.proofs(hashes), strict=True):
            assert await ledger.receipt_recorded(leaf, proof)
            assert not await ledger.receipt_recorded(leaf), "a batch member alone is not a recorded root"
        assert await ledger.receipt_recorded(root)
        assert not await ledger.receipt_recorded(secrets.token_bytes(32), merkle.proofs(hashes)[0])
        assert not await ledger.receipt_recorded(secrets.token_bytes(32))
        await refused(ledger.record_receipts(hashes), ErrorCode.LEDGER_ALREADY_RECORDED)
        assert await ledger.find_receipts_record(root) == tx

        single = secrets.token_bytes(32)
        one = await ledger.record_receipts([single])
        assert one.quantity == 1 and one.event["root"] == "0x" + single.hex()
        assert await ledger.receipt_recorded(single)
        await refused(ledger.record_receipts([single]), ErrorCode.LEDGER_ALREADY_RECORDED)
        assert await ledger.find_receipts_record(single) == one
        assert await ledger.find_receipts_record(secrets.token_bytes(32)) is None

    # -- the conservation property -------------------------------------------------------------------------------
    @settings(
        max_examples=10,
        deadline=None,
        # No shrinking: every step is a real transaction, and shrinking a failure would take minutes. The failing
        # sequence is printed whole.
        phases=(Phase.explicit, Phase.reuse, Phase.generate),
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,  # one world for all examples; each example has its own asset
            HealthCheck.differing_executors,  # the same test runs in every subclass
        ],
    )
    @given(steps=st.lists(_STEP, min_size=3, max_size=12))
    async def test_balances_are_conserved(self, ledger_world: LedgerWorld, steps: Sequence[_Step]) -> None:
        """Under any sequence of issues, transfers, redeems, holds, releases and rollbacks: each one is refused
        exactly when the source has too little available, with ``LEDGER_INSUFFICIENT_BALANCE``; every holder's
        available and held units are what a model of the sequence says; and what exists (issued less redeemed,
        and the world's ``supply`` where it reports one) is what is available plus what is held."""
        ledger = ledger_world.ledger
        asset = await ledger_world.new_asset()
        available = [0, 0, 0]
        held = [0, 0, 0]
        holds: list[tuple[str, int, int]] = []  # open holds: (operation id, source, quantity)
        exists = 0
        # Every holder starts with some units, so that most steps move something (a step of more than its source
        # has is still refused often enough: quantities go up to 60).
        prefix: list[_Step] = [("issue", i, i, 40) for i in range(len(_HOLDERS))]
        for n, (kind, a, b, quantity) in enumerate([*prefix, *steps]):
            op_id = f"p-{n}-{asset}"
            src, dst = _HOLDERS[a], _HOLDERS[b]
            enough = available[a] >= quantity
            if kind == "issue":
                await ledger.issue(asset, dst.fin_id, quantity, op_id)
                available[b] += quantity
                exists += quantity
            elif kind in ("transfer", "redeem", "hold"):
                op = OperationType(kind)
                destination = dst.fin_id if kind == "transfer" else None
                owner = await consent(ledger, src, op, asset, src.fin_id, destination, quantity, op_id)
                if kind == "transfer":
                    call = ledger.transfer(asset, src.fin_id, dst.fin_id, quantity, op_id, owner)
                elif kind == "redeem":
                    call = ledger.redeem(asset, src.fin_id, quantity, op_id, owner)
                else:
                    call = ledger.hold(asset, src.fin_id, None, quantity, op_id, 0, owner)
                if not enough:
                    await refused(call, ErrorCode.LEDGER_INSUFFICIENT_BALANCE)
                    continue
                await call
                available[a] -= quantity
                if kind == "transfer":
                    available[b] += quantity
                elif kind == "redeem":
                    exists -= quantity
                else:
                    held[a] += quantity
                    holds.append((op_id, a, quantity))
            elif holds:
                hold_id, owner_index, in_hold = holds.pop(quantity % len(holds))
                owner_id = _HOLDERS[owner_index].fin_id
                held[owner_index] -= in_hold
                if kind == "release":
                    paid = min(in_hold, quantity)
                    await ledger.release(asset, owner_id, dst.fin_id, paid, hold_id)
                    available[b] += paid
                    available[owner_index] += in_hold - paid
                else:
                    await ledger.rollback(asset, owner_id, in_hold, hold_id)
                    available[owner_index] += in_hold
        found = await _balances(ledger, asset, *_HOLDERS)
        assert found == list(zip(available, held, strict=True)), steps
        assert sum(x + y for x, y in found) == exists
        if isinstance(ledger_world, ReportsSupply):
            assert await ledger_world.supply(asset) == exists
