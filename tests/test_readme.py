"""The README runs as written: its ``sh`` blocks, in order, in one shell, from a fresh checkout's root, each
command as a newcomer would copy it. The run fails when a command fails or prints an error, so the README cannot
go stale.

- A block right after a line ``<!-- not run: why -->`` is skipped (``make demo`` itself, a benchmark).
- A command ending in ``# fails: FPxxxx`` must fail with that code (the README shows a refusal).
- The README's ports are its own (7001, 8101, ...); each is replaced by a free port chosen now, so the run never
  meets another process's port.
- Processes the blocks start in the background (``node start &``) are stopped by their PIDs when the run ends,
  and so is every process a run file under the run's folder names (a node's ``node.json``, a devnet's state), even
  when a block failed halfway.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import cli_env
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: The ports the README's commands name.
README_PORTS = (7001, 7002, 7101, 7102, 7103, 7104, 8080, 8101, 8102, 8103, 8104, 8545)
SKIP = "<!-- not run"
EXPECTED = re.compile(r"^(?P<command>.*\S)\s+# fails: (?P<code>FP\d{4})\b.*$")
#: What a command prints when it fails: a FinP2P error (`FPxxxx title: detail` at the start of a line), a
#: traceback, a shell's complaint.
ERROR_LINE = re.compile(r"^(FP\d{4} |Traceback |error: |bash: |curl: \(\d+\))", re.MULTILINE)
TIMEOUT_S = 1500


@dataclass(frozen=True)
class Block:
    line: int  # where it starts in README.md
    text: str


def blocks(readme: str) -> list[Block]:
    """The ``sh`` blocks to run, in order."""
    found: list[Block] = []
    lines = readme.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            start = i
            i += 1
            body = []
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
            if not before.strip().startswith(SKIP):
                found.append(Block(start + 1, "\n".join(body)))
        i += 1
    return found


def script(readme: str, pid_file: Path, ports: dict[int, int]) -> str:
    """One bash script of every block: strict mode, expected failures checked, background jobs' PIDs kept."""
    parts = [
        "set -euo pipefail",
        f"__pids={pid_file}",
        "trap 'jobs -p >> \"$__pids\"' EXIT",
        # A command that must fail with a code: its output is shown marked, and checked for the code.
        '__fails() { local code=$1; shift; local out status=0; out=$(eval "$*" 2>&1) || status=$?;'
        ' if [ "$status" = 0 ]; then echo "README: expected $code, but it succeeded: $*" >&2; exit 97; fi;'
        ' case "$out" in *"$code"*) printf "%s\\n" "$out" | sed "s/^/[expected] /";;'
        ' *) printf "%s\\n" "$out" | sed "s/^/[unexpected] /" >&2;'
        ' echo "README: $* failed without $code" >&2; exit 98;; esac; }',
    ]
    for block in blocks(readme):
        parts.append(f"echo '### README.md line {block.line}'")
        for line in block.text.splitlines():
            m = EXPECTED.match(line)
            parts.append(f"__fails {m['code']} {_quoted(m['command'])}" if m else line)
        parts.append('jobs -p >> "$__pids"')
    text = "\n".join(parts) + "\n"
    pattern = re.compile(r"(?<![0-9])(" + "|".join(str(p) for p in ports) + r")(?![0-9])")
    return pattern.sub(lambda m: str(ports[int(m.group(1))]), text)


def _quoted(command: str) -> str:
    return "'" + command.replace("'", "'\\''") + "'"


def stop_everything(pid_file: Path, folder: Path) -> None:
    """SIGTERM, then SIGKILL after 10 s, to each PID the run left: its background jobs, and every process a run
    file under ``folder`` names."""
    pids: set[int] = set()
    if pid_file.exists():
        pids |= {int(p) for p in pid_file.read_text().split() if p.isdigit()}
    for run_file in [*folder.rglob("node.json"), *folder.rglob("network.json")]:
        try:
            state = json.loads(run_file.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(state.get("pid"), int):
            pids.add(state["pid"])
        pids |= {p for p in (state.get("pids") or {}).values() if isinstance(p, int)}
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        alive = [p for p in pids if _signal(p, sig)]
        deadline = time.monotonic() + wait_s
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [p for p in alive if _signal(p, 0)]
        if not alive:
            return


def _signal(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def test_readme_blocks_are_found_and_marked() -> None:
    """The runner sees the tutorial: the first block sets it up, expected failures are marked, skipped blocks
    are the ones that say why."""
    text = README.read_text()
    found = blocks(text)
    assert len(found) > 15 and "mktemp" in found[0].text
    assert any(EXPECTED.match(line) for b in found for line in b.text.splitlines())
    assert all(re.match(r"<!-- not run: \S", line) for line in text.splitlines() if line.startswith(SKIP))


@pytest.mark.hardhat
@pytest.mark.fabric
def test_the_readme_runs_as_written(tmp_path: Path) -> None:
    ports = {port: free_port() for port in README_PORTS}
    pid_file = tmp_path / "pids"
    run_script = tmp_path / "readme.sh"
    run_script.write_text(script(README.read_text(), pid_file, ports))
    env = cli_env(TMPDIR=str(tmp_path), COLUMNS="200")
    log = tmp_path / "readme.log"
    try:
        # Into a file, not a pipe: the nodes it starts in the background keep their output open after it exits.
        with log.open("w") as sink:
            run = subprocess.run(
                ["bash", str(run_script)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=TIMEOUT_S,
                check=False,
                start_new_session=True,
            )
    finally:
        stop_everything(pid_file, tmp_path)
    output = log.read_text(errors="replace")
    last_block = [line for line in output.splitlines() if line.startswith("### README.md line")][-1:]
    assert run.returncode == 0, f"{last_block}: exit {run.returncode}\n{output[-6000:]}"
    errors = [line for line in output.splitlines() if ERROR_LINE.match(line)]
    assert not errors, "the README printed errors:\n" + "\n".join(errors[:20])
