"""The plugin manager: built-in plugins first, then every installed distribution in the ``finp2p`` entry-point
group. A plugin that cannot be loaded is reported with its distribution and the reason, and skipped (or, in strict
mode, stops the node)."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import inspect
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy

from finp2p import __version__, hookspecs
from finp2p.components import ComponentKind
from finp2p.edge import recursion
from finp2p.errors import ErrorCode, FinP2PError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "finp2p"
BUILTIN_MODULES = (
    "finp2p.builtins.https_transport",
    "finp2p.builtins.sql_acl",
    "finp2p.builtins.compliance_rules",
)
ComponentRole = Literal["ledger", "transport", "acl"]
_KIND_HOOKS: dict[ComponentRole, str] = {
    "ledger": "finp2p_ledger_kinds",
    "transport": "finp2p_transport_kinds",
    "acl": "finp2p_acl_backend_kinds",
}


@dataclass(frozen=True)
class PluginProblem:
    """A plugin that was not loaded, or a component of it that was refused."""

    plugin: str
    distribution: str
    error: FinP2PError

    def to_dict(self) -> dict[str, Any]:
        """The problem as ``finp2p plugins --json`` lists it: the plugin, its distribution and the error."""
        return {"plugin": self.plugin, "distribution": self.distribution, **self.error.to_dict()}


@dataclass
class PluginInfo:
    """A loaded plugin: where it comes from, the hooks it implements and what it provides, by role."""

    name: str
    distribution: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The plugin as ``finp2p plugins --json`` lists it."""
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "hooks": self.hooks,
            "provides": self.provides,
        }


class PluginManager:
    """Loads plugins and answers which components they provide.

    ``disabled`` names plugins (entry-point or built-in names) not to load. With ``strict``, any problem raises
    FP1104 listing all problems; otherwise problems are logged, kept in :attr:`problems` and the plugin is skipped.
    """

    def __init__(self, *, strict: bool = False, disabled: Iterable[str] = (), load_entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.strict = strict
        self.problems: list[PluginProblem] = []
        self._info: dict[str, PluginInfo] = {}
        self._kinds: dict[ComponentRole, dict[str, tuple[str, ComponentKind[Any]]]] | None = None
        for name in disabled:
            self.pm.set_blocked(name)
        for module_name in BUILTIN_MODULES:
            self._register(importlib.import_module(module_name), _builtin_name(module_name), "finp2p", __version__)
        if load_entry_points:
            self._load_entry_points()
            recursion.restore()  # a plugin's libraries may have raised it at import (see finp2p.edge.recursion)
        if self.strict:
            self.raise_if_problems()

    @property
    def hook(self) -> Any:
        """The hook relay of pluggy, to call a hook the pluggy way (a list of answers, in pluggy's order)."""
        return self.pm.hook

    # -- loading -------------------------------------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        eps = sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (_dist_name(ep), ep.name))
        for ep in eps:
            dist, version = _dist_name(ep), (ep.dist.version if ep.dist else "?")
            if self.pm.is_blocked(ep.name):
                log.info("plugin %s (%s) is disabled by the config", ep.name, dist)
                continue
            if self.pm.has_plugin(ep.name):
                self._problem(ep.name, dist, ErrorCode.PLUGIN_CONFLICT, f"a plugin named {ep.name!r} is loaded already")
                continue
            try:
                obj = ep.load()
            except Exception as exc:  # any failure of third-party import code is reported, never raised
                self._problem(ep.name, dist, ErrorCode.PLUGIN_IMPORT, f"importing {ep.value}: {_describe(exc)}")
                continue
            self._register(obj, ep.name, dist, version)

    def register(self, obj: object, *, name: str, distribution: str = "local", version: str = "0") -> bool:
        """Register a plugin object that is not an installed distribution (an application embedding the node, a
        test). It is checked like an installed one; ``False`` when it was refused (see :attr:`problems`)."""
        self._register(obj, name, distribution, version)
        return name in self._info

    def _register(self, obj: object, name: str, dist: str, version: str) -> None:
        if self.pm.is_blocked(name):
            return
        try:
            self.pm.register(obj, name=name)
        except pluggy.PluginValidationError as exc:
            if self.pm.has_plugin(name):  # pluggy may have added the hooks it checked before the bad one
                self.pm.unregister(name=name)
            self._problem(name, dist, ErrorCode.PLUGIN_HOOK_SIGNATURE, str(exc))
            return
        unknown = [impl for impl in _hookimpl_names(self.pm, obj) if not getattr(self.pm.hook, impl).has_spec()]
        wrappers = [
            impl.function.__name__
            for caller in self.pm.get_hookcallers(obj) or []
            for impl in caller.get_hookimpls()
            if impl.plugin is obj and (impl.wrapper or impl.hookwrapper)
        ]
        if wrappers:
            self.pm.unregister(obj)
            self._problem(
                name,
                dist,
                ErrorCode.PLUGIN_WRAPPER,
                f"implements {', '.join(sorted(wrappers))} as a wrapper: the node calls each implementation on its own",
            )
            return
        if unknown:
            self.pm.unregister(obj)
            self._problem(
                name,
                dist,
                ErrorCode.PLUGIN_HOOK_SIGNATURE,
                f"implements unknown hook(s) {', '.join(sorted(unknown))}",
            )
            return
        self._info[name] = PluginInfo(
            name=name,
            distribution=dist,
            version=version,
            builtin=dist == "finp2p",
            hooks=sorted(_hookimpl_names(self.pm, obj)),
        )
        self._kinds = None

    def _problem(self, plugin: str, dist: str, code: ErrorCode, detail: str) -> None:
        problem = PluginProblem(plugin, dist, FinP2PError(code, f"plugin {plugin!r} from {dist}: {detail}"))
        self.problems.append(problem)
        log.warning("skipping: %s", problem.error)

    def raise_if_problems(self) -> None:
        """Raise FP1104 ``PLUGIN_STRICT`` listing every problem, if there was any."""
        if self.problems:
            listed = "; ".join(str(p.error) for p in self.problems)
            raise FinP2PError(ErrorCode.PLUGIN_STRICT, listed, problems=[p.to_dict() for p in self.problems])

    # -- calling -------------------------------------------------------------------------------------------------
    def implementations(self, hook_name: str) -> list[pluggy.HookImpl]:
        """The implementations of a hook in the order the node calls them, which is pluggy's own: ``tryfirst``
        ones first, then the most recently registered first, ``trylast`` ones last."""
        return list(reversed(getattr(self.pm.hook, hook_name).get_hookimpls()))

    def call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of a hook, in :meth:`implementations` order, each with the arguments it asks
        for; ``(plugin name, answer)`` pairs, an implementation that raised answering with its exception."""
        answers: list[tuple[str, Any]] = []
        for impl in self.implementations(hook_name):
            try:
                answer: Any = impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
            except Exception as exc:  # each plugin answers for itself: one that raises does not silence the others
                answer = exc
            answers.append((self.plugin_name(impl.plugin), answer))
        return answers

    def gather(self, hook_name: str, **kwargs: Any) -> dict[str, Any]:
        """The union of a gathered ``{name: value}`` hook's answers. A name claimed twice raises FP1105
        ``PLUGIN_CONFLICT``, an implementation that raised or answered with something else FP1103
        ``PLUGIN_BAD_RESULT``: a node must not start with half of what its plugins declare."""
        merged: dict[str, Any] = {}
        owners: dict[str, str] = {}
        for plugin, answer in self.call_each(hook_name, **kwargs):
            if isinstance(answer, Exception):
                raise FinP2PError(
                    ErrorCode.PLUGIN_BAD_RESULT, f"plugin {plugin!r}: {hook_name}(): {_describe(answer)}"
                ) from answer
            if answer is not None and not isinstance(answer, dict):
                raise FinP2PError(
                    ErrorCode.PLUGIN_BAD_RESULT,
                    f"plugin {plugin!r}: {hook_name}() returned {type(answer).__name__}, expected a dict",
                )
            for name, value in (answer or {}).items():
                if name in merged:
                    raise FinP2PError(
                        ErrorCode.PLUGIN_CONFLICT,
                        f"{hook_name}: {name!r} is claimed by plugin {owners[name]!r} and again by {plugin!r}",
                    )
                merged[name], owners[name] = value, plugin
        return merged

    async def emit(self, hook_name: str, *, raise_errors: bool = True, **kwargs: Any) -> None:
        """Call an event hook's implementations in :meth:`implementations` order, awaiting each awaitable answer
        before calling the next. With ``raise_errors`` the first failure propagates (and the rest are not called);
        otherwise each failure is logged and the next implementation is called."""
        for impl in self.implementations(hook_name):
            try:
                result = impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
                if inspect.isawaitable(result):
                    await result
            except Exception:
                if raise_errors:
                    raise
                log.exception("plugin %s failed in %s", self.plugin_name(impl.plugin), hook_name)

    # -- components ----------------------------------------------------------------------------------------------
    def _collect_kinds(self) -> dict[ComponentRole, dict[str, tuple[str, ComponentKind[Any]]]]:
        if self._kinds is not None:
            return self._kinds
        table: dict[ComponentRole, dict[str, tuple[str, ComponentKind[Any]]]] = {role: {} for role in _KIND_HOOKS}
        registered = list(self._info)
        for role, hook_name in _KIND_HOOKS.items():
            # Called in pluggy's order; a kind claimed twice stays with the plugin registered first (built-ins
            # before installed ones), whichever answered first.
            answers = sorted(
                self.call_each(hook_name),
                key=lambda a: registered.index(a[0]) if a[0] in registered else len(registered),
            )
            for plugin_name, answer in answers:
                dist = self._info[plugin_name].distribution if plugin_name in self._info else "?"
                if isinstance(answer, Exception):
                    self._problem(plugin_name, dist, ErrorCode.PLUGIN_BAD_RESULT, f"{hook_name}(): {_describe(answer)}")
                    continue
                for kind in answer or []:
                    if not isinstance(kind, ComponentKind):
                        self._problem(
                            plugin_name,
                            dist,
                            ErrorCode.PLUGIN_BAD_RESULT,
                            f"{hook_name}() returned {type(kind).__name__}, expected ComponentKind",
                        )
                        continue
                    if kind.name in table[role]:
                        owner = table[role][kind.name][0]
                        self._problem(
                            plugin_name,
                            dist,
                            ErrorCode.PLUGIN_CONFLICT,
                            f"{role} kind {kind.name!r} is provided already by plugin {owner!r}",
                        )
                        continue
                    table[role][kind.name] = (plugin_name, kind)
                    if plugin_name in self._info:
                        self._info[plugin_name].provides.setdefault(role, []).append(kind.name)
        self._kinds = table
        if self.strict:
            self.raise_if_problems()
        return table

    def kinds(self, role: ComponentRole) -> dict[str, ComponentKind[Any]]:
        """Every component kind of ``role`` the loaded plugins provide, by kind name."""
        return {name: kind for name, (_, kind) in self._collect_kinds()[role].items()}

    def kind(self, role: ComponentRole, name: str) -> ComponentKind[Any]:
        """The component kind ``name`` of ``role``; FP1106 ``PLUGIN_UNKNOWN_KIND`` naming those there are."""
        available = self.kinds(role)
        if name not in available:
            known = ", ".join(sorted(available)) or "none"
            raise FinP2PError(
                ErrorCode.PLUGIN_UNKNOWN_KIND,
                f"no plugin provides the {role} kind {name!r} (available: {known})",
            )
        return available[name]

    # -- listing -------------------------------------------------------------------------------------------------
    def plugins(self) -> list[PluginInfo]:
        """Every loaded plugin with what it provides: component kinds, config sections, commands, policy."""
        self._collect_kinds()
        extras = {"config": "finp2p_config_sections", "commands": "finp2p_cli_commands"}
        for label, hook_name in extras.items():
            for plugin_name, answer in self.call_each(hook_name):
                info = self._info.get(plugin_name)
                if info is None:
                    continue
                if isinstance(answer, Exception):
                    self._problem(info.name, info.distribution, ErrorCode.PLUGIN_BAD_RESULT, f"{hook_name}(): {answer}")
                    continue
                names = list(answer) if isinstance(answer, dict) else [getattr(c, "name", "?") for c in answer or []]
                info.provides[label] = names
        for info in self._info.values():
            if "finp2p_check_transfer" in info.hooks:
                info.provides["policy"] = ["check_transfer"]
            for role in info.provides:
                info.provides[role] = sorted(set(info.provides[role]))
        return list(self._info.values())

    def plugin_name(self, plugin: object) -> str:
        """The name a plugin object was registered under (its entry point's, or a built-in's)."""
        return self.pm.get_name(plugin) or "?"


def _builtin_name(module_name: str) -> str:
    return module_name.rsplit(".", 1)[-1].replace("_", "-")


def _dist_name(ep: md.EntryPoint) -> str:
    return ep.dist.name if ep.dist else "?"


def _hookimpl_names(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Names of the attributes of ``plugin`` marked as hook implementations."""
    return [attr for attr in dir(plugin) if not attr.startswith("_") and pm.parse_hookimpl_opts(plugin, attr)]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
