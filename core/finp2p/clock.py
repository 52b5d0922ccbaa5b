"""The node's one clock reading: wall-clock time in unix milliseconds, as stored and signed everywhere."""

from __future__ import annotations

import time


def now_ms() -> int:
    """The current unix time in whole milliseconds."""
    return int(time.time() * 1000)
