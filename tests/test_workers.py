"""The store's worker threads: calls in order, errors handed back, cancellation and closing as an executor's."""

from __future__ import annotations

import asyncio
import functools
import threading

import pytest

from finp2p.edge.workers import Workers


async def test_one_worker_runs_calls_in_the_order_they_came() -> None:
    workers = Workers(1, "t")
    seen: list[int] = []

    def note(i: int) -> int:
        seen.append(i)
        return i * i

    try:
        results = await asyncio.gather(*(workers.run(functools.partial(note, i)) for i in range(200)))
    finally:
        workers.close()
    assert seen == list(range(200))
    assert results == [i * i for i in range(200)]


async def test_a_call_runs_off_the_event_loop_thread() -> None:
    workers = Workers(1, "store-test")
    try:
        name = await workers.run(lambda: threading.current_thread().name)
    finally:
        workers.close()
    assert name == "store-test_0"


async def test_what_a_call_raises_reaches_its_caller_and_the_worker_goes_on() -> None:
    workers = Workers(1, "t")

    def fails() -> None:
        raise ValueError("no such row")

    try:
        with pytest.raises(ValueError, match="no such row"):
            await workers.run(fails)
        assert await workers.run(lambda: 7) == 7
    finally:
        workers.close()


async def test_several_workers_run_calls_side_by_side() -> None:
    workers = Workers(2, "t")
    both = threading.Barrier(2, timeout=10)  # broken unless two calls are inside at once
    try:
        assert sorted(await asyncio.gather(workers.run(both.wait), workers.run(both.wait))) == [0, 1]
    finally:
        workers.close()


async def test_a_call_cancelled_before_a_worker_took_it_is_not_made() -> None:
    workers = Workers(1, "t")
    release = threading.Event()
    made: list[str] = []
    try:
        busy = asyncio.ensure_future(workers.run(lambda: release.wait(10)))
        waiting = asyncio.ensure_future(workers.run(lambda: made.append("waiting")))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        release.set()
        assert await busy is True
        assert await workers.run(lambda: "after") == "after"  # the worker took the next one and skipped it
    finally:
        workers.close()
    assert made == []


async def test_a_call_under_way_when_its_caller_is_cancelled_runs_to_its_end() -> None:
    workers = Workers(1, "t")
    started, release = threading.Event(), threading.Event()
    done: list[str] = []

    def slow() -> str:
        started.set()
        release.wait(10)
        done.append("written")
        return "answer"

    try:
        task = asyncio.ensure_future(workers.run(slow))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        assert await workers.run(lambda: done[:]) == ["written"]
    finally:
        workers.close()


async def test_close_finishes_the_calls_queued_before_it_and_refuses_later_ones() -> None:
    workers = Workers(1, "t")
    release = threading.Event()
    seen: list[int] = []

    def after_release(i: int) -> None:
        release.wait(10)
        seen.append(i)

    calls = [asyncio.ensure_future(workers.run(functools.partial(after_release, i))) for i in range(5)]
    await asyncio.sleep(0.05)
    closing = asyncio.get_running_loop().run_in_executor(None, workers.close)
    await asyncio.sleep(0.05)
    release.set()
    await closing
    assert seen == [0, 1, 2, 3, 4]
    await asyncio.gather(*calls)
    with pytest.raises(RuntimeError, match="closed"):
        await workers.run(lambda: None)
    workers.close()  # idempotent
