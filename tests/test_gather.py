"""The gatherer under ledger batches and receipt records: what arrives together is done together, each submitter
gets its own outcome, and a batch never waits for the one before it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from finp2p.edge.gather import Gatherer

#: A wait that only a broken gatherer reaches: the tests fail on it instead of hanging.
NEVER_S = 30.0


class Recorder:
    """A flush that records its batches, and refuses the item ``"bad"`` alone."""

    def __init__(self, release: asyncio.Event | None = None) -> None:
        self.batches: list[list[str]] = []
        self.release = release
        self.entered = asyncio.Semaphore(0)  # one count per flush begun

    async def __call__(self, items: list[str]) -> Sequence[str | BaseException]:
        self.batches.append(items)
        self.entered.release()
        if self.release is not None:
            await self.release.wait()
        return [ValueError(f"{i} refused") if i == "bad" else i.upper() for i in items]


async def test_items_that_arrive_within_the_window_share_one_flush_and_get_their_own_outcome() -> None:
    flush = Recorder()
    gather: Gatherer[str, str] = Gatherer(flush, window_s=0.2, max_size=10)
    outcomes = await asyncio.gather(*(gather.submit(i) for i in ("a", "bad", "c")), return_exceptions=True)
    assert outcomes[0] == "A" and outcomes[2] == "C"
    assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "bad refused"
    assert flush.batches == [["a", "bad", "c"]]
    assert await gather.submit("d") == "D"
    assert flush.batches[-1] == ["d"], "a lone item goes alone once the window has passed"


async def test_a_full_batch_goes_at_once_and_the_rest_starts_the_next() -> None:
    flush = Recorder()
    gather: Gatherer[str, str] = Gatherer(flush, window_s=NEVER_S, max_size=3)
    first = [asyncio.ensure_future(gather.submit(i)) for i in ("a", "b", "c", "d")]
    done = await asyncio.wait_for(asyncio.gather(*first[:3]), NEVER_S / 3)
    assert done == ["A", "B", "C"] and flush.batches == [["a", "b", "c"]]
    assert not first[3].done(), "the fourth waits for its own batch to fill or its window to pass"
    more = [asyncio.ensure_future(gather.submit(i)) for i in ("e", "f")]
    assert await asyncio.wait_for(asyncio.gather(first[3], *more), NEVER_S / 3) == ["D", "E", "F"]
    assert flush.batches == [["a", "b", "c"], ["d", "e", "f"]]
    await gather.close()


async def test_a_batch_does_not_wait_for_the_one_being_done() -> None:
    """While a batch is in its flush, the next one gathers and goes: batches overlap under load."""
    release = asyncio.Event()
    flush = Recorder(release)
    gather: Gatherer[str, str] = Gatherer(flush, window_s=NEVER_S, max_size=2)
    first = [asyncio.ensure_future(gather.submit(i)) for i in ("a", "b")]
    second = [asyncio.ensure_future(gather.submit(i)) for i in ("c", "d")]
    for _ in range(2):
        await asyncio.wait_for(flush.entered.acquire(), NEVER_S)
    assert flush.batches == [["a", "b"], ["c", "d"]] and not any(f.done() for f in first + second)
    release.set()
    assert await asyncio.gather(*first, *second) == ["A", "B", "C", "D"]


async def test_a_failed_flush_fails_each_of_its_items_and_the_next_batch_still_runs() -> None:
    calls = 0

    async def flaky(items: list[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("the ledger is gone")
        return items

    gather: Gatherer[str, str] = Gatherer(flaky, window_s=0.05, max_size=8)
    failed = await asyncio.gather(gather.submit("a"), gather.submit("b"), return_exceptions=True)
    assert [type(e) for e in failed] == [ConnectionError, ConnectionError]
    assert await gather.submit("c") == "c"


async def test_a_flush_that_answers_for_the_wrong_number_of_items_is_an_error_for_each() -> None:
    async def short(items: list[str]) -> list[str]:
        return items[:1]

    gather: Gatherer[str, str] = Gatherer(short, window_s=0.05, max_size=8)
    outcomes = await asyncio.gather(gather.submit("a"), gather.submit("b"), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) and "2 came back with 1" in str(o) for o in outcomes), outcomes


def test_a_gatherer_needs_a_window_and_a_size() -> None:
    async def flush(items: list[str]) -> list[str]:
        return items

    with pytest.raises(ValueError, match="batch size of 1 or more"):
        Gatherer(flush, window_s=0.01, max_size=0)
    with pytest.raises(ValueError, match="window of 0 s or more"):
        Gatherer(flush, window_s=-1, max_size=4)
