"""``finp2p config``: create, check and show node configs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from sqlalchemy.engine import make_url

from finp2p.cli.output import emit, json_option, out, reports_errors
from finp2p.config import DEFAULT_CONFIG, Settings, open_config
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.plugins import PluginManager


@click.group("config")
def config_group() -> None:
    """Create, check and show node configuration files."""


def summary(settings: Settings, path: Path | None) -> dict[str, object]:
    return {
        "ok": True,
        "file": str(path) if path else None,
        "node": settings.node.name,
        "data_dir": str(settings.data_dir),
        "store": make_url(settings.store_url).render_as_string(hide_password=True),
        "acl_backend": settings.acl.backend,
        "plugin_sections": sorted(settings.sections),
    }


@config_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--strict", is_flag=True, help="Also fail when a plugin fails to load.")
@json_option
@reports_errors
def check_cmd(file: Path, strict: bool, as_json: bool) -> None:
    """Validate FILE with its FINP2P_… environment overrides; name every wrong key; open the files the node will
    open (the genesis, each ledger profile and the plugin that reads it, the adapter's token file). Exit 3 when
    invalid."""
    settings, plugins = open_config(file, strict=strict or None)
    data = summary(settings, file)
    data["ledgers"] = _check_files(settings, plugins)
    emit(
        data,
        as_json,
        lambda: out.print(
            f"[green]ok[/] {file}: node {data['node']!r}, store {data['store']}, data in {data['data_dir']}"
        ),
    )


def _check_files(settings: Settings, plugins: PluginManager) -> list[str]:
    """What `node start` reads before anything else, read now: FP1003 (or the file's own error) naming the file."""
    from finp2p.edge.bearer import token_from_file
    from finp2p.identity.genesis import Genesis
    from finp2p.ledger_profiles import load_profile

    if settings.identity.genesis is not None:
        Genesis.load(settings.path(settings.identity.genesis))
    ledger_ids = []
    for path in settings.ledgers.profiles:
        profile = load_profile(settings.path(path))
        plugins.kind("ledger", profile.kind)  # FP1106 when no plugin reads it
        ledger_ids.append(profile.ledger_id)
    adapter = settings.adapter
    if adapter.port is not None:
        if adapter.ledger is not None and adapter.ledger not in ledger_ids:
            raise FinP2PError(
                ErrorCode.CONFIG_VALUE, f"adapter.ledger {adapter.ledger!r} is not one of [ledgers] profiles"
            )
        if adapter.token_file is not None:
            token_from_file(settings.path(adapter.token_file), "adapter token")
    return ledger_ids


@config_group.command("show")
@json_option
@click.pass_context
@reports_errors
def show_cmd(ctx: click.Context, as_json: bool) -> None:
    """Show the effective settings (file, overrides and defaults) of the config given with --config."""
    from finp2p.cli.context import config_path

    path = config_path(ctx)
    settings, _ = open_config(path)
    data = settings.model_dump(mode="json", exclude={"sections"})
    data["sections"] = {k: v.model_dump(mode="json") for k, v in settings.sections.items()}
    data["store_url"] = make_url(settings.store_url).render_as_string(hide_password=True)
    if settings.store.url:
        data["store"]["url"] = data["store_url"]
    emit(data, as_json, lambda: out.print_json(data=data))


@config_group.command("init")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), default="finp2p.toml")
@click.option("--name", default="finp2p-node", show_default=True, help="The node's name.")
@click.option("--genesis", type=click.Path(dir_okay=False, path_type=Path), help="The network's genesis file.")
@click.option("--api-port", type=click.IntRange(1, 65535), help="Serve the REST API on 127.0.0.1:PORT ([api]).")
@click.option(
    "--ledger",
    "ledgers",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A ledger profile to open at start ([ledgers] profiles); repeatable. Written relative to FILE.",
)
@click.option("--adapter-port", type=click.IntRange(1, 65535), help="Serve the ledger-adapter API ([adapter]).")
@click.option(
    "--adapter-token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bearer token file routers' requests must carry (`finp2p adapter token FILE` makes one).",
)
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
def init_cmd(
    file: Path,
    name: str,
    genesis: Path | None,
    api_port: int | None,
    ledgers: tuple[Path, ...],
    adapter_port: int | None,
    adapter_token_file: Path | None,
    force: bool,
) -> None:
    """Write a commented default config to FILE (default: finp2p.toml). Paths given here (the genesis, ledger
    profiles, a token file) are taken from the current directory and written so that the config finds them
    wherever it is read from. The peer port and public URL come with the registration (`finp2p org register`)."""
    if file.exists() and not force:
        raise click.UsageError(f"{file} exists; pass --force to overwrite it")
    if adapter_port is not None and adapter_token_file is None:
        raise click.UsageError("--adapter-port needs --adapter-token-file: the ledger-adapter API moves units")
    file.parent.mkdir(parents=True, exist_ok=True)
    text = DEFAULT_CONFIG.format(name=name.replace('"', ""))
    if genesis is not None:
        text += f"\n[identity]\ngenesis = {_toml_path(genesis, file)}\n"
    if api_port is not None:
        text += f'\n[api]\nhost = "127.0.0.1"\nport = {api_port}\n'
    if ledgers:
        text += f"\n[ledgers]\nprofiles = [{', '.join(_toml_path(p, file) for p in ledgers)}]\n"
    if adapter_port is not None and adapter_token_file is not None:
        text += f"\n[adapter]\nport = {adapter_port}\ntoken_file = {_toml_path(adapter_token_file, file)}\n"
    file.write_text(text, encoding="utf-8")
    out.print(f"wrote {file}")


def _toml_path(path: Path, config: Path) -> str:
    """``path`` (from the current directory) as the config at ``config`` reads it: relative to its folder."""
    relative = os.path.relpath(path.resolve(), config.resolve().parent)
    return json.dumps(Path(relative).as_posix())
