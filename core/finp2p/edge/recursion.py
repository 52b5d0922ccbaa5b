"""The interpreter's recursion limit, kept where Python keeps it while the node serves.

py-evm raises it to 12,288 and py_ecc to 100,000 when they are imported, so that deep EVM call stacks and their
pairing code run; on CPython 3.11 the C code of the standard library (the JSON parser among it) then recurses
until the C stack overflows and the process dies with a segmentation fault instead of a RecursionError. FinP2P's
contracts make no deep calls, so the node puts the limit back after it loads plugins and opens ledgers.
"""

from __future__ import annotations

import sys

#: Python's own default.
SAFE_LIMIT = 1000


def restore() -> None:
    """Lower the recursion limit back to :data:`SAFE_LIMIT` if a library raised it."""
    if sys.getrecursionlimit() > SAFE_LIMIT:
        sys.setrecursionlimit(SAFE_LIMIT)
