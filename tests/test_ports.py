"""A process started with ``FINP2P_PORT_RANGE`` chooses its ports from that range only, and says what is wrong with a
range it cannot use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from finp2p.demo.ports import PORT_RANGE_ENV
from tests.support.cli import cli_env

CHOOSE_TEN = "from finp2p.demo.ports import free_port; print(*(free_port() for _ in range(10)))"


def _choose(value: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHOOSE_TEN],
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


def test_the_commands_a_test_runs_are_given_a_range_of_their_own() -> None:
    """Beside this worker's range, not inside it: neither chooses a port the other chose and has not bound yet."""
    low, high = map(int, cli_env()[PORT_RANGE_ENV].split("-"))
    from finp2p.demo import ports

    assert ports._port_range is not None
    mine_low, mine_high = ports._port_range
    assert low < high and (high <= mine_low or mine_high <= low)


@pytest.mark.parametrize("value", ["20000", "20000-", "a-b", "30000-20000", "80-90", "20000-70000"])
def test_a_range_it_cannot_use_is_refused_with_what_is_expected(value: str) -> None:
    done = _choose(value)
    assert done.returncode != 0, done.stdout
    assert f"ValueError: {PORT_RANGE_ENV}={value!r}: expected LOW-HIGH" in done.stderr, done.stderr
