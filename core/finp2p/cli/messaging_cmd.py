"""``finp2p pubsub``, ``finp2p broadcast`` and ``finp2p acl``: messaging as this node, and its access rules."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from finp2p.cli.common import acl_backend, open_store, settings_of
from finp2p.cli.node_cmd import as_node
from finp2p.cli.output import Table, emit, json_option, out, reports_errors
from finp2p.network import pubsub as ps
from finp2p.network.broadcast import Broadcaster
from finp2p.network.directory import Directory, Scope
from finp2p.network.discovery import Discovery
from finp2p.privacy.acl import AclRule
from finp2p.stack import NetworkStack
from finp2p.store import Store


def _json_object(text: str, what: str) -> dict[str, Any]:
    from finp2p.edge.json_input import read_json_object

    return read_json_object(text, what=what, max_bytes=1 << 20)


# -- pubsub ------------------------------------------------------------------------------------------------------
@click.group("pubsub")
def pubsub_group() -> None:
    """Publish on this node's topics; subscribe to other nodes' topics; read the inbox."""


@pubsub_group.command("publish")
@click.argument("topic")
@click.option("--body", default="{}", show_default=True, help="The message, a JSON object.")
@click.option("--count", default=1, show_default=True, help="Publish the body this many times (numbered 'n').")
@json_option
@click.pass_context
@reports_errors
def publish_cmd(ctx: click.Context, topic: str, body: str, count: int, as_json: bool) -> None:
    """Append to TOPIC's outbox; the running node delivers to every subscriber, in order, at least once."""
    message = _json_object(body, "--body")
    ps.check_topic(topic)
    bodies = [{**message, "n": i} if count > 1 else message for i in range(1, count + 1)]
    store = open_store(settings_of(ctx))
    try:
        seqs = store.call(lambda s: [ps.append(s, topic, b) for b in bodies])
    finally:
        store.close()
    emit({"topic": topic, "seqs": seqs}, as_json, lambda: out.print(f"published {topic} #{seqs[0]}..#{seqs[-1]}"))


@pubsub_group.command("subscribe")
@click.argument("publisher_url")
@click.argument("publisher_org")
@click.argument("topic")
@json_option
@click.pass_context
@reports_errors
def subscribe_cmd(ctx: click.Context, publisher_url: str, publisher_org: str, topic: str, as_json: bool) -> None:
    """Subscribe this node to TOPIC of PUBLISHER_ORG (at PUBLISHER_URL); deliveries go to the running node."""

    async def work(stack: NetworkStack, store: Store) -> int:
        pubsub = ps.PubSub(store, stack.messenger, None, stack.public_url)  # deliveries go to our current address
        return await pubsub.subscribe(publisher_url, publisher_org, topic)

    last = asyncio.run(as_node(ctx, work))
    emit(
        {"topic": topic, "publisher": publisher_org, "last_seq": last},
        as_json,
        lambda: out.print(f"subscribed to {topic} of {publisher_org} (its last message is #{last})"),
    )


@pubsub_group.command("unsubscribe")
@click.argument("publisher_org")
@click.argument("topic")
@click.pass_context
@reports_errors
def unsubscribe_cmd(ctx: click.Context, publisher_org: str, topic: str) -> None:
    """End this node's subscription to TOPIC of PUBLISHER_ORG."""

    async def work(stack: NetworkStack, store: Store) -> None:
        await ps.PubSub(store, stack.messenger, None, stack.public_url).unsubscribe(publisher_org, topic)

    asyncio.run(as_node(ctx, work))
    out.print(f"unsubscribed from {topic} of {publisher_org}")


@pubsub_group.command("inbox")
@click.argument("topic")
@click.option("--publisher", help="Only messages of this publishing organization.")
@json_option
@click.pass_context
@reports_errors
def inbox_cmd(ctx: click.Context, topic: str, publisher: str | None, as_json: bool) -> None:
    """The messages received on TOPIC, each once, in the publisher's order."""
    store = open_store(settings_of(ctx))
    try:
        rows = ps.inbox(store, topic, publisher)
    finally:
        store.close()
    data = [{"publisher": r.publisher_org, "seq": r.seq, "body": json.loads(r.body)} for r in rows]

    def render() -> None:
        table = Table(title=f"inbox {topic}", title_justify="left")
        for col in ("publisher", "seq", "body"):
            table.add_column(col)
        for d in data:
            table.add_row(d["publisher"], str(d["seq"]), json.dumps(d["body"]))
        out.print(table)

    emit(data, as_json, render)


# -- broadcast ---------------------------------------------------------------------------------------------------
@click.command("broadcast")
@click.argument("kind")
@click.option("--payload", default="{}", show_default=True, help="The question, a JSON object.")
@click.option("--quorum", type=click.IntRange(min=1), required=True, help="How many answers to wait for.")
@click.option("--deadline", "deadline_s", default=5.0, show_default=True, help="Seconds to wait at most.")
@click.option("--group", help="Only members of this named group.")
@click.option("--ledger", help="Only the primary nodes of this ledger.")
@click.option("--org", "orgs", multiple=True, help="Only these organizations (repeatable).")
@click.option("--via-rendezvous", is_flag=True, help="Hand it to the rendezvous cluster to propagate.")
@click.option("--encrypt", is_flag=True, help="Seal the payload for the final recipients only.")
@json_option
@click.pass_context
@reports_errors
def broadcast_cmd(
    ctx: click.Context,
    kind: str,
    payload: str,
    quorum: int,
    deadline_s: float,
    group: str | None,
    ledger: str | None,
    orgs: tuple[str, ...],
    via_rendezvous: bool,
    encrypt: bool,
    as_json: bool,
) -> None:
    """Ask KIND of many nodes as this node, wait for a quorum of signed answers and compare them.
    Exit status 0 when the quorum agrees, 1 when it was not reached or the answers differ."""
    question = _json_object(payload, "--payload")

    async def work(stack: NetworkStack, store: Store) -> Any:
        directory = Directory(Discovery(settings_of(ctx), store, stack.messenger, None))
        return await Broadcaster(stack.messenger, directory, is_rendezvous=False).ask(
            kind,
            question,
            scope=Scope(group, ledger, orgs),
            quorum=quorum,
            deadline_s=deadline_s,
            via_rendezvous=via_rendezvous,
            encrypt=encrypt,
        )

    result = asyncio.run(as_node(ctx, work))

    def render() -> None:
        state = "[green]consistent[/]" if result.consistent else "[red]not consistent[/]"
        out.print(f"{kind}: {len(result.answers)} answer(s), quorum {quorum}: {state}; value {result.value!r}")
        for a in result.differing:
            out.print(f"  differs: {a.org_id} says {a.value!r}")
        for a in result.out_of_date:
            out.print(f"  out of date: {a.org_id} read height {a.height}")
        if result.missing:
            out.print(f"  no answer: {', '.join(result.missing)}")

    emit(result.to_dict(), as_json, render)
    if not result.consistent:
        raise SystemExit(1)


# -- acl ---------------------------------------------------------------------------------------------------------
@click.group("acl")
def acl_group() -> None:
    """This node's access rules: who may read or subscribe to which of its resources."""


def _acl(ctx: click.Context) -> tuple[Any, Store]:
    store = open_store(settings_of(ctx))
    return acl_backend(ctx, store), store


def _rule(subject: str, action: str, resource: str) -> AclRule:
    try:
        return AclRule(subject, action, resource)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@acl_group.command("grant")
@click.argument("subject")
@click.argument("action")
@click.argument("resource")
@click.pass_context
@reports_errors
def acl_grant_cmd(ctx: click.Context, subject: str, action: str, resource: str) -> None:
    """Grant SUBJECT (org:ID, group:NAME or *) ACTION (read, subscribe, write, *) on RESOURCE (a pattern)."""
    backend, store = _acl(ctx)
    try:
        rule = asyncio.run(backend.grant(_rule(subject, action, resource)))
    finally:
        store.close()
    out.print(f"granted {rule.subject} {rule.action} on {rule.resource}")


@acl_group.command("withdraw")
@click.argument("subject")
@click.argument("action")
@click.argument("resource")
@click.pass_context
@reports_errors
def acl_withdraw_cmd(ctx: click.Context, subject: str, action: str, resource: str) -> None:
    """Withdraw a rule granted before; takes effect on the next request."""
    backend, store = _acl(ctx)
    try:
        found = asyncio.run(backend.withdraw(_rule(subject, action, resource)))
    finally:
        store.close()
    out.print("withdrawn" if found else "no such rule")
    if not found:
        raise SystemExit(1)


@acl_group.command("list")
@json_option
@click.pass_context
@reports_errors
def acl_list_cmd(ctx: click.Context, as_json: bool) -> None:
    """List the rules."""
    backend, store = _acl(ctx)
    try:
        rules = asyncio.run(backend.rules())
    finally:
        store.close()
    data = [{"subject": r.subject, "action": r.action, "resource": r.resource} for r in rules]

    def render() -> None:
        for d in data:
            out.print(f"{d['subject']} {d['action']} {d['resource']}")

    emit(data, as_json, render)
