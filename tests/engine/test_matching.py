"""Core matching: resting, crossing, price-time priority, event order and sequence numbers."""

from __future__ import annotations

import pytest

from engine import (
    BookDelta,
    CancelReason,
    Engine,
    Fill,
    MassCancel,
    OrderAccepted,
    OrderCancelled,
    ResultCode,
    Side,
    UnknownInstrumentError,
)
from tests.engine.helpers import SYM, Venue, kinds, of, ok


def test_resting_order_is_accepted_and_shown_in_l2(venue: Venue) -> None:
    res = ok(venue.buy(5, 100))
    assert res.order_id == 1
    assert kinds(res) == ["OrderAccepted", "BookDelta"]
    delta = of(res, BookDelta)[0]
    assert (delta.side, delta.price, delta.qty, delta.count) == (Side.BUY, 100, 5, 1)
    assert venue.book() == ([(100, 5, 1)], [])
    view = venue.engine.order(1)
    assert view is not None and (view.qty, view.remaining, view.price) == (5, 5, 100)


def test_cross_fills_at_maker_price_and_rests_remainder(venue: Venue) -> None:
    ok(venue.sell(3, 101))
    res = ok(venue.buy(5, 105))
    assert kinds(res) == ["OrderAccepted", "Fill", "BookDelta", "BookDelta"]
    fill = of(res, Fill)[0]
    assert (fill.price, fill.qty, fill.aggressor) == (101, 3, Side.BUY)
    assert (fill.maker_order_id, fill.taker_order_id, fill.maker_remaining, fill.taker_remaining) == (1, 2, 0, 2)
    assert (fill.maker_participant, fill.taker_participant, fill.trade_id) == ("bob", "alice", 1)
    gone, rest = of(res, BookDelta)
    assert (gone.side, gone.price, gone.qty, gone.count) == (Side.SELL, 101, 0, 0)
    assert (rest.side, rest.price, rest.qty, rest.count) == (Side.BUY, 105, 2, 1)
    assert venue.book() == ([(105, 2, 1)], [])
    assert venue.engine.order(1) is None


def test_price_then_time_priority(venue: Venue) -> None:
    ok(venue.sell(2, 102, "s1"))  # 1
    ok(venue.sell(2, 101, "s2"))  # 2: better price
    ok(venue.sell(2, 101, "s3"))  # 3: same price, later
    res = ok(venue.buy(5, 102))
    assert [(f.maker_order_id, f.price, f.qty) for f in of(res, Fill)] == [(2, 101, 2), (3, 101, 2), (1, 102, 1)]
    assert venue.book() == ([], [(102, 1, 1)])


def test_sell_taker_walks_bids_best_first(venue: Venue) -> None:
    ok(venue.buy(1, 99))
    ok(venue.buy(1, 101))
    ok(venue.buy(1, 100))
    res = ok(venue.sell(3, 100))
    assert [f.price for f in of(res, Fill)] == [101, 100]
    assert all(f.aggressor is Side.SELL for f in of(res, Fill))
    assert venue.book() == ([(99, 1, 1)], [(100, 1, 1)])


def test_sequence_numbers_are_global_and_md_seq_per_instrument(venue: Venue) -> None:
    ok(venue.add("OMN-B"))
    a = ok(venue.buy(1, 100))
    b = ok(venue.buy(1, 100, symbol="OMN-B"))
    c = ok(venue.sell(1, 100))
    seqs = [e.seq for r in (a, b, c) for e in r.events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert venue.engine.seq == seqs[-1]
    md_a = [e.md_seq for r in (a, c) for e in r.events if isinstance(e, (BookDelta, Fill))]
    assert md_a == [1, 2, 3]
    assert of(b, BookDelta)[0].md_seq == 1
    assert venue.engine.l2(SYM).md_seq == 3


def test_ioc_remainder_cancelled(venue: Venue) -> None:
    from engine import TimeInForce

    ok(venue.sell(2, 100))
    res = ok(venue.buy(5, 100, tif=TimeInForce.IOC))
    assert kinds(res) == ["OrderAccepted", "Fill", "BookDelta", "OrderCancelled"]
    cancelled = of(res, OrderCancelled)[0]
    assert (cancelled.remaining, cancelled.reason) == (3, CancelReason.IOC_REMAINDER)
    assert venue.book() == ([], [])


def test_cancel_removes_order(venue: Venue) -> None:
    ok(venue.buy(5, 100))
    ok(venue.buy(1, 100))
    res = ok(venue.cancel(1, "alice"))
    assert kinds(res) == ["OrderCancelled", "BookDelta"]
    assert of(res, OrderCancelled)[0].reason is CancelReason.USER
    assert venue.book() == ([(100, 1, 1)], [])


def test_l2_depth_and_unknown_instrument(venue: Venue) -> None:
    for price in (100, 99, 98):
        ok(venue.buy(1, price))
    assert [lv.price for lv in venue.engine.l2(SYM, 2).bids] == [100, 99]
    assert venue.engine.l2(SYM, 0).bids == ()
    with pytest.raises(UnknownInstrumentError):
        venue.engine.l2("NOPE")
    assert venue.engine.spec("NOPE") is None
    assert venue.engine.symbols() == (SYM,)


def test_order_ids_count_only_accepted_orders(venue: Venue) -> None:
    assert venue.buy(0, 100).order_id is None
    assert ok(venue.buy(1, 100)).order_id == 1
    res = venue.buy(1, 100, symbol="NOPE")
    assert res.code is ResultCode.UNKNOWN_INSTRUMENT and res.order_id is None
    assert ok(venue.buy(1, 100)).order_id == 2
    assert not of(res, OrderAccepted)


def test_determinism_same_stream_same_events() -> None:
    def run() -> list[object]:
        v = Venue(Engine())
        v.add()
        out: list[object] = []
        for i in range(60):
            side = Side.BUY if i % 3 else Side.SELL
            out.extend(v.order(side, 1 + i % 4, 95 + (i * 7) % 11, f"p{i % 5}").events)
            if i % 7 == 0:
                out.extend(v.cancel(i // 2 + 1, f"p{(i // 2) % 5}").events)
        return out

    assert run() == run()


# ------------------------------------------------------------------ one BookDelta per level per command


def test_sweep_gives_one_delta_per_level_after_its_last_fill(venue: Venue) -> None:
    for _ in range(3):
        ok(venue.sell(1, 100, "s1"))
    ok(venue.sell(2, 101, "s2"))
    res = ok(venue.buy(5, 101))
    assert kinds(res) == ["OrderAccepted", "Fill", "Fill", "Fill", "BookDelta", "Fill", "BookDelta"]
    first, second = of(res, BookDelta)
    assert (first.price, first.qty, first.count) == (100, 0, 0)
    assert (second.price, second.qty, second.count) == (101, 0, 0)
    md = [e.md_seq for e in res.events if isinstance(e, Fill | BookDelta)]
    assert md == list(range(md[0], md[0] + len(md)))


def test_amend_up_at_same_price_gives_one_delta(venue: Venue) -> None:
    ok(venue.sell(5, 100, "s1"))
    ok(venue.sell(5, 100, "s2"))
    res = ok(venue.amend(1, "s1", qty=8))
    assert kinds(res) == ["OrderAmended", "BookDelta"]
    delta = of(res, BookDelta)[0]
    assert (delta.price, delta.qty, delta.count) == (100, 13, 2)


def test_mass_cancel_gives_one_delta_per_level_after_its_last_cancel(venue: Venue) -> None:
    ok(venue.buy(1, 100))
    ok(venue.buy(1, 99))
    ok(venue.buy(1, 100))
    res = ok(venue.engine.process(MassCancel(ts=venue.tick(), participant="alice")))
    assert kinds(res) == ["OrderCancelled", "OrderCancelled", "BookDelta", "OrderCancelled", "BookDelta"]
    assert [(d.price, d.qty) for d in of(res, BookDelta)] == [(99, 0), (100, 0)]
