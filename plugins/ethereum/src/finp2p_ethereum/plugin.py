"""The plugin's hooks: the ``ethereum`` ledger kind and the ``finp2p ethereum`` commands.

This module is what loading the plugin imports, so it imports no Ethereum library: the factory (web3, eth-tester)
and the commands are imported when they are used.
"""

from __future__ import annotations

from typing import Any

import click

from finp2p import hookimpl
from finp2p.components import ComponentContext, ComponentKind
from finp2p.ledger import Ledger


def build_ledger(raw: dict[str, Any], context: ComponentContext) -> Ledger:
    from finp2p_ethereum.factory import build_ledger as build

    return build(raw, context)


@hookimpl
def finp2p_ledger_kinds() -> list[ComponentKind[Ledger]]:
    return [ComponentKind("ethereum", build_ledger, "Ethereum and EVM chains (embedded eth-tester, or JSON-RPC)")]


@hookimpl
def finp2p_cli_commands() -> list[click.Command]:
    from finp2p_ethereum.cli import ethereum_group

    return [ethereum_group]
