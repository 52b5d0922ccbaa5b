"""Where a node's configuration comes from, read without validating it: the TOML file, then the
``FINP2P_<SECTION>__<KEY>`` environment overrides (:mod:`finp2p.config` validates the result). Kept light (the
standard library only), so a command that only needs the ``[plugins]`` table (``finp2p --help``, which lists the
plugins' commands) starts without building every settings model."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from finp2p.errors import ErrorCode, FinP2PError

ENV_PREFIX = "FINP2P_"


def read_raw(path: Path | None, env: Mapping[str, str] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The config as a plain mapping with the environment overrides applied, and where each override came from."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FinP2PError(ErrorCode.CONFIG_NOT_FOUND, f"{path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise FinP2PError(ErrorCode.CONFIG_SYNTAX, f"{path}: cannot read it: {exc}") from None
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise FinP2PError(ErrorCode.CONFIG_SYNTAX, f"{path}: {exc}") from None
    origins: dict[str, str] = {}
    for var, value in sorted((env if env is not None else os.environ).items()):
        if not var.startswith(ENV_PREFIX) or "__" not in var:
            continue
        parts = [p.lower() for p in var[len(ENV_PREFIX) :].split("__")]
        if any(not p for p in parts) or len(parts) < 2:
            raise FinP2PError(ErrorCode.CONFIG_ENV, f"{var}: expected FINP2P_<SECTION>__<KEY>")
        target = raw
        for part in parts[:-1]:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                raise FinP2PError(ErrorCode.CONFIG_ENV, f"{var}: {'.'.join(parts[:-1])} is not a table in the file")
            target = nested
        target[parts[-1]] = _env_value(value)
        origins[".".join(parts)] = var
    return raw, origins


def _env_value(value: str) -> Any:
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def plugin_choice(raw: Mapping[str, Any]) -> tuple[bool, list[str]] | None:
    """``(strict, disabled)`` of a ``[plugins]`` table of the plain shape they take, or ``None`` for anything else
    (then :class:`finp2p.config.PluginsSection` validates it and names what is wrong)."""
    section = raw.get("plugins", {})
    if not isinstance(section, dict) or set(section) - {"strict", "disabled"}:
        return None
    strict, disabled = section.get("strict", False), section.get("disabled", [])
    if not isinstance(strict, bool) or not isinstance(disabled, list) or not all(isinstance(d, str) for d in disabled):
        return None
    return strict, list(disabled)
