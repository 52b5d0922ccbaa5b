"""``finp2p operations``: the asset operations this node asked for, as its running node's REST API shows them.

The commands talk to the node that runs (the one of ``--config``, found by its run file, or ``--api``), with an API
token: ``--token-file``, or ``FINP2P_API_TOKEN``. Retrying and abandoning happen in that node, which drives each
operation.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from finp2p.cli.output import Table, emit, json_option, out, reports_errors
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

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        request = urllib.request.Request(  # noqa: S310 - the operator's own node, http(s) only (checked)
            self.url + path, method=method, data=data, headers=headers
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
    """Asset operations this node asked for: submit one, show one, list the stuck ones, retry or abandon one."""


_receipt_option = click.option(
    "--receipt-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the operation's receipt bundle to this file (for `finp2p receipt verify`).",
)


@operations_group.command("submit")
@click.argument("request_file", metavar="REQUEST", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--sign",
    "key_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The source's key (`finp2p wallet new`): sign the consent the primary node's template asks for.",
)
@click.option("--template", type=click.Choice(["EIP712", "hashList"]), default="EIP712", show_default=True)
@click.option("--wait", type=click.FloatRange(0, 3600), default=60.0, show_default=True, help="Seconds to wait.")
@_receipt_option
@_node_options
@json_option
@click.pass_context
@reports_errors
def submit_cmd(
    ctx: click.Context,
    request_file: Path,
    key_file: Path | None,
    template: str,
    wait: float,
    receipt_out: Path | None,
    api: str | None,
    token_file: Path | None,
    token: str | None,
    as_json: bool,
) -> None:
    """Ask for the asset operation in REQUEST (a JSON file: what `POST /v1/operations` takes) and wait until it is
    recorded or failed (exit 1). With --sign, the consent is made first, as the user's wallet makes it: the
    template asked of the node (`POST /v1/consent`), its hash signed with the key. The operation id is its
    Idempotency-Key, so running the command again is a retry, never a second operation."""
    from finp2p.identity.keys import load_key, passphrase_from

    node = _api(ctx, api, token_file, token)
    body = read_json_object(request_file.read_bytes(), what=str(request_file), max_bytes=1024 * 1024)
    if key_file is not None:
        key = load_key(key_file, passphrase_from())
        asked = node.call("POST", "/v1/consent", {**body, "template_type": template})
        signature = key.sign_digest(_signable(body, asked)).hex()
        body["consent"] = {
            "template": template,
            "signer": key.fin_id,
            "signature": signature,
            "payload": asked["template"],
        }
        if asked.get("hashFunc"):
            body["consent"]["hashFunc"] = asked["hashFunc"]
    op_id = str(body.get("operation_id") or "")
    if not op_id:
        raise FinP2PError(ErrorCode.OPERATION_INVALID, f"{request_file} has no operation_id: give each operation one")
    op = node.call("POST", "/v1/operations", body, idempotency_key=op_id)
    op = _until_ended(node, str(op["id"]), op, wait)
    _report(op, receipt_out, as_json)
    if op["state"] == "failed":
        raise SystemExit(1)


@operations_group.command("show")
@click.argument("op_id", metavar="ID")
@click.option("--wait", type=click.FloatRange(0, 3600), default=0.0, help="Seconds to wait for it to end.")
@_receipt_option
@_node_options
@json_option
@click.pass_context
@reports_errors
def show_cmd(
    ctx: click.Context,
    op_id: str,
    wait: float,
    receipt_out: Path | None,
    api: str | None,
    token_file: Path | None,
    token: str | None,
    as_json: bool,
) -> None:
    """One operation: its state, what it waits for or how it ended, its receipt (--json)."""
    node = _api(ctx, api, token_file, token)
    op = _until_ended(node, _checked_id(op_id), node.call("GET", f"/v1/operations/{_checked_id(op_id)}"), wait)
    _report(op, receipt_out, as_json)


def _report(op: dict[str, Any], receipt_out: Path | None, as_json: bool) -> None:
    """Print the operation; write its receipt bundle (what `finp2p receipt verify` reads) when asked and there."""
    if receipt_out is not None:
        if "receipt" not in op:
            raise FinP2PError(ErrorCode.NOT_FOUND, f"operation {op['id']} has no receipt ({op['state']})")
        receipt_out.write_text(json.dumps(op["receipt"], indent=2) + "\n", encoding="utf-8")
    emit(op, as_json, lambda: out.print(f"{op['id']}: {op['state']} ({_outcome(op)})"))


#: What a consent template must say as the request does before a wallet signs it.
_SIGNED_TERMS = {"operationId": "operation_id", "assetId": "asset_id", "source": "source", "quantity": "quantity"}


def _signable(body: dict[str, Any], asked: dict[str, Any]) -> bytes:
    """The digest to sign, once the template the node sent is this very operation's, as a wallet reads it before
    signing: its hash recomputed from its content, and its terms (operation id, asset, source, destination,
    quantity) the request's. FP7009 otherwise: nothing is signed."""
    from finp2p.identity import eip712
    from finp2p.identity.templates import template_digest

    template = asked.get("template")
    digest = template_digest(template, str(asked.get("hashFunc") or "keccak-256"))  # FP7009 for a malformed one
    assert isinstance(template, dict)
    if template.get("type") == "EIP712":
        fields = eip712.from_adapter_template(template)[3]
    else:
        fields = {f.get("name"): f.get("value") for g in template.get("hashGroups", []) for f in g.get("fields", [])}
    expected = {name: body.get(key) for name, key in _SIGNED_TERMS.items()}
    if body.get("destination"):
        expected["destination"] = body["destination"]
    for name, value in expected.items():
        if str(fields.get(name, "")).lower() != str(value).lower():
            raise FinP2PError(
                ErrorCode.CONSENT_INVALID,
                f"the node's consent template has {name} {fields.get(name)!r}, the request {value!r}: not signed",
            )
    return digest


def _until_ended(node: NodeApi, op_id: str, op: dict[str, Any], wait_s: float) -> dict[str, Any]:
    """``op`` once it is recorded or failed, or as it is after ``wait_s`` seconds (the node holds each poll)."""
    deadline = time.monotonic() + wait_s
    while op["state"] == "pending" and (left := deadline - time.monotonic()) > 0:
        op = node.call("GET", f"/v1/operations/{op_id}?wait={min(30, max(1, int(left)))}")
    return op


def _checked_id(op_id: str) -> str:
    if not op_id.isalnum() or len(op_id) > 64:
        raise FinP2PError(ErrorCode.OPERATION_INVALID, f"{op_id!r} is not an operation id")
    return op_id


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
    receipt = (op.get("receipt") or {}).get("receipt") or {}
    return f"receipt of transaction {receipt['id']}" if receipt.get("id") else str(op["state"])


def _one(
    ctx: click.Context, verb: str, op_id: str, node: tuple[str | None, Path | None, str | None], as_json: bool
) -> None:
    op = _api(ctx, *node).call("POST", f"/v1/operations/{_checked_id(op_id)}/{verb}")
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
