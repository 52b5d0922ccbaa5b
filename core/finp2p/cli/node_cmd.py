"""``finp2p node`` and ``finp2p store``: run a node, migrate and inspect its store."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from finp2p.cli.common import open_store, settings_of
from finp2p.cli.output import emit, json_option, out, reports_errors
from finp2p.node import Node
from finp2p.stack import NetworkStack
from finp2p.store import Store

T = TypeVar("T")


@click.group("node")
def node_group() -> None:
    """Run the node."""


@node_group.command("start")
@click.pass_context
@reports_errors
def start_cmd(ctx: click.Context) -> None:
    """Start the node with the config given by --config and serve until SIGINT or SIGTERM."""
    from finp2p.cli.context import config_path

    node = Node.from_config(config_path(ctx), strict=ctx.find_root().params.get("strict") or None)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await node.start()
        out.print(f"node {node.settings.node.name!r} started; data in {node.settings.data_dir}")
        try:
            await stop.wait()
        finally:
            await node.close()
            out.print("node stopped")

    asyncio.run(run())


@node_group.command("wait")
@click.option("--timeout", type=click.FloatRange(0, 3600), default=60.0, show_default=True, help="Seconds to wait.")
@json_option
@click.pass_context
@reports_errors
def wait_cmd(ctx: click.Context, timeout: float, as_json: bool) -> None:
    """Wait until the node of --config serves (started by `node start` elsewhere, e.g. with `&`): its run file
    written once every part started, its process alive. Exit 1 when it does not within --timeout seconds."""
    from finp2p.cli.running import wait_until_serving

    info = wait_until_serving(settings_of(ctx), timeout)
    emit(info, as_json, lambda: out.print(f"node {info['name']!r} serves (pid {info['pid']}) {_addresses(info)}"))


@node_group.command("stop")
@click.option("--timeout", type=click.FloatRange(0, 3600), default=30.0, show_default=True, help="Seconds to wait.")
@click.pass_context
@reports_errors
def stop_cmd(ctx: click.Context, timeout: float) -> None:
    """Stop the node of --config that runs on this machine: SIGTERM to the process its run file names, then wait
    until it has closed. Exit 1 when it still runs after --timeout seconds."""
    from finp2p.cli.running import stop_node

    name, pid = stop_node(settings_of(ctx), timeout)
    out.print(f"node {name!r} stopped (pid {pid})")


def _addresses(info: dict[str, object]) -> str:
    parts = [f"{name} {info[name]}" for name in ("address", "api", "adapter") if info.get(name)]
    return ", ".join(parts)


async def as_node(ctx: click.Context, work: Callable[[NetworkStack, Store], Awaitable[T]]) -> T:
    """Run ``work`` as the node of the config given by --config: its identity and store, without serving."""
    from finp2p.cli.context import config_path

    node = Node.from_config(config_path(ctx))
    store = Store(node.settings.store_url, sqlite_synchronous=node.settings.store.sqlite_synchronous, pool_size=2)
    try:
        await asyncio.to_thread(store.migrate)
        node.store = store
        stack, _ = await NetworkStack.build(node.settings, node.plugins, store, node.context)
        try:
            return await work(stack, store)
        finally:
            await stack.transport.close()
    finally:
        await asyncio.to_thread(store.close)


@node_group.command("ping")
@click.argument("url")
@json_option
@click.pass_context
@reports_errors
def ping_cmd(ctx: click.Context, url: str, as_json: bool) -> None:
    """Send a signed ping to the node at URL over mutual TLS, as this node (--config), and print its answer."""
    answer = asyncio.run(as_node(ctx, lambda stack, _store: stack.messenger.request(url, "node.ping", {})))
    emit(answer, as_json, lambda: out.print(f"{url} is {answer['org_id']}; it sees this node as {answer['from']}"))


@click.group("store")
def store_group() -> None:
    """Inspect and migrate the node's database."""


@store_group.command("migrate")
@json_option
@click.pass_context
@reports_errors
def migrate_cmd(ctx: click.Context, as_json: bool) -> None:
    """Apply pending migrations (the node also does this when it starts)."""
    store = open_store(settings_of(ctx), pool_size=1, migrate=False)
    try:
        before, after = store.migrate()
    finally:
        store.close()
    data = {"before": before, "after": after}
    emit(data, as_json, lambda: out.print(f"store at revision {after} (was {before or 'empty'})"))


@store_group.command("status")
@json_option
@click.pass_context
@reports_errors
def status_cmd(ctx: click.Context, as_json: bool) -> None:
    """Show the database's schema revision and this finp2p's newest."""
    store = open_store(settings_of(ctx), pool_size=1, migrate=False)
    try:
        current, head = store.current_revision(), store.head_revision()
    finally:
        store.close()
    data = {"current": current, "head": head, "up_to_date": current == head}
    emit(data, as_json, lambda: out.print(f"revision {current or 'empty'}; this finp2p's newest is {head}"))
