"""Crosses (negotiated trades printed outside the book), trading phases and the call auction."""

from __future__ import annotations

import json

import pytest

from engine import (
    AdvanceTime,
    BookDelta,
    CancelReason,
    Cross,
    Engine,
    Fill,
    IndicativeUncross,
    InstrumentStatus,
    InstrumentStatusChanged,
    MassCancel,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    Result,
    ResultCode,
    SetInstrumentStatus,
    Side,
    TimeInForce,
    TradeOrigin,
    Uncross,
    implementations,
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


# ------------------------------------------------------------------ phases


def _call(v: Venue, symbol: str = SYM) -> Result:
    return ok(v.engine.process(SetInstrumentStatus(ts=v.tick(), symbol=symbol, status=InstrumentStatus.CALL)))


def _uncross(v: Venue, reference: int | None = None, then: InstrumentStatus = InstrumentStatus.OPEN) -> Result:
    return ok(v.engine.process(Uncross(ts=v.tick(), symbol=SYM, reference_price=reference, then=then)))


def _indicative(res: Result) -> IndicativeUncross:
    (event,) = of(res, IndicativeUncross)
    assert res.events[-1] is event  # always the command's last event
    return event


def test_entering_a_call_reports_the_phase_and_an_empty_indication(venue: Venue) -> None:
    ok(venue.buy(2, 100))
    res = _call(venue)
    status, indication = res.events
    assert isinstance(status, InstrumentStatusChanged) and status.status is InstrumentStatus.CALL
    assert isinstance(indication, IndicativeUncross)
    assert (indication.price, indication.volume, indication.imbalance_side, indication.imbalance_qty) == (
        None, 0, None, 0)
    assert indication.md_seq == status.md_seq + 1 == venue.engine.l2(SYM).md_seq
    assert venue.engine.l2(SYM).status is InstrumentStatus.CALL


def test_orders_rest_crossed_during_a_call_and_every_change_is_indicated(venue: Venue) -> None:
    _call(venue)
    res = ok(venue.buy(5, 110, "alice"))
    assert not of(res, Fill) and _indicative(res).price is None
    res = ok(venue.sell(3, 100, "bob"))
    assert not of(res, Fill)
    ind = _indicative(res)
    assert (ind.price, ind.volume, ind.imbalance_side, ind.imbalance_qty) == (110, 3, Side.BUY, 2)
    assert venue.book() == ([(110, 5, 1)], [(100, 3, 1)])  # crossed, as a call allows
    # post-only orders rest too (nothing is taken during a call)
    res = ok(venue.sell(4, 105, "carol", post_only=True))
    ind = _indicative(res)
    assert (ind.price, ind.volume, ind.imbalance_side, ind.imbalance_qty) == (105, 5, Side.SELL, 2)
    # amend and cancel work, each followed by an indication
    res = ok(venue.amend(res.order_id or 0, "carol", qty=2))
    assert (_indicative(res).volume, _indicative(res).imbalance_qty) == (5, 0)
    res = ok(venue.cancel(1, "alice"))
    assert _indicative(res).price is None
    # a rejected command changes nothing and indicates nothing
    rejected = venue.buy(1, 100, tif=TimeInForce.IOC)
    assert rejected.code is ResultCode.NOT_ALLOWED_IN_CALL and not of(rejected, IndicativeUncross)
    venue.engine.validate()


def test_uncross_executes_at_the_maximum_volume_in_price_time_priority(venue: Venue) -> None:
    _call(venue)
    ok(venue.buy(5, 10, "a"))  # 1
    ok(venue.sell(3, 9, "b"))  # 2
    ok(venue.sell(4, 10, "c"))  # 3
    ok(venue.buy(2, 11, "d"))  # 4
    ok(venue.sell(2, 8, "e"))  # 5
    # demand/supply: at 8: 7/2, at 9: 7/5, at 10: 7/9, at 11: 2/9 -> 10 executes 7 (sell surplus 2)
    res = _uncross(venue, reference=9)
    fills = of(res, Fill)
    assert [(f.taker_order_id, f.maker_order_id, f.qty) for f in fills] == [(5, 4, 2), (2, 1, 3), (3, 1, 2)]
    assert all(f.price == 10 and f.origin is TradeOrigin.AUCTION for f in fills)
    assert [f.aggressor for f in fills] == [Side.SELL] * 3  # the later order of a pair is the taker
    assert fills[-1].taker_remaining == 2 and fills[-1].maker_remaining == 0
    # one delta per changed level, then the new phase
    deltas = of(res, BookDelta)
    assert sorted((d.side, d.price, d.qty) for d in deltas) == [
        (Side.BUY, 10, 0), (Side.BUY, 11, 0), (Side.SELL, 8, 0), (Side.SELL, 9, 0), (Side.SELL, 10, 2)]
    last = res.events[-1]
    assert isinstance(last, InstrumentStatusChanged) and last.status is InstrumentStatus.OPEN
    assert not of(res, IndicativeUncross)
    assert venue.book() == ([], [(10, 2, 1)])
    # continuous trading resumes
    cont = ok(venue.buy(1, 10, "f"))
    assert of(cont, Fill)[0].origin is TradeOrigin.CONTINUOUS


def test_tie_on_volume_goes_to_the_smaller_imbalance(venue: Venue) -> None:
    _call(venue)
    ok(venue.sell(5, 9, "a"))
    ok(venue.sell(4, 11, "b"))
    ok(venue.buy(3, 9, "c"))
    ok(venue.buy(5, 11, "d"))
    # at 9: volume 5, imbalance +3; at 11: volume 5, imbalance -4 -> 9
    assert _uncross(venue, reference=11).events[0].price == 9  # type: ignore[union-attr]


@pytest.mark.parametrize(("reference", "price"), [(100, 100), (104, 104), (90, 100), (200, 104), (102, 100)])
def test_tie_on_volume_and_imbalance_goes_to_the_reference_then_the_lower_price(
        venue: Venue, reference: int, price: int) -> None:
    _call(venue)
    ok(venue.buy(4, 104, "a"))
    ok(venue.sell(4, 100, "b"))
    # both candidates (the orders' prices) execute 4 with no imbalance: the nearest to the reference, ties low
    assert _indicative(venue.buy(1, 50, "c")).price == 100  # last trade is the indication's reference: none yet
    fills = of(_uncross(venue, reference=reference), Fill)
    assert [(f.price, f.qty) for f in fills] == [(price, 4)]


def test_final_rule_follows_the_buy_surplus_to_the_higher_price(venue: Venue) -> None:
    _call(venue)
    ok(venue.buy(6, 104, "a"))
    ok(venue.sell(4, 100, "b"))
    # both candidates (100, 104) execute 4 with a buy surplus of 2; no reference -> the higher price
    assert [f.price for f in of(_uncross(venue), Fill)] == [104]


def test_own_orders_meeting_at_the_uncross_are_decremented_not_traded(venue: Venue) -> None:
    _call(venue)
    ok(venue.buy(5, 10, "alice"))  # 1
    ok(venue.sell(3, 10, "alice"))  # 2: alice's own
    ok(venue.sell(4, 10, "bob"))  # 3
    res = _uncross(venue)
    cancelled = of(res, OrderCancelled)
    amended = of(res, OrderAmended)
    assert [(c.order_id, c.remaining, c.reason) for c in cancelled] == [(2, 3, CancelReason.SELF_TRADE_PREVENTION)]
    assert [(a.order_id, a.qty, a.remaining, a.priority_kept) for a in amended] == [(1, 2, 2, True)]
    assert [(f.maker_order_id, f.taker_order_id, f.qty) for f in of(res, Fill)] == [(1, 3, 2)]
    assert venue.book() == ([], [(10, 2, 1)])


def test_due_gtd_orders_expire_before_the_uncross(venue: Venue) -> None:
    _call(venue)
    ok(venue.buy(5, 10, "a", tif=TimeInForce.GTD, expire_ts=venue.ts + 3))
    ok(venue.buy(2, 9, "b"))
    ok(venue.sell(2, 9, "c"))
    venue.tick()
    res = _uncross(venue)
    assert [e.order_id for e in of(res, OrderExpired)] == [1]
    assert res.events.index(of(res, OrderExpired)[0]) == 0
    assert [(f.maker_order_id, f.taker_order_id, f.price) for f in of(res, Fill)] == [(2, 3, 9)]


def test_uncross_back_into_a_call_and_the_last_trade_as_indicative_reference(venue: Venue) -> None:
    _call(venue)
    ok(venue.buy(2, 100, "a"))
    ok(venue.sell(2, 100, "b"))
    res = _uncross(venue, then=InstrumentStatus.CALL)
    status = of(res, InstrumentStatusChanged)[0]
    assert status.status is InstrumentStatus.CALL and _indicative(res).price is None
    assert venue.engine.l2(SYM).status is InstrumentStatus.CALL
    ok(venue.buy(3, 106, "a"))
    res = ok(venue.sell(3, 102, "b"))
    assert _indicative(res).price == 102  # all of 102..106 tie: the nearest to the last trade (100)
    assert not of(res, Fill)


def test_halt_during_a_call_resumes_only_through_a_call(venue: Venue) -> None:
    _call(venue)
    ok(venue.buy(2, 100, "a"))
    ok(venue.sell(2, 95, "b"))
    halted = ok(venue.engine.process(SetInstrumentStatus(ts=venue.tick(), symbol=SYM, status=InstrumentStatus.HALTED)))
    assert not of(halted, IndicativeUncross)
    venue.engine.validate()  # crossed while halted is allowed
    reopen = venue.engine.process(SetInstrumentStatus(ts=venue.tick(), symbol=SYM, status=InstrumentStatus.OPEN))
    assert reopen.code is ResultCode.BOOK_CROSSED
    _call(venue)
    # candidates are the orders' prices (95, 100), both execute 2 with no imbalance: 100 is nearer 98
    assert [f.price for f in of(_uncross(venue, reference=98), Fill)] == [100]


def test_close_during_a_call_cancels_everything(venue: Venue) -> None:
    _call(venue)
    ok(venue.buy(2, 100, "a"))
    ok(venue.sell(2, 95, "b"))
    res = ok(venue.engine.process(SetInstrumentStatus(ts=venue.tick(), symbol=SYM, status=InstrumentStatus.CLOSED)))
    assert len(of(res, OrderCancelled)) == 2 and not of(res, IndicativeUncross)


def test_uncross_of_an_empty_or_uncrossed_call_only_changes_the_phase(venue: Venue) -> None:
    _call(venue)
    ok(venue.buy(2, 90, "a"))
    ok(venue.sell(2, 95, "b"))
    res = _uncross(venue)
    assert [type(e) for e in res.events] == [InstrumentStatusChanged]
    assert venue.book() == ([(90, 2, 1)], [(95, 2, 1)])


def test_mass_cancel_and_expiry_in_a_call_indicate_once_per_instrument(venue: Venue) -> None:
    ok(venue.add("OTHER"))
    _call(venue)
    _call(venue, "OTHER")
    ok(venue.buy(2, 100, "a", tif=TimeInForce.GTD, expire_ts=venue.ts + 10))
    ok(venue.buy(2, 101, "a", tif=TimeInForce.GTD, expire_ts=venue.ts + 10))
    ok(venue.buy(2, 100, "a", symbol="OTHER", tif=TimeInForce.GTD, expire_ts=venue.ts + 10))
    venue.ts += 20
    res = ok(venue.engine.process(AdvanceTime(ts=venue.tick())))
    assert [i.symbol for i in of(res, IndicativeUncross)] == [SYM, "OTHER"]
    assert [type(e) for e in res.events[-2:]] == [IndicativeUncross, IndicativeUncross]
    ok(venue.sell(1, 200, "a"))
    ok(venue.sell(1, 200, "a", symbol="OTHER"))
    res = ok(venue.engine.process(MassCancel(ts=venue.tick(), participant="a")))
    assert [i.symbol for i in of(res, IndicativeUncross)] == [SYM, "OTHER"]


def test_a_snapshot_in_a_call_restores_into_the_other_implementation(engine_cls: type[Engine]) -> None:
    others = [cls for cls in implementations().values() if cls is not engine_cls] or [engine_cls]
    v = Venue(engine_cls())
    ok(v.add())
    _call(v)
    ok(v.buy(5, 110, "a"))
    ok(v.sell(3, 100, "b"))
    snap = v.engine.snapshot()
    assert snap["instruments"][0]["status"] == "CALL"
    for cls in others:
        restored = cls.from_snapshot(json.loads(json.dumps(snap)))
        assert restored.snapshot() == snap
        cmd = Uncross(ts=v.tick(), symbol=SYM, reference_price=104)
        assert repr(restored.process(cmd)) == repr(engine_cls.from_snapshot(snap).process(cmd))
