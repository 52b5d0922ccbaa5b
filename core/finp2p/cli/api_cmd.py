"""``finp2p api``: tokens for the organization's own applications, and the OpenAPI document."""

from __future__ import annotations

import json

import click

from finp2p.api import tokens
from finp2p.api.server import openapi
from finp2p.cli.common import open_store, settings_of
from finp2p.cli.output import out, reports_errors


@click.group("api")
def api_group() -> None:
    """The REST API of this node (enabled by `[api] port` in the config)."""


@api_group.command("token")
@click.argument("name")
@click.option("--revoke", is_flag=True, help="Revoke every token of NAME instead.")
@click.pass_context
@reports_errors
def token_cmd(ctx: click.Context, name: str, revoke: bool) -> None:
    """Create an API token for the application NAME (printed once, stored as a hash), or revoke its tokens."""
    store = open_store(settings_of(ctx))
    try:
        if revoke:
            n = store.call(lambda s: tokens.revoke(s, name))
            out.print(f"revoked {n} token(s) of {name}")
            return
        token = store.call(lambda s: tokens.create(s, name))
    finally:
        store.close()
    click.echo(token)


@api_group.command("openapi")
def openapi_cmd() -> None:
    """Print the OpenAPI document the API serves at /openapi.json."""
    click.echo(json.dumps(openapi(), indent=2))
