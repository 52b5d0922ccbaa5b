"""Test suites a plugin author runs against their own component, in the spirit of pytest's ``pytester``.

:mod:`finp2p.testing.ledger` is the **ledger conformance suite**: the behaviour every :class:`finp2p.ledger.Ledger`
must have for a node to rely on it (lifecycle, balances available and held, single-use operation ids and
``find_operation``, the owner's consent and its refusals, holds and their refusals, expiry, the receipt registry
with Merkle proofs, balances conserved under random sequences of operations, and each method's error codes). A
plugin runs it by subclassing :class:`LedgerConformance` in one of its test modules and giving it **one fixture**,
``ledger_world``, that yields a :class:`LedgerWorld` (its ledger on a fresh or shared deployment, plus the few
things a test needs around it)::

    # tests/test_my_ledger.py of the plugin
    import pytest
    from finp2p.testing import LedgerConformance

    class TestMyLedger(LedgerConformance):
        @pytest.fixture
        async def ledger_world(self):
            world = await start_my_world()   # .ledger, .new_asset(), .now(), .advance_time(s),
            try:                              # .other_ledger(key), .max_expiry_step_s, .close()
                yield world
            finally:
                await world.close()

        async def test_something_only_my_ledger_does(self, ledger_world): ...

pytest then collects every ``test_*`` of the suite in ``TestMyLedger`` (the base class itself is never collected).
The suite's tests are coroutines: they need pytest-asyncio (``asyncio_mode = "auto"``, or a
``pytestmark = pytest.mark.asyncio`` in the module) and hypothesis, and nothing of the plugin: they reach the
ledger only through :class:`finp2p.ledger.Ledger` and make the owner's consent through
:meth:`~finp2p.ledger.Ledger.consent_template` (:func:`consent`). A test the plugin cannot pass for a reason it
accepts is overridden in the subclass with a ``pytest.mark.skip(reason=...)`` that says why, so the gap is seen.
"""

from finp2p.testing.ledger import LedgerConformance, LedgerWorld, ReportsSupply, consent, refused, signed

__all__ = ["LedgerConformance", "LedgerWorld", "ReportsSupply", "consent", "refused", "signed"]
