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


async def test_a_batch_takes_a_slot_per_order_and_is_not_overtaken() -> None:
    """A batch of new orders (``gateway.ws``) is one admission of ``weight`` slots: batching lets no
    more orders into the venue than single commands could, and small commands do not starve it."""
    fair = FairScheduler(4)
    assert fair.weight_of(0) == 1 and fair.weight_of(3) == 3 and fair.weight_of(100) == 4
    await fair.acquire("a", 3)
    assert fair.in_use == 3
    order: list[str] = []

    async def one(session: str, weight: int, tag: str) -> None:
        await fair.acquire(session, weight)
        order.append(tag)

    batch = asyncio.create_task(one("batch", 4, "batch"))
    await asyncio.sleep(0)
    single = asyncio.create_task(one("single", 1, "single"))  # would fit the one free slot, but waits its turn
    await asyncio.sleep(0)
    assert order == [] and fair.waiting("batch") == 1 and fair.waiting("single") == 1
    fair.release(3)
    await asyncio.sleep(0)
    assert order == ["batch"] and fair.in_use == 4
    fair.release(4)
    await asyncio.gather(batch, single)
    assert order == ["batch", "single"] and fair.in_use == 1


async def test_a_cancelled_heavy_waiter_lets_the_next_one_in() -> None:
    fair = FairScheduler(2)
    await fair.acquire("a")
    heavy = asyncio.create_task(fair.acquire("heavy", 2))
    await asyncio.sleep(0)
    light = asyncio.create_task(fair.acquire("light"))
    await asyncio.sleep(0)
    heavy.cancel()
    with pytest.raises(asyncio.CancelledError):
        await heavy
    await asyncio.wait_for(light, 5)  # the one free slot goes to the next waiter
    assert fair.in_use == 2
