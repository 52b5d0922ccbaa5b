"""``finp2p data``: private data of users and assets, shared by pull or by push under this node's ACL."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from finp2p.cli.common import acl_backend, open_store, settings_of
from finp2p.cli.node_cmd import as_node
from finp2p.cli.output import Table, emit, json_option, out, reports_errors
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.network.discovery import Discovery
from finp2p.privacy import records, sharing
from finp2p.stack import NetworkStack
from finp2p.store import Store


@click.group("data")
def data_group() -> None:
    """Private information about users and assets: keep it, share it by pull or push, ask for it."""


def _discovery(ctx: click.Context, stack: NetworkStack, store: Store) -> Discovery:
    return Discovery(settings_of(ctx), store, stack.messenger, None)


@data_group.command("put")
@click.argument("resource_id")
@click.option("--body", required=True, help="The information, a JSON object (user: KYC fields; asset: details).")
@json_option
@click.pass_context
@reports_errors
def put_cmd(ctx: click.Context, resource_id: str, body: str, as_json: bool) -> None:
    """Write a new version of RESOURCE_ID's information; push readers get it, pull readers are told."""
    from finp2p.edge.json_input import read_json_object

    data = read_json_object(body, what="--body", max_bytes=256 * 1024)

    async def work(stack: NetworkStack, store: Store) -> int:
        return await sharing.update(store, acl_backend(ctx, store), str(stack.messenger.org_id), resource_id, data)

    version = asyncio.run(as_node(ctx, work))
    emit(
        {"resource_id": resource_id, "version": version},
        as_json,
        lambda: out.print(f"{resource_id} is at version {version}"),
    )


@data_group.command("get")
@click.argument("resource_id")
@click.option("--local", is_flag=True, help="Only what this node holds (its own records and pushed replicas).")
@json_option
@click.pass_context
@reports_errors
def get_cmd(ctx: click.Context, resource_id: str, local: bool, as_json: bool) -> None:
    """RESOURCE_ID's information: this node's own, else asked of its owner (checked there in full)."""

    async def work(stack: NetworkStack, store: Store) -> dict[str, Any]:
        row = await store.run(lambda s: records.get(s, resource_id))
        if row is not None and (not row.replica or local):
            return records.as_answer(row)
        if local:
            raise FinP2PError(ErrorCode.NOT_FOUND, f"this node holds no information about {resource_id}")
        return await sharing.fetch(stack.messenger, _discovery(ctx, stack, store), resource_id)

    answer = asyncio.run(as_node(ctx, work))
    emit(answer, as_json, lambda: out.print_json(data=answer))


@data_group.command("share")
@click.argument("resource_id")
@click.option("--to", "org_id", required=True, help="The organization to share with.")
@click.option("--push", is_flag=True, help="Replicate into its private store and push every update (else pull).")
@json_option
@click.pass_context
@reports_errors
def share_cmd(ctx: click.Context, resource_id: str, org_id: str, push: bool, as_json: bool) -> None:
    """Let ORG read RESOURCE_ID: by pull (it is told, then asks) or by push (it gets a replica)."""

    async def work(stack: NetworkStack, store: Store) -> dict[str, Any]:
        return await sharing.share(
            store,
            acl_backend(ctx, store),
            stack.messenger,
            _discovery(ctx, stack, store),
            resource_id,
            org_id,
            push=push,
        )

    answer = asyncio.run(as_node(ctx, work))
    emit(answer, as_json, lambda: out.print(f"shared {resource_id} with {org_id} by {answer['mode']}"))


@data_group.command("unshare")
@click.argument("resource_id")
@click.option("--from", "org_id", required=True, help="The organization that may no longer read it.")
@json_option
@click.pass_context
@reports_errors
def unshare_cmd(ctx: click.Context, resource_id: str, org_id: str, as_json: bool) -> None:
    """Withdraw ORG's access: effective on its next request; pushes stop; it is asked to delete its replica."""

    async def work(stack: NetworkStack, store: Store) -> dict[str, Any]:
        return await sharing.unshare(
            store, acl_backend(ctx, store), stack.messenger, _discovery(ctx, stack, store), resource_id, org_id
        )

    answer = asyncio.run(as_node(ctx, work))
    emit(
        answer,
        as_json,
        lambda: out.print(
            f"withdrew {org_id}'s access to {resource_id} (replica deleted: {answer['replica_deleted']})"
        ),
    )


@data_group.command("list")
@json_option
@click.pass_context
@reports_errors
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """The records this node holds: its own, and replicas pushed by their owners."""
    store = open_store(settings_of(ctx))
    try:
        rows = [records.as_answer(r) for r in store.call(records.records)]
        seen = [
            {
                "owner": n.owner_org,
                "resource": n.resource,
                "event": n.event,
                "version": n.version,
                "received_ms": n.received_ms,
            }
            for n in store.call(records.notices)
        ]
    finally:
        store.close()

    def render() -> None:
        table = Table(title="private records", title_justify="left")
        for col in ("resource", "owner", "kind", "version", "replica"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["resource_id"], r["owner"], r["kind"], str(r["version"]), "yes" if r["replica"] else "")
        out.print(table)
        for n in seen[-10:]:
            out.print(f"notice from {n['owner']}: {n['resource']} {n['event']}")

    emit({"records": rows, "notices": seen}, as_json, render)
