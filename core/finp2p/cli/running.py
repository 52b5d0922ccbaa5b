"""A node that runs on this machine, seen from another process: its run file (``node.json`` in its data
directory, written once every part of the node serves and removed when it stops) and its PID."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

from finp2p.config import Settings
from finp2p.demo.processes import alive as _alive
from finp2p.errors import ErrorCode, FinP2PError

POLL_S = 0.1


def running(settings: Settings) -> dict[str, Any] | None:
    """What the node's run file says, when the file is there and its process alive; else ``None``."""
    try:
        info = json.loads((settings.data_dir / "node.json").read_text())
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if _alive(pid) else None


def wait_until_serving(settings: Settings, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        info = running(settings)
        if info is not None:
            return info
        if time.monotonic() >= deadline:
            raise FinP2PError(
                ErrorCode.PEER_UNREACHABLE,
                f"node {settings.node.name!r} does not serve after {timeout_s:g} s (no live run file in "
                f"{settings.data_dir}): see what `node start` printed",
            )
        time.sleep(POLL_S)


def stop_node(settings: Settings, timeout_s: float) -> tuple[str, int]:
    info = running(settings)
    if info is None:
        raise FinP2PError(ErrorCode.NOT_FOUND, f"node {settings.node.name!r} is not running on this machine")
    pid = int(info["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid):
        if time.monotonic() >= deadline:
            raise FinP2PError(
                ErrorCode.PEER_TIMEOUT, f"node {settings.node.name!r} (pid {pid}) still runs after {timeout_s:g} s"
            )
        time.sleep(POLL_S)
    return str(info.get("name") or settings.node.name), pid
