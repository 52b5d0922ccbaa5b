"""What every command reads from the command line's root: the config file given, and the plugins it enables.

Kept apart from ``main`` so that command modules can import it while ``main`` imports them (no circle), and light:
the plugins load only when a command asks for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from finp2p.plugins import PluginManager


def config_path(ctx: click.Context) -> Path | None:
    """The ``--config`` file given (or FINP2P_CONFIG), if any."""
    value = ctx.find_root().params.get("config")
    return Path(value) if value else None


def plugin_manager(ctx: click.Context) -> PluginManager:
    """The plugins, loaded once per command with the config's ``[plugins]`` settings and ``--strict``."""
    root = ctx.find_root()
    pm: PluginManager | None = root.meta.get("finp2p.plugins")
    if pm is None:
        from finp2p.config_source import plugin_choice, read_raw
        from finp2p.plugins import PluginManager

        raw, _ = read_raw(config_path(root))
        choice = plugin_choice(raw)
        if choice is None:  # not of the plain shape: the settings model says what is wrong
            from finp2p.config import PluginsSection

            section = PluginsSection.model_validate(raw.get("plugins", {}))
            choice = section.strict, section.disabled
        strict = root.params.get("strict") or choice[0]
        pm = PluginManager(strict=bool(strict), disabled=choice[1])
        root.meta["finp2p.plugins"] = pm
    return pm
