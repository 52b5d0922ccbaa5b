"""The node's use of hooks, in-process with plugin objects (unit tests of node.py; discovery is test_plugins.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from finp2p import hookimpl
from finp2p.compliance import TransferCheck, Violation
from finp2p.components import ComponentKind
from finp2p.config import load_settings
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.node import Node
from finp2p.plugins import PluginManager

CHECK = TransferCheck("orgB:102:bond", "transfer", 500, "02aa", "03bb")


def make_node(tmp_path: Path, *plugins: object, config: str = "") -> Node:
    pm = PluginManager(load_entry_points=False)
    for i, p in enumerate(plugins):
        assert pm.register(p, name=f"p{i}"), pm.problems
    path = tmp_path / "node.toml"
    path.write_text(config)
    return Node(load_settings(path, plugins=pm, env={}), pm)


class AsyncVeto:
    @hookimpl
    async def finp2p_check_transfer(self, check: TransferCheck) -> Violation:
        await asyncio.sleep(0)
        return Violation("async", f"{check.quantity} needs review")


class Crashes:
    @hookimpl
    def finp2p_check_transfer(self) -> None:
        raise RuntimeError("sanctions service down")


class AnswersNonsense:
    @hookimpl
    def finp2p_check_transfer(self) -> list[str]:
        return ["not a violation"]


async def test_all_compliance_answers_are_gathered(tmp_path: Path) -> None:
    node = make_node(
        tmp_path,
        AsyncVeto(),
        Crashes(),
        AnswersNonsense(),
        config="[compliance]\nblocked_fin_ids = ['03BB']\nmax_quantity = { 'orgB:102:bond' = 100 }\n",
    )
    found = await node.check_transfer(CHECK)
    assert {(v.plugin, v.rule) for v in found} == {
        ("compliance-rules", "blocked-party"),
        ("compliance-rules", "max-quantity"),
        ("p0", "async"),
        ("p1", "check-failed"),
        ("p2", "bad-answer"),
    }


async def test_no_rules_no_violations(tmp_path: Path) -> None:
    assert await make_node(tmp_path).check_transfer(CHECK) == []


async def test_kyc_rule(tmp_path: Path) -> None:
    node = make_node(tmp_path, config="[compliance]\nrequire_kyc = true\n")
    ok = TransferCheck("a", "transfer", 1, "02aa", "03bb", {"kyc_status": "verified"}, {"kyc_status": "verified"})
    assert await node.check_transfer(ok) == []
    missing = TransferCheck("a", "transfer", 1, "02aa", "03bb", {"kyc_status": "verified"}, {})
    assert [v.reason for v in await node.check_transfer(missing)] == ["the destination's KYC status is not verified"]


class Events:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    async def finp2p_node_started(self, node: Node) -> None:
        assert node.store is not None and node.acl is not None
        self.seen.append("started")

    @hookimpl
    def finp2p_node_stopping(self) -> None:
        self.seen.append("stopping")
        raise RuntimeError("a failing stop hook does not stop the node from closing")


async def test_lifecycle_events_and_store(tmp_path: Path) -> None:
    events = Events()
    node = make_node(tmp_path, events)
    await node.start()
    assert node.acl is not None
    assert await node.acl.is_allowed("orgX", "read", "r") is False
    await node.close()
    await node.close()  # once only
    assert events.seen == ["started", "stopping"]
    assert node.store is None


class FailsToStart:
    @hookimpl
    def finp2p_node_started(self) -> None:
        raise RuntimeError("cannot reach the HSM")


async def test_a_plugin_that_cannot_start_stops_the_node(tmp_path: Path) -> None:
    node = make_node(tmp_path, FailsToStart())
    with pytest.raises(RuntimeError, match="HSM"):
        await node.start()
    assert node.store is None and not node.started


async def test_unknown_acl_backend(tmp_path: Path) -> None:
    node = make_node(tmp_path, config="[acl]\nbackend = 'ldap'\n")
    with pytest.raises(FinP2PError) as info:
        await node.start()
    assert info.value.code is ErrorCode.PLUGIN_UNKNOWN_KIND and "available: sql" in info.value.detail


class BadKinds:
    @hookimpl
    def finp2p_ledger_kinds(self) -> list[Any]:
        return ["ethereum"]


def test_a_bad_kind_answer_is_a_problem() -> None:
    pm = PluginManager(load_entry_points=False)
    pm.pm.register(BadKinds(), name="bad")
    assert pm.kinds("ledger") == {}
    assert [p.error.code for p in pm.problems] == [ErrorCode.PLUGIN_BAD_RESULT]


def test_strict_mode_raises_on_a_bad_kind_answer() -> None:
    pm = PluginManager(load_entry_points=False, strict=True)
    pm.pm.register(BadKinds(), name="bad")
    with pytest.raises(FinP2PError) as info:
        pm.kinds("ledger")
    assert info.value.code is ErrorCode.PLUGIN_STRICT


def test_component_kind_names_are_checked() -> None:
    with pytest.raises(ValueError):
        ComponentKind("has space", lambda s, c: None)
    with pytest.raises(ValueError):
        ComponentKind("ok", "not callable")  # type: ignore[arg-type]


# -- lifecycle: every part closed, in reverse order, whatever one raises -----------------------------------------
def ledger_plugin(events: list[str], *, fails_to_start: dict[str, FinP2PError] | None = None) -> object:
    """A plugin with a ``recording`` ledger kind whose ledgers note when they start and close; a ledger whose
    profile says ``close_raises`` raises as it closes."""
    from finp2p.ledger import Ledger

    def unused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not an operation test")

    stubs = {name: unused for name in Ledger.__abstractmethods__}

    class RecordingLedger(type("Stubs", (Ledger,), stubs)):  # type: ignore[misc]
        def __init__(self, settings: dict[str, Any]) -> None:
            self.ledger_id = settings["ledger_id"]
            self.close_raises = settings.get("close_raises", False)

        async def start(self) -> None:
            events.append(f"start {self.ledger_id}")
            if fails_to_start and self.ledger_id in fails_to_start:
                raise fails_to_start[self.ledger_id]

        async def close(self) -> None:
            events.append(f"close {self.ledger_id}")
            if self.close_raises:
                raise RuntimeError(f"{self.ledger_id} would not close")

    class Plugin:
        @hookimpl
        def finp2p_ledger_kinds(self) -> list[ComponentKind[Any]]:
            return [ComponentKind("recording", lambda settings, context: RecordingLedger(settings))]

    return Plugin()


def ledgers_config(tmp_path: Path, *names: str, raising: str = "") -> str:
    for name in names:
        settings = "close_raises = true\n" if name == raising else ""
        (tmp_path / f"{name}.toml").write_text(f'kind = "recording"\nledger_id = "test:{name}"\n[settings]\n{settings}')
    return "[ledgers]\nprofiles = [" + ", ".join(f'"{n}.toml"' for n in names) + "]\n"


async def test_a_node_closes_every_part_in_reverse_order_whatever_one_raises(tmp_path: Path) -> None:
    events: list[str] = []
    node = make_node(tmp_path, ledger_plugin(events), config=ledgers_config(tmp_path, "a", "b", "c", raising="b"))
    await node.start()
    assert events == ["start test:a", "start test:b", "start test:c"]
    with pytest.raises(ExceptionGroup) as caught:
        await node.close()
    assert events[3:] == ["close test:c", "close test:b", "close test:a"], "b's failure does not keep a open"
    assert [str(e) for e in caught.value.exceptions] == ["test:b would not close"]
    assert node.store is None and node.ledgers == {}


async def test_a_part_that_fails_to_start_closes_those_started_before_it(tmp_path: Path) -> None:
    events: list[str] = []
    bad = FinP2PError(ErrorCode.LEDGER_PROFILE, "test:b is a bad profile")
    plugin = ledger_plugin(events, fails_to_start={"test:b": bad})
    node = make_node(tmp_path, plugin, config=ledgers_config(tmp_path, "a", "b", "c"))
    with pytest.raises(FinP2PError) as caught:
        await node.start()
    assert caught.value is bad
    assert events == ["start test:a", "start test:b", "close test:b", "close test:a"], "c never opened"
    assert node.store is None and not node.started


async def test_a_ledger_that_does_not_answer_yet_does_not_stop_the_node(tmp_path: Path) -> None:
    events: list[str] = []
    down = FinP2PError(ErrorCode.LEDGER_UNREACHABLE, "test:a does not answer")
    node = make_node(
        tmp_path, ledger_plugin(events, fails_to_start={"test:a": down}), config=ledgers_config(tmp_path, "a")
    )
    await node.start()
    try:
        assert node.started and "test:a" in node.ledgers
    finally:
        await node.close()
    assert events == ["start test:a", "close test:a"]


async def test_the_primary_handles_one_operation_at_a_time_and_forgets_its_lock() -> None:
    """Two attempts at one operation never run side by side, others do, and once all are done no lock is kept (a
    node that runs for months does not keep one per operation id it ever saw)."""
    import asyncio

    from finp2p.assets.primary import Primary

    primary = Primary.__new__(Primary)  # only the lock table: the rest needs a whole node
    primary._locks = {}
    inside: list[str] = []
    overlaps: list[tuple[str, str]] = []

    async def attempt(op_id: str) -> None:
        async with primary._exclusive(op_id, "transfer"):
            overlaps.extend((op_id, other) for other in inside if other == op_id)
            inside.append(op_id)
            await asyncio.sleep(0.01)
            inside.remove(op_id)

    await asyncio.gather(*(attempt(f"op-{n % 3}") for n in range(12)))
    assert overlaps == [], "two attempts at one operation ran side by side"
    assert primary._locks == {}
