"""Trade and order history (``venue.history``) on the real store, both backends: paging through
the whole history while trades keep arriving, the not yet projected tail from memory, the final
state of orders that left the book, and ownership."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import AddInstrument, AdvanceTime, CancelOrder, Engine, Fill, Side, TimeInForce
from market.history import Page, TradeQuery, decode_cursor
from market.model import OrderStatus, Trade
from store import Store, StoreWriter
from tests.store.conftest import db_url, pg_database, store  # noqa: F401  (the store suite's backends)
from tests.store.events import CMD, fill, result
from tests.venue.test_core import LISTING, SPEC, GatedSequencer, order
from venue.core import VenueCore
from venue.history import VenueHistory
from venue.runtime import StoreAdapter

PARTICIPANTS = ("alice", "bob", "carol")


class _CaughtUp:
    async def wait_written(self, seq: int, timeout: float) -> bool:
        return True


def _trade(trade_id: int, maker: str, taker: str) -> tuple[Fill, Trade]:
    f = dataclasses.replace(fill(trade_id, maker=2 * trade_id, taker=2 * trade_id + 1, qty=1, maker_remaining=0,
                                 taker_remaining=0, ts=1000 + trade_id),
                            maker_participant=maker, taker_participant=taker)
    return f, Trade.from_fill(f)


class _Market:
    """Trades enter memory at once (the core's ring) and the store later (``project``)."""

    def __init__(self, db: Store) -> None:
        self.store = db
        self.fills: list[Fill] = []
        self.ring: list[Trade] = []
        self.projected = 0  # fills in the store
        self.history = VenueHistory(recent_trades=lambda: reversed(self.ring), current_trade=lambda _: None,
                                    live_order=lambda _: None)
        self.history.attach_store(db, _CaughtUp(), lambda: 0)

    def trade(self, maker: str, taker: str) -> None:
        f, record = _trade(len(self.fills) + 1, maker, taker)
        self.fills.append(f)
        self.ring.append(record)

    def project(self) -> None:
        items = [(i + 1, CMD, result(f)) for i, f in enumerate(self.fills) if i >= self.projected]
        if items:
            self.store.project(items)
        self.projected = len(self.fills)


_trades = st.lists(st.tuples(st.sampled_from(PARTICIPANTS), st.sampled_from(PARTICIPANTS)), max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    before=_trades,
    projected_first=st.booleans(),
    steps=st.lists(st.tuples(st.integers(1, 5), _trades, st.booleans()), min_size=1, max_size=12),
    participant=st.sampled_from((None, *PARTICIPANTS)),
)
async def test_paging_yields_every_trade_once_newest_first(
    store: Store,  # noqa: F811
    before: list[tuple[str, str]],
    projected_first: bool,
    steps: list[tuple[int, list[tuple[str, str]], bool]],
    participant: str | None,
) -> None:
    """Whatever the page sizes, however many trades arrive between pages and whether or not the
    store has caught up: the pages hold every trade that existed at the first read, each once, in
    trade id order, newest first."""
    store.clear_projection()
    market = _Market(store)
    for maker, taker in before:
        market.trade(maker, taker)
    if projected_first:
        market.project()
    expected = [r.trade_id for r in reversed(market.ring) if participant in (None, r.buyer, r.seller)]
    seen: list[int] = []
    cursor: str | None = None
    for i in range(len(expected) + 2):  # bounded: every page but the last holds at least one trade
        size, arriving, project = steps[i % len(steps)]
        page = await market.history.trade_history(TradeQuery(
            participant=participant, limit=size, before_id=None if cursor is None else decode_cursor(cursor)))
        seen.extend(t.trade_id for t in page.items)
        assert all(participant in (None, t.buyer, t.seller) for t in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
        for maker, taker in arriving:  # new trades while the client pages
            market.trade(maker, taker)
        if project:
            market.project()
    assert cursor is None
    assert seen == expected


async def test_trades_not_yet_in_the_store_come_from_memory(store: Store) -> None:  # noqa: F811
    market = _Market(store)
    for _ in range(3):
        market.trade("alice", "bob")
    market.project()
    market.trade("bob", "alice")  # acknowledged, not projected yet
    page = await market.history.trade_history(TradeQuery(participant="alice", limit=10))
    assert [t.trade_id for t in page.items] == [4, 3, 2, 1]
    assert page.next_cursor is None
    first: Page[Trade] = await market.history.trade_history(TradeQuery(limit=3))
    assert [t.trade_id for t in first.items] == [4, 3, 2] and first.next_cursor is not None
    rest = await market.history.trade_history(TradeQuery(limit=3, before_id=decode_cursor(first.next_cursor)))
    assert [t.trade_id for t in rest.items] == [1] and rest.next_cursor is None


async def test_time_window(store: Store) -> None:  # noqa: F811
    market = _Market(store)
    for _ in range(6):
        market.trade("alice", "bob")  # ts = 1000 + trade id
    market.project()
    market.trade("alice", "bob")
    page = await market.history.trade_history(TradeQuery(since_ts=1003, until_ts=1007))
    assert [t.trade_id for t in page.items] == [6, 5, 4, 3]
    page = await market.history.trade_history(TradeQuery(since_ts=1006))
    assert [t.trade_id for t in page.items] == [7, 6]


# ---------------------------------------------------------------- orders


@pytest.fixture
async def venue_core(store: Store):  # type: ignore[no-untyped-def]  # noqa: F811
    engine = Engine()
    engine.process(AddInstrument(ts=0, spec=SPEC))
    sequencer = GatedSequencer(engine)
    writer = StoreWriter(store)
    core = VenueCore(engine=engine, sequencer=sequencer, listings=[LISTING], store=StoreAdapter(store, writer))
    core.history.attach_store(store, writer, lambda: sequencer.seq)
    await writer.start()
    try:
        yield core, sequencer
    finally:
        await writer.stop()


async def test_filled_cancelled_and_expired_orders_keep_their_final_state(venue_core) -> None:  # type: ignore[no-untyped-def]
    core, sequencer = venue_core
    resting = (await core.submit("alice", order("alice", Side.SELL, 5, 100))).result
    gtd = (await core.submit("alice", dataclasses.replace(order("alice", Side.SELL, 2, 120),
                                                          tif=TimeInForce.GTD, expire_ts=10))).result
    cancelled = (await core.submit("alice", order("alice", Side.SELL, 3, 130))).result
    taker = (await core.submit("bob", order("bob", Side.BUY, 5, 100))).result
    assert resting and gtd and cancelled and taker
    await core.submit("alice", CancelOrder(ts=0, participant="alice", order_id=cancelled.order_id))
    live = await core.order_record("alice", gtd.order_id)
    assert live is not None and (live.state, live.remaining, live.filled) == (OrderStatus.OPEN, 2, 0)
    while sequencer.seq < 10:
        await sequencer.submit(AdvanceTime(ts=0))
    assert core.order(gtd.order_id) is None and core.order(resting.order_id) is None

    maker = await core.order_record("alice", resting.order_id)
    assert maker is not None
    assert (maker.state, maker.filled, maker.remaining, maker.qty, maker.reason) == (OrderStatus.FILLED, 5, 0, 5, None)
    assert maker.accepted_ts < maker.updated_ts
    bought = await core.order_record("bob", taker.order_id)
    assert bought is not None and (bought.state, bought.filled, bought.side) == (OrderStatus.FILLED, 5, Side.BUY)
    gone = await core.order_record("alice", cancelled.order_id)
    assert gone is not None and (gone.state, gone.filled, gone.remaining, gone.reason) == (
        OrderStatus.CANCELLED, 0, 0, "user")
    expired = await core.order_record("alice", gtd.order_id)
    assert expired is not None and (expired.state, expired.reason, expired.expire_ts) == (
        OrderStatus.EXPIRED, "expired", 10)


async def test_someone_elses_order_is_unknown(venue_core) -> None:  # type: ignore[no-untyped-def]
    core, _ = venue_core
    resting = (await core.submit("alice", order("alice", Side.SELL, 5, 100))).result
    filled = (await core.submit("alice", order("alice", Side.SELL, 1, 90))).result
    await core.submit("bob", order("bob", Side.BUY, 1, 90))
    assert resting and filled
    for order_id in (resting.order_id, filled.order_id):  # on the book and finished
        assert await core.order_record("alice", order_id) is not None
        assert await core.order_record("bob", order_id) is None
    assert await core.order_record("alice", 999) is None


async def test_order_read_waits_for_the_store_writer(venue_core) -> None:  # type: ignore[no-untyped-def]
    """An order that left the book a moment ago: its final state, not the stale open row."""
    core, _ = venue_core
    resting = (await core.submit("alice", order("alice", Side.SELL, 5, 100))).result
    assert resting
    await core.submit("bob", order("bob", Side.BUY, 5, 100))
    read = asyncio.ensure_future(core.order_record("alice", resting.order_id))  # before the writer ran
    record = await read
    assert record is not None and record.state is OrderStatus.FILLED

