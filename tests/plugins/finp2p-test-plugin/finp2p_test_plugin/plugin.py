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
    _confirm_late(node)
    _crash_in_batches(node)


class LateLedger:
    """A ledger whose first ``late`` transfers are executed, and then answered with FP6015 (no confirmation in
    time): what a node sees when a chain confirms a transaction after its client stopped waiting."""

    def __init__(self, inner: Any, late: int, marks: Path) -> None:
        self._inner = inner
        self._late = late
        self._marks = marks  # one line per late answer, so a test sees the late path taken

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def transfer(self, *args: Any, **kwargs: Any) -> Any:
        from finp2p.errors import ErrorCode, FinP2PError

        tx = await self._inner.transfer(*args, **kwargs)
        if self._late > 0:
            self._late -= 1
            with self._marks.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"late": tx.transaction_id}) + "\n")
            raise FinP2PError(ErrorCode.LEDGER_TIMEOUT, f"transaction {tx.transaction_id} not confirmed in time")
        return tx


def _crash_in_batches(node: Any) -> None:
    """With ``FINP2P_TEST_CRASH_AT=batch-<step>``, the node kills itself (SIGKILL) when a batch of several
    operations on one of its ledgers passes ``step`` (``sending``, ``sent``, ``mined``: see ``on_batch_step`` of
    the Ethereum ledger)."""
    import os
    import signal

    target = os.environ.get("FINP2P_TEST_CRASH_AT", "")
    if not target.startswith("batch-"):
        return

    def observe(step: str, size: int) -> None:
        if f"batch-{step}" == target:
            os.kill(os.getpid(), signal.SIGKILL)

    for ledger in node.ledgers.values():
        if hasattr(ledger, "on_batch_step"):
            ledger.on_batch_step = observe


def _confirm_late(node: Any) -> None:
    """With ``FINP2P_TEST_LATE_TRANSFERS=<n>``, the node's ledgers confirm its first n transfers too late."""
    import os

    late = int(os.environ.get("FINP2P_TEST_LATE_TRANSFERS", "0"))
    if late > 0:
        for ledger_id, ledger in list(node.ledgers.items()):
            node.ledgers[ledger_id] = LateLedger(ledger, late, _data(node) / "paper-late.jsonl")


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


# -- a second ACL backend: rules in a JSON file an operator edits -------------------------------------------------
class FileAcl:
    """``acl.json`` in the data directory: ``{"rules": [[subject, action, resource], ...], "groups": {...}}``.
    Read on every call, so an edit takes effect on the next request."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _doc(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.exists() else {"rules": [], "groups": {}}

    def _save(self, doc: dict[str, Any]) -> None:
        self.path.write_text(json.dumps(doc))

    async def grant(self, rule: Any) -> Any:
        doc = self._doc()
        entry = [rule.subject, rule.action, rule.resource]
        if entry not in doc["rules"]:
            doc["rules"].append(entry)
            self._save(doc)
        return rule

    async def withdraw(self, rule: Any) -> bool:
        doc = self._doc()
        entry = [rule.subject, rule.action, rule.resource]
        if entry not in doc["rules"]:
            return False
        doc["rules"].remove(entry)
        self._save(doc)
        return True

    async def rules(self, *, subject: str | None = None, resource: str | None = None) -> list[Any]:
        from finp2p.privacy.acl import AclRule

        found = [AclRule(*r) for r in self._doc()["rules"]]
        return [
            r
            for r in found
            if (subject is None or r.subject == subject) and (resource is None or r.resource == resource)
        ]

    async def set_group(self, group: str, org_ids: set[str]) -> None:
        doc = self._doc()
        doc.setdefault("groups", {})[group] = sorted(org_ids)
        self._save(doc)

    async def groups_of(self, org_id: str) -> frozenset[str]:
        return frozenset(g for g, members in self._doc().get("groups", {}).items() if org_id in members)

    async def group_members(self, group: str) -> frozenset[str]:
        return frozenset(self._doc().get("groups", {}).get(group, []))

    async def is_allowed(self, org_id: str, action: str, resource: str) -> bool:
        groups = await self.groups_of(org_id)
        return any(r.covers(org_id, groups, action, resource) for r in await self.rules())


@hookimpl
def finp2p_acl_backend_kinds() -> list[ComponentKind[Any]]:
    def factory(settings: dict[str, Any], ctx: ComponentContext) -> Any:
        from finp2p.privacy.acl import AclBackend

        AclBackend.register(FileAcl)  # a virtual subclass: the node only calls the interface
        return FileAcl(ctx.data_dir / "acl.json")

    return [ComponentKind("file", factory, "test-only: ACL rules in a JSON file")]


# -- fault injection: die at a chosen step of an asset operation -------------------------------------------------
@hookimpl
def finp2p_operation_step(node: Any, operation: dict[str, Any], step: str) -> None:
    """With ``FINP2P_TEST_CRASH_AT=<step>``, the node kills itself (SIGKILL: no cleanup) when a transfer passes it."""
    import os
    import signal

    if operation.get("operation") == "transfer" and os.environ.get("FINP2P_TEST_CRASH_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)
