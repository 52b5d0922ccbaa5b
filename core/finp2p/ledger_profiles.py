"""Ledger profiles: small TOML files (kept in ``chains/``) that say how to reach one ledger.

A profile has the plugin ``kind`` that serves it, the ``ledger_id`` (CAIP-2 where one exists) and a ``[settings]``
table that only the plugin interprets (endpoint, contract addresses, channel, ...)::

    kind = "ethereum"
    ledger_id = "eip155:31337"

    [settings]
    backend = "rpc"
    rpc = "http://127.0.0.1:8545"

The node's ``[ledgers] profiles`` names the profiles it opens at start; ``finp2p ethereum deploy`` writes one.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

from finp2p.components import ComponentContext
from finp2p.edge import recursion
from finp2p.errors import ErrorCode, FinP2PError
from finp2p.ledger import Ledger, LedgerProfile


def load_profile(path: Path) -> LedgerProfile:
    """Read and check a profile file; FP6016 says what is wrong with it."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FinP2PError(ErrorCode.LEDGER_PROFILE, f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FinP2PError(ErrorCode.LEDGER_PROFILE, f"{path} is not valid TOML: {exc}") from None
    kind, ledger_id, settings = raw.get("kind"), raw.get("ledger_id"), raw.get("settings", {})
    if not isinstance(kind, str) or not kind:
        raise FinP2PError(ErrorCode.LEDGER_PROFILE, f"{path} needs `kind`, the ledger plugin kind (e.g. ethereum)")
    if not isinstance(ledger_id, str) or ":" not in ledger_id:
        raise FinP2PError(ErrorCode.LEDGER_PROFILE, f"{path} needs `ledger_id` in CAIP-2 form (e.g. eip155:31337)")
    if not isinstance(settings, dict):
        raise FinP2PError(ErrorCode.LEDGER_PROFILE, f"{path}: `settings` must be a table")
    unknown = sorted(set(raw) - {"kind", "ledger_id", "settings"})
    if unknown:
        raise FinP2PError(ErrorCode.LEDGER_PROFILE, f"{path}: unknown keys {', '.join(unknown)}")
    return LedgerProfile(kind, ledger_id, {**settings, "profile_dir": str(path.resolve().parent)})


def save_profile(path: Path, profile: LedgerProfile) -> None:
    """Write ``profile`` to ``path`` atomically (a reader never sees half a file)."""
    lines = [f"kind = {_value(profile.kind)}", f"ledger_id = {_value(profile.ledger_id)}", "", "[settings]"]
    for key, value in profile.settings.items():
        if key != "profile_dir" and value is not None:
            lines.append(f"{key} = {_value(value)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(partial, path)


def _value(value: Any) -> str:
    """A TOML value for the flat types a profile holds (JSON's string escapes are valid TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"a ledger profile cannot hold {type(value).__name__} values")


#: The embedded Ethereum chain (eth-tester on py-evm, in the process; nothing to install or start): the ledger of
#: demos, and of ``finp2p adapter serve`` without a profile.
EMBEDDED_PROFILE = LedgerProfile("ethereum", "eip155:131277322940537", {"backend": "embedded"})


def open_ledger(profile: LedgerProfile, context: ComponentContext) -> Ledger:
    """Build the ledger of ``profile`` with the plugin that provides its kind (FP1106 when none does)."""
    kind = context.plugins.kind("ledger", profile.kind)
    ledger: Ledger = kind.factory({**profile.settings, "ledger_id": profile.ledger_id}, context)
    recursion.restore()  # building it may have imported a library that raises it (py-evm for an embedded chain)
    return ledger
