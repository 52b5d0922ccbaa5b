"""``finp2p wallet``: a user's own key, as the user's wallet keeps it, and what it signs.

A user's FinID key never goes to a node: the node asks for a consent template (``POST /v1/consent``, or
``finp2p operations submit``), the user's wallet signs the template's hash, and the signature goes with the
operation. These commands are that wallet for a terminal and for the README's tutorial.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from finp2p.cli.output import emit, err, json_option, out, reports_errors
from finp2p.identity.keys import SigningKey, load_key, passphrase_from, save_key


@click.group("wallet")
def wallet_group() -> None:
    """A user's own FinID key (kept in a file of mode 0600) and the consents it signs."""


@wallet_group.command("new")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@reports_errors
def new_cmd(file: Path) -> None:
    """Make a key in FILE (mode 0600; encrypted when FINP2P_KEY_PASSPHRASE is set) and print its FinID alone on
    standard output, so a script can keep it: `CAROL=$(finp2p wallet new carol.key)`."""
    if file.exists():
        raise click.UsageError(f"{file} exists: a key is never overwritten (`finp2p wallet show {file}`)")
    key = SigningKey.generate()
    save_key(file, key, passphrase_from())
    err.print(f"wrote {file}: keep it; whoever holds it moves this FinID's units")
    sys.stdout.write(key.fin_id + "\n")


@wallet_group.command("show")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@json_option
@reports_errors
def show_cmd(file: Path, as_json: bool) -> None:
    """Print the FinID of the key in FILE (and its Ethereum address)."""
    from finp2p.identity.keys import eth_address

    key = load_key(file, passphrase_from())
    data = {"fin_id": key.fin_id, "address": eth_address(key.fin_id)}
    emit(data, as_json, lambda: out.print(data["fin_id"]))
