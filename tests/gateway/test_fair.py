"""gateway.fair: round-robin admission across sessions, FIFO within a session."""

from __future__ import annotations

import asyncio

import pytest

from gateway.fair import FairScheduler


async def test_free_slots_admit_without_waiting_then_round_robin() -> None:
    fair = FairScheduler(2)
    await fair.acquire("noisy")
    await fair.acquire("noisy")
    order: list[str] = []

    async def one(session: str, tag: str) -> None:
        await fair.acquire(session)
        order.append(tag)

    tasks = [asyncio.create_task(one("noisy", f"n{i}")) for i in range(5)]
    tasks.append(asyncio.create_task(one("victim", "v0")))
    await asyncio.sleep(0)
    assert fair.waiting("noisy") == 5 and fair.waiting("victim") == 1
    for _ in range(6):
        fair.release()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    # the victim's one command goes second, not behind the noisy session's five
    assert order == ["n0", "v0", "n1", "n2", "n3", "n4"]
    assert fair.in_use == 2


async def test_cancelled_waiter_gives_up_its_place_and_slots_are_not_lost() -> None:
    fair = FairScheduler(1)
    await fair.acquire("a")
    waiter = asyncio.create_task(fair.acquire("b"))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert fair.waiting("b") == 0
    fair.release()
    assert fair.in_use == 0
    await fair.acquire("c")  # immediate
    assert fair.in_use == 1


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        FairScheduler(0)
