"""The plugin manager: built-in plugins first, then every installed distribution in the ``finp2p`` entry-point
group. A plugin that cannot be loaded is reported with its distribution and the reason, and skipped (or, in strict
mode, stops the node)."""

from __future__ import annotations

import importlib
import importlib.metadata as md
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
        return {"plugin": self.plugin, "distribution": self.distribution, **self.error.to_dict()}


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
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
        if self.problems:
            listed = "; ".join(str(p.error) for p in self.problems)
            raise FinP2PError(ErrorCode.PLUGIN_STRICT, listed, problems=[p.to_dict() for p in self.problems])

    # -- components ----------------------------------------------------------------------------------------------
    def _collect_kinds(self) -> dict[ComponentRole, dict[str, tuple[str, ComponentKind[Any]]]]:
        if self._kinds is not None:
            return self._kinds
        table: dict[ComponentRole, dict[str, tuple[str, ComponentKind[Any]]]] = {role: {} for role in _KIND_HOOKS}
        for role, hook_name in _KIND_HOOKS.items():
            hook = getattr(self.pm.hook, hook_name)
            for impl in hook.get_hookimpls():  # registration order: built-ins first
                plugin_name = self.pm.get_name(impl.plugin) or "?"
                dist = self._info[plugin_name].distribution if plugin_name in self._info else "?"
                try:
                    answer = impl.function()
                except Exception as exc:
                    self._problem(plugin_name, dist, ErrorCode.PLUGIN_BAD_RESULT, f"{hook_name}(): {_describe(exc)}")
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
        return {name: kind for name, (_, kind) in self._collect_kinds()[role].items()}

    def kind(self, role: ComponentRole, name: str) -> ComponentKind[Any]:
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
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                info = self._info.get(self.plugin_name(impl.plugin))
                if info is None:
                    continue
                try:
                    answer = impl.function()
                except Exception as exc:
                    self._problem(info.name, info.distribution, ErrorCode.PLUGIN_BAD_RESULT, f"{hook_name}(): {exc}")
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
