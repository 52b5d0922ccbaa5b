"""Implements one hook of each kind, so the suite can see each one called through a real entry point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel

from finp2p import hookimpl
from finp2p.compliance import TransferCheck, Violation
from finp2p.components import ComponentContext, ComponentKind


class PaperSection(BaseModel):
    greeting: str = "hello"
    unlucky: int = 13


class PaperLedgerHandle:
    """Not a ledger: enough to show that the factory was found and called with its settings."""

    def __init__(self, settings: dict[str, Any], data_dir: Path) -> None:
        self.settings = settings
        self.data_dir = data_dir


@hookimpl
def finp2p_ledger_kinds() -> list[ComponentKind[Any]]:
    return [ComponentKind("paper", lambda s, ctx: PaperLedgerHandle(s, ctx.data_dir), "test-only paper ledger")]


@hookimpl
def finp2p_config_sections() -> dict[str, type[BaseModel]]:
    return {"paper": PaperSection}


@hookimpl
def finp2p_check_transfer(check: TransferCheck, settings: Any) -> list[Violation]:
    section = settings.sections.get("paper")
    unlucky = section.unlucky if section is not None else 13
    return [Violation("unlucky", f"{unlucky} is unlucky")] if check.quantity == unlucky else []


@hookimpl
def finp2p_cli_commands() -> list[click.Command]:
    @click.command("paper-hello")
    @click.argument("name")
    def hello(name: str) -> None:
        """Say hello (test-only plugin command)."""
        click.echo(f"paper says hello to {name}")

    return [hello]


def _mark(node: Any, event: str) -> None:
    path = node.settings.data_dir / "paper-events.jsonl"
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"event": event, "node": node.settings.node.name}) + "\n")


@hookimpl
async def finp2p_node_started(node: Any) -> None:
    _mark(node, "started")


@hookimpl
def finp2p_node_stopping(node: Any) -> None:
    _mark(node, "stopping")


def _unused(ctx: ComponentContext) -> None:  # keeps the import used for type checkers
    del ctx


# -- messaging: a slow handler that counts how often it runs, and a broadcast question the test controls --------
def _data(node: Any) -> Path:
    return Path(node.settings.data_dir)


@hookimpl
def finp2p_message_handlers(node: Any) -> dict[str, Any]:
    async def slow_count(msg: Any) -> dict[str, Any]:
        import asyncio

        path = _data(node) / "paper-count.json"
        counts = json.loads(path.read_text()) if path.exists() else {}
        key = str(msg.body.get("id"))
        counts[key] = counts.get(key, 0) + 1
        path.write_text(json.dumps(counts))
        await asyncio.sleep(int(msg.body.get("sleep_ms", 0)) / 1000)
        return {"id": key, "count": counts[key], "by": node.settings.node.name}

    return {"paper.slow_count": slow_count}


@hookimpl
def finp2p_broadcast_queries(node: Any) -> dict[str, Any]:
    async def value(payload: dict[str, Any], asker: Any) -> tuple[Any, int | None]:
        import asyncio

        with (_data(node) / "paper-broadcasts.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"id": payload.get("id"), "asker": asker.org_id}) + "\n")
        path = _data(node) / "paper-value.json"
        conf = json.loads(path.read_text()) if path.exists() else {}
        await asyncio.sleep(float(conf.get("delay", 0)))
        return conf.get("value", payload.get("expect", "same")), conf.get("height", 10)

    return {"paper.value": value}
