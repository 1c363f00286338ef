"""Every settlement state the writer stores is told, exactly once and in order. Found by the load
test's consistency check: the running writer took its list of queued states before the write, the
write took a longer list (states queued in between), and the extra states were stored but never
told, so the core kept saying ``submitted`` for trades the store had as ``confirmed``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import store as store_pkg
from market.model import SettlementNotice, SettlementState
from venue.storage import StoreAdapter


def notice(trade_id: int, state: SettlementState) -> SettlementNotice:
    return SettlementNotice(trade_id=trade_id, symbol="OMN-T", buyer="b", seller="s", state=state)


async def test_states_queued_while_a_write_starts_are_told(tmp_path: Path) -> None:
    store = store_pkg.Store.open(f"sqlite:///{tmp_path / 'venue.db'}")
    adapter = StoreAdapter(store, store_pkg.StoreWriter(store))
    told: list[tuple[int, SettlementState]] = []

    def record(tid: int, state: SettlementState) -> None:
        adapter.record_settlement(notice(tid, state), lambda: told.append((tid, state)))

    write_some = adapter._write_some
    late = [(1, SettlementState.CONFIRMED), (2, SettlementState.SUBMITTED)]

    def write_with_a_late_arrival() -> list[Any]:
        # a state queued after the run loop looked at the queue, before this write took its batch
        while late:
            record(*late.pop(0))
        return write_some()

    adapter._write_some = write_with_a_late_arrival  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(adapter.run(stop))
    try:
        record(1, SettlementState.SUBMITTED)
        deadline = asyncio.get_running_loop().time() + 5.0
        while len(told) < 3 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5.0)
        store.close()
    reopened = store_pkg.Store.open(f"sqlite:///{tmp_path / 'venue.db'}")
    stored = {u.trade_id: u.status for u in reopened.list_settlements()}
    reopened.close()
    assert stored == {1: SettlementState.CONFIRMED, 2: SettlementState.SUBMITTED}
    assert told == [(1, SettlementState.SUBMITTED), (1, SettlementState.CONFIRMED), (2, SettlementState.SUBMITTED)]


def test_flush_tells_every_state_it_writes(tmp_path: Path) -> None:
    store = store_pkg.Store.open(f"sqlite:///{tmp_path / 'venue.db'}")
    adapter = StoreAdapter(store, store_pkg.StoreWriter(store))
    told: list[int] = []
    for tid in range(1, 1200):  # more than one write batch
        adapter.record_settlement(notice(tid, SettlementState.PENDING), lambda tid=tid: told.append(tid))  # type: ignore[misc]
    adapter.flush()
    store.close()
    assert told == list(range(1, 1200))
