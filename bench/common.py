"""Helpers shared by the benchmarks: bounded timing loops, CPU read from /proc and a printed table."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table


def rate(fn: Callable[[], object], *, seconds: float = 2.0, max_ops: int = 1_000_000) -> float:
    """Operations per second of ``fn``, run for about ``seconds`` (and at most ``max_ops`` times)."""
    for _ in range(min(200, max_ops)):  # warm up caches and allocators
        fn()
    ops, start = 0, time.perf_counter()
    deadline = start + seconds
    while ops < max_ops:
        for _ in range(50):
            fn()
        ops += 50
        if time.perf_counter() >= deadline:
            break
    return ops / (time.perf_counter() - start)


def rates_side_by_side(
    fns: list[Callable[[], object]], *, seconds: float = 2.0, rounds: int = 20
) -> tuple[list[float], list[float]]:
    """Each of ``fns`` measured in turn in ``rounds`` short bursts (about ``seconds`` each in all), so that a
    slower or busier spell of the machine falls on all of them alike. Returns each one's median rate, and the
    ratio ``fns[0] / fns[1]`` of every round (its spread is the measurement's)."""
    per_round = seconds / rounds
    found: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            found[i].append(rate(fn, seconds=per_round))
    ratios = sorted(a / b for a, b in zip(found[0], found[1], strict=True))
    return [statistics.median(f) for f in found], ratios


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, justify="right" if c != columns[0] else "left")
    for r in rows:
        table.add_row(*r)
    Console(width=max(Console().width, 120)).print(table)  # a table of figures reads badly wrapped


async def in_flight(fn: Callable[[int], Awaitable[float]], count: int, limit: int) -> tuple[float, list[float]]:
    """Run ``fn(0..count-1)`` with at most ``limit`` at once; return (calls per second, each call's latency)."""
    gate = asyncio.Semaphore(limit)

    async def gated(n: int) -> float:
        async with gate:
            return await fn(n)

    started = time.perf_counter()
    latencies = await asyncio.gather(*(gated(n) for n in range(count)))
    return count / (time.perf_counter() - started), list(latencies)


def process_cpu_s(pid: int) -> float:
    """User and system CPU seconds a process has used (from /proc: no library needed)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
