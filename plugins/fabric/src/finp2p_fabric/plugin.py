"""The plugin's hooks: the ``fabric`` ledger kind and the ``finp2p fabric`` commands.

This module is what loading the plugin imports, so it imports neither gRPC nor Fabric's protos: the factory and the
commands are imported when they are used.
"""

from __future__ import annotations

from typing import Any

import click

from finp2p import hookimpl
from finp2p.components import ComponentContext, ComponentKind
from finp2p.ledger import Ledger


def build_ledger(raw: dict[str, Any], context: ComponentContext) -> Ledger:
    from finp2p_fabric.factory import build_ledger as build

    return build(raw, context)


@hookimpl
def finp2p_ledger_kinds() -> list[ComponentKind[Ledger]]:
    return [ComponentKind("fabric", build_ledger, "Hyperledger Fabric 2.4+ and 3.x, through the Gateway API")]


@hookimpl
def finp2p_cli_commands() -> list[click.Command]:
    from finp2p_fabric.cli import fabric_group

    return [fabric_group]
