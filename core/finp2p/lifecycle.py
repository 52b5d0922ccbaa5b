"""Closing what was opened: in reverse order, every part, whatever one of them raises.

Every long-lived part of a node has the same two verbs: ``start`` (an ``async`` method that brings it up and may
raise) and ``close`` (an ``async`` method that releases everything, called once). Whoever starts parts in order
pushes each part's ``close`` on a :class:`Closers` as soon as the part is up; closing them then runs in reverse
order, and a part that fails to close is logged and does not keep the parts below it open (aiohttp's cleanup
contexts work the same way).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Closers:
    """A stack of ``(name, close)`` pairs, closed last pushed first."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._stack: list[tuple[str, Callable[[], Awaitable[object]]]] = []

    def push(self, name: str, close: Callable[[], Awaitable[object]]) -> None:
        """Close ``name`` with ``close`` (before everything pushed earlier)."""
        self._stack.append((name, close))

    async def close(self, *, raise_errors: bool = True) -> None:
        """Close every part, last pushed first. Each failure is logged; with ``raise_errors`` they are raised
        together (an ``ExceptionGroup``) once every part had its turn."""
        errors: list[Exception] = []
        while self._stack:
            name, close = self._stack.pop()
            try:
                await close()
            except Exception as exc:  # the parts below must close whatever this one did
                log.exception("%s: closing %s failed", self.owner, name)
                exc.add_note(f"while closing {name} of {self.owner}")
                errors.append(exc)
        if errors and raise_errors:
            raise ExceptionGroup(f"{self.owner}: {len(errors)} part(s) failed to close", errors)
