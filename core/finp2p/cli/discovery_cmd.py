"""``finp2p discover`` and ``finp2p advert``: search the network; show and shape this node's advert."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from finp2p.cli.common import open_store, settings_of
from finp2p.cli.node_cmd import as_node
from finp2p.cli.output import Table, emit, json_option, out, reports_errors
from finp2p.network.adverts import Advert
from finp2p.network.discovery import Discovery, share, unshare
from finp2p.stack import NetworkStack
from finp2p.store import Store
from finp2p.store.models import OwnAdvertRow


def _rows(adverts: list[Advert]) -> list[dict[str, Any]]:
    return [
        {
            "org_id": a.org_id,
            "role": a.role,
            "fin_id": a.fin_id,
            "sequence": a.sequence,
            "addresses": list(a.addresses),
            "software": a.software,
            "capabilities": a.capabilities,
            "ledgers": list(a.ledgers),
            "groups": list(a.groups),
            "resources": [r.entry() | {"salt": None} for r in a.resources],
            "expires_ms": a.expires_ms,
        }
        for a in adverts
    ]


def _render(title: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for col in ("org", "role", "address", "ledgers", "groups", "resources", "seq"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["org_id"],
            r["role"],
            ", ".join(r["addresses"]),
            ", ".join(r["ledgers"]),
            ", ".join(r["groups"]),
            ", ".join(x["resource_id"] for x in r["resources"]),
            str(r["sequence"]),
        )
    out.print(table)


def _discover(ctx: click.Context, by: str, value: str | None, limit: int | None, as_json: bool) -> None:
    async def work(stack: NetworkStack, store: Store) -> list[Advert]:
        return await Discovery(settings_of(ctx), store, stack.messenger, None).query(by, value, limit=limit)

    found = asyncio.run(as_node(ctx, work))
    rows = _rows(found)
    emit(rows, as_json, lambda: _render(f"{by} {value or ''}".strip(), rows))


limit_option = click.option("--limit", type=click.IntRange(min=1), help="At most this many (default: all pages).")


@click.group("discover")
def discover_group() -> None:
    """Search the registrar (a rendezvous node of the genesis) for organizations and what they offer.

    Every advert returned is verified here: its signature, its chain to the genesis, its lifetime."""


@discover_group.command("org")
@click.argument("org_id")
@json_option
@click.pass_context
@reports_errors
def discover_org(ctx: click.Context, org_id: str, as_json: bool) -> None:
    """The advert of ORG_ID."""
    _discover(ctx, "org", org_id, None, as_json)


@discover_group.command("capability")
@click.argument("protocol")
@limit_option
@json_option
@click.pass_context
@reports_errors
def discover_capability(ctx: click.Context, protocol: str, limit: int | None, as_json: bool) -> None:
    """Organizations that speak PROTOCOL (e.g. finp2p.asset-transaction)."""
    _discover(ctx, "capability", protocol, limit, as_json)


@discover_group.command("ledger")
@click.argument("ledger_id")
@limit_option
@json_option
@click.pass_context
@reports_errors
def discover_ledger(ctx: click.Context, ledger_id: str, limit: int | None, as_json: bool) -> None:
    """The primary nodes of LEDGER_ID (e.g. eip155:31337)."""
    _discover(ctx, "ledger", ledger_id, limit, as_json)


@discover_group.command("resource")
@click.argument("resource_id")
@json_option
@click.pass_context
@reports_errors
def discover_resource(ctx: click.Context, resource_id: str, as_json: bool) -> None:
    """Who shares RESOURCE_ID (<orgId>:<type>:<id>), if this node may see it."""
    _discover(ctx, "resource", resource_id, None, as_json)


@discover_group.command("all")
@limit_option
@json_option
@click.pass_context
@reports_errors
def discover_all(ctx: click.Context, limit: int | None, as_json: bool) -> None:
    """Every organization that advertises."""
    _discover(ctx, "all", None, limit, as_json)


@discover_group.command("route")
@click.argument("resource_id")
@json_option
@click.pass_context
@reports_errors
def discover_route(ctx: click.Context, resource_id: str, as_json: bool) -> None:
    """Where requests about RESOURCE_ID go: the node of the organization that owns it (its id's host)."""

    async def work(stack: NetworkStack, store: Store) -> str:
        return await Discovery(settings_of(ctx), store, stack.messenger, None).route(resource_id)

    address = asyncio.run(as_node(ctx, work))
    emit({"resource_id": resource_id, "address": address}, as_json, lambda: out.print(f"{resource_id} -> {address}"))


@click.group("advert")
def advert_group() -> None:
    """This node's advert: show it, and the resources it shares (the running node re-advertises by itself)."""


@advert_group.command("show")
@click.argument("org_id", required=False)
@json_option
@click.pass_context
@reports_errors
def advert_show(ctx: click.Context, org_id: str | None, as_json: bool) -> None:
    """The advert this node last published, or with ORG_ID that organization's, from the registrar."""
    if org_id:
        _discover(ctx, "org", org_id, None, as_json)
        return
    store = open_store(settings_of(ctx))
    try:
        row = store.call(lambda s: s.get(OwnAdvertRow, 1))
    finally:
        store.close()
    if row is None:
        raise click.ClickException("this node has not advertised yet: start it with `finp2p node start`")
    rows = _rows([Advert.from_dict(json.loads(row.document))])
    emit(rows[0], as_json, lambda: _render("this node's advert", rows))


@advert_group.command("share")
@click.argument("resource_id")
@click.option("--topic", help="The pub/sub topic where updates of the resource are published.")
@click.option(
    "--visible-to",
    "visible_to",
    multiple=True,
    default=["*"],
    show_default=True,
    help="Who may see the entry: *, org:ID or group:NAME (repeatable).",
)
@click.pass_context
@reports_errors
def advert_share(ctx: click.Context, resource_id: str, topic: str | None, visible_to: tuple[str, ...]) -> None:
    """Share RESOURCE_ID in this node's advert; the running node re-advertises within seconds."""
    store = open_store(settings_of(ctx))
    try:
        store.call(lambda s: share(s, resource_id, topic, list(visible_to)))
    finally:
        store.close()
    out.print(f"sharing {resource_id} (visible to {', '.join(visible_to)})")


@advert_group.command("unshare")
@click.argument("resource_id")
@click.pass_context
@reports_errors
def advert_unshare(ctx: click.Context, resource_id: str) -> None:
    """Stop sharing RESOURCE_ID."""
    store = open_store(settings_of(ctx))
    try:
        found = store.call(lambda s: unshare(s, resource_id))
    finally:
        store.close()
    if not found:
        raise click.ClickException(f"{resource_id} is not shared")
    out.print(f"no longer sharing {resource_id}")
