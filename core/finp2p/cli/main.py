"""``finp2p``: the node's command line. Plugins add commands through the ``finp2p_cli_commands`` hook."""

from __future__ import annotations

import importlib
import logging
from typing import Any

import click

from finp2p import __version__
from finp2p.cli.context import plugin_manager
from finp2p.cli.output import err, fail
from finp2p.edge.files import restrict_process
from finp2p.errors import FinP2PError

#: The commands, imported only when run (the start-up of `finp2p --version` or `--help` costs no command's
#: imports): name -> (module, attribute, the line `finp2p --help` shows: the command's own first line).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "acl": (
        "finp2p.cli.messaging_cmd",
        "acl_group",
        "This node's access rules: who may read or subscribe to which of its resources.",
    ),
    "adapter": (
        "finp2p.cli.adapter_cmd",
        "adapter_group",
        "The FinP2P ledger-adapter API: lets any FinP2P router use a ledger this node's plugins support.",
    ),
    "advert": (
        "finp2p.cli.discovery_cmd",
        "advert_group",
        "This node's advert: show it, and the resources it shares (the running node re-advertises by itself).",
    ),
    "api": ("finp2p.cli.api_cmd", "api_group", "The REST API of this node (enabled by `[api] port` in the config)."),
    "broadcast": (
        "finp2p.cli.messaging_cmd",
        "broadcast_cmd",
        "Ask KIND of many nodes as this node, wait for a quorum of signed answers and compare them.",
    ),
    "config": ("finp2p.cli.config_cmd", "config_group", "Create, check and show node configuration files."),
    "credential": ("finp2p.cli.identity_cmd", "credential_group", "Show and verify credential chains."),
    "data": (
        "finp2p.cli.privacy_cmd",
        "data_group",
        "Private information about users and assets: keep it, share it by pull or push, ask for it.",
    ),
    "demo": (
        "finp2p.cli.demo_cmd",
        "demo_cmd",
        "Run a local network on loopback (a governance node and three banks as processes) and tell its story.",
    ),
    "devnet": (
        "finp2p.cli.devnet_cmd",
        "devnet_group",
        "A local FinP2P network that keeps running: up, status, restart, kill, down.",
    ),
    "discover": (
        "finp2p.cli.discovery_cmd",
        "discover_group",
        "Search the registrar (a rendezvous node of the genesis) for organizations and what they offer.",
    ),
    "errors": (
        "finp2p.cli.misc_cmd",
        "errors_cmd",
        "List every error code the node can report, with what to do about it.",
    ),
    "governance": (
        "finp2p.cli.identity_cmd",
        "governance_group",
        "Certify governance nodes; admit, list and revoke organizations (run on the governance node's machine).",
    ),
    "network": ("finp2p.cli.identity_cmd", "network_group", "Create a FinP2P network (its genesis and founding keys)."),
    "node": ("finp2p.cli.node_cmd", "node_group", "Run the node."),
    "org": ("finp2p.cli.identity_cmd", "org_group", "Join the network as an organization."),
    "operations": (
        "finp2p.cli.operations_cmd",
        "operations_group",
        "Asset operations this node asked for: submit one, show one, list the stuck ones, retry or abandon one.",
    ),
    "plugins": (
        "finp2p.cli.misc_cmd",
        "plugins_cmd",
        "List every loaded plugin: name, distribution, version and what it provides.",
    ),
    "pubsub": (
        "finp2p.cli.messaging_cmd",
        "pubsub_group",
        "Publish on this node's topics; subscribe to other nodes' topics; read the inbox.",
    ),
    "receipt": (
        "finp2p.cli.receipt_cmd",
        "receipt_group",
        "Receipts of asset transactions: show one, verify one against the genesis and the ledgers.",
    ),
    "store": ("finp2p.cli.node_cmd", "store_group", "Inspect and migrate the node's database."),
    "wallet": (
        "finp2p.cli.wallet_cmd",
        "wallet_group",
        "A user's own FinID key (kept in a file of mode 0600) and the consents it signs.",
    ),
}

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
    """The root group: the built-in commands of :data:`COMMANDS`, imported when they run, and the commands plugins
    provide, loaded with the config's plugin settings."""

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
            for plugin, answer in pm.call_each("finp2p_cli_commands"):
                if isinstance(answer, Exception):
                    err.print(f"[yellow]plugin {plugin}: finp2p_cli_commands failed: {answer}[/]")
                    continue
                for command in answer or []:
                    if not isinstance(command, click.Command) or not command.name:
                        continue
                    if command.name in COMMANDS or command.name in self.commands or command.name in commands:
                        err.print(f"[yellow]plugin {plugin}: command {command.name!r} exists already; skipped[/]")
                        continue
                    commands[command.name] = command
        root.meta["finp2p.plugin_commands"] = commands
        return commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *super().list_commands(ctx), *self._plugin_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module, attribute, _ = COMMANDS[cmd_name]
            command: click.Command = getattr(importlib.import_module(module), attribute)
            return command
        return super().get_command(ctx, cmd_name) or self._plugin_commands(ctx).get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``, from :data:`COMMANDS` for the built-in ones (nothing imported)."""
        plugins = self._plugin_commands(ctx)
        names = sorted({*COMMANDS, *plugins})
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            if name in COMMANDS:
                text = COMMANDS[name][2]
                rows.append((name, text if len(text) <= limit else text[: limit - 3].rstrip() + "..."))
            else:
                rows.append((name, plugins[name].get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


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
    from rich.logging import RichHandler

    restrict_process()  # keys, stores, tokens: whatever a command creates is its user's alone, from the start
    logging.basicConfig(
        level=log_level.upper(),
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, rich_tracebacks=False)],
        force=True,
    )


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="finp2p", standalone_mode=True)
    except FinP2PError as exc:  # raised before a command could report it itself
        fail(exc)
