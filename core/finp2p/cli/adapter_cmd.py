"""``finp2p adapter serve``: FinP2P's ledger-adapter API over one of this node's ledger plugins."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from finp2p.cli.output import err, out


@click.group("adapter")
def adapter_group() -> None:
    """The FinP2P ledger-adapter API: lets any FinP2P router use a ledger this node's plugins support."""


@adapter_group.command("token")
@click.argument("token_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace the token the file holds (routers must get the new one).")
def token_cmd(token_file: Path, force: bool) -> None:
    """Write a new random bearer token to TOKEN_FILE (mode 0600), for --token-file or [adapter] token_file, and print
    it once: give it to the FinP2P routers that call this adapter."""
    from finp2p.edge.bearer import new_token_file

    if token_file.exists() and not force:
        err.print(f"[red]{token_file} exists[/]: routers may use its token; --force replaces it")
        raise SystemExit(1)
    out.print(new_token_file(token_file))


@adapter_group.command("serve")
@click.option(
    "--ledger",
    "profile_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The ledger profile (chains/*.toml): a Hardhat node, the Fabric devnet, ... Default: the embedded "
    "Ethereum chain, in this process (kept only while it runs).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Where to listen.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0: any free port.")
@click.option("--base-path", default="/api", show_default=True, help="The path the API is served under.")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".finp2p-adapter"),
    show_default=True,
    help="Where operations, mappings and plans are kept (SQLite), so a restart loses nothing.",
)
@click.option("--store", "store_url", metavar="URL", help="A database URL instead (postgresql://...).")
@click.option(
    "--key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The organization's FinID key: receipts carry its EIP-712 signature proof. Without one: noProofPolicy.",
)
@click.option(
    "--callback",
    "callback_url",
    metavar="URL",
    help="The router's base URL: each result is POSTed to URL/operations/callback/<cid> (polling works too).",
)
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file (mode 0600) holding the bearer token every request but health must carry. Required, unless "
    "--insecure-no-auth.",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Serve without a token, on a loopback --host only: anyone who reaches the port creates assets and issues "
    "units. For local development; a warning says so at every start.",
)
def serve_cmd(
    profile_file: Path | None,
    host: str,
    port: int,
    base_path: str,
    data_dir: Path,
    store_url: str | None,
    key_file: Path | None,
    callback_url: str | None,
    token_file: Path | None,
    insecure_no_auth: bool,
) -> None:
    """Serve the ledger-adapter API (assets, escrow, receipts, operation status, balances, payments, execution
    plans, health, and the account-mapping API) until interrupted. Prints the base URL when it serves."""
    from finp2p.adapter.auth import require_token
    from finp2p.adapter.server import AdapterServer
    from finp2p.adapter.service import AdapterService
    from finp2p.cli.context import config_path
    from finp2p.components import ComponentContext
    from finp2p.config import open_config
    from finp2p.edge.bearer import token_from_file
    from finp2p.edge.files import private_dir
    from finp2p.identity.keys import SigningKey, load_key, passphrase_from, save_key
    from finp2p.ledger import LedgerProfile
    from finp2p.ledger_profiles import EMBEDDED_PROFILE, load_profile, open_ledger
    from finp2p.lifecycle import Closers
    from finp2p.store import Store

    # A node's config (`finp2p -c node.toml adapter serve`) brings its plugins and their sections: the compliance
    # rules of [compliance] are asked about every issue, transfer, hold and release.
    # Without a config, defaults and FINP2P_<SECTION>__<KEY> overrides apply ([limits], say).
    settings, plugins = open_config(config_path(click.get_current_context()))
    profile = load_profile(profile_file) if profile_file else EMBEDDED_PROFILE
    key = load_key(key_file, passphrase_from()) if key_file else None
    token = token_from_file(token_file, "adapter token") if token_file else None
    require_token(token, insecure_no_auth, host)
    private_dir(data_dir)
    if "operator_key" not in profile.settings:
        # The ledger's operator: the organization's key when given, else this adapter's own, made on first run.
        operator = key_file.resolve() if key_file else data_dir.resolve() / "operator.key"
        if not operator.exists():
            save_key(operator, SigningKey.generate())
        profile = LedgerProfile(profile.kind, profile.ledger_id, {**profile.settings, "operator_key": str(operator)})

    async def serve() -> None:
        closers = Closers("ledger-adapter")
        try:
            store = Store(store_url or f"sqlite:///{(data_dir / 'adapter.db').resolve()}")
            closers.push("store", lambda: asyncio.to_thread(store.close))
            await asyncio.to_thread(store.migrate)
            ledger = open_ledger(profile, ComponentContext(settings, data_dir, plugins, store))
            closers.push("ledger", ledger.close)
            await ledger.start()
            service = AdapterService(
                ledger, store, key=key, callback_url=callback_url, plugins=plugins, settings=settings
            )
            server = AdapterServer(
                service,
                token=token,
                base_path=base_path,
                insecure_no_auth=insecure_no_auth,
                limits=settings.limits.server(),
            )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            url = await server.start(host, port)
            closers.push("server", server.close)
            out.print(url)
            err.print(f"serving the ledger-adapter API for {profile.ledger_id} at {url} (Ctrl-C stops)")
            await stop.wait()
        finally:
            await closers.close()

    asyncio.run(serve())
