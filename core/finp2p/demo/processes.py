"""The node processes a demo or a devnet runs: each started from a command it records, so it can be restarted the
same way (its command line, directory, log and environment file), and stopped or killed by its PID."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from finp2p.edge.files import write_private

FINP2P = [sys.executable, "-m", "finp2p"]
#: The environment a node reads (passphrases, overrides): what is kept in its environment file to start it again.
ENV_PREFIXES = ("FINP2P_",)
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


class ProcessError(Exception):
    pass


@dataclass(frozen=True)
class NodeCommand:
    """How one node process is started: ``finp2p -c CONFIG node start`` in ``cwd``, its output appended to ``log``,
    with the variables of ``env_file`` (a ``KEY=value`` file, 0600) on top of the caller's environment."""

    argv: tuple[str, ...]
    cwd: str
    log: str
    env_file: str
    run_file: str

    @classmethod
    def for_node(cls, config: Path) -> NodeCommand:
        folder = config.parent.resolve()
        env_file = folder / "node.env"
        kept = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}
        write_private(env_file, "".join(f"{k}={json.dumps(v)}\n" for k, v in sorted(kept.items())))
        return cls(
            argv=(*FINP2P, "--log-level", "INFO", "-c", str(config.resolve()), "node", "start"),
            cwd=str(folder),
            log=str(folder / "node.log"),
            env_file=str(env_file),
            run_file=str(folder / "data" / "node.json"),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeCommand:
        return cls(
            argv=tuple(str(a) for a in data["argv"]),
            cwd=str(data["cwd"]),
            log=str(data["log"]),
            env_file=str(data["env_file"]),
            run_file=str(data["run_file"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "argv": list(self.argv)}

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        for line in Path(self.env_file).read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.startswith(ENV_PREFIXES):
                env[key] = str(json.loads(value))
        return env

    def launch(self, *, detached: bool) -> subprocess.Popen[bytes]:
        """Start the process (in a session of its own when ``detached``: it outlives the command that started it)."""
        Path(self.run_file).unlink(missing_ok=True)
        with open(self.log, "ab") as log:
            return subprocess.Popen(
                list(self.argv),
                cwd=self.cwd,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=detached,
            )

    def wait_serving(
        self, proc: subprocess.Popen[bytes], name: str, timeout: float = START_TIMEOUT_S
    ) -> dict[str, Any]:
        """The node's run file once the process writes it (it serves then)."""
        deadline = time.monotonic() + timeout
        run_file = Path(self.run_file)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ProcessError(f"{name} exited; see {self.log}")
            if run_file.exists():
                try:
                    info: dict[str, Any] = json.loads(run_file.read_text())
                except ValueError:
                    info = {}
                if info.get("pid") == proc.pid:
                    return info
            time.sleep(0.1)
        raise ProcessError(f"{name} did not start within {timeout:.0f} s; see {self.log}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # our own child that exited is a zombie until reaped
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def stop(pid: int, *, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL when the process has not exited after ``timeout`` seconds."""
    if not alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        kill(pid)


def kill(pid: int) -> None:
    """SIGKILL, and wait until the process is gone."""
    if not alive(pid):
        return
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + STOP_TIMEOUT_S  # a killed process is gone at once, unless no one reaps it
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
