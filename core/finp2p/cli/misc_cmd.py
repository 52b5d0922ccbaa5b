"""``finp2p plugins`` and ``finp2p errors``."""

from __future__ import annotations

import click

from finp2p.cli.output import Table, emit, json_option, out, reports_errors
from finp2p.errors import EXIT_PLUGIN, catalogue


@click.command("plugins")
@json_option
@click.pass_context
@reports_errors
def plugins_cmd(ctx: click.Context, as_json: bool) -> None:
    """List every loaded plugin: name, distribution, version and what it provides.

    Plugins that could not be loaded are listed with their error; with --strict they make the command fail.
    """
    from finp2p.cli.context import plugin_manager

    pm = plugin_manager(ctx)
    infos = pm.plugins()
    data = {"plugins": [i.to_dict() for i in infos], "problems": [p.to_dict() for p in pm.problems]}

    def render() -> None:
        table = Table(title="finp2p plugins", title_justify="left")
        for col in ("name", "distribution", "version", "provides"):
            table.add_column(col)
        for i in infos:
            provides = "; ".join(f"{role}: {', '.join(kinds)}" for role, kinds in sorted(i.provides.items()))
            table.add_row(i.name, i.distribution + (" (built-in)" if i.builtin else ""), i.version, provides)
        out.print(table)
        for p in pm.problems:
            out.print(f"[yellow]skipped[/] {p.plugin} ({p.distribution}): {p.error}")

    emit(data, as_json, render)
    if pm.problems and pm.strict:
        raise SystemExit(EXIT_PLUGIN)


@click.command("errors")
@json_option
def errors_cmd(as_json: bool) -> None:
    """List every error code the node can report, with what to do about it."""
    rows = catalogue()

    def render() -> None:
        table = Table(title="finp2p error codes", title_justify="left")
        for col in ("code", "title", "transient", "what to do"):
            table.add_column(col)
        for r in rows:  # transient: it may pass, so an operation that met it is tried again, not ended
            table.add_row(r["code"], r["title"], "yes" if r["transient"] else "", r["hint"])
        out.print(table)

    emit(rows, as_json, render)
