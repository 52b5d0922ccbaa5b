"""What a plugin hands the node when it provides a component (a ledger, a transport, an ACL backend)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from finp2p.config import Settings
    from finp2p.plugins import PluginManager
    from finp2p.store import Store

T = TypeVar("T")


@dataclass(frozen=True)
class ComponentKind(Generic[T]):
    """A named kind of component and the factory that builds one.

    ``name`` is what a config or a ledger profile says (``kind = "ethereum"``); it must be unique across all loaded
    plugins. ``factory`` is called with the component's own settings (a mapping) and a :class:`ComponentContext`.
    """

    name: str
    factory: Callable[[dict[str, Any], ComponentContext], T]
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"component kind name {self.name!r} must be a non-empty word of letters, digits, - or _")
        if not callable(self.factory):
            raise ValueError(f"component kind {self.name!r} has a factory that is not callable")


@dataclass
class ComponentContext:
    """What a factory may use to build its component, besides its own settings.

    ``settings``: the node's whole validated config (a plugin's own section is ``settings.sections[name]``);
    ``data_dir``: the node's data directory (or a work directory where there is no node), where a component may
    keep files of its own, in a folder named after its kind; ``plugins``: the node's plugin manager;
    ``store``: the node's open store, or ``None`` where there is none (a ledger opened by ``finp2p receipt verify``,
    say).
    """

    settings: Settings
    data_dir: Path
    plugins: PluginManager
    store: Store | None = None
