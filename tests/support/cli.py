"""Run the real ``finp2p`` command in a subprocess, optionally with extra plugin distributions on its path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from finp2p.demo.ports import PORT_RANGE_ENV

FINP2P = Path(sys.executable).with_name("finp2p")


def cli_env(site: Path | None = None, **extra: str) -> dict[str, str]:
    """This process's environment without its config overrides (``FINP2P_…``), but with the port range that the
    commands it runs choose their ports from."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINP2P_") or k == PORT_RANGE_ENV}
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run_cli(
    *args: str,
    site: Path | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FINP2P), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**cli_env(site), **(env or {})},
        timeout=timeout,
        check=False,
    )
