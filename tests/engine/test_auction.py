"""Crosses (negotiated trades printed outside the book), trading phases and the call auction."""

from __future__ import annotations

from engine import (
    BookDelta,
    Cross,
    Fill,
    Side,
    TradeOrigin,
)
from tests.engine.helpers import SYM, Venue, of, ok


def test_cross_prints_one_fill_and_leaves_the_book_alone(venue: Venue) -> None:
    ok(venue.buy(2, 100, "carol"))
    ok(venue.sell(3, 105, "dave"))
    book = venue.book()
    md_seq = venue.engine.l2(SYM).md_seq
    res = venue.engine.process(Cross(ts=venue.tick(), symbol=SYM, buyer="alice", seller="bob", price=103, qty=7,
                                     origin=TradeOrigin.RFQ, buy_client_order_id="b1", sell_client_order_id="s1"))
    ok(res)
    (fill,) = res.events
    assert isinstance(fill, Fill)
    assert res.order_id == fill.taker_order_id == 3 and fill.maker_order_id == 4
    assert (fill.price, fill.qty, fill.aggressor, fill.origin) == (103, 7, Side.BUY, TradeOrigin.RFQ)
    assert (fill.taker_participant, fill.maker_participant) == ("alice", "bob")
    assert (fill.taker_remaining, fill.maker_remaining) == (0, 0)
    assert fill.seq == venue.engine.seq and fill.md_seq == md_seq + 1 == venue.engine.l2(SYM).md_seq
    assert not of(res, BookDelta) and venue.book() == book
    assert venue.engine.order(3) is None and venue.engine.order(4) is None
    # the ids are used up: the next order and trade continue after them
    nxt = venue.buy(1, 105, "erin")
    assert nxt.order_id == 5 and of(nxt, Fill)[0].trade_id == fill.trade_id + 1
    assert of(nxt, Fill)[0].origin is TradeOrigin.CONTINUOUS


def test_block_cross_outside_the_spread_within_the_band(venue: Venue) -> None:
    ok(venue.buy(2, 100, "carol"))
    ok(venue.sell(3, 105, "dave"))
    res = venue.engine.process(Cross(ts=venue.tick(), symbol=SYM, buyer="alice", seller="bob", price=9_000, qty=1000,
                                     origin=TradeOrigin.BLOCK))
    ok(res)
    assert of(res, Fill)[0].origin is TradeOrigin.BLOCK
