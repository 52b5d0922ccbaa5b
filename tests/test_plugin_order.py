"""Every hook is called in pluggy's order (tryfirst, then last registered first, then trylast), and wrappers are
refused at registration: for each gathered hook and the event hooks, through the code the node calls them by."""

from __future__ import annotations

from typing import Any

import click
import pytest
from pydantic import BaseModel

from finp2p import compliance
from finp2p.compliance import TransferCheck, Violation
from finp2p.components import ComponentKind
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.hookspecs import hookimpl as _hookimpl
from finp2p.plugins import PluginManager

hookimpl: Any = _hookimpl  # called with marks built at run time

# (hook, what one implementation answers given a label) for every gathered hook
GATHERED: dict[str, Any] = {
    "finp2p_ledger_kinds": lambda label: [ComponentKind(f"kind-{label}", lambda settings, context: None)],
    "finp2p_transport_kinds": lambda label: [ComponentKind(f"kind-{label}", lambda settings, context: None)],
    "finp2p_acl_backend_kinds": lambda label: [ComponentKind(f"kind-{label}", lambda settings, context: None)],
    "finp2p_message_handlers": lambda label: {f"test.{label}": None},
    "finp2p_broadcast_queries": lambda label: {f"test.{label}": None},
    "finp2p_check_transfer": lambda label: Violation(f"rule-{label}", "no"),
    "finp2p_cli_commands": lambda label: [click.Command(f"cmd-{label}")],
    "finp2p_config_sections": lambda label: {f"section_{label}": BaseModel},
}
EVENTS = ["finp2p_node_started", "finp2p_node_stopping", "finp2p_receipt_issued", "finp2p_topic_message"]


def make_plugin(hook: str, label: str, calls: list[str], answer: Any = None, **marks: bool) -> object:
    """A plugin object implementing ``hook`` alone, recording its label when called."""

    def implementation() -> Any:
        calls.append(label)
        return answer

    implementation.__name__ = hook
    return type(f"Plugin_{label}", (), {hook: staticmethod(hookimpl(**marks)(implementation))})()


def manager_with(hook: str, calls: list[str], answer_for: Any = lambda label: None) -> PluginManager:
    """Four plugins registered in the order plain-a, first, last, plain-b."""
    pm = PluginManager(load_entry_points=False)
    for label, marks in [("plain-a", {}), ("first", {"tryfirst": True}), ("last", {"trylast": True}), ("plain-b", {})]:
        assert pm.register(make_plugin(hook, label, calls, answer_for(label), **marks), name=label), pm.problems
    return pm


PLUGGY_ORDER = ["first", "plain-b", "plain-a", "last"]


def test_implementations_are_listed_in_pluggy_order() -> None:
    for hook in [*GATHERED, *EVENTS]:
        pm = manager_with(hook, [])
        names = [pm.plugin_name(impl.plugin) for impl in pm.implementations(hook)]
        assert [name for name in names if name in PLUGGY_ORDER] == PLUGGY_ORDER, hook
        if len(names) > 4:  # a built-in implements it too: registered first, so called after the plain ones
            assert names[:3] == PLUGGY_ORDER[:3] and names[-1] == "last", hook


@pytest.mark.parametrize("hook", ["finp2p_ledger_kinds", "finp2p_transport_kinds", "finp2p_acl_backend_kinds"])
def test_component_kind_hooks_are_called_in_pluggy_order(hook: str) -> None:
    calls: list[str] = []
    pm = manager_with(hook, calls, GATHERED[hook])
    role = {"finp2p_ledger_kinds": "ledger", "finp2p_transport_kinds": "transport"}.get(hook, "acl")
    kinds = pm.kinds(role)  # type: ignore[arg-type]
    assert calls == PLUGGY_ORDER
    assert {f"kind-{label}" for label in PLUGGY_ORDER} <= set(kinds)


def test_a_kind_claimed_twice_stays_with_the_plugin_registered_first() -> None:
    pm = PluginManager(load_entry_points=False)

    def same(label: str) -> list[ComponentKind[Any]]:
        return [ComponentKind("shared", lambda settings, context: label)]

    pm.register(make_plugin("finp2p_ledger_kinds", "early", [], same("early")), name="early")
    pm.register(make_plugin("finp2p_ledger_kinds", "late", [], same("late"), tryfirst=True), name="late")
    assert pm.kinds("ledger")["shared"].factory({}, None) == "early"  # type: ignore[arg-type]
    conflict = [p for p in pm.problems if p.plugin == "late"]
    assert conflict and conflict[0].error.code is ErrorCode.PLUGIN_CONFLICT


@pytest.mark.parametrize("hook", ["finp2p_message_handlers", "finp2p_broadcast_queries", "finp2p_config_sections"])
def test_name_table_hooks_are_gathered_in_pluggy_order(hook: str) -> None:
    calls: list[str] = []
    pm = manager_with(hook, calls, GATHERED[hook])
    table = pm.gather(hook, node=None)
    assert calls == PLUGGY_ORDER
    assert {GATHERED[hook](label).popitem()[0] for label in PLUGGY_ORDER} <= set(table)


def test_a_name_claimed_twice_stops_the_gathering() -> None:
    pm = PluginManager(load_entry_points=False)
    for label in ("one", "two"):
        pm.register(make_plugin("finp2p_message_handlers", label, [], {"test.same": label}), name=label)
    with pytest.raises(FinP2PError) as caught:
        pm.gather("finp2p_message_handlers", node=None)
    assert caught.value.code is ErrorCode.PLUGIN_CONFLICT and "'one'" in str(caught.value)


def test_an_implementation_that_raises_is_named_when_gathering() -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("boom")

    broken.__name__ = "finp2p_broadcast_queries"
    pm = PluginManager(load_entry_points=False)
    pm.register(type("Broken", (), {broken.__name__: staticmethod(hookimpl(broken))})(), name="broken")
    with pytest.raises(FinP2PError) as caught:
        pm.gather("finp2p_broadcast_queries", node=None)
    assert caught.value.code is ErrorCode.PLUGIN_BAD_RESULT and "broken" in str(caught.value)


async def test_compliance_checks_are_asked_in_pluggy_order() -> None:
    calls: list[str] = []
    pm = manager_with("finp2p_check_transfer", calls, GATHERED["finp2p_check_transfer"])
    check = TransferCheck(asset_id="a", operation="transfer", quantity=1, source="s", destination="d")
    violations = await compliance.check_transfer(pm, None, check)  # type: ignore[arg-type]
    assert calls == PLUGGY_ORDER
    ours = [v for v in violations if v.plugin in PLUGGY_ORDER]  # the built-in rules answer too
    assert [v.rule for v in ours] == [f"rule-{label}" for label in PLUGGY_ORDER]
    assert [v.plugin for v in ours] == PLUGGY_ORDER


def test_cli_commands_are_asked_in_pluggy_order() -> None:
    calls: list[str] = []
    pm = manager_with("finp2p_cli_commands", calls, GATHERED["finp2p_cli_commands"])
    answered = [name for name, _ in pm.call_each("finp2p_cli_commands") if name in PLUGGY_ORDER]
    assert calls == PLUGGY_ORDER and answered == PLUGGY_ORDER


@pytest.mark.parametrize("hook", EVENTS)
async def test_event_hooks_are_called_in_pluggy_order_and_awaited_one_by_one(hook: str) -> None:
    calls: list[str] = []
    pm = PluginManager(load_entry_points=False)

    def plugin(label: str, **marks: bool) -> object:
        async def implementation() -> None:
            calls.append(f"{label}:start")
            calls.append(f"{label}:end")

        def sync_part() -> Any:
            return implementation()

        sync_part.__name__ = hook
        return type(label, (), {hook: staticmethod(hookimpl(**marks)(sync_part))})()

    for label, marks in [("plain-a", {}), ("first", {"tryfirst": True}), ("last", {"trylast": True}), ("plain-b", {})]:
        assert pm.register(plugin(label, **marks), name=label)
    await pm.emit(hook, raise_errors=False, node=None, receipt={}, message=None)
    assert calls == [f"{label}:{part}" for label in PLUGGY_ORDER for part in ("start", "end")]


async def test_an_event_failure_is_logged_and_the_next_plugin_still_called() -> None:
    calls: list[str] = []
    pm = PluginManager(load_entry_points=False)

    def failing() -> None:
        calls.append("failing")
        raise RuntimeError("boom")

    failing.__name__ = "finp2p_node_stopping"
    pm.register(make_plugin("finp2p_node_stopping", "after", calls), name="after")
    pm.register(type("F", (), {failing.__name__: staticmethod(hookimpl(tryfirst=True)(failing))})(), name="failing")
    await pm.emit("finp2p_node_stopping", raise_errors=False, node=None)
    assert calls == ["failing", "after"]
    with pytest.raises(RuntimeError):
        await pm.emit("finp2p_node_stopping", node=None)


@pytest.mark.parametrize("marks", [{"wrapper": True}, {"hookwrapper": True}], ids=["wrapper", "hookwrapper"])
@pytest.mark.parametrize("hook", [*GATHERED, *EVENTS])
def test_wrappers_are_refused_at_registration(hook: str, marks: dict[str, bool]) -> None:
    def wrapping() -> Any:
        yield

    wrapping.__name__ = hook
    pm = PluginManager(load_entry_points=False)
    wrapper = type("Wrapper", (), {hook: staticmethod(hookimpl(**marks)(wrapping))})()
    assert not pm.register(wrapper, name="wrapper")
    assert [p.error.code for p in pm.problems] == [ErrorCode.PLUGIN_WRAPPER]
    assert hook in str(pm.problems[0].error)
    assert not pm.pm.has_plugin("wrapper")
    assert all(pm.plugin_name(impl.plugin) != "wrapper" for impl in pm.implementations(hook))
