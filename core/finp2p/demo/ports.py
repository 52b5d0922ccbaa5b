"""Free loopback ports for the processes a demo, a devnet or a test starts: chosen at run time, never the same one
twice in one process."""

from __future__ import annotations

import contextlib
import os
import random
import socket

#: ``LOW-HIGH`` (HIGH exclusive): the range a process started with it chooses its ports from, e.g. the ``finp2p
#: devnet up`` a test worker runs, which must not take the system's ephemeral ports (busy processes' outgoing
#: connections take them between a port's choosing and its binding) nor its parent's range.
PORT_RANGE_ENV = "FINP2P_PORT_RANGE"

_handed_out: set[int] = set()


def _checked_range(low: int, high: int) -> tuple[int, int]:
    if not 1024 <= low < high <= 65536 or high - low < 2:
        raise ValueError(f"a port range within 1024-65535 of two ports or more, not {low}-{high}")
    return low, high


def _range_from_environment() -> tuple[int, int] | None:
    value = os.environ.get(PORT_RANGE_ENV, "").strip()
    if not value:
        return None
    low, _, high = value.partition("-")
    if low.isdigit() and high.isdigit():
        with contextlib.suppress(ValueError):
            return _checked_range(int(low), int(high))
    expected = "expected LOW-HIGH, 1024 <= LOW < HIGH - 1 <= 65535, e.g. 21000-21500"
    raise ValueError(f"{PORT_RANGE_ENV}={value!r}: {expected}")


#: Where :func:`free_port` looks, when set (:func:`use_port_range`, or :data:`PORT_RANGE_ENV` at start).
_port_range: tuple[int, int] | None = None


def use_port_range(low: int, high: int) -> None:
    """Choose ports from the lower half of ``low``-``high`` (exclusive) from now on, instead of asking the system,
    and hand the upper half to every process this one starts (through :data:`PORT_RANGE_ENV`): a child that
    chooses ports of its own (``devnet.fabric up`` under ``finp2p demo``) never chooses one this process chose and
    has not bound yet, since neither knows what the other chose."""
    global _port_range
    low, high = _checked_range(low, high)
    middle = low + (high - low) // 2
    _port_range = (low, middle)
    os.environ[PORT_RANGE_ENV] = f"{middle}-{high}"


def _take_range_from_environment() -> None:
    given = _range_from_environment()
    if given is not None:
        use_port_range(*given)


_take_range_from_environment()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now, and never one this process handed out before (a port chosen but not yet bound by the
    process it is for would otherwise be chosen again)."""
    if _port_range is not None:
        low, high = _port_range
        for port in random.sample(range(low, high), high - low):
            if port in _handed_out:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
        raise RuntimeError(f"no free port left in {low}-{high}")
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
