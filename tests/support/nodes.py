"""Nodes as separate processes: started with the real ``finp2p node start``, stopped by their PID."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.support.cli import FINP2P, cli_env


class NodeProcess:
    def __init__(self, config: Path, *, site: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.data_dir = config.parent / "data"
        self.log = config.parent / "node.log"
        self.env = env or {}
        self.site = site
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}

    @property
    def address(self) -> str:
        return str(self.info["address"])

    def start(self, timeout: float = 30) -> NodeProcess:
        run_file = self.data_dir / "node.json"
        run_file.unlink(missing_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(FINP2P), "--log-level", "INFO", "-c", str(self.config), "node", "start"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**cli_env(self.site), **self.env},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node {self.config} exited with {self.proc.returncode}:\n{self.log.read_text()}")
            if run_file.exists():
                info = json.loads(run_file.read_text())
                if info.get("pid") == self.proc.pid:
                    self.info = info
                    return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"node {self.config} did not start in {timeout} s:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        code = stop_process(self.proc, sig, timeout)
        self.proc = None
        return code


def stop_process(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
    """Stop a process we started, by its PID: ``sig``, then SIGKILL if it has not exited within ``timeout``."""
    if proc is None:
        return None
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode
