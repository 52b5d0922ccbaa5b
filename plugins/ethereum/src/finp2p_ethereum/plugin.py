"""The plugin's hooks: the ``ethereum`` ledger kind and the ``finp2p ethereum`` commands.

This module is what loading the plugin imports, so it imports no Ethereum library: the factory (web3, eth-tester)
and the commands are imported when they are used.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from finp2p import hookimpl
from finp2p.components import ComponentContext, ComponentKind
from finp2p.ledger import Ledger

log = logging.getLogger(__name__)


def build_ledger(raw: dict[str, Any], context: ComponentContext) -> Ledger:
    from finp2p_ethereum.factory import build_ledger as build

    return build(raw, context)


@hookimpl
def finp2p_ledger_kinds() -> list[ComponentKind[Ledger]]:
    return [ComponentKind("ethereum", build_ledger, "Ethereum and EVM chains (embedded eth-tester, or JSON-RPC)")]


@hookimpl
async def finp2p_node_started(node: Any) -> None:
    """Serve the embedded chains the node's profiles ask to serve (``serve_rpc``)."""
    if "finp2p_ethereum.ledger" not in sys.modules:
        return  # no ledger of this kind was built: nothing to serve
    from finp2p_ethereum.ledger import EthereumLedger

    for ledger_id, ledger in node.ledgers.items():
        if isinstance(ledger, EthereumLedger) and ledger.serving is not None:
            url = await ledger.serve()
            log.info("embedded chain %s served at %s", ledger_id, url)


@hookimpl
def finp2p_cli_commands() -> list[click.Command]:
    from finp2p_ethereum.cli import ethereum_group

    return [ethereum_group]
