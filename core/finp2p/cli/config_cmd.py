"""``finp2p config``: create, check and show node configs."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy.engine import make_url

from finp2p.cli.output import emit, json_option, out, reports_errors
from finp2p.config import DEFAULT_CONFIG, Settings, open_config


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
    """Validate FILE with its FINP2P_… environment overrides; name every wrong key. Exit 3 when invalid."""
    settings, _ = open_config(file, strict=strict or None)
    data = summary(settings, file)
    emit(
        data,
        as_json,
        lambda: out.print(
            f"[green]ok[/] {file}: node {data['node']!r}, store {data['store']}, data in {data['data_dir']}"
        ),
    )


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
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
def init_cmd(file: Path, name: str, genesis: Path | None, force: bool) -> None:
    """Write a commented default config to FILE (default: finp2p.toml)."""
    if file.exists() and not force:
        raise click.UsageError(f"{file} exists; pass --force to overwrite it")
    file.parent.mkdir(parents=True, exist_ok=True)
    text = DEFAULT_CONFIG.format(name=name.replace('"', ""))
    if genesis is not None:
        text += f'\n[identity]\ngenesis = "{genesis.resolve()}"\n'
    file.write_text(text, encoding="utf-8")
    out.print(f"wrote {file}")
