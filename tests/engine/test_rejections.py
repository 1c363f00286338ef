"""Every result code the engine produces, each from a minimal scenario; rejections change no book state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine import (
    AddInstrument,
    AdvanceTime,
    AmendOrder,
    CancelOrder,
    Cross,
    InstrumentStatus,
    MassCancel,
    NewOrder,
    OrderRejected,
    OrderType,
    Result,
    ResultCode,
    SetInstrumentStatus,
    Side,
    StpMode,
    TimeInForce,
    TradeOrigin,
    Uncross,
)
from tests.engine.helpers import SYM, Venue, of, ok, spec

R = ResultCode
MKT = OrderType.MARKET


def _setup(v: Venue) -> None:
    """Book: alice bid 2@100 (id 1, post-only), bob ask 3@105 (id 2); min 2, max 1000 lots, band 50..200."""
    ok(v.add(SYM, min_qty=2, max_qty=1000, band_low=50, band_high=200))
    ok(v.add("PRE", status=InstrumentStatus.PRE_OPEN))
    ok(v.add("HALT"))
    ok(v.engine.process(SetInstrumentStatus(ts=v.tick(), symbol="HALT", status=InstrumentStatus.HALTED)))
    ok(v.add("DONE"))
    ok(v.engine.process(SetInstrumentStatus(ts=v.tick(), symbol="DONE", status=InstrumentStatus.CLOSED)))
    ok(v.buy(2, 100, post_only=True))
    ok(v.sell(3, 105))
    # CALL: in a call auction; CROSSED: halted during a call with a crossed book (orders 3 and 4)
    for symbol in ("CALL", "CROSSED"):
        ok(v.add(symbol))
        ok(v.engine.process(SetInstrumentStatus(ts=v.tick(), symbol=symbol, status=InstrumentStatus.CALL)))
    ok(v.buy(2, 100, symbol="CROSSED"))
    ok(v.sell(2, 90, symbol="CROSSED"))
    ok(v.engine.process(SetInstrumentStatus(ts=v.tick(), symbol="CROSSED", status=InstrumentStatus.HALTED)))


Case = Callable[[Venue], Result]


def _past_order(v: Venue) -> Result:
    v.ts -= 5
    return v.buy(2, 100)


ORDER_CASES: dict[str, tuple[ResultCode, Case]] = {
    "unknown instrument": (R.UNKNOWN_INSTRUMENT, lambda v: v.buy(2, 100, symbol="NOPE")),
    "pre-open": (R.INSTRUMENT_NOT_OPEN, lambda v: v.buy(2, 100, symbol="PRE")),
    "halted": (R.INSTRUMENT_HALTED, lambda v: v.buy(2, 100, symbol="HALT")),
    "closed": (R.INSTRUMENT_CLOSED, lambda v: v.buy(2, 100, symbol="DONE")),
    "zero qty": (R.INVALID_QUANTITY, lambda v: v.buy(0, 100)),
    "negative qty": (R.INVALID_QUANTITY, lambda v: v.buy(-3, 100)),
    "below min": (R.QUANTITY_BELOW_MIN, lambda v: v.buy(1, 100)),
    "above max": (R.QUANTITY_ABOVE_MAX, lambda v: v.buy(1001, 100)),
    "zero price": (R.INVALID_PRICE, lambda v: v.buy(2, 0)),
    "negative price": (R.INVALID_PRICE, lambda v: v.buy(2, -1)),
    "below band": (R.PRICE_OUTSIDE_BAND, lambda v: v.buy(2, 49)),
    "above band": (R.PRICE_OUTSIDE_BAND, lambda v: v.sell(2, 201)),
    "market protection outside band": (R.PRICE_OUTSIDE_BAND, lambda v: v.buy(2, 201, order_type=MKT)),
    "limit without price": (R.MISSING_PRICE, lambda v: v.buy(2, None)),
    "gtd without expiry": (R.MISSING_EXPIRY, lambda v: v.buy(2, 100, tif=TimeInForce.GTD)),
    "expiry now": (R.EXPIRY_IN_PAST, lambda v: v.buy(2, 100, tif=TimeInForce.GTD, expire_ts=v.ts + 1)),
    "expiry past": (R.EXPIRY_IN_PAST, lambda v: v.buy(2, 100, tif=TimeInForce.GTD, expire_ts=5)),
    "post-only market": (R.INVALID_ORDER_FLAGS, lambda v: v.buy(2, 100, order_type=MKT, post_only=True)),
    "post-only ioc": (R.INVALID_ORDER_FLAGS, lambda v: v.buy(2, 100, tif=TimeInForce.IOC, post_only=True)),
    "post-only fok": (R.INVALID_ORDER_FLAGS, lambda v: v.buy(2, 100, tif=TimeInForce.FOK, post_only=True)),
    "expiry on gtc": (R.INVALID_ORDER_FLAGS, lambda v: v.buy(2, 100, expire_ts=v.ts + 100)),
    "market gtd": (R.INVALID_ORDER_FLAGS,
                   lambda v: v.buy(2, None, order_type=MKT, tif=TimeInForce.GTD, expire_ts=v.ts + 100)),
    "post-only cross": (R.POST_ONLY_WOULD_CROSS, lambda v: v.sell(2, 100, "carol", post_only=True)),
    "fok short": (R.FOK_NOT_FILLABLE, lambda v: v.buy(4, 105, "carol", tif=TimeInForce.FOK)),
    "fok own order": (R.FOK_NOT_FILLABLE, lambda v: v.buy(2, 105, "bob", tif=TimeInForce.FOK,
                                                          stp=StpMode.DECREMENT)),
    "market no liquidity": (R.NO_LIQUIDITY, lambda v: v.buy(2, 104, order_type=MKT)),
    "order in the past": (R.INVALID_TIME, _past_order),
    "ioc in a call": (R.NOT_ALLOWED_IN_CALL, lambda v: v.buy(2, 100, symbol="CALL", tif=TimeInForce.IOC)),
    "fok in a call": (R.NOT_ALLOWED_IN_CALL, lambda v: v.buy(2, 100, symbol="CALL", tif=TimeInForce.FOK)),
    "market in a call": (R.NOT_ALLOWED_IN_CALL, lambda v: v.sell(2, None, symbol="CALL", order_type=MKT)),
}


MANAGE_CASES: dict[str, tuple[ResultCode, Case]] = {
    "cancel unknown": (R.UNKNOWN_ORDER, lambda v: v.cancel(99, "alice")),
    "cancel others": (R.UNKNOWN_ORDER, lambda v: v.cancel(2, "alice")),
    "amend unknown": (R.UNKNOWN_ORDER, lambda v: v.amend(99, "alice", qty=3)),
    "amend others": (R.UNKNOWN_ORDER, lambda v: v.amend(1, "bob", qty=3)),
    "amend nothing": (R.AMEND_NO_CHANGE, lambda v: v.amend(1, "alice")),
    "amend same": (R.AMEND_NO_CHANGE, lambda v: v.amend(1, "alice", qty=2, price=100)),
    "amend zero qty": (R.INVALID_QUANTITY, lambda v: v.amend(1, "alice", qty=0)),
    "amend below min": (R.QUANTITY_BELOW_MIN, lambda v: v.amend(2, "bob", qty=1)),
    "amend above max": (R.QUANTITY_ABOVE_MAX, lambda v: v.amend(2, "bob", qty=1001)),
    "amend bad price": (R.INVALID_PRICE, lambda v: v.amend(1, "alice", price=0)),
    "amend out of band": (R.PRICE_OUTSIDE_BAND, lambda v: v.amend(1, "alice", price=201)),
    "amend post-only cross": (R.POST_ONLY_WOULD_CROSS, lambda v: v.amend(1, "alice", price=106)),
    "amend in the past": (R.INVALID_TIME, lambda v: v.engine.process(
        AmendOrder(ts=1, participant="alice", order_id=1, qty=3))),
    "cancel in the past": (R.INVALID_TIME, lambda v: v.engine.process(
        CancelOrder(ts=1, participant="alice", order_id=1))),
    "mass cancel in the past": (R.INVALID_TIME, lambda v: v.engine.process(MassCancel(ts=1, participant="alice"))),
    "mass cancel unknown": (R.UNKNOWN_INSTRUMENT, lambda v: v.engine.process(
        MassCancel(ts=v.tick(), participant="alice", symbol="NOPE"))),
}


@pytest.mark.parametrize("name", list(ORDER_CASES) + list(MANAGE_CASES))
def test_rejection_emits_one_event_and_changes_nothing(name: str) -> None:
    code, case = {**ORDER_CASES, **MANAGE_CASES}[name]
    v = Venue()
    _setup(v)
    before = v.engine.snapshot()
    res = case(v)
    assert res.code is code
    assert len(res.events) == 1
    rejected = of(res, OrderRejected)[0]
    assert rejected.code is code and rejected.seq == v.engine.seq
    after = v.engine.snapshot()
    for key in ("seq", "clock"):
        before.pop(key)
        after.pop(key)
    assert after == before
    if name in ORDER_CASES:
        assert res.order_id is None and rejected.order_id is None
    v.engine.validate()


def test_amend_qty_too_low_after_fill() -> None:
    v = Venue()
    _setup(v)
    ok(v.buy(2, 105, "carol"))
    res = v.amend(2, "bob", qty=2)
    assert res.code is R.AMEND_QTY_TOO_LOW and res.order_id == 2
    assert of(res, OrderRejected)[0].order_id == 2


def test_amend_blocked_by_status() -> None:
    v = Venue()
    _setup(v)
    ok(v.engine.process(SetInstrumentStatus(ts=v.tick(), symbol=SYM, status=InstrumentStatus.HALTED)))
    assert v.amend(1, "alice", qty=3).code is R.INSTRUMENT_HALTED


INSTRUMENT_CASES: dict[str, tuple[ResultCode, Callable[[Venue], Any]]] = {
    "exists": (R.INSTRUMENT_EXISTS, lambda v: AddInstrument(ts=v.tick(), spec=spec(SYM))),
    "empty symbol": (R.INVALID_INSTRUMENT_SPEC, lambda v: AddInstrument(ts=v.tick(), spec=spec(""))),
    "zero tick": (R.INVALID_INSTRUMENT_SPEC, lambda v: AddInstrument(ts=v.tick(), spec=spec("X", tick_size=0))),
    "zero lot": (R.INVALID_INSTRUMENT_SPEC, lambda v: AddInstrument(ts=v.tick(), spec=spec("X", lot_size=0))),
    "min zero": (R.INVALID_INSTRUMENT_SPEC, lambda v: AddInstrument(ts=v.tick(), spec=spec("X", min_qty=0))),
    "max < min": (R.INVALID_INSTRUMENT_SPEC,
                  lambda v: AddInstrument(ts=v.tick(), spec=spec("X", min_qty=5, max_qty=4))),
    "band zero": (R.INVALID_INSTRUMENT_SPEC, lambda v: AddInstrument(ts=v.tick(), spec=spec("X", band_low=0))),
    "band inverted": (R.INVALID_INSTRUMENT_SPEC,
                      lambda v: AddInstrument(ts=v.tick(), spec=spec("X", band_low=10, band_high=9))),
    "added closed": (R.INVALID_INSTRUMENT_SPEC,
                     lambda v: AddInstrument(ts=v.tick(), spec=spec("X", status=InstrumentStatus.CLOSED))),
    "add in the past": (R.INVALID_TIME, lambda v: AddInstrument(ts=1, spec=spec("X"))),
    "status unknown": (R.UNKNOWN_INSTRUMENT,
                       lambda v: SetInstrumentStatus(ts=v.tick(), symbol="NOPE", status=InstrumentStatus.OPEN)),
    "status bad transition": (R.INVALID_STATUS_TRANSITION,
                              lambda v: SetInstrumentStatus(ts=v.tick(), symbol="DONE", status=InstrumentStatus.OPEN)),
    "status in the past": (R.INVALID_TIME,
                           lambda v: SetInstrumentStatus(ts=1, symbol=SYM, status=InstrumentStatus.HALTED)),
    "advance into the past": (R.INVALID_TIME, lambda v: AdvanceTime(ts=1)),
    "cross in the past": (R.INVALID_TIME, lambda v: _cross(v, ts=1)),
    "cross unknown": (R.UNKNOWN_INSTRUMENT, lambda v: _cross(v, symbol="NOPE")),
    "cross pre-open": (R.INSTRUMENT_NOT_OPEN, lambda v: _cross(v, symbol="PRE")),
    "cross halted": (R.INSTRUMENT_HALTED, lambda v: _cross(v, symbol="HALT")),
    "cross closed": (R.INSTRUMENT_CLOSED, lambda v: _cross(v, symbol="DONE")),
    "cross continuous origin": (R.INVALID_TRADE_ORIGIN, lambda v: _cross(v, origin=TradeOrigin.CONTINUOUS)),
    "cross auction origin": (R.INVALID_TRADE_ORIGIN, lambda v: _cross(v, origin=TradeOrigin.AUCTION)),
    "cross int origin": (R.INVALID_TRADE_ORIGIN, lambda v: _cross(v, origin=3)),
    "cross with oneself": (R.SELF_CROSS, lambda v: _cross(v, seller="alice")),
    "cross zero qty": (R.INVALID_QUANTITY, lambda v: _cross(v, qty=0)),
    "cross float qty": (R.INVALID_QUANTITY, lambda v: _cross(v, qty=2.0)),
    "cross below min": (R.QUANTITY_BELOW_MIN, lambda v: _cross(v, qty=1)),
    "cross above max": (R.QUANTITY_ABOVE_MAX, lambda v: _cross(v, qty=1001)),
    "cross huge qty": (R.QUANTITY_ABOVE_MAX, lambda v: _cross(v, qty=2**70)),
    "cross no price": (R.INVALID_PRICE, lambda v: _cross(v, price=None)),
    "cross negative price": (R.INVALID_PRICE, lambda v: _cross(v, price=-5)),
    "cross outside band": (R.PRICE_OUTSIDE_BAND, lambda v: _cross(v, price=201)),
    "cross huge price": (R.PRICE_OUTSIDE_BAND, lambda v: _cross(v, price=2**70)),
    "cross in a call": (R.NOT_ALLOWED_IN_CALL, lambda v: _cross(v, symbol="CALL")),
    "call to open without uncross": (R.INVALID_STATUS_TRANSITION, lambda v: SetInstrumentStatus(
        ts=v.tick(), symbol="CALL", status=InstrumentStatus.OPEN)),
    "call to pre-open": (R.INVALID_STATUS_TRANSITION, lambda v: SetInstrumentStatus(
        ts=v.tick(), symbol="CALL", status=InstrumentStatus.PRE_OPEN)),
    "call from closed": (R.INVALID_STATUS_TRANSITION, lambda v: SetInstrumentStatus(
        ts=v.tick(), symbol="DONE", status=InstrumentStatus.CALL)),
    "open a crossed halted book": (R.BOOK_CROSSED, lambda v: SetInstrumentStatus(
        ts=v.tick(), symbol="CROSSED", status=InstrumentStatus.OPEN)),
    "uncross in the past": (R.INVALID_TIME, lambda v: Uncross(ts=1, symbol="CALL")),
    "uncross unknown": (R.UNKNOWN_INSTRUMENT, lambda v: Uncross(ts=v.tick(), symbol="NOPE")),
    "uncross continuous": (R.NOT_IN_CALL, lambda v: Uncross(ts=v.tick(), symbol=SYM)),
    "uncross halted": (R.NOT_IN_CALL, lambda v: Uncross(ts=v.tick(), symbol="CROSSED")),
    "uncross into halted": (R.INVALID_STATUS_TRANSITION, lambda v: Uncross(
        ts=v.tick(), symbol="CALL", then=InstrumentStatus.HALTED)),
    "uncross into int status": (R.INVALID_STATUS_TRANSITION, lambda v: Uncross(ts=v.tick(), symbol="CALL", then=2)),
    "uncross zero reference": (R.INVALID_PRICE, lambda v: Uncross(ts=v.tick(), symbol="CALL", reference_price=0)),
    "uncross float reference": (R.INVALID_PRICE, lambda v: Uncross(ts=v.tick(), symbol="CALL", reference_price=1.5)),
    "uncross huge reference": (R.INVALID_PRICE, lambda v: Uncross(ts=v.tick(), symbol="CALL", reference_price=2**64)),
}


def _cross(v: Venue, **kw: Any) -> Cross:
    fields: dict[str, Any] = {"ts": v.tick(), "symbol": SYM, "buyer": "alice", "seller": "bob", "price": 100,
                              "qty": 5, "origin": TradeOrigin.BLOCK}
    fields.update(kw)
    return Cross(**fields)


@pytest.mark.parametrize("name", list(INSTRUMENT_CASES))
def test_instrument_and_time_rejections_have_no_events(name: str) -> None:
    code, make = INSTRUMENT_CASES[name]
    v = Venue()
    _setup(v)
    before = v.engine.snapshot()
    res = v.engine.process(make(v))
    assert (res.code, res.events) == (code, ())
    after = v.engine.snapshot()
    after.pop("clock")
    before.pop("clock")
    assert after == before


def test_every_result_code_is_exercised() -> None:
    covered = {code for code, _ in [*ORDER_CASES.values(), *MANAGE_CASES.values(), *INSTRUMENT_CASES.values()]}
    covered |= {R.OK, R.AMEND_QTY_TOO_LOW}
    assert covered == set(ResultCode)


def test_clock_is_not_moved_by_a_rejected_time() -> None:
    v = Venue()
    _setup(v)
    clock = v.engine.clock
    assert v.engine.process(AdvanceTime(ts=clock - 1)).code is R.INVALID_TIME
    assert v.engine.clock == clock
    assert v.engine.process(AdvanceTime(ts=clock)).code is R.OK  # equal ts is fine


def test_non_command_is_a_type_error() -> None:
    v = Venue()
    with pytest.raises(TypeError):
        v.engine.process(Side.BUY)  # type: ignore[arg-type]


def _raw_order(v: Venue, **kw: Any) -> Result:
    fields: dict[str, Any] = {"ts": v.tick(), "participant": "carol", "symbol": SYM, "side": Side.BUY, "qty": 2,
                              "price": 100}
    fields.update(kw)
    return v.engine.process(NewOrder(**fields))


ILL_TYPED: dict[str, tuple[ResultCode, dict[str, Any]]] = {
    "float price": (R.INVALID_PRICE, {"price": 100.5}),
    "bool qty": (R.INVALID_QUANTITY, {"qty": True}),
    "float qty": (R.INVALID_QUANTITY, {"qty": 2.0}),
    "int side": (R.INVALID_ORDER_FLAGS, {"side": 1}),
    "int tif": (R.INVALID_ORDER_FLAGS, {"tif": 1}),
    "int order type": (R.INVALID_ORDER_FLAGS, {"order_type": 1}),
    "int stp": (R.INVALID_ORDER_FLAGS, {"stp": 1}),
    "int post-only": (R.INVALID_ORDER_FLAGS, {"post_only": 1}),
    "float expiry": (R.INVALID_ORDER_FLAGS, {"tif": TimeInForce.GTD, "expire_ts": 10.0**9}),
    "float ts": (R.INVALID_TIME, {"ts": 10.0**9}),
}


@pytest.mark.parametrize("name", list(ILL_TYPED))
def test_ill_typed_order_fields_are_rejected(name: str) -> None:
    code, kw = ILL_TYPED[name]
    v = Venue()
    _setup(v)
    before = v.engine.snapshot()
    res = _raw_order(v, **kw)
    assert res.code is code and kinds_of(res) == ["OrderRejected"]
    after = v.engine.snapshot()
    assert after["instruments"] == before["instruments"] and type(after["clock"]) is int
    v.engine.validate()


def kinds_of(res: Result) -> list[str]:
    return [type(e).__name__ for e in res.events]


def test_ill_typed_amend_and_instrument_commands_are_rejected() -> None:
    v = Venue()
    _setup(v)
    assert v.amend(1, "alice", qty=2.5).code is R.INVALID_QUANTITY  # type: ignore[arg-type]
    assert v.amend(1, "alice", price=99.5).code is R.INVALID_PRICE  # type: ignore[arg-type]
    assert v.amend(1, "alice", price="99").code is R.INVALID_PRICE  # type: ignore[arg-type]
    assert v.amend(1, "alice", qty="3").code is R.INVALID_QUANTITY  # type: ignore[arg-type]
    status = SetInstrumentStatus(ts=v.tick(), symbol=SYM, status=3)  # type: ignore[arg-type]
    assert v.engine.process(status).code is R.INVALID_STATUS_TRANSITION
    bad_spec = AddInstrument(ts=v.tick(), spec=spec("X", tick_size=0.5))
    assert v.engine.process(bad_spec).code is R.INVALID_INSTRUMENT_SPEC
    assert v.engine.process(AdvanceTime(ts=float(v.tick()))).code is R.INVALID_TIME  # type: ignore[arg-type]
    assert v.engine.spec(SYM) is not None and v.engine.spec(SYM).status is InstrumentStatus.OPEN  # type: ignore[union-attr]
    v.engine.validate()


# ------------------------------------------------------------------ 64-bit limits (engine/limits.py)


def test_spec_limits_and_unlimited_unit_sizes() -> None:
    v = Venue()
    assert v.add("Q1", max_qty=2**40 + 1).code is R.INVALID_INSTRUMENT_SPEC
    assert v.add("Q2", band_high=2**53 + 1).code is R.INVALID_INSTRUMENT_SPEC
    assert v.add("Q3", lot_size=10**18, tick_size=10**18, max_qty=2**40, band_high=2**53).code is R.OK


def test_numbers_beyond_64_bits_are_rejected_like_any_out_of_range_value(venue: Venue) -> None:
    assert venue.buy(10**30, 100).code is R.QUANTITY_ABOVE_MAX
    assert venue.buy(-(10**30), 100).code is R.INVALID_QUANTITY
    assert venue.buy(1, 10**30).code is R.PRICE_OUTSIDE_BAND
    assert venue.buy(1, -(10**30)).code is R.INVALID_PRICE
    assert venue.buy(1, 100, tif=TimeInForce.GTD, expire_ts=2**63).code is R.INVALID_ORDER_FLAGS
    res = venue.engine.process(NewOrder(ts=2**63, participant="a", symbol=SYM, side=Side.BUY, qty=1, price=100))
    assert res.code is R.INVALID_TIME
    assert venue.engine.process(AdvanceTime(ts=2**63)).code is R.INVALID_TIME
    oid = ok(venue.buy(5, 100)).order_id
    assert oid is not None
    assert venue.amend(oid, "alice", qty=10**30).code is R.QUANTITY_ABOVE_MAX
    assert venue.amend(oid, "alice", price=10**30).code is R.PRICE_OUTSIDE_BAND
    assert venue.book() == ([(100, 5, 1)], [])
