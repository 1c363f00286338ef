from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from engine import Command, Result, Side
from store import (
    OrderStatus,
    ProjectionGapError,
    SettlementStatus,
    SettlementUpdate,
    Store,
    StoreUnavailableError,
    StoreWriter,
)
from tests.store.events import CMD, accepted, amended, cancelled, expired, fill, halted, result
from tests.store.test_repository import OMN


def test_orders_and_trades_follow_the_events(store: Store) -> None:
    store.add_instrument(OMN)
    last = store.project(
        [
            (1, CMD, result(accepted(1, "alice", Side.SELL, 10))),
            (
                2,
                CMD,
                result(
                    accepted(2, "bob", Side.BUY, 4),
                    fill(1, maker=1, taker=2, qty=4, maker_remaining=6, taker_remaining=0),
                ),
            ),
            (3, CMD, result(amended(1, price=101, qty=8, remaining=4))),
            (4, CMD, result(accepted(3, "alice", Side.SELL, 5, ts=5))),
            (5, CMD, result(cancelled(1, remaining=4), expired(3, remaining=5))),
            (6, CMD, result(halted())),
            (7, CMD, result()),
        ]
    )
    assert last == 7 and store.last_projected_seq() == 7
    maker, taker, third = store.list_orders()
    assert (maker.status, maker.filled, maker.remaining, maker.price, maker.qty) == (
        OrderStatus.CANCELLED,
        4,
        0,
        101,
        8,
    )
    assert (taker.status, taker.filled, taker.remaining, taker.side) == (OrderStatus.FILLED, 4, 0, "buy")
    assert (third.status, third.remaining, third.cmd_seq) == (OrderStatus.EXPIRED, 0, 4)
    (trade,) = store.list_trades()
    assert (trade.trade_id, trade.qty, trade.buyer, trade.seller) == (1, 4, "bob", "alice")
    assert trade.settlement_status is SettlementStatus.PENDING
    assert store.list_trades(participant="alice") == [trade] == store.list_trades(participant="bob")
    assert store.list_trades(participant="carol") == []
    assert [o.order_id for o in store.list_orders(participant="alice", status=["expired", "cancelled"])] == [1, 3]
    inst = store.get_instrument("OMN1")
    assert inst is not None and inst.status == "halted"


def test_partial_fill_status(store: Store) -> None:
    store.project(
        [
            (1, CMD, result(accepted(1, "alice", Side.SELL, 10))),
            (2, CMD, result(accepted(2, "bob", Side.BUY, 3), fill(1, 1, 2, 3, 7, 0))),
        ]
    )
    order = store.get_order(1)
    assert order is not None and (order.status, order.filled, order.remaining) == (OrderStatus.PARTIALLY_FILLED, 3, 7)


def test_an_order_is_found_by_its_participant_and_client_order_id(store: Store) -> None:
    store.project(
        [
            (1, CMD, result(accepted(1, "alice", Side.SELL, 10))),
            (2, CMD, result(accepted(2, "bob", Side.BUY, 3), fill(1, 1, 2, 3, 7, 0))),
        ]
    )
    found = store.find_order("bob", "c2")  # a retry after a failover (venue.remote)
    assert found is not None and (found.order_id, found.status, found.filled) == (2, OrderStatus.FILLED, 3)
    assert store.find_order("alice", "c2") is None  # another participant's id
    assert store.find_order("bob", "c9") is None


def test_replayed_items_are_applied_once_and_gaps_refused(store: Store) -> None:
    batch = [
        (1, CMD, result(accepted(1, "alice", Side.SELL, 10))),
        (2, CMD, result(accepted(2, "bob", Side.BUY, 3), fill(1, 1, 2, 3, 7, 0))),
    ]
    store.project(batch)
    store.project(batch)  # a retried batch: no duplicate trade, no double fill
    assert len(store.list_trades()) == 1
    assert store.get_order(1).filled == 3  # type: ignore[union-attr]
    with pytest.raises(ProjectionGapError, match="store has commands up to 2, got 4"):
        store.project([(4, CMD, result())])
    assert store.last_projected_seq() == 2


def test_settlement_seen_before_its_trade_is_mirrored(store: Store) -> None:
    store.record_settlement(SettlementUpdate(trade_id=1, status=SettlementStatus.SUBMITTED, tx_hash="0xab"))
    store.project(
        [
            (1, CMD, result(accepted(1, "alice", Side.SELL, 10))),
            (2, CMD, result(accepted(2, "bob", Side.BUY, 3), fill(1, 1, 2, 3, 7, 0))),
        ]
    )
    assert store.get_trade(1).settlement_status is SettlementStatus.SUBMITTED  # type: ignore[union-attr]
    store.record_settlement(SettlementUpdate(trade_id=1, status=SettlementStatus.CONFIRMED))
    assert store.get_trade(1).settlement_status is SettlementStatus.CONFIRMED  # type: ignore[union-attr]


class FlakyStore(Store):
    """Fails the first ``failures`` projections like a database that is briefly away."""

    failures = 0
    calls = 0

    def project(self, items: Sequence[tuple[int, Command, Result]]) -> int:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise StoreUnavailableError("database is restarting")
        return super().project(items)


async def test_writer_batches_in_the_background_and_retries(store: Store) -> None:
    flaky = FlakyStore(store.engine)
    flaky.failures = 2
    writer = StoreWriter(flaky, max_batch=3, retry_delay=0.01)
    await writer.start()
    for seq in range(1, 8):
        writer.enqueue(seq, CMD, result(accepted(seq, "alice", Side.SELL, seq)))
    await writer.flush()
    await writer.stop()
    assert writer.written_seq == 7 and writer.pending == 0 and writer.last_error is None
    assert [o.qty for o in store.list_orders()] == list(range(1, 8))
    assert flaky.calls == 2 + 3  # two failed attempts, then batches of 3, 3, 1


async def test_writer_stops_on_a_gap_and_asks_for_resync(store: Store) -> None:
    writer = StoreWriter(store)
    await writer.start()
    writer.enqueue(5, CMD, result())
    await writer.flush()
    assert writer.needs_resync and isinstance(writer.last_error, ProjectionGapError)
    await writer.stop()


async def test_writer_stop_gives_up_on_a_dead_database(store: Store) -> None:
    flaky = FlakyStore(store.engine)
    flaky.failures = 10**6
    writer = StoreWriter(flaky, retry_delay=0.01)
    await writer.start()
    writer.enqueue(1, CMD, result())
    await asyncio.sleep(0.05)
    await asyncio.wait_for(writer.stop(), timeout=5)
    assert writer.pending == 1 and isinstance(writer.last_error, StoreUnavailableError)
