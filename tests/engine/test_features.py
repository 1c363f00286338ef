"""One example test (or a few) per engine feature."""

from __future__ import annotations

import json

import pytest

from engine import (
    AdvanceTime,
    BookDelta,
    CancelReason,
    Engine,
    Fill,
    InstrumentStatus,
    InstrumentStatusChanged,
    MassCancel,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderType,
    ResultCode,
    SetInstrumentStatus,
    Side,
    SnapshotError,
    StpMode,
    TimeInForce,
)
from tests.engine.helpers import SYM, Venue, kinds, of, ok

MKT = OrderType.MARKET
GTD = TimeInForce.GTD
FOK = TimeInForce.FOK
IOC = TimeInForce.IOC

# ------------------------------------------------------------------ market orders


def test_market_order_walks_book_up_to_protection_price(venue: Venue) -> None:
    ok(venue.sell(1, 100))
    ok(venue.sell(1, 101))
    ok(venue.sell(1, 105))
    res = ok(venue.buy(5, 102, order_type=MKT))
    assert [f.price for f in of(res, Fill)] == [100, 101]
    cancelled = of(res, OrderCancelled)[0]
    assert (cancelled.remaining, cancelled.reason) == (3, CancelReason.IOC_REMAINDER)
    assert of(res, OrderAccepted)[0].price == 102
    assert venue.book() == ([], [(105, 1, 1)])


def test_market_order_without_price_uses_band_edge(venue: Venue) -> None:
    ok(venue.buy(1, 1))  # band_low
    ok(venue.buy(1, 50))
    res = ok(venue.sell(2, None, order_type=MKT))
    assert [f.price for f in of(res, Fill)] == [50, 1]
    assert of(res, OrderAccepted)[0].price is None


def test_market_order_with_default_gtc_never_rests(venue: Venue) -> None:
    ok(venue.sell(1, 100))
    res = ok(venue.buy(3, None, order_type=MKT, tif=TimeInForce.GTC))
    assert kinds(res)[-1] == "OrderCancelled"
    assert venue.book() == ([], [])


def test_market_order_no_liquidity(venue: Venue) -> None:
    ok(venue.sell(1, 110))
    res = venue.buy(1, 105, order_type=MKT)
    assert res.code is ResultCode.NO_LIQUIDITY and res.order_id is None
    assert kinds(res) == ["OrderRejected"]
    assert venue.buy(1, None, order_type=MKT, symbol=SYM).code is ResultCode.OK


def test_market_fok(venue: Venue) -> None:
    ok(venue.sell(2, 100))
    assert venue.buy(3, None, order_type=MKT, tif=FOK).code is ResultCode.FOK_NOT_FILLABLE
    res = ok(venue.buy(2, None, order_type=MKT, tif=FOK))
    assert sum(f.qty for f in of(res, Fill)) == 2 and not of(res, OrderCancelled)


# ------------------------------------------------------------------ FOK


def test_fok_fills_completely_or_is_rejected_without_side_effects(venue: Venue) -> None:
    ok(venue.sell(2, 100))
    ok(venue.sell(2, 101))
    seq = venue.engine.seq
    res = venue.buy(5, 101, tif=FOK)
    assert res.code is ResultCode.FOK_NOT_FILLABLE and kinds(res) == ["OrderRejected"]
    assert venue.engine.seq == seq + 1
    assert venue.book() == ([], [(100, 2, 1), (101, 2, 1)])
    res = ok(venue.buy(4, 101, tif=FOK))
    assert sum(f.qty for f in of(res, Fill)) == 4
    assert kinds(res)[-1] == "BookDelta" and venue.book() == ([], [])


def test_fok_limit_excludes_levels_beyond_price(venue: Venue) -> None:
    ok(venue.sell(2, 100))
    ok(venue.sell(5, 102))
    assert venue.buy(3, 101, tif=FOK).code is ResultCode.FOK_NOT_FILLABLE


@pytest.mark.parametrize("stp", [StpMode.CANCEL_NEWEST, StpMode.CANCEL_BOTH, StpMode.DECREMENT])
def test_fok_own_order_ends_the_walk(venue: Venue, stp: StpMode) -> None:
    ok(venue.sell(1, 100, "bob"))
    ok(venue.sell(5, 100, "alice"))  # alice's own order, ahead of carol's
    ok(venue.sell(5, 101, "carol"))
    res = venue.buy(3, 101, "alice", tif=FOK, stp=stp)
    assert res.code is ResultCode.FOK_NOT_FILLABLE
    assert ok(venue.buy(1, 101, "alice", tif=FOK, stp=stp)).code is ResultCode.OK  # bob's 1 lot suffices


def test_fok_cancel_oldest_skips_and_cancels_own_orders(venue: Venue) -> None:
    ok(venue.sell(5, 100, "alice"))
    ok(venue.sell(3, 101, "carol"))
    assert venue.buy(4, 101, "alice", tif=FOK, stp=StpMode.CANCEL_OLDEST).code is ResultCode.FOK_NOT_FILLABLE
    assert venue.book() == ([], [(100, 5, 1), (101, 3, 1)])  # rejection cancelled nothing
    res = ok(venue.buy(3, 101, "alice", tif=FOK, stp=StpMode.CANCEL_OLDEST))
    assert [c.reason for c in of(res, OrderCancelled)] == [CancelReason.SELF_TRADE_PREVENTION]
    assert sum(f.qty for f in of(res, Fill)) == 3


def test_fok_ignores_due_gtd_orders(venue: Venue) -> None:
    ok(venue.sell(5, 100, expire_ts=venue.ts + 3, tif=GTD))
    venue.tick()
    venue.tick()
    assert venue.buy(5, 100, tif=FOK).code is ResultCode.FOK_NOT_FILLABLE  # ts reached expire_ts


# ------------------------------------------------------------------ post-only


def test_post_only_rests_when_not_crossing_and_rejects_when_crossing(venue: Venue) -> None:
    ok(venue.sell(1, 101))
    ok(venue.buy(1, 100, post_only=True))
    res = venue.buy(1, 101, post_only=True)
    assert res.code is ResultCode.POST_ONLY_WOULD_CROSS and res.order_id is None
    assert venue.book() == ([(100, 1, 1)], [(101, 1, 1)])


def test_post_only_amend_that_would_cross_is_rejected(venue: Venue) -> None:
    ok(venue.sell(1, 101))
    oid = ok(venue.buy(1, 100, post_only=True)).order_id
    assert oid is not None
    res = venue.amend(oid, "alice", price=101)
    assert res.code is ResultCode.POST_ONLY_WOULD_CROSS
    assert of(res, OrderRejected)[0].order_id == oid


# ------------------------------------------------------------------ GTD


def test_gtd_expires_on_advance_time_in_expiry_order(venue: Venue) -> None:
    base = venue.ts
    ok(venue.buy(1, 100, tif=GTD, expire_ts=base + 50))  # 1
    ok(venue.buy(1, 99, tif=GTD, expire_ts=base + 40))  # 2
    ok(venue.buy(1, 98, tif=GTD, expire_ts=base + 90))  # 3
    ok(venue.buy(1, 97))  # 4, GTC
    res = ok(venue.engine.process(AdvanceTime(ts=base + 50)))
    assert [e.order_id for e in of(res, OrderExpired)] == [2, 1]
    assert kinds(res) == ["OrderExpired", "BookDelta", "OrderExpired", "BookDelta"]
    assert venue.book()[0] == [(98, 1, 1), (97, 1, 1)]
    assert of(ok(venue.engine.process(AdvanceTime(ts=base + 50))), OrderExpired) == []


def test_gtd_due_order_never_trades_and_is_expired_by_matching(venue: Venue) -> None:
    ok(venue.sell(2, 100, tif=GTD, expire_ts=venue.ts + 2))  # 1
    ok(venue.sell(2, 100))  # 2
    res = ok(venue.buy(1, 100))  # ts == expire_ts of 1
    # one BookDelta per level per command: the expiry and the fill at 100 share it
    assert kinds(res) == ["OrderAccepted", "OrderExpired", "Fill", "BookDelta"]
    assert of(res, Fill)[0].maker_order_id == 2


def test_cancel_or_amend_of_due_gtd_order_expires_it(venue: Venue) -> None:
    ok(venue.sell(2, 100, tif=GTD, expire_ts=venue.ts + 2))
    ok(venue.sell(2, 100, tif=GTD, expire_ts=venue.ts + 2))
    res = venue.cancel(1, "bob")
    assert res.code is ResultCode.UNKNOWN_ORDER
    assert kinds(res) == ["OrderExpired", "BookDelta", "OrderRejected"]
    res = venue.amend(2, "bob", qty=1)
    assert res.code is ResultCode.UNKNOWN_ORDER and of(res, OrderExpired)[0].order_id == 2


def test_gtd_expiry_after_amend_still_applies(venue: Venue) -> None:
    base = venue.ts
    ok(venue.sell(2, 100, tif=GTD, expire_ts=base + 10))
    ok(venue.amend(1, "bob", price=101))  # loses priority, keeps its expiry
    res = ok(venue.engine.process(AdvanceTime(ts=base + 10)))
    assert [e.order_id for e in of(res, OrderExpired)] == [1]


# ------------------------------------------------------------------ self-trade prevention


def test_stp_cancel_newest(venue: Venue) -> None:
    ok(venue.sell(1, 100, "bob"))
    ok(venue.sell(1, 100, "alice"))
    ok(venue.sell(1, 100, "carol"))
    res = ok(venue.buy(3, 100, "alice", stp=StpMode.CANCEL_NEWEST))
    assert [f.maker_order_id for f in of(res, Fill)] == [1]
    cancelled = of(res, OrderCancelled)
    assert [(c.order_id, c.remaining, c.reason) for c in cancelled] == [(4, 2, CancelReason.SELF_TRADE_PREVENTION)]
    assert venue.book() == ([], [(100, 2, 2)])


def test_stp_cancel_oldest(venue: Venue) -> None:
    ok(venue.sell(1, 100, "alice"))
    ok(venue.sell(1, 100, "carol"))
    res = ok(venue.buy(2, 100, "alice", stp=StpMode.CANCEL_OLDEST))
    assert [(c.order_id, c.reason) for c in of(res, OrderCancelled)] == [(1, CancelReason.SELF_TRADE_PREVENTION)]
    assert [f.maker_order_id for f in of(res, Fill)] == [2]
    assert venue.book() == ([(100, 1, 1)], [])


def test_stp_cancel_both(venue: Venue) -> None:
    ok(venue.sell(1, 100, "alice"))
    ok(venue.sell(1, 100, "carol"))
    res = ok(venue.buy(2, 100, "alice", stp=StpMode.CANCEL_BOTH))
    assert [c.order_id for c in of(res, OrderCancelled)] == [1, 3]
    assert not of(res, Fill)
    assert venue.book() == ([], [(100, 1, 1)])


def test_stp_decrement_maker_survives(venue: Venue) -> None:
    ok(venue.sell(5, 100, "alice"))
    res = ok(venue.buy(2, 100, "alice", stp=StpMode.DECREMENT))
    assert kinds(res) == ["OrderAccepted", "OrderAmended", "BookDelta", "OrderCancelled"]
    amended = of(res, OrderAmended)[0]
    assert (amended.order_id, amended.qty, amended.remaining, amended.priority_kept) == (1, 3, 3, True)
    assert of(res, OrderCancelled)[0].remaining == 2
    assert venue.book() == ([], [(100, 3, 1)])


def test_stp_decrement_taker_survives_and_trades_on(venue: Venue) -> None:
    ok(venue.sell(2, 100, "alice"))
    ok(venue.sell(2, 100, "carol"))
    res = ok(venue.buy(5, 100, "alice", stp=StpMode.DECREMENT))
    cancelled = of(res, OrderCancelled)[0]
    assert (cancelled.order_id, cancelled.remaining) == (1, 2)
    taker = of(res, OrderAmended)[0]
    assert (taker.order_id, taker.qty, taker.remaining) == (3, 3, 3)
    assert [f.qty for f in of(res, Fill)] == [2]
    view = venue.engine.order(3)
    assert view is not None and (view.qty, view.remaining) == (3, 1)


# ------------------------------------------------------------------ amend


def test_amend_reduce_keeps_priority(venue: Venue) -> None:
    ok(venue.sell(5, 100, "s1"))
    ok(venue.sell(5, 100, "s2"))
    res = ok(venue.amend(1, "s1", qty=2))
    amended = of(res, OrderAmended)[0]
    assert (amended.qty, amended.remaining, amended.priority_kept) == (2, 2, True)
    assert of(res, BookDelta)[0].qty == 7
    fills = of(ok(venue.buy(1, 100)), Fill)
    assert fills[0].maker_order_id == 1


def test_amend_increase_loses_priority(venue: Venue) -> None:
    ok(venue.sell(5, 100, "s1"))
    ok(venue.sell(5, 100, "s2"))
    res = ok(venue.amend(1, "s1", qty=6))
    assert of(res, OrderAmended)[0].priority_kept is False
    assert of(ok(venue.buy(1, 100)), Fill)[0].maker_order_id == 2


def test_amend_qty_counts_filled(venue: Venue) -> None:
    ok(venue.sell(5, 100))
    ok(venue.buy(2, 100))
    res = ok(venue.amend(1, "bob", qty=4))  # total 4, filled 2 -> 2 open
    amended = of(res, OrderAmended)[0]
    assert (amended.qty, amended.remaining) == (4, 2)
    assert venue.amend(1, "bob", qty=2).code is ResultCode.AMEND_QTY_TOO_LOW


def test_amend_price_loses_priority_and_crossing_amend_trades(venue: Venue) -> None:
    ok(venue.buy(3, 99, "carol"))
    ok(venue.sell(5, 101))  # 2
    res = ok(venue.amend(2, "bob", price=99))
    assert kinds(res) == ["OrderAmended", "BookDelta", "Fill", "BookDelta", "BookDelta"]
    fill = of(res, Fill)[0]
    assert (fill.taker_order_id, fill.maker_order_id, fill.price, fill.qty) == (2, 1, 99, 3)
    assert fill.aggressor is Side.SELL
    assert venue.book() == ([], [(99, 2, 1)])
    assert res.order_id == 2


def test_amend_and_cancel_of_others_orders_are_unknown(venue: Venue) -> None:
    ok(venue.sell(5, 101))
    assert venue.amend(1, "mallory", qty=1).code is ResultCode.UNKNOWN_ORDER
    res = venue.cancel(1, "mallory")
    assert res.code is ResultCode.UNKNOWN_ORDER and of(res, OrderRejected)[0].symbol == ""


# ------------------------------------------------------------------ mass cancel


def test_mass_cancel_filters(venue: Venue) -> None:
    ok(venue.add("OMN-B"))
    ok(venue.buy(1, 90, session="s1"))  # 1
    ok(venue.sell(1, 110, "alice", session="s1"))  # 2
    ok(venue.buy(1, 90, symbol="OMN-B", session="s2"))  # 3
    ok(venue.buy(1, 91, "carol"))  # 4

    def mass(**kw: object) -> list[int]:
        res = ok(venue.engine.process(MassCancel(ts=venue.tick(), participant="alice", **kw)))  # type: ignore[arg-type]
        return [c.order_id for c in of(res, OrderCancelled)]

    assert mass(symbol="OMN-B", session="s1") == []
    assert mass(side=Side.SELL) == [2]
    assert mass(session="s2") == [3]
    res = ok(venue.engine.process(MassCancel(ts=venue.tick(), participant="alice", reason=CancelReason.DISCONNECT)))
    assert [(c.order_id, c.reason) for c in of(res, OrderCancelled)] == [(1, CancelReason.DISCONNECT)]
    assert [o.order_id for o in venue.engine.open_orders()] == [4]


def test_mass_cancel_unknown_symbol(venue: Venue) -> None:
    res = venue.engine.process(MassCancel(ts=venue.tick(), participant="alice", symbol="NOPE"))
    assert res.code is ResultCode.UNKNOWN_INSTRUMENT and kinds(res) == ["OrderRejected"]


# ------------------------------------------------------------------ instrument status


def _status(venue: Venue, status: InstrumentStatus, symbol: str = SYM) -> ResultCode:
    return venue.engine.process(SetInstrumentStatus(ts=venue.tick(), symbol=symbol, status=status)).code


def test_halt_blocks_entry_and_amend_but_allows_cancel(venue: Venue) -> None:
    ok(venue.buy(2, 100))
    ok(venue.buy(2, 99))
    assert _status(venue, InstrumentStatus.HALTED) is ResultCode.OK
    assert venue.sell(1, 100).code is ResultCode.INSTRUMENT_HALTED
    assert venue.amend(1, "alice", qty=1).code is ResultCode.INSTRUMENT_HALTED
    ok(venue.cancel(2, "alice"))
    assert _status(venue, InstrumentStatus.OPEN) is ResultCode.OK
    ok(venue.sell(1, 100))


def test_status_change_event_carries_md_seq(venue: Venue) -> None:
    ok(venue.buy(1, 100))
    res = ok(venue.engine.process(SetInstrumentStatus(ts=venue.tick(), symbol=SYM, status=InstrumentStatus.HALTED)))
    changed = of(res, InstrumentStatusChanged)[0]
    assert (changed.md_seq, changed.status) == (2, InstrumentStatus.HALTED)
    assert venue.engine.l2(SYM).status is InstrumentStatus.HALTED
    spec = venue.engine.spec(SYM)
    assert spec is not None and spec.status is InstrumentStatus.HALTED


def test_pre_open_then_open(venue: Venue) -> None:
    ok(venue.add("OMN-P", status=InstrumentStatus.PRE_OPEN))
    assert venue.buy(1, 100, symbol="OMN-P").code is ResultCode.INSTRUMENT_NOT_OPEN
    assert _status(venue, InstrumentStatus.OPEN, "OMN-P") is ResultCode.OK
    ok(venue.buy(1, 100, symbol="OMN-P"))


def test_close_cancels_everything_and_is_terminal(venue: Venue) -> None:
    ok(venue.buy(1, 100))
    ok(venue.buy(1, 101, "carol"))
    ok(venue.sell(1, 105))
    res = ok(venue.engine.process(SetInstrumentStatus(ts=venue.tick(), symbol=SYM, status=InstrumentStatus.CLOSED)))
    assert kinds(res)[0] == "InstrumentStatusChanged"
    assert [(c.order_id, c.reason) for c in of(res, OrderCancelled)] == [
        (2, CancelReason.INSTRUMENT_CLOSED), (1, CancelReason.INSTRUMENT_CLOSED), (3, CancelReason.INSTRUMENT_CLOSED)]
    assert venue.book() == ([], [])
    assert venue.buy(1, 100).code is ResultCode.INSTRUMENT_CLOSED
    for status in InstrumentStatus:
        assert _status(venue, status) is ResultCode.INVALID_STATUS_TRANSITION


@pytest.mark.parametrize(
    ("start", "target", "code"),
    [
        (InstrumentStatus.PRE_OPEN, InstrumentStatus.OPEN, ResultCode.OK),
        (InstrumentStatus.PRE_OPEN, InstrumentStatus.HALTED, ResultCode.INVALID_STATUS_TRANSITION),
        (InstrumentStatus.PRE_OPEN, InstrumentStatus.CLOSED, ResultCode.OK),
        (InstrumentStatus.PRE_OPEN, InstrumentStatus.PRE_OPEN, ResultCode.INVALID_STATUS_TRANSITION),
        (InstrumentStatus.OPEN, InstrumentStatus.HALTED, ResultCode.OK),
        (InstrumentStatus.OPEN, InstrumentStatus.PRE_OPEN, ResultCode.INVALID_STATUS_TRANSITION),
        (InstrumentStatus.OPEN, InstrumentStatus.OPEN, ResultCode.INVALID_STATUS_TRANSITION),
        (InstrumentStatus.HALTED, InstrumentStatus.OPEN, ResultCode.OK),
        (InstrumentStatus.HALTED, InstrumentStatus.CLOSED, ResultCode.OK),
        (InstrumentStatus.HALTED, InstrumentStatus.PRE_OPEN, ResultCode.INVALID_STATUS_TRANSITION),
    ],
)
def test_status_transitions(venue: Venue, start: InstrumentStatus, target: InstrumentStatus, code: ResultCode) -> None:
    ok(venue.add("X", status=start))
    assert _status(venue, target, "X") is code


# ------------------------------------------------------------------ queries


def test_open_orders_filters_and_order_view(venue: Venue) -> None:
    ok(venue.add("OMN-B"))
    ok(venue.buy(1, 100, client_order_id="c1", session="s"))
    ok(venue.buy(1, 100, symbol="OMN-B"))
    ok(venue.sell(1, 110))
    assert [o.order_id for o in venue.engine.open_orders("alice")] == [1, 2]
    assert [o.order_id for o in venue.engine.open_orders("alice", "OMN-B")] == [2]
    assert [o.order_id for o in venue.engine.open_orders(symbol=SYM)] == [1, 3]
    assert venue.engine.open_orders("nobody") == []
    view = venue.engine.order(1)
    assert view is not None and (view.client_order_id, view.session, view.tif) == ("c1", "s", TimeInForce.GTC)


# ------------------------------------------------------------------ snapshot / restore


def _busy(venue: Venue) -> None:
    ok(venue.add("OMN-B", status=InstrumentStatus.PRE_OPEN))
    ok(venue.buy(3, 100, tif=GTD, expire_ts=venue.ts + 30))
    ok(venue.buy(2, 100, "carol", stp=StpMode.DECREMENT))
    ok(venue.sell(1, 100))
    ok(venue.sell(4, 103, post_only=True, session="x"))
    ok(venue.sell(2, 104, tif=GTD, expire_ts=venue.ts + 5))


def test_snapshot_is_json_and_restores_identically(venue: Venue) -> None:
    _busy(venue)
    data = venue.engine.snapshot()
    assert json.loads(json.dumps(data)) == data
    restored = Engine.from_snapshot(json.loads(json.dumps(data)))
    restored.validate()
    assert restored.snapshot() == data
    assert restored.seq == venue.engine.seq and restored.symbols() == venue.engine.symbols()
    twin = Venue(restored, ts=venue.ts)
    streams = []
    for v in (venue, twin):
        out = [ok(v.buy(2, 104, "dave")), ok(v.sell(5, 99, "erin"))]
        v.ts += 100
        out.append(ok(v.engine.process(AdvanceTime(ts=v.ts))))
        out.append(ok(v.buy(1, 200, "alice")))
        streams.append([r.events for r in out])
    assert streams[0] == streams[1]


def test_from_snapshot_rejects_bad_data(venue: Venue) -> None:
    _busy(venue)
    data = venue.engine.snapshot()
    with pytest.raises(SnapshotError):
        Engine.from_snapshot({**data, "format": 99})
    with pytest.raises(SnapshotError):
        Engine.from_snapshot({k: v for k, v in data.items() if k != "seq"})
    broken = json.loads(json.dumps(data))
    broken["instruments"][0]["orders"][0]["price"] = 10**9  # crosses the asks, outside the band
    with pytest.raises(SnapshotError):
        Engine.from_snapshot(broken)
    broken = json.loads(json.dumps(data))
    broken["instruments"][0]["orders"][0]["qty"] = "3"
    with pytest.raises(SnapshotError):
        Engine.from_snapshot(broken)
