"""``finp2p``: the node's command line. Plugins add commands through the ``finp2p_cli_commands`` hook."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
from rich.logging import RichHandler

from finp2p import __version__
from finp2p.cli.adapter_cmd import adapter_group
from finp2p.cli.api_cmd import api_group
from finp2p.cli.config_cmd import config_group
from finp2p.cli.demo_cmd import demo_cmd
from finp2p.cli.devnet_cmd import devnet_group
from finp2p.cli.discovery_cmd import advert_group, discover_group
from finp2p.cli.identity_cmd import credential_group, governance_group, network_group, org_group
from finp2p.cli.messaging_cmd import acl_group, broadcast_cmd, pubsub_group
from finp2p.cli.misc_cmd import errors_cmd, plugins_cmd
from finp2p.cli.node_cmd import node_group, store_group
from finp2p.cli.output import err, fail
from finp2p.cli.privacy_cmd import data_group
from finp2p.cli.receipt_cmd import receipt_group
from finp2p.edge.files import restrict_process
from finp2p.errors import FinP2PError
from finp2p.plugins import PluginManager

EPILOG = """\b
Exit status:
  0  success
  1  the operation failed (the FPxxxx code printed says why)
  2  usage error: unknown command or option, bad argument
  3  configuration error (FP10xx)
  4  plugin error in strict mode (FP11xx)
  5  store error: unreachable, or newer than this finp2p (FP12xx)

Every key of the config file can be overridden by FINP2P_<SECTION>__<KEY>.
"""


class PluginAwareGroup(click.Group):
    """A group that adds the commands plugins provide, loaded with the config's plugin settings."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        root = ctx.find_root()
        cached: dict[str, click.Command] | None = root.meta.get("finp2p.plugin_commands")
        if cached is not None:
            return cached
        commands: dict[str, click.Command] = {}
        try:
            pm = plugin_manager(root)
        except FinP2PError as exc:
            err.print(f"[yellow]plugin commands unavailable: {exc}[/]")
            pm = None
        if pm is not None:
            for impl in pm.hook.finp2p_cli_commands.get_hookimpls():
                try:
                    answer = impl.function() or []
                except Exception as exc:
                    err.print(f"[yellow]plugin {pm.plugin_name(impl.plugin)}: finp2p_cli_commands failed: {exc}[/]")
                    continue
                for command in answer:
                    if not isinstance(command, click.Command) or not command.name:
                        continue
                    if command.name in self.commands or command.name in commands:
                        err.print(
                            f"[yellow]plugin {pm.plugin_name(impl.plugin)}: command {command.name!r} "
                            "exists already; skipped[/]"
                        )
                        continue
                    commands[command.name] = command
        root.meta["finp2p.plugin_commands"] = commands
        return commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugin_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._plugin_commands(ctx).get(cmd_name)


def config_path(ctx: click.Context) -> Path | None:
    value = ctx.find_root().params.get("config")
    return Path(value) if value else None


def plugin_manager(ctx: click.Context) -> PluginManager:
    """The plugins, loaded once per command with the config's ``[plugins]`` settings and ``--strict``."""
    root = ctx.find_root()
    pm: PluginManager | None = root.meta.get("finp2p.plugins")
    if pm is None:
        from finp2p.config import PluginsSection, read_raw

        raw, _ = read_raw(config_path(root))
        section = PluginsSection.model_validate(raw.get("plugins", {}))
        strict = root.params.get("strict") or section.strict
        pm = PluginManager(strict=bool(strict), disabled=section.disabled)
        root.meta["finp2p.plugins"] = pm
    return pm


@click.group(cls=PluginAwareGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="finp2p")
@click.option(
    "-c",
    "--config",
    type=click.Path(dir_okay=False),
    envvar="FINP2P_CONFIG",
    help="The node's TOML config file (env FINP2P_CONFIG). Without one, defaults apply in the working directory.",
)
@click.option("--strict", is_flag=True, help="Refuse to run when any plugin fails to load (default: skip it).")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="WARNING",
    show_default=True,
    help="How much the command logs to standard error.",
)
def cli(config: str | None, strict: bool, log_level: str) -> None:
    """Run and operate a FinP2P network node.

    A node joins a permissioned network of financial institutions, proves its identity, finds the other
    members, shares private data under ACLs, and routes asset transactions to the asset's primary node.
    """
    restrict_process()  # keys, stores, tokens: whatever a command creates is its user's alone, from the start
    logging.basicConfig(
        level=log_level.upper(),
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, rich_tracebacks=False)],
        force=True,
    )


cli.add_command(plugins_cmd)
cli.add_command(adapter_group)
cli.add_command(errors_cmd)
cli.add_command(config_group)
cli.add_command(node_group)
cli.add_command(store_group)
cli.add_command(network_group)
cli.add_command(governance_group)
cli.add_command(org_group)
cli.add_command(credential_group)
cli.add_command(pubsub_group)
cli.add_command(broadcast_cmd)
cli.add_command(acl_group)
cli.add_command(discover_group)
cli.add_command(advert_group)
cli.add_command(data_group)
cli.add_command(api_group)
cli.add_command(demo_cmd)
cli.add_command(devnet_group)
cli.add_command(receipt_group)


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="finp2p", standalone_mode=True)
    except FinP2PError as exc:  # raised before a command could report it itself
        fail(exc)
