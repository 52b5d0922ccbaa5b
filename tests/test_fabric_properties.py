"""Balance conservation on the Fabric chaincode under random sequences of operations: supply = available + held,
as the plugin reports it, after any sequence (hypothesis, a few examples: each operation is a real transaction)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devnet.fabric import FabricNetwork
from finp2p.errors import FinP2PError
from finp2p.identity.keys import SigningKey
from finp2p_fabric.consent import Operation
from tests.support.fabric import make_fabric_world

pytestmark = pytest.mark.fabric

HOLDERS = [SigningKey(bytes([i + 1]) * 32) for i in range(3)]
_KINDS = ("issue", "transfer", "redeem", "hold", "release", "rollback")
_operation = st.tuples(st.sampled_from(_KINDS), st.integers(0, 2), st.integers(0, 2), st.integers(1, 60))


async def _run(network: FabricNetwork, steps: list[tuple[str, int, int, int]]) -> None:
    world = make_fabric_world(network)
    try:
        asset = await world.new_asset()  # a fresh asset per example: the holders start empty
        ledger = world.ledger
        model_available = [0, 0, 0]
        holds: list[tuple[str, int, int]] = []  # open holds: (operation id, source, quantity)
        for n, (kind, a, b, quantity) in enumerate(steps):
            op_id = f"p-{n}-{asset}"
            src, dst = HOLDERS[a], HOLDERS[b]
            try:
                if kind == "issue":
                    await ledger.issue(asset, dst.fin_id, quantity, op_id)
                    model_available[b] += quantity
                elif kind == "transfer":
                    op = Operation(op_id, asset, src.fin_id, dst.fin_id, quantity)
                    await ledger.transfer(
                        asset, src.fin_id, dst.fin_id, quantity, op_id, world.consent(src, "Transfer", op)
                    )
                    model_available[a] -= quantity
                    model_available[b] += quantity
                elif kind == "redeem":
                    op = Operation(op_id, asset, src.fin_id, "", quantity)
                    await ledger.redeem(asset, src.fin_id, quantity, op_id, world.consent(src, "Redeem", op))
                    model_available[a] -= quantity
                elif kind == "hold":
                    op = Operation(op_id, asset, src.fin_id, "", quantity, 0)
                    await ledger.hold(asset, src.fin_id, None, quantity, op_id, 0, world.consent(src, "Hold", op))
                    model_available[a] -= quantity
                    holds.append((op_id, a, quantity))
                elif holds:
                    hold_id, owner, held = holds[quantity % len(holds)]
                    if kind == "release":
                        paid = min(held, quantity)
                        await ledger.release(asset, HOLDERS[owner].fin_id, dst.fin_id, paid, hold_id)
                        model_available[b] += paid
                        model_available[owner] += held - paid
                    else:
                        await ledger.rollback(asset, HOLDERS[owner].fin_id, held, hold_id)
                        model_available[owner] += held
                    holds.remove((hold_id, owner, held))
            except FinP2PError as exc:
                assert exc.code.code == "FP6001", exc  # the only refusal a valid sequence can meet
                continue
        balances = [await ledger.balance(asset, h.fin_id) for h in HOLDERS]
        supply = await ledger.supply(asset)
        assert supply == sum(b.available + b.held for b in balances)
        assert [b.available for b in balances] == model_available
        assert sum(b.held for b in balances) == sum(q for _, _, q in holds)
    finally:
        await world.close()


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(_operation, min_size=4, max_size=12))
def test_supply_is_conserved_under_any_sequence(
    fabric_network: FabricNetwork, steps: list[tuple[str, int, int, int]]
) -> None:
    asyncio.run(_run(fabric_network, steps))
