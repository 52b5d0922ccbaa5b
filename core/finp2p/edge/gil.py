"""How long a thread may keep the interpreter while another waits for it, set for a node's process.

A node's event loop hands every store operation to a worker thread and takes the result back. CPython lets a
thread that holds the interpreter keep it for up to 5 ms when another asks for it; a loop waiting on a worker then
waits that long at each hand-off, and every request it serves meanwhile waits with it (py-spy put a third of a busy
subscriber's time there: an advert change reaching 50 subscribed nodes, 25 to a process, took 122-147 ms at 5 ms and
78 ms at 0.5 ms; ``bench.discovery``). Threads that compute (the store's SQL, a chain's EVM) lose a little throughput
to the more frequent switches; none of them is on a path that must be fast, the loop is.
"""

from __future__ import annotations

import sys

#: The node's switch interval, in seconds (CPython's default is 0.005).
SWITCH_INTERVAL_S = 0.0005


def favour_the_event_loop() -> None:
    """Hand the interpreter back to a waiting thread (the event loop) within :data:`SWITCH_INTERVAL_S`."""
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)
