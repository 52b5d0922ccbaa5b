"""What CLI commands share: the settings of the --config given, and the node's store opened from them."""

from __future__ import annotations

import click

from finp2p.components import ComponentContext
from finp2p.config import Settings, open_config
from finp2p.edge.files import private_dir
from finp2p.privacy.acl import AclBackend
from finp2p.store import Store


def settings_of(ctx: click.Context) -> Settings:
    from finp2p.cli.context import config_path

    return open_config(config_path(ctx))[0]


def acl_backend(ctx: click.Context, store: Store) -> AclBackend:
    """The node's configured ACL backend (a plugin may provide it), on its store."""
    from finp2p.cli.context import config_path

    settings, plugins = open_config(config_path(ctx))
    backend: AclBackend = plugins.kind("acl", settings.acl.backend).factory(
        settings.acl.model_dump(), ComponentContext(settings, settings.data_dir, plugins, store)
    )
    return backend


def open_store(settings: Settings, *, pool_size: int = 2, migrate: bool = True) -> Store:
    """The node's store (its data directory created 0700 if new), migrated unless ``migrate`` is false."""
    private_dir(settings.data_dir)
    store = Store(settings.store_url, sqlite_synchronous=settings.store.sqlite_synchronous, pool_size=pool_size)
    if migrate:
        store.migrate()
    return store
