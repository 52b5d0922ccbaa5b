"""How commands print: rich text for people, JSON for machines, errors with their code and exit status."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table as RichTable

from finp2p.errors import FinP2PError

#: Piped output takes the width it needs (rich would cut at 80 columns); a terminal's is its own.
_PIPED_WIDTH = None if sys.stdout.isatty() else 4096
out = Console(highlight=False, soft_wrap=True, width=_PIPED_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class Table(RichTable):
    """A rich table whose cells wrap in a narrow terminal instead of being cut: an id must stay whole to copy."""

    def add_column(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("overflow", "fold")
        super().add_column(*args, **kwargs)


json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on standard output.")
_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)
#: What verifying commands trust: the genesis, and the revocation lists the verifier holds.
genesis_option = click.option(
    "--genesis", "genesis_file", type=_FILE, required=True, help="The network's genesis file: the only thing trusted."
)
revocations_option = click.option(
    "--revocations",
    "revocation_files",
    multiple=True,
    type=_FILE,
    help="Revocation list files to apply (what they revoke fails verification). Repeatable.",
)


def read_revocations(files: tuple[Path, ...]) -> list[Any]:
    """The revocation lists of ``--revocations`` files: each holds one list, or an array of them (what
    `finp2p governance revocations` writes)."""
    from finp2p.edge.json_input import read_json_file
    from finp2p.identity.revocation import RevocationList

    lists = []
    for f in files:
        data = read_json_file(f)
        lists += [RevocationList.from_dict(d) for d in (data if isinstance(data, list) else [data])]
    return lists


def emit(data: Any, as_json: bool, render: Callable[[], None]) -> None:
    """Print ``data`` as JSON, or call ``render`` to print it for a person."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    else:
        render()


def fail(error: FinP2PError, as_json: bool = False) -> NoReturn:
    """Report ``error`` and exit with its status (see ``finp2p --help``)."""
    if as_json:
        sys.stdout.write(json.dumps({"ok": False, "error": error.to_dict()}, indent=2, default=str) + "\n")
    err.print(f"[bold red]{error.code.code}[/] [red]{error.code.title}[/]: {error.detail}")
    err.print(f"[dim]{error.code.hint}[/]")
    raise SystemExit(error.code.exit_status)


def reports_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a FinP2PError raised by a command into its report and exit status (JSON when ``--json`` was given)."""

    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FinP2PError as exc:
            fail(exc, bool(kwargs.get("as_json")))

    return wrapper
