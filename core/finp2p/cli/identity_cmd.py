"""``finp2p network``, ``finp2p governance``, ``finp2p org`` and ``finp2p credential``: the network's trust."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from finp2p.cli.common import open_store, settings_of
from finp2p.cli.output import (
    Table,
    emit,
    err,
    genesis_option,
    json_option,
    out,
    read_revocations,
    reports_errors,
    revocations_option,
)
from finp2p.config import Settings
from finp2p.edge.json_input import read_json_file
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.governance import authority as auth
from finp2p.governance.founding import (
    FoundingMaterial,
    certify_governance,
    create_genesis,
    governance_request,
    install_governance,
)
from finp2p.identity.credentials import chain_from
from finp2p.identity.genesis import Genesis
from finp2p.identity.keys import passphrase_from
from finp2p.identity.local import LocalIdentity
from finp2p.identity.trust import Trust
from finp2p.store import Store
from finp2p.store.models import RegistrationRow

passphrase_option = click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Encrypt/decrypt keys with the passphrase in this file (else FINP2P_KEY_PASSPHRASE, else unencrypted).",
)


T = TypeVar("T")


def _genesis(settings: Settings) -> Genesis:
    if settings.identity.genesis is None:
        raise FinP2PError(ErrorCode.CONFIG_VALUE, "identity.genesis is not set in the config (--config)")
    return Genesis.load(settings.path(settings.identity.genesis))


def _identity(settings: Settings) -> LocalIdentity:
    pf = settings.identity.passphrase_file
    return LocalIdentity(settings.data_dir, passphrase_from(settings.path(pf) if pf else None))


def _as_authority(ctx: click.Context, act: Callable[[Store, auth.Authority], T]) -> T:
    """Run ``act`` with this governance node's store and authority (its keys and CA, from --config)."""
    settings = settings_of(ctx)
    store = open_store(settings)
    try:
        return act(
            store, auth.Authority.load(_identity(settings), _genesis(settings), settings.governance.credential_days)
        )
    finally:
        store.close()


def node_config(name: str, genesis_rel: str, *, port: int, governance: bool, auto_approve: list[str]) -> str:
    lines = [
        "[node]",
        f'name = "{name}"',
        'data_dir = "data"',
        "",
        "[identity]",
        f'genesis = "{genesis_rel}"',
        "",
        "[peer]",
        f"port = {port}",
    ]
    if governance:
        lines += ["", "[governance]", "enabled = true", f"auto_approve = {json.dumps(auto_approve)}"]
        lines += ["", "[advert]", "optional_capabilities = []  # a rendezvous node carries no asset transactions"]
    return "\n".join(lines) + "\n"


# -- network -----------------------------------------------------------------------------------------------------
@click.group("network")
def network_group() -> None:
    """Create a FinP2P network (its genesis and founding keys)."""


@network_group.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--network-id", required=True, help="The network's id: 2-63 lowercase letters, digits or '-'.")
@click.option(
    "--founding",
    "founding_names",
    multiple=True,
    default=["founding-1"],
    show_default=True,
    help="Name of a founding node (repeat for several).",
)
@click.option(
    "--governance",
    "governance",
    multiple=True,
    metavar="NAME=HOST:PORT",
    help="Create and certify a governance (rendezvous) node; its address goes into the genesis.",
)
@click.option(
    "--rendezvous", multiple=True, metavar="URL", help="A further rendezvous address (https://HOST:PORT) run elsewhere."
)
@click.option("--devnet", is_flag=True, help="Mark the network a development network (loopback addresses allowed).")
@click.option(
    "--auto-approve",
    multiple=True,
    metavar="ORG_ID",
    help="Devnets: organizations the governance nodes admit without an operator ('*' for all).",
)
@passphrase_option
@json_option
@reports_errors
def network_init(
    directory: Path,
    network_id: str,
    founding_names: tuple[str, ...],
    governance: tuple[str, ...],
    rendezvous: tuple[str, ...],
    devnet: bool,
    auto_approve: tuple[str, ...],
    passphrase_file: Path | None,
    as_json: bool,
) -> None:
    """Create a network in DIRECTORY: genesis.json, the founding nodes' keys (keep them offline) and, with
    --governance, ready-to-start governance nodes certified by the first founding node."""
    if auto_approve and not devnet:
        raise click.UsageError("--auto-approve is for devnets only (add --devnet)")
    govs = [_parse_governance(g) for g in governance]
    addresses = [f"https://{host}:{port}" for _, host, port in govs] + list(rendezvous)
    if not addresses:
        raise click.UsageError("give at least one --governance NAME=HOST:PORT or --rendezvous URL")
    passphrase = passphrase_from(passphrase_file)
    genesis = create_genesis(
        directory,
        network_id=network_id,
        founding_names=list(founding_names),
        rendezvous=addresses,
        devnet=devnet,
        passphrase=passphrase,
    )
    founding = FoundingMaterial.load(directory / "founding" / founding_names[0], passphrase)
    created = []
    for name, host, port in govs:
        node_dir = directory / "governance" / name
        node_dir.mkdir(parents=True, exist_ok=True)
        config = node_dir / "node.toml"
        config.write_text(
            node_config(name, "../../genesis.json", port=port, governance=True, auto_approve=list(auto_approve))
        )
        ident = LocalIdentity(node_dir / "data")
        request = governance_request(ident, genesis, name, [host], f"https://{host}:{port}")
        install_governance(ident, genesis, certify_governance(founding, genesis, request))
        created.append({"name": name, "config": str(config), "address": f"https://{host}:{port}"})
    data = {
        "genesis": str(directory / "genesis.json"),
        "genesis_hash": genesis.hash,
        "network_id": network_id,
        "devnet": devnet,
        "founding": [f.fin_id for f in genesis.founding],
        "governance": created,
    }

    def render() -> None:
        out.print(f"network [bold]{network_id}[/] created in {directory}{' (devnet)' if devnet else ''}")
        out.print(f"genesis hash {genesis.hash}  (compare it out of band with every member)")
        for g in created:
            out.print(f"governance node {g['name']} at {g['address']}: finp2p -c {g['config']} node start")

    emit(data, as_json, render)


def _parse_governance(text: str) -> tuple[str, str, int]:
    try:
        name, address = text.split("=", 1)
        host, port = address.rsplit(":", 1)
        return name, host.strip("[]"), int(port)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not NAME=HOST:PORT", param_hint="--governance") from None


# -- governance --------------------------------------------------------------------------------------------------
@click.group("governance")
def governance_group() -> None:
    """Certify governance nodes; admit, list and revoke organizations (run on the governance node's machine)."""


@governance_group.command("request")
@click.option("--name", required=True, help="The governance node's name (its id in the network).")
@click.option("--public-url", required=True, help="https://HOST:PORT: its rendezvous address in the genesis.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.pass_context
@reports_errors
def governance_request_cmd(ctx: click.Context, name: str, public_url: str, out_file: Path) -> None:
    """Create this governance node's keys and a certification request for a founding operator (--config)."""
    settings = settings_of(ctx)
    host = urlsplit(public_url).hostname or ""
    request = governance_request(_identity(settings), _genesis(settings), name, [host], public_url)
    out_file.write_text(json.dumps(request, indent=2) + "\n")
    out.print(f"wrote {out_file}: hand it to a founding operator (finp2p governance certify-governance)")


@governance_group.command("certify-governance")
@click.argument("request_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--founding",
    "founding_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    required=True,
    help="The founding node's key folder (from `finp2p network init`).",
)
@click.option("--genesis", "genesis_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), required=True)
@click.option("--days", default=365, show_default=True, help="How long the credential is valid.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), required=True)
@passphrase_option
@reports_errors
def certify_governance_cmd(
    request_file: Path, founding_dir: Path, genesis_file: Path, days: int, out_file: Path, passphrase_file: Path | None
) -> None:
    """As a founding node, certify the governance node that wrote REQUEST_FILE."""
    genesis = Genesis.load(genesis_file)
    founding = FoundingMaterial.load(founding_dir, passphrase_from(passphrase_file))
    request = read_json_file(request_file)
    certified = certify_governance(founding, genesis, request, days)
    out_file.write_text(json.dumps(certified, indent=2) + "\n")
    out.print(f"certified {request['name']}: wrote {out_file} (install it with `finp2p governance install`)")


@governance_group.command("install")
@click.argument("certified_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.pass_context
@reports_errors
def governance_install_cmd(ctx: click.Context, certified_file: Path) -> None:
    """Install a founding node's certification on this governance node (--config)."""
    settings = settings_of(ctx)
    cred = install_governance(_identity(settings), _genesis(settings), read_json_file(certified_file))
    out.print(f"governance node {cred.name} certified until {_iso(cred.expires_ms)}")


@governance_group.command("list")
@click.option("--status", type=click.Choice(["pending", "approved", "rejected", "revoked"]))
@json_option
@click.pass_context
@reports_errors
def governance_list_cmd(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """List registrations (all, or of one status)."""
    store = open_store(settings_of(ctx))
    try:
        rows = auth.registrations(store, status)
    finally:
        store.close()
    data = [
        {
            "id": r.id,
            "org_id": r.org_id,
            "name": r.name,
            "fin_id": r.fin_id,
            "status": r.status,
            "reason": r.reason,
            "created_ms": r.created_ms,
        }
        for r in rows
    ]

    def render() -> None:
        table = Table(title="registrations", title_justify="left")
        for col in ("id", "org", "name", "status", "FinID"):
            table.add_column(col)
        for r in rows:
            table.add_row(r.id, r.org_id, r.name, r.status, r.fin_id)
        out.print(table)

    emit(data, as_json, render)


@governance_group.command("revocations")
@click.pass_context
@reports_errors
def governance_revocations_cmd(ctx: click.Context) -> None:
    """Print the revocation lists this node holds (a JSON array, each list signed by its issuer): what auditors
    pass to `finp2p receipt verify --revocations`."""
    store = open_store(settings_of(ctx))
    try:
        lists = auth.load_lists(store)
    finally:
        store.close()
    sys.stdout.write(json.dumps([rl.to_dict() for rl in lists], indent=2) + "\n")


@governance_group.command("approve")
@click.argument("registration_id", required=False)
@click.option("--org", "org_id", help="Approve the pending registration of this organization (instead of an id).")
@json_option
@click.pass_context
@reports_errors
def governance_approve_cmd(ctx: click.Context, registration_id: str | None, org_id: str | None, as_json: bool) -> None:
    """Admit the organization of a pending registration (REGISTRATION_ID, or --org ORG_ID): issue its credential
    and TLS certificate. `governance list --status pending` shows the pending ones."""
    if (registration_id is None) == (org_id is None):
        raise click.UsageError("give a REGISTRATION_ID or --org ORG_ID (one of them)")

    def approve(store: Store, authority: auth.Authority) -> RegistrationRow:
        return auth.approve(store, authority, registration_id or _pending_of(store, str(org_id)))

    row = _as_authority(ctx, approve)
    emit(
        {"id": row.id, "org_id": row.org_id, "status": row.status},
        as_json,
        lambda: out.print(f"approved {row.org_id} ({row.id}); it receives its credential on its next request"),
    )


def _pending_of(store: Store, org_id: str) -> str:
    """The id of ``org_id``'s pending registration; FP2105 when it has none."""
    pending = [r for r in auth.registrations(store, "pending") if r.org_id == org_id]
    if not pending:
        raise FinP2PError(ErrorCode.UNKNOWN_REGISTRATION, f"{org_id!r} has no pending registration")
    return str(pending[-1].id)  # the newest: a node that registered again replaced its request


@governance_group.command("reject")
@click.argument("registration_id")
@click.option("--reason", required=True)
@click.pass_context
@reports_errors
def governance_reject_cmd(ctx: click.Context, registration_id: str, reason: str) -> None:
    """Refuse a pending registration."""
    store = open_store(settings_of(ctx))
    try:
        row = auth.reject(store, registration_id, reason)
    finally:
        store.close()
    out.print(f"rejected {row.org_id} ({row.id})")


@governance_group.command("revoke")
@click.argument("org_id")
@click.option("--reason", required=True, help="Why; members see it in their refusals.")
@json_option
@click.pass_context
@reports_errors
def governance_revoke_cmd(ctx: click.Context, org_id: str, reason: str, as_json: bool) -> None:
    """Revoke an organization this node admitted. The running node publishes it to every member within a second."""
    rl = _as_authority(ctx, lambda store, authority: auth.revoke(store, authority, org_id, reason))
    emit(
        {"org_id": org_id, "sequence": rl.sequence},
        as_json,
        lambda: out.print(f"revoked {org_id}: revocation list sequence {rl.sequence}"),
    )


# -- org ---------------------------------------------------------------------------------------------------------
@click.group("org")
def org_group() -> None:
    """Join the network as an organization."""


@org_group.command("register")
@click.option("--org-id", required=True, help="The organization's id in the network.")
@click.option("--name", required=True, help="The organization's legal or display name.")
@click.option("--public-url", required=True, help="https://HOST:PORT where this node will serve its peers.")
@click.option("--host", "hosts", multiple=True, help="Further host names or IPs for its TLS certificate.")
@click.option("--rendezvous", "prefer", help="Register with this rendezvous address of the genesis first.")
@click.option(
    "--wait",
    "wait_s",
    default=0.0,
    show_default=True,
    help="Seconds to wait for an operator's approval (0: ask once and report).",
)
@json_option
@click.pass_context
@reports_errors
def org_register_cmd(
    ctx: click.Context,
    org_id: str,
    name: str,
    public_url: str,
    hosts: tuple[str, ...],
    prefer: str | None,
    wait_s: float,
    as_json: bool,
) -> None:
    """Register this node with a rendezvous node of the genesis (--config). Run again to collect the credential
    once an operator approved it; the exit status is 0 when approved and 1 while pending."""
    from finp2p.builtins.https import HttpsSettings, HttpsTransport
    from finp2p.governance.registration import register

    settings = settings_of(ctx)
    host = urlsplit(public_url).hostname or ""
    all_hosts = list(dict.fromkeys([host, *hosts]))
    store = open_store(settings)
    try:
        outcome = asyncio.run(
            register(
                genesis=(genesis := _genesis(settings)),
                transport=HttpsTransport(HttpsSettings(trust_pem=genesis.trust_pem)),
                ident=_identity(settings),
                store=store,
                org_id=org_id,
                name=name,
                public_url=public_url,
                hosts=all_hosts,
                wait_s=wait_s,
                prefer=prefer,
                on_event=lambda t: err.print(f"[yellow]{t}[/]"),
            )
        )
    finally:
        store.close()
    data = {
        "status": outcome.status,
        "registration_id": outcome.registration_id,
        "rendezvous": outcome.rendezvous,
        "fin_id": outcome.identity.fin_id if outcome.identity else None,
    }

    def render() -> None:
        if outcome.identity:
            out.print(
                f"[green]member[/]: {org_id} is certified (FinID {outcome.identity.fin_id}) by "
                f"{outcome.rendezvous}; start it with `finp2p node start`"
            )
        else:
            out.print(
                f"registration {outcome.registration_id} at {outcome.rendezvous} is {outcome.status}: "
                f"an operator approves it with `finp2p governance approve {outcome.registration_id}`"
            )

    emit(data, as_json, render)
    if outcome.status != "approved":
        raise SystemExit(1)


# -- credential --------------------------------------------------------------------------------------------------
@click.group("credential")
def credential_group() -> None:
    """Show and verify credential chains."""


def _load_chain(file: Path) -> list[Any]:
    return chain_from(read_json_file(file))


@credential_group.command("show")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@json_option
@reports_errors
def credential_show_cmd(file: Path, as_json: bool) -> None:
    """Print the credentials of FILE (a chain, leaf first), without verifying them."""
    chain = _load_chain(file)

    def render() -> None:
        table = Table(title=str(file), title_justify="left")
        for col in ("role", "name", "org", "subject FinID", "issuer FinID", "expires"):
            table.add_column(col)
        for c in chain:
            table.add_row(c.role, c.name, c.org_id or "", c.subject[:16] + "…", c.issuer[:16] + "…", _iso(c.expires_ms))
        out.print(table)

    emit([c.to_dict() for c in chain], as_json, render)


@credential_group.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@genesis_option
@revocations_option
@json_option
@reports_errors
def credential_verify_cmd(file: Path, genesis_file: Path, revocation_files: tuple[Path, ...], as_json: bool) -> None:
    """Verify the chain in FILE up to a founding node of the genesis: signatures, roles, expiry, revocation.
    Exit status 0 when it holds, 1 with the FP20xx reason when it does not."""
    trust = Trust(Genesis.load(genesis_file))
    for revocations in read_revocations(revocation_files):
        trust.accept_revocations(revocations)
    chain = _load_chain(file)
    ident = trust.verify_chain(chain)
    links = [
        f"{c.role} {c.name} ← {'founding' if c.issuer in trust.genesis.founding_fin_ids else 'next'}" for c in chain
    ]
    data = {
        "ok": True,
        "fin_id": ident.fin_id,
        "role": ident.role,
        "org_id": ident.org_id,
        "name": ident.name,
        "expires_ms": ident.expires_ms,
        "links": links,
        "genesis_hash": trust.genesis.hash,
    }

    def render() -> None:
        for c in chain:
            by = "a founding node of the genesis" if c.issuer in trust.genesis.founding_fin_ids else "the next link"
            out.print(
                f"[green]✓[/] {c.role} {c.name!r} ({c.subject[:16]}…), signed by {by}, "
                f"valid until {_iso(c.expires_ms)}, not revoked"
            )
        out.print(
            f"[green]verified[/]: {ident.role} {ident.org_id or ident.name} under genesis {trust.genesis.hash[:16]}…"
        )

    emit(data, as_json, render)


def _iso(ms: int) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ms / 1000))
