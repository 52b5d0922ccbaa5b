"""A process started with ``FINP2P_PORT_RANGE`` chooses its ports from that range only, and says what is wrong with a
range it cannot use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from finp2p.demo.ports import PORT_RANGE_ENV
from tests.support.cli import cli_env

CHOOSE_TEN = "from finp2p.demo.ports import free_port; print(*(free_port() for _ in range(10)))"
#: Ten ports chosen here, then ten by a process this one starts (as `finp2p demo` starts `devnet.fabric up`).
CHOOSE_TEN_AND_A_CHILD_TEN = (
    "import subprocess, sys; from finp2p.demo.ports import free_port; print(*(free_port() for _ in range(10))); "
    f"sys.stdout.flush(); subprocess.run([sys.executable, '-c', {CHOOSE_TEN!r}], check=True)"
)


def _choose(value: str, script: str = CHOOSE_TEN) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script],
        env={**cli_env(), PORT_RANGE_ENV: value},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_command_chooses_its_ports_from_the_range_it_was_given() -> None:
    low, high = 24_001, 24_031
    done = _choose(f"{low}-{high}")
    assert done.returncode == 0, done.stderr
    ports = [int(p) for p in done.stdout.split()]
    assert len(set(ports)) == 10 and all(low <= p < high for p in ports), ports


def test_a_command_and_the_processes_it_starts_choose_from_halves_of_the_range() -> None:
    """The command keeps the lower half, what it starts gets the upper: a port the command chose and has not bound
    yet (a node it starts later) is never one its child chooses (the Fabric devnet's, started first)."""
    low, high = 24_101, 24_141
    done = _choose(f"{low}-{high}", CHOOSE_TEN_AND_A_CHILD_TEN)
    assert done.returncode == 0, done.stderr
    mine, childs = ([int(p) for p in line.split()] for line in done.stdout.splitlines())
    assert len(set(mine)) == 10 and all(low <= p < 24_121 for p in mine), mine
    assert len(set(childs)) == 10 and all(24_121 <= p < high for p in childs), childs


def test_the_commands_a_test_runs_are_given_a_range_of_their_own() -> None:
    """Beside this worker's range, not inside it: neither chooses a port the other chose and has not bound yet."""
    low, high = map(int, cli_env()[PORT_RANGE_ENV].split("-"))
    from finp2p.demo import ports

    assert ports._port_range is not None
    mine_low, mine_high = ports._port_range
    assert low < high and (high <= mine_low or mine_high <= low)


@pytest.mark.parametrize("value", ["20000", "20000-", "a-b", "30000-20000", "80-90", "20000-70000", "20000-20001"])
def test_a_range_it_cannot_use_is_refused_with_what_is_expected(value: str) -> None:
    done = _choose(value)
    assert done.returncode != 0, done.stdout
    assert f"ValueError: {PORT_RANGE_ENV}={value!r}: expected LOW-HIGH" in done.stderr, done.stderr
