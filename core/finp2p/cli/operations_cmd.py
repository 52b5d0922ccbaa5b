"""``finp2p operations``: the asset operations this node asked for, as its running node's REST API shows them.

The commands talk to the node that runs (the one of ``--config``, found by its run file, or ``--api``), with an API
token: ``--token-file``, or ``FINP2P_API_TOKEN``. Retrying and abandoning happen in that node, which drives each
operation.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from finp2p.cli.output import emit, json_option, out, reports_errors
from finp2p.edge.json_input import read_json_object
from finp2p.errors import ErrorCode, FinP2PError

#: The most a listing may be (1000 operations with their receipts).
MAX_ANSWER = 32 * 1024 * 1024
TIMEOUT_S = 60.0


class NodeApi:
    """A running node's REST API, reached with an application token."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def call(self, method: str, path: str) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - the operator's own node, http(s) only (checked)
            self.url + path,
            method=method,
            data=b"" if method == "POST" else None,
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:  # noqa: S310 - see above
                return read_json_object(answer.read(MAX_ANSWER + 1), what="the node's answer", max_bytes=MAX_ANSWER)
        except urllib.error.HTTPError as exc:
            raise _error_of(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FinP2PError(
                ErrorCode.PEER_UNREACHABLE,
                f"the node's REST API does not answer at {self.url} ({reason}): is it running?",
            ) from None


def _error_of(exc: urllib.error.HTTPError) -> FinP2PError:
    try:
        data = read_json_object(exc.read(1024 * 1024), what="the node's error", max_bytes=1024 * 1024).get("error", {})
    except FinP2PError:
        data = {}
    code = next((c for c in ErrorCode if c.code == data.get("code")), ErrorCode.PEER_ERROR)
    return FinP2PError(code, str(data.get("detail") or f"HTTP {exc.code}"))


def _api(ctx: click.Context, url: str | None, token_file: Path | None, token: str | None) -> NodeApi:
    if url is None:
        from finp2p.cli.common import settings_of

        run_file = settings_of(ctx).data_dir / "node.json"
        try:
            url = json.loads(run_file.read_text()).get("api")
        except (OSError, ValueError):
            url = None
        if not url:
            raise FinP2PError(
                ErrorCode.CONFIG_VALUE,
                f"no running node with a REST API is recorded in {run_file}: start it, or give --api URL",
            )
    if not str(url).startswith(("http://", "https://")):
        raise FinP2PError(ErrorCode.CONFIG_VALUE, f"--api {url!r} is not an http(s) URL")
    if token_file is not None:
        token = Path(token_file).read_text().strip()
    if not token:
        raise FinP2PError(
            ErrorCode.API_UNAUTHORIZED,
            "give --token-file (a token made by `finp2p api token NAME`) or FINP2P_API_TOKEN",
        )
    return NodeApi(str(url), str(token))


def _node_options(fn: Any) -> Any:
    """--api and --token-file (or FINP2P_API_TOKEN): which running node, and the token it is asked with."""
    fn = click.option("--token", envvar="FINP2P_API_TOKEN", hidden=True, help="An API token (from FINP2P_API_TOKEN).")(
        fn
    )
    fn = click.option(
        "--token-file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="A file holding an API token (`finp2p api token NAME`); or set FINP2P_API_TOKEN.",
    )(fn)
    return click.option("--api", metavar="URL", help="The node's REST API (default: the one its run file names).")(fn)


@click.group("operations")
def operations_group() -> None:
    """Asset operations this node asked for: list the stuck ones, retry or abandon one."""


@operations_group.command("list")
@click.option("--stuck", is_flag=True, help="Only pending ones waiting longer than --older-than, and unconfirmed ones.")
@click.option("--state", type=click.Choice(["pending", "recorded", "failed"]), help="Only operations in this state.")
@click.option("--older-than", type=click.FloatRange(0, 30 * 86400), default=60.0, show_default=True, help="Seconds.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@_node_options
@json_option
@click.pass_context
@reports_errors
def list_cmd(
    ctx: click.Context,
    stuck: bool,
    state: str | None,
    older_than: float,
    limit: int,
    api: str | None,
    token_file: Path | None,
    token: str | None,
    as_json: bool,
) -> None:
    """List operations, newest first, with what each pending one waits for."""
    query = f"/v1/operations?limit={limit}&older_than_s={older_than}" + ("&stuck=true" if stuck else "")
    if state:
        query += f"&state={state}"
    found = _api(ctx, api, token_file, token).call("GET", query)["operations"]

    def render() -> None:
        table = Table("id", "state", "operation", "waiting for / outcome", box=None)
        for op in found:
            request = op["request"]
            what = f"{request.get('operation')} {request.get('quantity')} {request.get('asset_id')}"
            table.add_row(op["id"], op["state"], what, _outcome(op))
        out.print(table if found else "no operations")

    emit(found, as_json, render)


def _outcome(op: dict[str, Any]) -> str:
    if op["state"] == "pending":
        w = op.get("waiting") or {}
        last = f", last {w['code']} ({w.get('attempts')} attempts)" if w.get("code") else ""
        return f"{w.get('for', '?')}{last}"
    if "error" in op:
        return f"{op['error'].get('code')} {op['error'].get('detail', '')}"
    return "recorded"


def _one(
    ctx: click.Context, verb: str, op_id: str, node: tuple[str | None, Path | None, str | None], as_json: bool
) -> None:
    if not op_id.isalnum() or len(op_id) > 64:
        raise FinP2PError(ErrorCode.OPERATION_INVALID, f"{op_id!r} is not an operation id")
    op = _api(ctx, *node).call("POST", f"/v1/operations/{op_id}/{verb}")
    emit(op, as_json, lambda: out.print(f"{op['id']}: {op['state']} ({_outcome(op)})"))


@operations_group.command("retry")
@click.argument("op_id", metavar="ID")
@_node_options
@json_option
@click.pass_context
@reports_errors
def retry_cmd(
    ctx: click.Context, op_id: str, api: str | None, token_file: Path | None, token: str | None, as_json: bool
) -> None:
    """Ask the primary node again now (a pending operation, or one that ended FP7013 or FP7004)."""
    _one(ctx, "retry", op_id, (api, token_file, token), as_json)


@operations_group.command("abandon")
@click.argument("op_id", metavar="ID")
@_node_options
@json_option
@click.pass_context
@reports_errors
def abandon_cmd(
    ctx: click.Context, op_id: str, api: str | None, token_file: Path | None, token: str | None, as_json: bool
) -> None:
    """End an operation now, as its deadline would: the primary node is asked to cancel it."""
    _one(ctx, "abandon", op_id, (api, token_file, token), as_json)
