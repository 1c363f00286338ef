"""History reads of the orders/trades projection: trade pages (filters, time window, cursor, the
horizon) and the reason an order left the book."""

from __future__ import annotations

import dataclasses

from engine import CancelReason, Side
from store import OrderStatus, Store, StoreWriter
from tests.store.events import CMD, accepted, cancelled, expired, fill, result


def _fills(store: Store, sides: list[tuple[str, str]]) -> None:
    store.project([
        (i, CMD, result(dataclasses.replace(fill(i, maker=2 * i, taker=2 * i + 1, qty=1, maker_remaining=0,
                                                 taker_remaining=0, ts=100 + i),
                                            maker_participant=maker, taker_participant=taker,
                                            symbol="OMN1" if i % 2 else "OMN2")))
        for i, (maker, taker) in enumerate(sides, start=1)
    ])


def test_trade_page_is_newest_first_with_filters_and_horizon(store: Store) -> None:
    _fills(store, [("alice", "bob"), ("bob", "carol"), ("carol", "alice"), ("alice", "bob"), ("bob", "alice")])
    horizon, page = store.trade_page(limit=10)
    assert horizon == 5 and [t.trade_id for t in page] == [5, 4, 3, 2, 1]
    assert [t.trade_id for t in store.trade_page(participant="alice", limit=10)[1]] == [5, 4, 3, 1]
    assert [t.trade_id for t in store.trade_page(participant="alice", limit=2)[1]] == [5, 4]
    assert [t.trade_id for t in store.trade_page(participant="alice", before_id=4, limit=10)[1]] == [3, 1]
    assert [t.trade_id for t in store.trade_page(symbol="OMN1", limit=10)[1]] == [5, 3, 1]
    assert [t.trade_id for t in store.trade_page(since_ts=102, until_ts=105, limit=10)[1]] == [4, 3, 2]
    assert [t.trade_id for t in store.trade_page(symbol="OMN2", participant="carol", limit=10)[1]] == [2]
    assert store.trade_page(participant="dave", limit=10) == (5, [])


def test_empty_store_has_horizon_zero(store: Store) -> None:
    assert store.trade_page(limit=5) == (0, [])


def test_a_self_trade_appears_once_in_its_participants_page(store: Store) -> None:
    _fills(store, [("alice", "alice"), ("alice", "bob")])
    assert [t.trade_id for t in store.trade_page(participant="alice", limit=10)[1]] == [2, 1]


def test_orders_keep_the_reason_they_left_the_book(store: Store) -> None:
    store.project([
        (1, CMD, result(accepted(1, "alice", Side.SELL, 10), accepted(2, "alice", Side.SELL, 5))),
        (2, CMD, result(cancelled(1, remaining=10), expired(2, remaining=5))),
        (3, CMD, result(accepted(3, "alice", Side.SELL, 5))),
        (4, CMD, result(dataclasses.replace(cancelled(3, remaining=5), reason=CancelReason.SELF_TRADE_PREVENTION))),
    ])
    first, second, third = (store.get_order(i) for i in (1, 2, 3))
    assert first is not None and (first.status, first.reason) == (OrderStatus.CANCELLED, "user")
    assert second is not None and (second.status, second.reason) == (OrderStatus.EXPIRED, "expired")
    assert third is not None and third.reason == "self_trade_prevention"


async def test_writer_wait_written_returns_once_the_seq_is_in_the_store(store: Store) -> None:
    writer = StoreWriter(store)
    await writer.start()
    try:
        writer.enqueue(1, CMD, result(accepted(1, "alice", Side.SELL, 10)))
        assert await writer.wait_written(1, timeout=10)
        assert store.get_order(1) is not None
        assert not await writer.wait_written(2, timeout=0.05)  # never enqueued: gives up in time
    finally:
        await writer.stop()
